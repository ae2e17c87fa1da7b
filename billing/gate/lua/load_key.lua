-- Seed a key's usage windows from settled generations, once. KEYS: 1 key hash, 2..5 windows (all, d, w, m)
-- ARGV: 1..8 u/b pairs for all, d, w, m; 9 window ttl
if redis.call('HEXISTS', KEYS[1], 'ld') == 1 then return 0 end
for i = 2, 5 do
  local j = (i - 2) * 2
  redis.call('HINCRBY', KEYS[i], 'u', ARGV[j + 1])
  redis.call('HINCRBY', KEYS[i], 'b', ARGV[j + 2])
  if i > 2 then redis.call('EXPIRE', KEYS[i], tonumber(ARGV[9])) end
end
redis.call('HSET', KEYS[1], 'ld', 1)
return 1
