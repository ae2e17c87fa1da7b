-- After the settlement transaction committed: drop the events from the unsettled counters exactly
-- once (guarded by generation id, so a retry after a crash cannot subtract twice), then ack.
-- KEYS: 1 stream. ARGV: 1 group, 2 guard ttl, then groups of 4: message id, generation id, org id, charge
for i = 3, #ARGV, 4 do
  if redis.call('SET', 'gate:s:' .. ARGV[i + 1], 1, 'NX', 'EX', tonumber(ARGV[2])) then
    redis.call('HINCRBY', 'gate:o:' .. ARGV[i + 2], 'uns', 0 - tonumber(ARGV[i + 3]))
  end
  redis.call('XACK', KEYS[1], ARGV[1], ARGV[i])
  redis.call('XDEL', KEYS[1], ARGV[i])
end
return 1
