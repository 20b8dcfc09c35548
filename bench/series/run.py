"""Series and chart benchmark: a million readings in PostgreSQL, the series
endpoint and the chart page against the naive "send every reading" reference.

    .venv/bin/python bench/series/run.py            # load, then measure (about 3 minutes)
    .venv/bin/python bench/series/run.py --reuse    # measure again on the loaded database

Needs PostgreSQL on 127.0.0.1:5432 (user root, trust auth, as CI has) and
Debian's chromium. It drops and fills the database `sigfoxsite_series_bench`,
serves the project with gunicorn (one worker, as `make run` does, on free
ports), and prints a report (also written to bench/out/).
"""

import argparse
import json
import os
import re
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(Path(__file__).resolve().parent))
from load import load  # noqa: E402

DEVICE = "100001"  # the first device, the one with a whole year
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for {pid}")


class Server:
    """gunicorn with one worker, its access log holding each request's time in µs."""

    def __init__(self, env: dict, settings_module: str, out: Path, name: str):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.access_log = out / f"{name}-access.log"
        self.access_log.unlink(missing_ok=True)
        gunicorn = Path(sys.executable).with_name("gunicorn")
        self.process = subprocess.Popen(
            [str(gunicorn), "sigfoxsite.wsgi", "--bind", f"127.0.0.1:{self.port}", "--workers", "1",
             "--access-logfile", str(self.access_log), "--access-logformat", "%(r)s %(s)s %(D)s %(B)s"],
            cwd=ROOT, env={**env, "DJANGO_SETTINGS_MODULE": settings_module},
            stdout=subprocess.DEVNULL, stderr=(out / f"{name}-error.log").open("wb"),
        )
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(self.url + "/healthz", timeout=2).close()
                break
            except OSError:
                if time.monotonic() > deadline or self.process.poll() is not None:
                    raise RuntimeError(f"gunicorn did not start, see {out}/{name}-error.log")
                time.sleep(0.2)
        children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children").read_text().split()
        self.worker_pid = int(children[0])

    def get(self, path: str) -> tuple[float, bytes]:
        started = time.perf_counter()
        with urllib.request.urlopen(self.url + path, timeout=60) as response:
            body = response.read()
        return (time.perf_counter() - started) * 1000, body

    def server_times_ms(self, marker: str) -> list[float]:
        """Server time of the logged requests whose line holds the marker."""
        times = []
        for line in self.access_log.read_text().splitlines():
            if marker in line:
                times.append(int(line.split()[-2]) / 1000)
        return times

    def stop(self):
        self.process.terminate()
        self.process.wait(timeout=10)


def measure_endpoint(server: Server, path: str, requests: int, tag: str) -> dict:
    for i in range(3):  # warm the worker, its connection and PostgreSQL's cache
        server.get(f"{path}&warm={tag}{i}")
    client, sizes = [], []
    for i in range(requests):
        elapsed, body = server.get(f"{path}&run={tag}{i}")
        client.append(elapsed)
        sizes.append(len(body))
    time.sleep(0.3)  # the access log line is written after the response
    server_ms = server.server_times_ms(f"run={tag}")
    assert len(server_ms) == requests, (len(server_ms), requests)
    answer = json.loads(body)
    return {
        "server_median_ms": statistics.median(server_ms),
        "server_p95_ms": percentile(server_ms, 95),
        "client_median_ms": statistics.median(client),
        "bytes": statistics.median(sizes),
        "points": len(answer["points"]),
        "count": answer["count"],
    }


def measure_memory(server: Server, path: str, requests: int, tag: str) -> dict:
    before = rss_mib(server.worker_pid)
    for i in range(requests):
        server.get(f"{path}&mem={tag}{i}")
    after = rss_mib(server.worker_pid)
    return {"rss_before_mib": before, "rss_after_mib": after, "rss_growth_mib": after - before}


