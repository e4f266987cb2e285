-- Shared by chat.lua and stream.lua: request setup and a machine-readable summary.
-- The caller sets `bench_body` before loading this file.
-- BENCH_AUTH (optional) is the full Authorization header value, e.g. "Bearer eyJ...".

wrk.method = "POST"
wrk.body = bench_body
wrk.headers["Content-Type"] = "application/json"
local auth = os.getenv("BENCH_AUTH")
if auth ~= nil and auth ~= "" then
  wrk.headers["Authorization"] = auth
end

-- One JSON line, prefixed with BENCHJSON, for the Python runner to parse.
-- Latencies are microseconds; errors = socket errors + responses with status >= 400.
function done(summary, latency, requests)
  local e = summary.errors
  local socket_errors = e.connect + e.read + e.write + e.timeout
  local seconds = summary.duration / 1e6
  io.write(string.format(
    'BENCHJSON {"requests":%d,"duration_s":%.6f,"rps":%.2f,"bytes":%d,'
    .. '"p50_us":%d,"p90_us":%d,"p99_us":%d,"mean_us":%.1f,"max_us":%d,'
    .. '"errors":%d,"status_errors":%d,"socket_errors":%d,'
    .. '"connect":%d,"read":%d,"write":%d,"timeout":%d}\n',
    summary.requests, seconds, summary.requests / seconds, summary.bytes,
    latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency.mean, latency.max,
    e.status + socket_errors, e.status, socket_errors,
    e.connect, e.read, e.write, e.timeout))
end
