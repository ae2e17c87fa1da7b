local now = tonumber(ARGV[1])
local R = tonumber(ARGV[2])
local slot = math.floor(now / tonumber(ARGV[3]))
local out = {}
for n, st in ipairs(KEYS) do
  local h = redis.call('HGETALL', st)
  if #h == 0 then
    out[n] = {}
  else
    local t = {}
    for j = 1, #h, 2 do t[h[j]] = h[j + 1] end
    local ok, fail = 0, 0
    for j = 0, tonumber(ARGV[4]) - 1 do
      local s = slot - j
      local idx = s % R
      if tonumber(t['b' .. idx] or '-1') == s then
        ok = ok + tonumber(t['k' .. idx] or '0')
        fail = fail + tonumber(t['e' .. idx] or '0') + tonumber(t['r' .. idx] or '0')
      end
    end
    local outage = '0'
    if fail >= tonumber(ARGV[5]) and fail >= ok then outage = '1' end
    local o = tonumber(t['o'] or '0')
    local p = tonumber(t['p'] or '0')
    local state, retry = 'closed', ''
    if o > 0 then
      if now < o then
        state = 'open'
        retry = tostring(o - now)
      elseif p <= now and ARGV[9] == '0' then
        -- A background snapshot read (ARGV[9] '0') only reports the cool-down is over; the probe
        -- is claimed by the request that would use it.
        state = 'cooled'
      elseif p <= now then
        redis.call('HSET', st, 'p', now + tonumber(ARGV[6]))
        state = 'probe'
      else
        state = 'open'
        retry = tostring(p - now)
      end
    end
    -- Tool-call quality over the last ARGV[7] minutes, once at least ARGV[8] responses had tool calls.
    local tminute = math.floor(now / 60000)
    local tt, tb = 0, 0
    for j = 0, tonumber(ARGV[7]) - 1 do
      if tonumber(t['tm' .. j] or '-1') > tminute - tonumber(ARGV[7]) then
        tt = tt + tonumber(t['tt' .. j] or '0')
        tb = tb + tonumber(t['tb' .. j] or '0')
      end
    end
    local tool_rate = ''
    if tt > 0 and tt >= tonumber(ARGV[8]) then tool_rate = tostring(tb / tt) end
    out[n] = {outage, state, retry, t['lat'] or '', t['ttft'] or '', t['tps'] or '', tool_rate}
  end
end
return out
