-- wrk script for `make bench`: replays the requests listed in BENCH_DATA (one per line,
-- tab-separated: METHOD, PATH, TOKEN or "-", BODY or "-"; "{seq}" in a body becomes a
-- per-thread counter). Lines are dealt out to wrk's threads, so each thread's seq rises
-- strictly for the answers it owns and no write is ever stale by accident.
-- done() prints one JSON line: latency percentiles (ms), requests, seconds, errors.

local threads = {}

-- wrk runs each thread's init() right after its setup(), before the next thread exists,
-- so the thread count comes from the environment (bench.py sets it to wrk's -t).
local nthreads = tonumber(os.getenv("BENCH_THREADS") or "1")

function setup(thread)
  thread:set("id", #threads)
  table.insert(threads, thread)
end

-- Globals, so done() can read them from each thread with thread:get().
lines = {}
index = 0
replays = 0

local function split(line)
  local fields = {}
  for field in string.gmatch(line, "([^\t]+)") do table.insert(fields, field) end
  return fields
end

function init(args)
  local n, all = 0, {}
  for line in io.lines(os.getenv("BENCH_DATA")) do
    if n % nthreads == id then table.insert(lines, split(line)) end
    table.insert(all, split(line))
    n = n + 1
  end
  if #lines == 0 then lines = all end  -- fewer lines than threads (health): share them
end

function request()
  index = index + 1
  local entry = lines[(index - 1) % #lines + 1]
  local headers = {["Content-Type"] = "application/json"}
  if entry[3] ~= "-" then headers["Authorization"] = "Bearer " .. entry[3] end
  local body = nil
  if entry[4] and entry[4] ~= "-" then body = string.gsub(entry[4], "{seq}", tostring(index)) end
  return wrk.format(entry[1], entry[2], headers, body)
end

function response(status, headers, body)
  if headers["Idempotent-Replayed"] == "true" or (body and string.find(body, '"stale":true', 1, true)) then
    replays = replays + 1
  end
end

function done(summary, latency, requests)
  local total_replays = 0
  for _, t in ipairs(threads) do total_replays = total_replays + (t:get("replays") or 0) end
  local e = summary.errors
  io.write(string.format(
    '{"requests": %d, "seconds": %.3f, "p50": %.3f, "p95": %.3f, "p99": %.3f, "non2xx": %d, '
    .. '"connect": %d, "read": %d, "write": %d, "timeout": %d, "replays": %d}\n',
    summary.requests, summary.duration / 1e6, latency:percentile(50) / 1000, latency:percentile(95) / 1000,
    latency:percentile(99) / 1000, e.status, e.connect, e.read, e.write, e.timeout, total_replays))
end