def measure_draws(server: Server, page_path: str, draws: int) -> dict:
    from playwright.sync_api import sync_playwright

    times, points = [], 0
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update"],
        )
        for i in range(draws + 1):
            # A fresh context each time: nothing cached, as on a first visit.
            context = browser.new_context(viewport={"width": 1100, "height": 700})
            page = context.new_page()
            page.goto(server.url + page_path)
            page.wait_for_selector("canvas#chart[data-state=ready]", timeout=120_000)
            ready = page.evaluate(
                "() => performance.getEntriesByName('sigfox-chart-ready')[0].startTime")
            points = page.evaluate(
                "() => Chart.getChart('chart').data.datasets.reduce((n, d) => n + d.data.length, 0)")
            if i:  # the first run warms the server and Chromium itself
                times.append(ready)
            context.close()
        browser.close()
    return {"draw_median_ms": statistics.median(times), "draw_p95_ms": percentile(times, 95),
            "drawn_points": points}


def database_counts(url: str) -> tuple[int, int] | None:
    try:
        with psycopg.connect(url) as db:
            return db.execute(
                "SELECT (SELECT COUNT(*) FROM readings_reading), (SELECT COUNT(*) FROM readings_device)"
            ).fetchone()
    except psycopg.Error:
        return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--server", default="postgres://root@127.0.0.1:5432",
                        help="PostgreSQL server URL, without a database name")
    parser.add_argument("--database", default="sigfoxsite_series_bench",
                        help="database to drop, create and fill")
    parser.add_argument("--reuse", action="store_true",
                        help="keep the database if it already holds the readings")
    parser.add_argument("--readings", type=int, default=1_000_000, help="readings in all")
    parser.add_argument("--devices", type=int, default=100, help="devices")
    parser.add_argument("--interval-s", type=int, default=600, help="seconds between readings")
    parser.add_argument("--requests", type=int, default=30, help="timed requests per endpoint")
    parser.add_argument("--memory-requests", type=int, default=100,
                        help="requests between the two RSS readings")
    parser.add_argument("--draws", type=int, default=10, help="timed first draws per page")
    args = parser.parse_args()

    url = f"{args.server}/{args.database}"
    out = ROOT / "bench" / "out"
    out.mkdir(parents=True, exist_ok=True)
    env = {
        **{k: v for k, v in os.environ.items() if k in {"PATH", "HOME", "LANG"}},
        "SIGFOXSITE_READ_DOT_ENV": "false",
        "SECRET_KEY": "series-benchmark-" + "x" * 40,
        "DATABASE_URL": url,
        "SECURE_SSL_REDIRECT": "false",
        "SECURE_COOKIES": "false",
        "PUBLIC_DASHBOARD": "true",
        "TIME_ZONE": "Europe/Paris",
        "LOG_LEVEL": "WARNING",
    }
    now_s = int(time.time()) // args.interval_s * args.interval_s
    counts = database_counts(url) if args.reuse else None
    loaded = None
    if counts != (args.readings, args.devices):
        log(f"creating {args.database}")
        with psycopg.connect(f"{args.server}/postgres", autocommit=True) as db:
            db.execute(f'DROP DATABASE IF EXISTS "{args.database}" WITH (FORCE)')
            db.execute(f'CREATE DATABASE "{args.database}"')
        subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v0"],
                       cwd=ROOT, env=env, check=True)
        loaded = load(url, devices=args.devices, readings=args.readings,
                      interval_s=args.interval_s, full_year_device=True, now_s=now_s, log=log)
    else:
        log(f"reusing {args.database}: {counts[0]:,} readings")
    with psycopg.connect(url) as db:
        last = db.execute("SELECT MAX(time) FROM readings_reading r JOIN readings_device d "
                          "ON d.id = r.device_id WHERE d.sigfox_id = %s", [DEVICE]).fetchone()[0]
        year_rows = db.execute(
            "SELECT COUNT(*) FROM readings_reading r JOIN readings_device d ON d.id = r.device_id "
            "WHERE d.sigfox_id = %s AND r.time > %s", [DEVICE, last - timedelta(days=365)]).fetchone()[0]
        size = db.execute("SELECT pg_size_pretty(pg_database_size(current_database()))").fetchone()[0]
    subprocess.run([sys.executable, "manage.py", "collectstatic", "--noinput", "-v0"],
                   cwd=ROOT, env={**env, "DEBUG": "false"}, check=True)

    until = datetime.now(UTC).replace(microsecond=0)
    since = until - timedelta(days=365)
    series_path = (f"/api/series/?device={DEVICE}&sensor=1&quantity=temp&points=1000"
                   f"&since={since:%Y-%m-%dT%H:%M:%SZ}&until={until:%Y-%m-%dT%H:%M:%SZ}")
    page_path = f"/graph?device={DEVICE}&quantity=temp&range=year"

    # The machine may be shared: the report says how busy it was.
    load_at_start = os.getloadavg()[0]
    results = {}
    for name, settings_module in [("series", "sigfoxsite.settings"),
                                  ("naive", "bench.series.naive_settings")]:
        log(f"measuring {name}")
        server = Server(env, settings_module, out, name)
        try:
            started_rss = rss_mib(server.worker_pid)
            endpoint = measure_endpoint(server, series_path, args.requests, name)
            memory = measure_memory(server, series_path, args.memory_requests, name)
            draws = measure_draws(server, page_path, args.draws)
        finally:
            server.stop()
        results[name] = {**endpoint, **memory, **draws, "rss_start_mib": started_rss}

    report = render(results, args=args, year_rows=year_rows, size=size, loaded=loaded,
                    load_at_start=load_at_start)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    (out / f"series-{stamp}.txt").write_text(report)
    (out / f"series-{stamp}.json").write_text(json.dumps(results, indent=2))
    print(report)


