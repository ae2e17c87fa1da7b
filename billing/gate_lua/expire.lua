-- Release holds whose request never reported back (crashed gateway). ARGV: 1 now, 2 max count
local rids = redis.call('ZRANGEBYSCORE', 'gate:rz', '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
for _, rid in ipairs(rids) do release(rid) end
return #rids
