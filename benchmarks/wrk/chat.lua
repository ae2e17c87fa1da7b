-- One chat completion per request, the same body every time (wrk's fastest path: no per-request Lua).
-- Configured from the environment so one script serves every target:
--   WRK_BODY    the JSON request body
--   WRK_AUTH    the Authorization header value (optional)
--   WRK_EXPECT  a string every 200 body must contain, e.g. "[DONE]" for streams (optional)
-- done() prints a line benchmarks/gateway.py parses: "checked <n> bad <n>".
wrk.method = "POST"
wrk.body = os.getenv("WRK_BODY")
wrk.headers["Content-Type"] = "application/json"
local auth = os.getenv("WRK_AUTH")
if auth and auth ~= "" then
  wrk.headers["Authorization"] = auth
end

local expect = os.getenv("WRK_EXPECT")
local checked = 0
local bad = 0

if expect and expect ~= "" then
  -- Defining response() makes wrk hand every body to Lua: only done when a check is asked for.
  response = function(status, headers, body)
    checked = checked + 1
    if status ~= 200 or not string.find(body, expect, 1, true) then
      bad = bad + 1
    end
  end
end

done = function(summary, latency, requests)
  io.write(string.format("checked %d bad %d\n", checked, bad))
end
