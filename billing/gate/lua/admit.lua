-- Admission: check and hold in one atomic step so concurrent gateways cannot overspend.
-- The numbers (holds, caps, thresholds, TTLs) come from billing/gate/rules.py; this script only
-- compares them with the shared counters, in the order rules.admit_verdict does.
-- KEYS: 1 org hash, 2 key hash, 3 key usage window of the limit period, 4 free sliding-window zset (key),
--       5 free per-day counter (org), 6 reservations hash, 7 reservation deadlines zset
-- ARGV: 1 rid, 2 org hold, 3 key hold, 4 is_free, 5 limit (-1 = none), 6 include_byok, 7 deadline,
--       8 rpm, 9 rpd without credits, 10 rpd with credits, 11 purchase threshold,
--       12 sliding window (ms), 13 per-day counter ttl, 14 org id, 15 key hash, 16 now (unix ms)
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

if ARGV[4] == '1' then
  -- A sliding window: the requests of the last minute, not of the calendar minute (no double burst
  -- across a minute boundary). Refused requests are not recorded, so the set holds at most rpm entries.
  local now_ms, window = tonumber(ARGV[16]), tonumber(ARGV[12])
  redis.call('ZREMRANGEBYSCORE', KEYS[4], '-inf', now_ms - window)
  if redis.call('ZCARD', KEYS[4]) >= tonumber(ARGV[8]) then
    local oldest = redis.call('ZRANGE', KEYS[4], 0, 0, 'WITHSCORES')
    return {'rpm', tonumber(ARGV[8]), tonumber(oldest[2]) + window}
  end
  local bought = tonumber(redis.call('HGET', org, 'bought') or '0')
  local high = bought >= tonumber(ARGV[11])
  local rpd = tonumber(ARGV[9])
  if high then rpd = tonumber(ARGV[10]) end
  local used_day = tonumber(redis.call('GET', KEYS[5]) or '0')
  if used_day >= rpd then return {'rpd', rpd, high and 1 or 0} end
  redis.call('ZADD', KEYS[4], now_ms, ARGV[1]); redis.call('PEXPIRE', KEYS[4], window)
  redis.call('INCR', KEYS[5]); redis.call('EXPIRE', KEYS[5], tonumber(ARGV[13]))
  return {'ok', 0}
end

local hold_org = tonumber(ARGV[2])
local hold_key = tonumber(ARGV[3])
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
redis.call('HSET', KEYS[6], ARGV[1], ARGV[14] .. '|' .. ARGV[15] .. '|' .. hold_org .. '|' .. hold_key)
redis.call('ZADD', KEYS[7], tonumber(ARGV[7]), ARGV[1])
return {'ok', hold_org}
