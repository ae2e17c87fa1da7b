-- Release the hold and, with a usage event, charge it and queue it for settlement, exactly once.
-- KEYS: 1 finished marker, 2 org hash, 3..6 key usage windows (all, day, week, month),
--       7 BYOK monthly request counter (org), 8 usage stream
-- ARGV: 1 rid, 2 has event, 3 list cost, 4 BYOK fee, 5 is_byok, 6 free BYOK requests per month,
--       7 event json, 8 window ttl, 9 finished-marker ttl, 10 BYOK counter ttl
local prev = redis.call('GET', KEYS[1])
if prev then return tonumber(prev) end
release(ARGV[1])
if ARGV[2] ~= '1' then
  redis.call('SET', KEYS[1], '0', 'EX', tonumber(ARGV[9]))
  return 0
end
local list_cost = tonumber(ARGV[3])
local charge = list_cost
if ARGV[5] == '1' then
  local n = redis.call('INCR', KEYS[7])
  redis.call('EXPIRE', KEYS[7], tonumber(ARGV[10]))
  if n <= tonumber(ARGV[6]) then charge = 0 else charge = tonumber(ARGV[4]) end
end
if list_cost <= 0 then charge = 0 end
redis.call('HINCRBY', KEYS[2], 'spent', charge)
redis.call('HINCRBY', KEYS[2], 'uns', charge)
for i = 3, 6 do
  redis.call('HINCRBY', KEYS[i], 'u', charge)
  if ARGV[5] == '1' then redis.call('HINCRBY', KEYS[i], 'b', list_cost) end
  if i > 3 then redis.call('EXPIRE', KEYS[i], tonumber(ARGV[8])) end
end
redis.call('XADD', KEYS[8], '*', 'c', charge, 'e', ARGV[7])
redis.call('SET', KEYS[1], charge, 'EX', tonumber(ARGV[9]))
return charge
