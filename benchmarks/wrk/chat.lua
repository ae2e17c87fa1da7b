-- One chat completion per request, the same body every time (wrk's fastest path when no check is asked).
-- Configured from the environment so one script serves every target:
--   WRK_BODY    the JSON request body
--   WRK_AUTH    the Authorization header value (optional)
--   WRK_EXPECT  a string every 200 body must contain, e.g. "[DONE]" for streams (optional)
--   WRK_TALLY   "1": count responses per status code (optional)
-- done() prints lines benchmarks/gateway.py parses: "checked <n> bad <n>" and "status <code> <n>".
wrk.method = "POST"
wrk.body = os.getenv("WRK_BODY")
wrk.headers["Content-Type"] = "application/json"
local auth = os.getenv("WRK_AUTH")
if auth and auth ~= "" then
  wrk.headers["Authorization"] = auth
end

local expect = os.getenv("WRK_EXPECT") or ""
local tally = os.getenv("WRK_TALLY") == "1"
-- Globals: each wrk thread runs its own copy of this script; done() runs in the main copy and reads
-- the threads' counters through thread:get().
checked = 0
bad = 0
statuses = {}
local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

if expect ~= "" or tally then
  -- Defining response() makes wrk hand every body to Lua: only done when a check is asked for,
  -- because at tens of thousands of responses a second it would make wrk the bottleneck.
  response = function(status, headers, body)
    statuses[status] = (statuses[status] or 0) + 1
    if expect ~= "" then
      checked = checked + 1
      if status ~= 200 or not string.find(body, expect, 1, true) then
        bad = bad + 1
      end
    end
  end
end

done = function(summary, latency, requests)
  local total_checked, total_bad, codes = 0, 0, {}
  for _, thread in ipairs(threads) do
    total_checked = total_checked + thread:get("checked")
    total_bad = total_bad + thread:get("bad")
    for code, n in pairs(thread:get("statuses")) do
      codes[code] = (codes[code] or 0) + n
    end
  end
  io.write(string.format("checked %d bad %d\n", total_checked, total_bad))
  for code, n in pairs(codes) do
    io.write(string.format("status %d %d\n", code, n))
  end
end
