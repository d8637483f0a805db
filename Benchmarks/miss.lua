-- wrk script for the cache-miss scenario: every request carries a different bearer token.
--
-- Environment (set by run.sh):
--   MISS_TOKENS_FILE  one token per line (Benchmarks/tokens.py prepare writes miss.tokens)
--   MISS_OFFSET       index of the first token to use (so successive runs continue through the list)
--   MISS_STATE_FILE   where done() writes how many requests this run formed
--   WRK_THREADS       the -t value (threads take interleaved tokens: thread k uses offset+k, offset+k+T, ...)
-- Tokens are reused (wrapping round the list) only when a run needs more requests than tokens remain;
-- done() reports how many requests that was.

local threads = {}
local next_id = 1

function setup(thread)
  thread:set("id", next_id)
  next_id = next_id + 1
  table.insert(threads, thread)
end

function init(args)
  tokens = {}
  local file = os.getenv("MISS_TOKENS_FILE")
  for line in io.lines(file) do
    if #line > 0 then tokens[#tokens + 1] = line end
  end
  count = #tokens
  if count == 0 then error("no tokens in " .. tostring(file)) end
  stride = tonumber(os.getenv("WRK_THREADS") or "1")
  offset = tonumber(os.getenv("MISS_OFFSET") or "0")
  sent = 0
end

function request()
  local index = (offset + (id - 1) + sent * stride) % count + 1
  sent = sent + 1
  return wrk.format(nil, nil, { ["Authorization"] = "Bearer " .. tokens[index] })
end

function done(summary, latency, requests)
  local total = 0
  for _, thread in ipairs(threads) do
    total = total + (thread:get("sent") or 0)
  end
  local offset0 = tonumber(os.getenv("MISS_OFFSET") or "0")
  local file = io.open(os.getenv("MISS_STATE_FILE") or "/dev/null", "w")
  -- first token index used, requests formed (each with the next token in the list)
  file:write(string.format("%d %d\n", offset0, total))
  file:close()
end
