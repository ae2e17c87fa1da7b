-- After the settlement transaction committed: drop the events from the unsettled counters exactly
-- once (guarded by generation id, so a retry after a crash cannot subtract twice), then ack.
-- KEYS: 1 stream. ARGV: 1 group, 2 guard ttl, 3 guard prefix, 4 org prefix,
--       then groups of 4: message id, generation id, org id, charge
for i = 5, #ARGV, 4 do
  if redis.call('SET', ARGV[3] .. ARGV[i + 1], 1, 'NX', 'EX', tonumber(ARGV[2])) then
    redis.call('HINCRBY', ARGV[4] .. ARGV[i + 2], 'uns', 0 - tonumber(ARGV[i + 3]))
  end
  redis.call('XACK', KEYS[1], ARGV[1], ARGV[i])
  redis.call('XDEL', KEYS[1], ARGV[i])
end
return 1
