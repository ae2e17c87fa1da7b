-- Release holds whose request never reported back (crashed gateway).
-- KEYS: 1 reservation deadlines zset, 2 reservations hash. ARGV: 1 now, 2 max count, 3 org prefix, 4 key prefix
local rids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
for _, rid in ipairs(rids) do release(rid, KEYS[2], KEYS[1], ARGV[3], ARGV[4]) end
return #rids
