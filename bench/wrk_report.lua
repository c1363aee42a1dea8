-- wrk script of the benchmarks (bench/_common.py run_wrk): prints one line "WRK_JSON {...}" with the figures.
-- Environment: WRK_RATE (requests/s of the whole run, 0 = as fast as possible; paced with exponential gaps),
-- WRK_CONNS (connections, to share the rate), WRK_PATHS (a file of request paths; each request picks one).
local rate = tonumber(os.getenv("WRK_RATE") or "0") or 0
local conns = tonumber(os.getenv("WRK_CONNS") or "1") or 1
local paths_file = os.getenv("WRK_PATHS") or ""

math.randomseed(os.time())

if rate > 0 then
  local mean_ms = conns * 1000 / rate
  function delay()
    return -math.log(1 - math.random()) * mean_ms
  end
end

if paths_file ~= "" then
  local paths = {}
  for line in io.lines(paths_file) do
    if line ~= "" then paths[#paths + 1] = line end
  end
  function request()
    return wrk.format(nil, paths[math.random(#paths)])
  end
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRK_JSON {"requests":%d,"duration_us":%d,"errors_status":%d,"errors_connect":%d,"errors_read":%d,' ..
    '"errors_write":%d,"errors_timeout":%d,"p50_us":%d,"p90_us":%d,"p99_us":%d,"max_us":%d,"mean_us":%.1f}\n',
    summary.requests, summary.duration, e.status, e.connect, e.read, e.write, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max, latency.mean))
end
