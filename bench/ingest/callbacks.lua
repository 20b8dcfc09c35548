-- wrk script: distinct tutorial callbacks, and an exact count of the answers.
--
--   wrk -t1 -c16 -d15s -s callbacks.lua http://127.0.0.1:8000/data/1 -- RUN DEVICES
--
-- RUN (0-15) gives each run of a benchmark its own devices; DEVICES
-- (default 1000) is the fleet of each wrk thread (at most 16 threads). Each request is a new message: device
-- number (RUN*16 + thread)*65536 + n % DEVICES at time t0 + n // DEVICES, so
-- (device, time) never repeats and nothing is deduplicated away, and most
-- callbacks come from a device already known, as in a real fleet.
--
-- done() prints one line for run.py:
--   RESULT ok=... non2xx=... sent=... p50_us=... ...
-- ok counts the 2xx answers, which run.py compares with the rows stored.

local threads = {}

function setup(thread)
  thread:set("thread_id", #threads)
  table.insert(threads, thread)
end

function init(args)
  local run = tonumber(args[1] or "0")
  devices = tonumber(args[2] or "1000")
  device_base = (run * 16 + thread_id) * 65536
  -- A day back: the times stay valid (not more than a day ahead of the
  -- server's clock) for anything up to DEVICES * 172800 requests.
  t0 = os.time() - 86400
  sent, ok, non2xx = 0, 0, 0
  headers = { ["Content-Type"] = "application/json" }
end

function request()
  local n = sent
  sent = sent + 1
  local body = string.format('{"device":"%X","time":"%d","temp":%d}',
    device_base + n % devices, t0 + math.floor(n / devices), 10 + n % 20)
  return wrk.format("POST", nil, headers, body)
end

function response(status, headers, body)
  if status >= 200 and status < 300 then
    ok = ok + 1
  else
    non2xx = non2xx + 1
  end
end

function done(summary, latency, requests)
  local ok_all, non2xx_all, sent_all = 0, 0, 0
  for _, thread in ipairs(threads) do
    ok_all = ok_all + thread:get("ok")
    non2xx_all = non2xx_all + thread:get("non2xx")
    sent_all = sent_all + thread:get("sent")
  end
  local e = summary.errors
  io.write(string.format(
    "RESULT duration_us=%d requests=%d ok=%d non2xx=%d sent=%d " ..
    "p50_us=%d p90_us=%d p99_us=%d max_us=%d " ..
    "errors_connect=%d errors_read=%d errors_write=%d errors_timeout=%d\n",
    summary.duration, summary.requests, ok_all, non2xx_all, sent_all,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
    e.connect, e.read, e.write, e.timeout))
end
