"""Series and chart benchmark: ten million readings in PostgreSQL, one device
with five years of them; the series endpoint from the rollups, from the raw
readings over the same buckets, and the naive "send every reading" reference,
side by side, for ranges of a day to five years.

    .venv/bin/python bench/series/run.py            # load, then measure (about 30 minutes)
    .venv/bin/python bench/series/run.py --reuse    # measure again on the loaded database (about 6 minutes)

Needs PostgreSQL on 127.0.0.1:5432 (user root, trust auth, as CI has) and
Debian's chromium. It drops and fills the database `sigfoxsite_bench_series`,
serves the project with gunicorn (one worker, on a free port) three times,
one after the other, and prints a report (also written to bench/out/).
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
from load import counts_of, load

DEVICE = "100001"  # the first device, the one with five years
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
RANGES = [("1 day", 1), ("30 days", 30), ("1 year", 365), ("5 years", 5 * 365)]
SERVERS = [
    # name, settings module, what it is
    ("rollup", "sigfoxsite.settings", "the project as it is (rollups for wide buckets)"),
    ("raw", "bench.series.raw_settings", ("the same, rollups bypassed (bench/series/raw.py): "
                                         "M4 from the readings over the same buckets")),
    ("naive", "bench.series.naive_settings", "every reading of the range sent (bench/series/naive.py)"),
]


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
        self.access_log = out / f"series-{name}-access.log"
        self.access_log.unlink(missing_ok=True)
        gunicorn = Path(sys.executable).with_name("gunicorn")
        self.process = subprocess.Popen(
            [str(gunicorn), "sigfoxsite.wsgi", "--bind", f"127.0.0.1:{self.port}", "--workers", "1",
             "--timeout", "120",
             "--access-logfile", str(self.access_log), "--access-logformat", "%(r)s %(s)s %(D)s %(B)s"],
            cwd=ROOT, env={**env, "DJANGO_SETTINGS_MODULE": settings_module},
            stdout=subprocess.DEVNULL, stderr=(out / f"series-{name}-error.log").open("wb"),
        )
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(self.url + "/healthz", timeout=2).close()
                break
            except OSError:
                if time.monotonic() > deadline or self.process.poll() is not None:
                    raise RuntimeError(f"gunicorn did not start, see {out}/series-{name}-error.log")
                time.sleep(0.2)
        children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children").read_text().split()
        self.worker_pid = int(children[0])

    def get(self, path: str) -> tuple[float, bytes]:
        started = time.perf_counter()
        with urllib.request.urlopen(self.url + path, timeout=120) as response:
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
        "source": answer.get("source", "?"),
        "method": answer.get("method", "?"),
        "answer_points": answer["points"],
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


def django_setup(env: dict) -> None:
    """Django in this process, on the bench database: partitions and rollups
    are made by the project's own functions."""
    os.environ.update({**env, "DJANGO_SETTINGS_MODULE": "sigfoxsite.settings"})
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()


def ensure_partitions(since: datetime, until: datetime) -> None:
    from storage.partitions import partitions_ensure

    partitions_ensure(now=datetime.now(UTC), cover=(since, until))


