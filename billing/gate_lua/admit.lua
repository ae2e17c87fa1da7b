-- Admission: check and hold in one atomic step so concurrent gateways cannot overspend.
-- KEYS: 1 org hash, 2 key hash, 3 key usage window of the limit period, 4 free per-minute counter,
--       5 free per-day counter (org), 6 reservations hash, 7 reservation deadlines zset
-- ARGV: 1 rid, 2 amount, 3 is_free, 4 is_byok, 5 limit (-1 = none), 6 include_byok, 7 BYOK fee on amount,
--       8 deadline, 9 rpm, 10 rpd without credits, 11 rpd with credits, 12 purchase threshold,
--       13 org id, 14 key hash
local org, key, win = KEYS[1], KEYS[2], KEYS[3]
local cold = 0
if redis.call('HEXISTS', org, 'ld') == 0 then cold = cold + 1 end
if redis.call('HEXISTS', key, 'ld') == 0 then cold = cold + 2 end
if cold > 0 then return {'cold', cold} end
if redis.call('HEXISTS', KEYS[6], ARGV[1]) == 1 then return {'ok', 0} end

local cin = tonumber(redis.call('HGET', org, 'cin') or '0')
local spent = tonumber(redis.call('HGET', org, 'spent') or '0')
local res = tonumber(redis.call('HGET', org, 'res') or '0')
local balance = cin - spent
if balance < 0 then return {'negative', balance} end

if ARGV[3] == '1' then
  local used_min = tonumber(redis.call('GET', KEYS[4]) or '0')
  if used_min >= tonumber(ARGV[9]) then return {'rpm', tonumber(ARGV[9])} end
  local bought = tonumber(redis.call('HGET', org, 'bought') or '0')
  local rpd = tonumber(ARGV[10])
  if bought >= tonumber(ARGV[12]) then rpd = tonumber(ARGV[11]) end
  local used_day = tonumber(redis.call('GET', KEYS[5]) or '0')
  if used_day >= rpd then return {'rpd', rpd, bought >= tonumber(ARGV[12]) and 1 or 0} end
  redis.call('INCR', KEYS[4]); redis.call('EXPIRE', KEYS[4], 61)
  redis.call('INCR', KEYS[5]); redis.call('EXPIRE', KEYS[5], 172800)
  return {'ok', 0}
end

local amount = tonumber(ARGV[2])
local hold_org = amount
local hold_key = amount
if ARGV[4] == '1' then
  -- BYOK: the org pays at most the fee; the key limit may also count the list cost.
  hold_org = tonumber(ARGV[7])
  hold_key = hold_org
  if ARGV[6] == '1' then hold_key = hold_org + amount end
end
if balance - res < hold_org then return {'credits', balance - res} end

local limit = tonumber(ARGV[5])
if limit >= 0 then
  local used = tonumber(redis.call('HGET', win, 'u') or '0')
  if ARGV[6] == '1' then used = used + tonumber(redis.call('HGET', win, 'b') or '0') end
  local kres = tonumber(redis.call('HGET', key, 'res') or '0')
  if used + kres + hold_key > limit then return {'key_limit', limit - used - kres} end
end

redis.call('HINCRBY', org, 'res', hold_org)
redis.call('HINCRBY', key, 'res', hold_key)
redis.call('HSET', KEYS[6], ARGV[1], ARGV[13] .. '|' .. ARGV[14] .. '|' .. hold_org .. '|' .. hold_key)
redis.call('ZADD', KEYS[7], tonumber(ARGV[8]), ARGV[1])
return {'ok', hold_org}
