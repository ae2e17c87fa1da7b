local now = tonumber(ARGV[1])
local kind = ARGV[2]
local R = tonumber(ARGV[4])
local st = KEYS[1]
local slot = math.floor(now / tonumber(ARGV[5]))
local i = slot % R
local function reset(idx, s)
  redis.call('HSET', st, 'b' .. idx, s, 'k' .. idx, 0, 'e' .. idx, 0, 'r' .. idx, 0)
end
if tonumber(redis.call('HGET', st, 'b' .. i) or '-1') ~= slot then reset(i, slot) end
local counter = 'r'
if kind == 'ok' then counter = 'k' elseif kind == 'err' then counter = 'e' end
redis.call('HINCRBY', st, counter .. i, 1)
if kind ~= 'rl' then
  local minute = math.floor(now / 60000)
  local mkey = KEYS[3]
  if kind == 'ok' then mkey = KEYS[2] end
  redis.call('HINCRBY', mkey, tostring(minute), 1)
  if tonumber(redis.call('HGET', st, 'lm') or '0') ~= minute then
    redis.call('HSET', st, 'lm', minute)
    for _, key in ipairs({KEYS[2], KEYS[3]}) do
      for _, f in ipairs(redis.call('HKEYS', key)) do
        if tonumber(f) <= minute - 1440 then redis.call('HDEL', key, f) end
      end
    end
  end
end
-- Tool-call quality (ARGV[17]: '' no tool calls, '1' all usable, '0' a bad one) in a ring of
-- per-minute buckets of ARGV[18] slots: tm<i> = the bucket's minute, tt<i> = responses, tb<i> = bad.
if kind == 'ok' and ARGV[17] ~= '' then
  local tminute = math.floor(now / 60000)
  local ti = tminute % tonumber(ARGV[18])
  if tonumber(redis.call('HGET', st, 'tm' .. ti) or '-1') ~= tminute then
    redis.call('HSET', st, 'tm' .. ti, tminute, 'tt' .. ti, 0, 'tb' .. ti, 0)
  end
  redis.call('HINCRBY', st, 'tt' .. ti, 1)
  if ARGV[17] == '0' then redis.call('HINCRBY', st, 'tb' .. ti, 1) end
end
local open_until = tonumber(redis.call('HGET', st, 'o') or '0')
if kind == 'ok' then
  redis.call('HSET', st, 'c', 0)
  if open_until > 0 then
    redis.call('HSET', st, 'o', 0, 'p', 0)
    for j = 0, R - 1 do redis.call('HDEL', st, 'b' .. j) end
    reset(i, slot)
    redis.call('HSET', st, 'k' .. i, 1)
  end
  if ARGV[3] ~= '' then
    redis.call('LPUSH', KEYS[4], ARGV[3])
    redis.call('LTRIM', KEYS[4], 0, tonumber(ARGV[11]) - 1)
    if now - tonumber(redis.call('HGET', st, 'pt') or '0') >= tonumber(ARGV[14]) then
      local cols = {{}, {}, {}}
      for _, s in ipairs(redis.call('LRANGE', KEYS[4], 0, -1)) do
        local parts = {}
        for word in string.gmatch(s, '%S+') do parts[#parts + 1] = word end
        if tonumber(parts[1]) >= now - tonumber(ARGV[13]) then
          for c = 1, 3 do
            local v = tonumber(parts[c + 1])
            if v then cols[c][#cols[c] + 1] = v end
          end
        end
      end
      local names = {'lat', 'ttft', 'tps'}
      for c = 1, 3 do
        local col = cols[c]
        if #col > 0 then
          table.sort(col)
          redis.call('HSET', st, names[c], tostring(col[math.ceil(#col / 2)]))
        else
          redis.call('HDEL', st, names[c])
        end
      end
      redis.call('HSET', st, 'pt', now)
    end
  end
elseif kind == 'err' then
  local c = redis.call('HINCRBY', st, 'c', 1)
  -- Which organizations failed here within the breaker's window (KEYS[5]: org -> last failure).
  local cutoff = now - tonumber(ARGV[9]) * tonumber(ARGV[5])
  local fo = redis.call('HGETALL', KEYS[5])
  for n = 1, #fo, 2 do
    if tonumber(fo[n + 1]) < cutoff then redis.call('HDEL', KEYS[5], fo[n]) end
  end
  redis.call('HSET', KEYS[5], ARGV[15], now)
  local failing_orgs = redis.call('HLEN', KEYS[5])
  local open = false
  if open_until > 0 then
    open = now >= open_until
  elseif failing_orgs < tonumber(ARGV[16]) then
    open = false
  elseif c >= tonumber(ARGV[6]) then
    open = true
  else
    local ok, err = 0, 0
    for j = 0, tonumber(ARGV[9]) - 1 do
      local s = slot - j
      local idx = s % R
      if tonumber(redis.call('HGET', st, 'b' .. idx) or '-1') == s then
        ok = ok + tonumber(redis.call('HGET', st, 'k' .. idx) or '0')
        err = err + tonumber(redis.call('HGET', st, 'e' .. idx) or '0')
      end
    end
    open = ok + err >= tonumber(ARGV[8]) and err >= tonumber(ARGV[7]) * (ok + err)
  end
  if open then redis.call('HSET', st, 'o', now + tonumber(ARGV[10]), 'p', 0) end
end
for _, key in ipairs(KEYS) do redis.call('PEXPIRE', key, ARGV[12]) end
return 1
