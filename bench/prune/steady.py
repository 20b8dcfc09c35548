"""Tutorial callbacks at a steady rate, for bench/prune: an open-loop client.

    steady.py URL RATE MAX_SECONDS OUT [DEVICES] [BASE] [DAYS_BACK]

Request i is due at start + i / RATE, whatever happened to the ones before
(a server that stalls does not slow the client down, so its stall shows in
the latencies); each is sent by the first free one of 32 threads, on a new
connection (gunicorn's sync workers close every connection). A request's
latency runs from when it was due to its answer's end, so a client running
late counts against the server, not for it. Device (BASE + i % DEVICES)
sends at time now - DAYS_BACK days (default 1) + i // DEVICES: every
callback is a new message (clients run one after the other on the same
devices take different DAYS_BACK).

Runs until SIGTERM or SIGINT (or MAX_SECONDS), then writes OUT: one line per
request, "due end status" (epoch seconds, the status 0 for a socket error).
"""

import http.client
import signal
import sys
import threading
import time

THREADS = 32


def main() -> None:
    url, rate, max_seconds, out = sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), sys.argv[4]
    devices = int(sys.argv[5]) if len(sys.argv) > 5 else 100
    base = int(sys.argv[6], 16) if len(sys.argv) > 6 else 0xE000000
    days_back = int(sys.argv[7]) if len(sys.argv) > 7 else 1
    host_port, _, path = url.removeprefix("http://").partition("/")
    host, _, port = host_port.partition(":")
    path = "/" + path
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    start = time.time() + 0.2
    t0 = int(start) - 86_400 * days_back
    lock, counter, results = threading.Lock(), [0], []

    def worker() -> None:
        while not stop.is_set():
            with lock:
                i = counter[0]
                counter[0] += 1
            due = start + i / rate
            if due - start > max_seconds:
                stop.set()
                return
            wait = due - time.time()
            if wait > 0 and stop.wait(wait):
                return
            body = f'{{"device":"{base + i % devices:X}","time":"{t0 + i // devices}","temp":{10 + i % 20}}}'
            status = 0
            try:
                connection = http.client.HTTPConnection(host, int(port), timeout=30)
                connection.request("POST", path, body, {"Content-Type": "application/json"})
                response = connection.getresponse()
                response.read()
                status = response.status
                connection.close()
            except OSError:
                pass
            results.append((due, time.time(), status))

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(THREADS)]
    for thread in threads:
        thread.start()
    while not stop.wait(0.2):
        pass
    for thread in threads:
        thread.join(timeout=35)
    with open(out, "w") as f:
        f.writelines(f"{due:.6f} {end:.6f} {status}\n" for due, end, status in sorted(results))


if __name__ == "__main__":
    main()