def rollups_catch_up(max_readings: int, jit_probe: int) -> dict | None:
    """rollups_refresh until it has taken every reading; None when the
    project has no rollups yet. Returns its time, passes and rows.

    First, when jit_probe > 0 and there is that much to take: one pass of
    jit_probe readings with the server's JIT setting, then one with JIT off
    (PostgreSQL compiles the rollup statements over dozens of partitions,
    seconds each); the rest runs with JIT off, as the figures show why."""
    try:
        from readings.services.rollups import rollups_refresh
    except ImportError:
        return None
    from django.db import connection

    from readings.models import Reading, RollupProgress

    def watermark() -> int:
        return RollupProgress.objects.values_list("reading_id", flat=True).first() or 0

    def refresh(limit: int):
        started = time.monotonic()
        result = rollups_refresh(now=datetime.now(UTC), max_readings=limit)
        return result, time.monotonic() - started

    newest = Reading.objects.order_by("-pk").values_list("pk", flat=True).first() or 0
    started, passes, probe = time.monotonic(), 0, {}
    with connection.cursor() as cursor:
        cursor.execute("SHOW jit")
        probe["jit"] = cursor.fetchone()[0]
    if jit_probe and newest - watermark() > 3 * jit_probe:
        refresh(1)  # on PostgreSQL the first pass only notes what the next may take
        for setting in ("default", "off"):
            if setting == "off":
                with connection.cursor() as cursor:
                    cursor.execute("SET jit = off")
            result, seconds = refresh(jit_probe)
            probe[setting] = (result.readings, seconds)
            log(f"  rollups, {result.readings:,} readings with jit {setting if setting == 'off' else probe['jit']}:"
                f" {seconds:.1f} s")
    with connection.cursor() as cursor:
        cursor.execute("SET jit = off")
    while True:
        result, seconds = refresh(max_readings)
        passes += 1
        taken = watermark()
        log(f"  rollups pass {passes}: {result.readings:,} readings, {result.hours:,} hours, "
            f"{result.days:,} days in {seconds:.1f} s; watermark {taken:,} of {newest:,}")
        if result.caught_up and taken >= newest:
            break
        if passes > 1000:
            raise RuntimeError("rollups_refresh never caught up")
    with connection.cursor() as cursor:
        cursor.execute("SELECT resolution_s, count(*) FROM readings_rollup GROUP BY 1 ORDER BY 1")
        rows = dict(cursor.fetchall())
    connection.close()
    return {"seconds": time.monotonic() - started, "passes": passes, "rows": rows, "probe": probe}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--server", default="postgres://root@127.0.0.1:5432",
                        help="PostgreSQL server URL, without a database name")
    parser.add_argument("--database", default="sigfoxsite_bench_series",
                        help="database to drop, create and fill")
    parser.add_argument("--reuse", action="store_true",
                        help="keep the database if it already holds the readings")
    parser.add_argument("--readings", type=int, default=10_000_000, help="readings in all")
    parser.add_argument("--devices", type=int, default=100, help="devices")
    parser.add_argument("--long-years", type=float, default=5,
                        help="years of readings of the first device (the others share the rest)")
    parser.add_argument("--interval-s", type=int, default=600, help="seconds between readings")
    parser.add_argument("--requests", type=int, default=30, help="timed requests per range and server")
    parser.add_argument("--naive-requests", type=int, default=10,
                        help="timed requests per range for the naive reference (slow on long ranges)")
    parser.add_argument("--memory-requests", type=int, default=100,
                        help="requests between the two RSS readings (the year)")
    parser.add_argument("--draws", type=int, default=10, help="timed first draws of the year view")
    parser.add_argument("--rollup-batch", type=int, default=2_000_000,
                        help="max_readings per rollups_refresh pass while loading")
    parser.add_argument("--jit-probe", type=int, default=20_000,
                        help="readings of the two timed rollups passes, JIT as set and off (0: none)")
    parser.add_argument("--pgoptions", default="",
                        help="PGOPTIONS for the servers' connections, e.g. '-c jit=off'")
    parser.add_argument("--only", action="append", choices=[s[0] for s in SERVERS],
                        help="measure only this server (repeatable)")
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
        **({"PGOPTIONS": args.pgoptions} if args.pgoptions else {}),
    }
    counts = counts_of(readings=args.readings, devices=args.devices, interval_s=args.interval_s,
                       long_years=args.long_years)
    now_s = int(time.time()) // args.interval_s * args.interval_s
    found = database_counts(url) if args.reuse else None
    loaded, phases = None, {}
    if found != (args.readings, args.devices):
        log(f"creating {args.database}")
        with psycopg.connect(f"{args.server}/postgres", autocommit=True) as db:
            db.execute(f'DROP DATABASE IF EXISTS "{args.database}" WITH (FORCE)')
            db.execute(f'CREATE DATABASE "{args.database}"')
    else:
        log(f"reusing {args.database}: {found[0]:,} readings")
    t = time.monotonic()
    subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v0"],
                   cwd=ROOT, env=env, check=True)
    phases["migrate"] = time.monotonic() - t
    django_setup(env)
    if found != (args.readings, args.devices):
        loaded = load(url, counts=counts, interval_s=args.interval_s, now_s=now_s, log=log,
                      ensure_partitions=ensure_partitions)
        phases.update(loaded["phases"])
    log("rollups: rollups_refresh until caught up")
    rollups = rollups_catch_up(args.rollup_batch, args.jit_probe)
    if rollups is None:
        log("rollups: readings.services.rollups is missing: the rollup server answers from the readings")
    else:
        phases["rollups"] = rollups["seconds"]
        log(f"rollups: {rollups['passes']} passes in {rollups['seconds']:.1f} s; rows {rollups['rows']}")
    with psycopg.connect(url) as db:
        first, last, long_rows = db.execute(
            "SELECT MIN(time), MAX(time), COUNT(*) FROM readings_reading r JOIN readings_device d "
            "ON d.id = r.device_id WHERE d.sigfox_id = %s", [DEVICE]).fetchone()
        size = db.execute("SELECT pg_size_pretty(pg_database_size(current_database()))").fetchone()[0]
        partitions = db.execute("SELECT count(*) FROM pg_inherits WHERE inhparent = "
                                "'readings_reading'::regclass").fetchone()[0]
        postgres = db.execute("SHOW server_version").fetchone()[0]
    subprocess.run([sys.executable, "manage.py", "collectstatic", "--noinput", "-v0"],
                   cwd=ROOT, env={**env, "DEBUG": "false"}, check=True)

    until = datetime.now(UTC).replace(microsecond=0)
    paths = {
        label: (f"/api/series/?device={DEVICE}&sensor=1&quantity=temp&points=1000"
                f"&since={until - timedelta(days=days):%Y-%m-%dT%H:%M:%SZ}&until={until:%Y-%m-%dT%H:%M:%SZ}")
        for label, days in RANGES
    }
    page_path = f"/graph?device={DEVICE}&quantity=temp&range=year"

    # The machine may be shared: the report says how busy it was.
    load_at_start = os.getloadavg()
    results = {}
    for name, settings_module, _what in SERVERS:
        if args.only and name not in args.only:
            continue
        log(f"measuring {name}")
        server = Server(env, settings_module, out, name)
        requests = args.naive_requests if name == "naive" else args.requests
        try:
            started_rss = rss_mib(server.worker_pid)
            ranges = {}
            for label, _days in RANGES:
                ranges[label] = measure_endpoint(server, paths[label], requests,
                                                 f"{name}{label.replace(' ', '')}")
                log(f"  {label}: median {ranges[label]['server_median_ms']:.1f} ms "
                    f"({ranges[label]['source']})")
            memory = measure_memory(server, paths["1 year"], args.memory_requests, name)
            draws = measure_draws(server, page_path, args.draws)
        finally:
            server.stop()
        results[name] = {"ranges": ranges, **memory, **draws, "rss_start_mib": started_rss,
                         "requests": requests}

    report = render(results, args=args, counts=counts, first=first, last=last, long_rows=long_rows,
                    size=size, partitions=partitions, postgres=postgres, phases=phases,
                    rollups=rollups, loaded=loaded, load_at_start=load_at_start)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    (out / f"series-{stamp}.txt").write_text(report)
    for result in results.values():
        for r in result["ranges"].values():
            r.pop("answer_points", None)
    (out / f"series-{stamp}.json").write_text(json.dumps(results, indent=2))
    print(report)


