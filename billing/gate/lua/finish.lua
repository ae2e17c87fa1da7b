-- Release the hold and, with a usage event, charge it and queue it for settlement, exactly once.
-- The charge rule is billing/gate/rules.py's `Charge`: a counted (BYOK) event costs `within` while the
-- org's monthly counter is at most `quota`, else `beyond`; other events cost `beyond`, at most what
-- the request held (rules.capped_charge: the rest is the platform's loss, posted by settlement).
-- KEYS: 1 finished marker, 2 org hash, 3..6 key usage windows (all, day, week, month),
--       7 BYOK monthly request counter (org), 8 usage stream, 9 reservations hash, 10 deadlines zset
-- ARGV: 1 rid, 2 has event, 3 counted, 4 quota, 5 within, 6 beyond, 7 BYOK usage for the key windows,
--       8 charge field, 9 event field, 10 event payload, 11 window ttl, 12 finished-marker ttl,
--       13 BYOK counter ttl, 14 org prefix, 15 key prefix
local prev = redis.call('GET', KEYS[1])
if prev then return tonumber(prev) end
local held = release(ARGV[1], KEYS[9], KEYS[10], ARGV[14], ARGV[15])
if ARGV[2] ~= '1' then
  redis.call('SET', KEYS[1], '0', 'EX', tonumber(ARGV[12]))
  return 0
end
local counted = ARGV[3] == '1'
local charge = tonumber(ARGV[6])
if counted then
  local n = redis.call('INCR', KEYS[7])
  redis.call('EXPIRE', KEYS[7], tonumber(ARGV[13]))
  if n <= tonumber(ARGV[4]) then charge = tonumber(ARGV[5]) end
elseif held >= 0 and charge > held then
  charge = held
end
redis.call('HINCRBY', KEYS[2], 'spent', charge)
redis.call('HINCRBY', KEYS[2], 'uns', charge)
for i = 3, 6 do
  redis.call('HINCRBY', KEYS[i], 'u', charge)
  if counted then redis.call('HINCRBY', KEYS[i], 'b', ARGV[7]) end
  if i > 3 then redis.call('EXPIRE', KEYS[i], tonumber(ARGV[11])) end
end
redis.call('XADD', KEYS[8], '*', ARGV[8], charge, ARGV[9], ARGV[10])
redis.call('SET', KEYS[1], charge, 'EX', tonumber(ARGV[12]))
return charge
