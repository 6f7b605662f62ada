-- wrk script for the overhead benchmark (loadtests/bench/wrk.py runs it).
-- POSTs the JSON body in the file named by the first script argument, with its "@@N@@"
-- replaced by a per-request counter so no response cache can answer, and prints the
-- latency distribution as "BENCH <key> <value>" lines (microseconds) that wrk.py parses.
-- Usage: wrk -t1 -cN -dDs -s wrk_post.lua URL -- BODY_FILE

local head, tail
local counter = 0

function init(args)
  local file = assert(io.open(args[1], "rb"))
  local template = file:read("*a")
  file:close()
  local at = assert(string.find(template, "@@N@@", 1, true), "body has no @@N@@")
  head = string.sub(template, 1, at - 1)
  tail = string.sub(template, at + 5)
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
end

function request()
  counter = counter + 1
  return wrk.format(nil, nil, nil, head .. counter .. tail)
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("BENCH requests %d\n", summary.requests))
  io.write(string.format("BENCH duration_us %d\n", summary.duration))
  io.write(string.format("BENCH errors %d\n", e.connect + e.read + e.write + e.status + e.timeout))
  io.write(string.format("BENCH mean_us %.1f\n", latency.mean))
  for _, p in ipairs({50, 90, 99}) do
    io.write(string.format("BENCH p%d_us %d\n", p, latency:percentile(p)))
  end
end