def render(results: dict, *, args, counts, first, last, long_rows, size, partitions, postgres, phases,
           rollups, loaded, load_at_start) -> str:
    def ratio(a: float, b: float) -> str:
        return f"{a / b:.1f}x" if b else "-"

    cpu = re.sub(r"\s+", " ", next((line.split(":", 1)[1] for line in
                                    Path("/proc/cpuinfo").read_text().splitlines()
                                    if line.startswith("model name")), "?")).strip()
    names = [name for name, _, _ in SERVERS if name in results]
    lines = [
        f"sigfoxsite series benchmark, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
        (f"machine: {os.cpu_count()} cores ({cpu}), load average "
        f"{' '.join(f'{x:.1f}' for x in load_at_start)} at the start of the measures, "
        f"{' '.join(f'{x:.1f}' for x in os.getloadavg())} at the end; PostgreSQL {postgres}"),
        (f"data: {sum(counts):,} readings (one message each) of {len(counts)} devices, one every "
        f"{args.interval_s} s per device; device {DEVICE} has {long_rows:,} ({first:%Y-%m-%d} to "
        f"{last:%Y-%m-%d}), the {len(counts) - 1} others {counts[1]:,} each "
        f"({counts[1] * args.interval_s / 86400:.0f} days); {partitions} partitions of readings_reading; "
        f"database {size}"),
    ]
    if phases:
        lines.append("phases (s): " + ", ".join(f"{k} {v:.1f}" for k, v in phases.items())
                     + (f"; in all {loaded['seconds']:.0f} s of loading" if loaded else ""))
    if rollups is not None:
        lines.append(f"rollups: {rollups['passes']} passes of rollups_refresh "
                     f"(max_readings={args.rollup_batch:,}, JIT off) in {rollups['seconds']:.0f} s; "
                     f"rows by resolution (s) {rollups['rows']}")
        probe = rollups["probe"]
        if "off" in probe:
            (n_on, s_on), (n_off, s_off) = probe["default"], probe["off"]
            lines.append(f"rollups_refresh of {n_on:,} readings with jit={probe['jit']} (the server's): "
                         f"{s_on:.1f} s; of {n_off:,} with jit=off: {s_off:.1f} s")
    else:
        lines.append("rollups: readings.services.rollups is missing; the rollup server answered "
                     "from the readings")
    lines += [
        ("servers' PGOPTIONS: " + args.pgoptions + "; " if args.pgoptions else "")
        + "requests: /api/series/ of device 100001, sensor 1, temp, points=1000, until = now; "
        "gunicorn, 1 sync worker, over HTTP, one server at a time; server time = gunicorn's %(D)s",
        "servers: " + "; ".join(f"{name}: {what}" for name, _, what in SERVERS if name in results),
        "",
    ]
    head = f"{'range':8} {'measure':26}" + "".join(f"{n:>14}" for n in names)
    extra = [n for n in ("raw", "naive") if n in results and "rollup" in results]
    head += "".join(f"{n + '/rollup':>14}" for n in extra)
    lines.append(head)
    rows = [
        ("readings in the range", "count", "{:,.0f}"),
        ("points sent", "points", "{:,.0f}"),
        ("answer's source", "source", "{}"),
        ("response size (bytes)", "bytes", "{:,.0f}"),
        ("server time, median (ms)", "server_median_ms", "{:.1f}"),
        ("server time, p95 (ms)", "server_p95_ms", "{:.1f}"),
        ("round trip, median (ms)", "client_median_ms", "{:.1f}"),
    ]
    for label, _days in RANGES:
        for text, key, fmt in rows:
            cells = [results[n]["ranges"][label][key] for n in names]
            line = f"{label:8} {text:26}" + "".join(f"{fmt.format(c):>14}" for c in cells)
            if key in {"points", "bytes", "server_median_ms", "server_p95_ms", "client_median_ms"}:
                line += "".join(f"{ratio(results[n]['ranges'][label][key], results['rollup']['ranges'][label][key]):>14}"
                                for n in extra)
            lines.append(line)
        if "rollup" in results and "raw" in results:
            same = (results["rollup"]["ranges"][label]["answer_points"]
                    == results["raw"]["ranges"][label]["answer_points"])
            lines.append(f"{label:8} {'rollup points == raw':26}{'yes' if same else 'NO':>14}")
        lines.append("")
    lines.append("timed requests per range: "
                 + ", ".join(f"{n} {results[n]['requests']}" for n in names) + " (after 3 warm-ups)")
    year_rows = [
        (f"first draw, median of {args.draws} (ms)", "draw_median_ms", "{:.0f}"),
        ("first draw, p95 (ms)", "draw_p95_ms", "{:.0f}"),
        ("points drawn", "drawn_points", "{:,.0f}"),
        ("worker RSS at start (MiB)", "rss_start_mib", "{:.1f}"),
        (f"worker RSS before {args.memory_requests} req", "rss_before_mib", "{:.1f}"),
        (f"worker RSS after {args.memory_requests} req", "rss_after_mib", "{:.1f}"),
        ("worker RSS growth (MiB)", "rss_growth_mib", "{:+.1f}"),
    ]
    lines.append("")
    lines.append(f"{'year view':8} {'(/graph?range=year)':26}" + "".join(f"{n:>14}" for n in names))
    for text, key, fmt in year_rows:
        lines.append(f"{'':8} {text:26}" + "".join(f"{fmt.format(results[n][key]):>14}" for n in names))
    if "rollup" in results:
        s = results["rollup"]
        year, five = s["ranges"]["1 year"], s["ranges"]["5 years"]
        verdicts = [
            ((f"one year of one device at 1,000 points, server time median < 25 ms "
             f"({year['source']})"), year["server_median_ms"] < 25, f"{year['server_median_ms']:.1f} ms"),
            (f"five years, server time median < 25 ms ({five['source']})",
             five["server_median_ms"] < 25, f"{five['server_median_ms']:.1f} ms"),
            ("the year view's first draw, median < 1000 ms", s["draw_median_ms"] < 1000,
             f"{s['draw_median_ms']:.0f} ms"),
            (f"worker RSS flat over {args.memory_requests} requests (< 5 MiB)",
             abs(s["rss_growth_mib"]) < 5, f"{s['rss_growth_mib']:+.1f} MiB"),
        ]
        if "raw" in results:
            verdicts.append(("rollup answers equal to the raw ones (same buckets, to the bit)",
                             all(s["ranges"][label]["answer_points"] == results["raw"]["ranges"][label]["answer_points"]
                                 for label, _ in RANGES), ""))
        lines.append("")
        lines += [f"{'PASS' if ok else 'FAIL'}  {text}" + (f": {detail}" if detail else "")
                  for text, ok, detail in verdicts]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
