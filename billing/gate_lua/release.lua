-- Shared by finish.lua and expire.lua (prepended by billing/gate.py).
-- A reservation record is "org_id|key_hash|org_hold|key_hold" in the gate:rs hash.
local function release(rid)
  local rec = redis.call('HGET', 'gate:rs', rid)
  if not rec then return 0 end
  local org, kh, ho, hk = string.match(rec, '^([^|]*)|([^|]*)|([^|]*)|([^|]*)$')
  redis.call('HINCRBY', 'gate:o:' .. org, 'res', 0 - tonumber(ho))
  redis.call('HINCRBY', 'gate:k:' .. kh, 'res', 0 - tonumber(hk))
  redis.call('HDEL', 'gate:rs', rid)
  redis.call('ZREM', 'gate:rz', rid)
  return 1
end
