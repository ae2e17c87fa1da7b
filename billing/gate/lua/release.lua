-- Shared by finish.lua and expire.lua (billing/gate/scripts.py prepends it).
-- A reservation record is "org_id|key_hash|org_hold|key_hold" in the reservations hash; the org and
-- key hashes are named from the prefixes the caller passes (billing/gate/keys.py).
-- Returns the organization hold it released (finish caps the charge at it), or -1 if none was open.
local function release(rid, reservations, deadlines, org_prefix, key_prefix)
  local rec = redis.call('HGET', reservations, rid)
  if not rec then return -1 end
  local org, kh, ho, hk = string.match(rec, '^([^|]*)|([^|]*)|([^|]*)|([^|]*)$')
  redis.call('HINCRBY', org_prefix .. org, 'res', 0 - tonumber(ho))
  redis.call('HINCRBY', key_prefix .. kh, 'res', 0 - tonumber(hk))
  redis.call('HDEL', reservations, rid)
  redis.call('ZREM', deadlines, rid)
  return tonumber(ho)
end
