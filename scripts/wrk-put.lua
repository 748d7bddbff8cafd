-- wrk script for scripts/bench-http.sh: every request PUTs a new document
-- of SIZE bytes (a JSON object) under a key no run used before.
--
-- Environment: CAIRN_TOKEN (the bearer token), SIZE (document bytes,
-- default 200), PREFIX (key prefix, unique per run).
local threads = {}

function setup(thread)
  thread:set("id", #threads)
  table.insert(threads, thread)
end

function init(args)
  local size = tonumber(os.getenv("SIZE") or "200")
  prefix = "/v1/tenants/demo/docs/" .. (os.getenv("PREFIX") or "wrk") .. "/t" .. id .. "-"
  n = 0
  wrk.method = "PUT"
  wrk.headers["Content-Type"] = "application/json"
  wrk.headers["Authorization"] = "Bearer " .. (os.getenv("CAIRN_TOKEN") or "")
  -- {"v":"xxx…"}: 8 bytes of syntax around the padding.
  wrk.body = '{"v":"' .. string.rep("x", math.max(size - 8, 0)) .. '"}'
end

function request()
  n = n + 1
  return wrk.format(nil, prefix .. n)
end
