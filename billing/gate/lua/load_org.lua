-- Mirror an organization's ledger snapshot. KEYS: 1 org hash
-- ARGV: 1 credits in (non-usage postings), 2 version (count of those postings), 3 purchased, 4 settled usage
-- Settled usage seeds `spent` only once: after that, finish() adds every charge as it happens.
if redis.call('HEXISTS', KEYS[1], 'ld') == 0 then
  redis.call('HINCRBY', KEYS[1], 'spent', ARGV[4])
  redis.call('HSET', KEYS[1], 'ld', 1)
end
-- Snapshots can arrive out of order; the append-only ledger makes the posting count a version.
local ver = tonumber(redis.call('HGET', KEYS[1], 'ver') or '-1')
if tonumber(ARGV[2]) > ver then
  redis.call('HSET', KEYS[1], 'cin', ARGV[1], 'bought', ARGV[3], 'ver', ARGV[2])
end
return 1