def render(results: dict, *, args, year_rows: int, size: str, loaded: dict | None,
           load_at_start: float) -> str:
    s, n = results["series"], results["naive"]

    def ratio(a: float, b: float) -> str:
        return f"{a / b:.1f}x" if b else "-"

    cpu = re.sub(r"\s+", " ", next((line.split(":", 1)[1] for line in
                                    Path("/proc/cpuinfo").read_text().splitlines()
                                    if line.startswith("model name")), "?")).strip()
    lines = [
        f"sigfoxsite series benchmark, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
        f"machine: {os.cpu_count()} cores ({cpu}), load average {load_at_start:.2f} at the start, "
        f"{os.getloadavg()[0]:.2f} at the end",
        f"data: {args.readings:,} readings of {args.devices} devices, one every {args.interval_s} s "
        f"per device; device {DEVICE} has a whole year ({year_rows:,} readings), the others "
        f"share the rest; database {size}"
        + (f", loaded in {loaded['seconds']:.0f} s" if loaded else ""),
        "request: one year of one device, points=1000; gunicorn, 1 worker, PostgreSQL, over HTTP",
        "",
        f"{'':34} {'downsampled':>13} {'naive (all)':>13} {'naive/down':>11}",
    ]
    rows = [
        ("readings in the range", "count", "{:,.0f}"),
        ("points sent", "points", "{:,.0f}"),
        ("response size (bytes)", "bytes", "{:,.0f}"),
        (f"server time, median of {args.requests} (ms)", "server_median_ms", "{:.1f}"),
        ("server time, p95 (ms)", "server_p95_ms", "{:.1f}"),
        ("round trip, median (ms)", "client_median_ms", "{:.1f}"),
        (f"first draw, median of {args.draws} (ms)", "draw_median_ms", "{:.0f}"),
        ("first draw, p95 (ms)", "draw_p95_ms", "{:.0f}"),
        ("points drawn", "drawn_points", "{:,.0f}"),
        ("worker RSS at start (MiB)", "rss_start_mib", "{:.1f}"),
        (f"worker RSS before {args.memory_requests} req (MiB)", "rss_before_mib", "{:.1f}"),
        (f"worker RSS after {args.memory_requests} req (MiB)", "rss_after_mib", "{:.1f}"),
        ("worker RSS growth (MiB)", "rss_growth_mib", "{:+.1f}"),
    ]
    for label, field_name, fmt in rows:
        a, b = s[field_name], n[field_name]
        shown = ratio(b, a) if field_name not in {"rss_growth_mib", "count"} else ""
        lines.append(f"{label:34} {fmt.format(a):>13} {fmt.format(b):>13} {shown:>11}")
    verdicts = [
        ("series endpoint median < 100 ms", s["server_median_ms"] < 100),
        ("first draw median < 1500 ms", s["draw_median_ms"] < 1500),
        (f"worker RSS flat over {args.memory_requests} requests (< 5 MiB)", abs(s["rss_growth_mib"]) < 5),
    ]
    lines.append("")
    lines += [f"target: {text}: {'met' if ok else 'MISSED'}" for text, ok in verdicts]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
