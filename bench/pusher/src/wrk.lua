-- wrk's summary as key=value lines for bench/pusher (src/load.rs parses them). The
-- method is GET and the Accept header comes from wrk's -H.
done = function(summary, latency, requests)
  local secs = summary.duration / 1e6
  local e = summary.errors
  io.write(string.format("requests=%d\n", summary.requests))
  io.write(string.format("secs=%.3f\n", secs))
  io.write(string.format("rps=%.1f\n", summary.requests / secs))
  io.write(string.format("p50_ms=%.3f\n", latency:percentile(50) / 1000))
  io.write(string.format("p99_ms=%.3f\n", latency:percentile(99) / 1000))
  io.write(string.format("errors_status=%d\n", e.status))
  io.write(string.format("errors_socket=%d\n", e.connect + e.read + e.write + e.timeout))
end
