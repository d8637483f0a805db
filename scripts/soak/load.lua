-- wrk script for scripts/soak/soak.py: a paced load on one path, counting every status.
--   SOAK_PATH       request path
--   SOAK_HEADER     optional "Name: value" sent with every request
--   SOAK_TOKENS     optional file of bearer tokens, one per line, used in turn (every request a new token)
--   SOAK_DELAY_MS   pause before each request on a connection (paces the load: about connections * 1000 /
--                   (delay + latency) requests per second)
-- done() prints ONE JSON line: requests, errors (connect, read, write, status, timeout), status counts and
-- latency percentiles in microseconds.
local path = os.getenv("SOAK_PATH") or "/"
local header = os.getenv("SOAK_HEADER") or ""
local tokens_file = os.getenv("SOAK_TOKENS") or ""
local delay_ms = tonumber(os.getenv("SOAK_DELAY_MS") or "0") or 0
local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  counts = {}
  tokens = nil
  local name, value = header:match("^([^:]+):%s*(.*)$")
  if name then wrk.headers[name] = value end
  if tokens_file ~= "" then
    tokens = {}
    for line in io.lines(tokens_file) do
      if #line > 0 then tokens[#tokens + 1] = line end
    end
    index = math.random(#tokens)
  end
end

function request()
  if tokens then
    index = index % #tokens + 1
    wrk.headers["Authorization"] = "Bearer " .. tokens[index]
  end
  return wrk.format(nil, path)
end

function delay()
  return delay_ms
end

function response(status, headers, body)
  local key = tostring(status)
  counts[key] = (counts[key] or 0) + 1
end

function done(summary, latency, requests)
  local total = {}
  for _, t in ipairs(threads) do
    local c = t:get("counts") or {}
    for k, v in pairs(c) do total[k] = (total[k] or 0) + v end
  end
  local parts = {}
  for k, v in pairs(total) do parts[#parts + 1] = string.format('"%s":%d', k, v) end
  local e = summary.errors
  io.write(string.format(
    '{"requests":%d,"duration_us":%d,"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},' ..
    '"status":{%s},"p50_us":%d,"p99_us":%d,"max_us":%d}\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    table.concat(parts, ","), latency:percentile(50), latency:percentile(99), latency.max))
end
