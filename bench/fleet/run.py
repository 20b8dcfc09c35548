"""bench/fleet: the pages of a fleet of 100,000 devices and 50,000 series, on PostgreSQL.

Issue 10, item 2 ("A large fleet stays fast"): /graph, /devices/<id>,
/api/devices/ and the admin's device list must each answer in under 300 ms
of server time, and callbacks must keep their p99 while four chart pages
load at once.

1. Drops and creates the database, migrates it and fills it in SQL:
   device types, devices, 2 series (temp, vbat on sensor 1) on a quarter of
   the devices, a few messages of two readings each per series device; then
   VACUUM ANALYZE.
2. Makes a superuser and a logged-in session for it (manage.py shell), the
   admin's cookie.
3. Serves the project with gunicorn (4 sync workers) and times each page,
   one request at a time, from the client on loopback.
4. wrk and bench/ingest/callbacks.lua: callbacks alone, then while four
   threads load chart pages; if the p99 suffers, the same with callbacks on
   a second gunicorn of their own.

Run it with bench/fleet/run.sh (see bench/README.md); `--help` lists the knobs.
"""

from __future__ import annotations

import argparse
import http.client
import importlib.util
import json
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

import psycopg

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
OUT = ROOT / "bench" / "out" / "fleet"
CALLBACKS_LUA = ROOT / "bench" / "ingest" / "callbacks.lua"


def _module(name: str, path: Path):
    """A helper module of another bench, by its path (they are scripts, not a package)."""
    sys.path.insert(0, str(path.parent))  # for their own imports (bench/ingest's reference)
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


_filler = _module("series_load", ROOT / "bench" / "series" / "load.py")._filler
_ingest = _module("ingest_run", ROOT / "bench" / "ingest" / "run.py")
machine, recreate_database = _ingest.machine, _ingest.recreate_database

TARGET_MS = 300
# Fleet ids start here, far from callbacks.lua's (below 0x1000000).
DEVICE_BASE = 0x20000000
SETTINGS = "bench.fleet.settings"  # the project's, STATIC_ROOT apart


def arguments() -> argparse.Namespace:
    env = os.environ.get
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--database-url",
                   default=env("BENCH_DATABASE_URL", "postgres://root@127.0.0.1:5432/sigfoxsite_fleet"),
                   help="database to create afresh (it is dropped first!)")
    p.add_argument("--reuse", action="store_true",
                   help="keep the database when it already holds the fleet asked for")
    p.add_argument("--devices", type=int, default=100_000)
    p.add_argument("--series-devices", type=int, default=25_000,
                   help="devices with series, 2 each (default 25,000: 50,000 series)")
    p.add_argument("--messages", type=int, default=3,
                   help="messages per series device, each with a temp and a vbat reading")
    p.add_argument("--device-types", type=int, default=1000,
                   help="device types (default 1000, SIGFOX_MAX_DEVICE_TYPES' default)")
    p.add_argument("--requests", type=int, default=20, help="timed requests per page")
    p.add_argument("--warmups", type=int, default=3, help="untimed requests per page first")
    p.add_argument("--page-budget", type=float, default=60,
                   help="seconds at most per page (fewer requests when it is slow)")
    p.add_argument("--duration", type=int, default=15, help="seconds per wrk run")
    p.add_argument("--workers", type=int, default=4, help="gunicorn sync workers (default 4)")
    p.add_argument("--callback-workers", type=int, default=2,
                   help="workers of the callbacks-only gunicorn of the split run (default 2)")
    p.add_argument("--page-threads", type=int, default=4,
                   help="client threads loading pages during the loaded runs")
    p.add_argument("--split", choices=["auto", "always", "never"], default="auto",
                   help="the run with a separate callback pool: when the p99 suffers (auto)")
    return p.parse_args()


# --- the database -------------------------------------------------------------------------

def fleet_env(args) -> dict[str, str]:
    return {
        **{k: v for k, v in os.environ.items() if k in {"PATH", "HOME", "LANG", "LC_ALL"}},
        "SIGFOXSITE_READ_DOT_ENV": "false",
        "DJANGO_SETTINGS_MODULE": SETTINGS,
        "SECRET_KEY": "bench-fleet-" + "x" * 40,
        "DATABASE_URL": args.database_url,
        "DEBUG": "false",
        "SECURE_SSL_REDIRECT": "false",
        "SECURE_COOKIES": "false",
        "SECURE_HSTS_SECONDS": "0",
        "PUBLIC_DASHBOARD": "true",
        "LOG_LEVEL": "WARNING",
    }


def fleet_counts(url: str) -> tuple[int, int] | None:
    try:
        with psycopg.connect(url, autocommit=True) as db:
            return db.execute("SELECT (SELECT COUNT(*) FROM readings_device WHERE name LIKE 'fleet %%'),"
                              " (SELECT COUNT(*) FROM readings_series)").fetchone()
    except psycopg.Error:
        return None


def load_fleet(args, log) -> None:
    now_s = int(time.time())
    with psycopg.connect(args.database_url, autocommit=True) as db:
        db.execute("SET synchronous_commit = off")
        t = time.monotonic()
        cols, vals = _filler(db, "readings_devicetype", {"sigfox_id", "name", "first_seen"})
        db.execute(f"""INSERT INTO readings_devicetype (sigfox_id, name, first_seen{cols})
                       SELECT upper(to_hex(4096 + i)), 'type ' || i, to_timestamp(%s - 86400 * 90){vals}
                       FROM generate_series(1, %s) AS i""", [now_s, args.device_types])
        # Every device has a type but one in ten; the series devices are every
        # n-th one, so that they are spread over the id order as in a real fleet.
        step = max(args.devices // max(args.series_devices, 1), 1)
        cols, vals = _filler(db, "readings_device",
                             {"sigfox_id", "name", "first_seen", "last_seen", "device_type_id"})
        db.execute(
            f"""INSERT INTO readings_device (sigfox_id, name, first_seen, last_seen, device_type_id{cols})
                SELECT upper(to_hex(%s + i)), 'fleet ' || i,
                       to_timestamp(%s - 86400 * 30 - i), to_timestamp(%s - (i %% 86400)),
                       CASE WHEN i %% 10 = 0 THEN NULL
                            ELSE (SELECT min(id) FROM readings_devicetype) + i %% %s END{vals}
                FROM generate_series(1, %s) AS i""",
            [DEVICE_BASE, now_s, now_s, args.device_types, args.devices])
        log(f"{args.device_types:,} device types, {args.devices:,} devices in {time.monotonic() - t:.1f} s")
        t = time.monotonic()
        db.execute("""CREATE TEMP TABLE fleet_series_devices AS
                      SELECT id FROM readings_device
                      WHERE (id - (SELECT min(id) FROM readings_device)) %% %s = 0
                      ORDER BY id LIMIT %s""",
                   [step, args.series_devices])
        given = {"device_id", "time", "seq_number", "sensor", "received_at", "rssi", "snr",
                 "station", "data"}
        cols, vals = _filler(db, "readings_message", given)
        # Each device: one message every 10 minutes, the newest up to a day old.
        db.execute(
            f"""INSERT INTO readings_message (device_id, time, seq_number, sensor, received_at,
                    rssi, snr, station, data{cols})
                SELECT d.id, to_timestamp(%s - (d.id %% 86400) - 600 * k), 1000 - k, '1',
                       to_timestamp(%s - (d.id %% 86400) - 600 * k + 2),
                       -120 + 25 * random(), 5 + 15 * random(), '1A2B', 'ab'{vals}
                FROM fleet_series_devices d, generate_series(0, %s - 1) AS k
                ORDER BY 2, 1""",
            [now_s, now_s, args.messages])
        db.execute(
            """INSERT INTO readings_reading (message_id, device_id, sensor, quantity, value, time, from_payload)
               SELECT m.id, m.device_id, '1', q.name,
                      CASE q.name WHEN 'temp' THEN round((15 + 10 * random())::numeric, 2)
                                  ELSE round((3 + random())::numeric, 3) END,
                      m.time, false
               FROM readings_message m JOIN fleet_series_devices d ON d.id = m.device_id,
                    (VALUES ('temp'), ('vbat')) AS q(name)
               ORDER BY m.id, q.name""")
        db.execute("""INSERT INTO readings_series (device_id, sensor, quantity, created_at)
                      SELECT id, '1', q.name, now() FROM fleet_series_devices,
                             (VALUES ('temp'), ('vbat')) AS q(name) ON CONFLICT DO NOTHING""")
        db.execute("""INSERT INTO readings_quantity (name, created_at)
                      VALUES ('temp', now()), ('vbat', now()) ON CONFLICT DO NOTHING""")
        n = db.execute("SELECT (SELECT COUNT(*) FROM readings_series), (SELECT COUNT(*) FROM "
                       "readings_message), (SELECT COUNT(*) FROM readings_reading)").fetchone()
        log(f"{n[0]:,} series, {n[1]:,} messages, {n[2]:,} readings in {time.monotonic() - t:.1f} s")
        t = time.monotonic()
        db.execute("VACUUM ANALYZE")
        log(f"VACUUM ANALYZE in {time.monotonic() - t:.1f} s")


SESSION_SNIPPET = """
from importlib import import_module
from django.conf import settings
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY, get_user_model
user, _ = get_user_model().objects.get_or_create(username="fleet-bench")
user.is_staff = user.is_superuser = True
user.set_unusable_password()
user.save()
store = import_module(settings.SESSION_ENGINE).SessionStore()
store[SESSION_KEY] = str(user.pk)
store[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
store[HASH_SESSION_KEY] = user.get_session_auth_hash()
store.save()
print("SESSION", store.session_key)
"""


def admin_session(args) -> str:
    output = subprocess.run([sys.executable, "manage.py", "shell", "-c", SESSION_SNIPPET], cwd=ROOT,
                            env=fleet_env(args), capture_output=True, text=True, check=True).stdout
    return next(line.split()[1] for line in output.splitlines() if line.startswith("SESSION "))


# --- the servers -----------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Gunicorn:
    def __init__(self, args, name: str, workers: int):
        self.port = free_port()
        self.log_path = OUT / f"gunicorn-{name}.log"
        command = [str(Path(sys.executable).with_name("gunicorn")), "sigfoxsite.wsgi:application",
                   "--chdir", str(ROOT), "--bind", f"127.0.0.1:{self.port}",
                   "--workers", str(workers), "--worker-class", "sync", "--log-level", "warning"]
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(command, cwd=ROOT, env=fleet_env(args), stdout=log,
                                            stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                break
            except OSError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    sys.exit(f"gunicorn did not start:\n{self.log_path.read_text()[-3000:]}")
                time.sleep(0.2)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def get(port: int, path: str, cookie: str = "", timeout: float = 60) -> tuple[int, bytes, float]:
    """Status, body and wall seconds of one GET on a new connection, as a browser's first."""
    started = time.perf_counter()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path, headers={"Cookie": cookie} if cookie else {})
        response = conn.getresponse()
        body = response.read()
        return response.status, body, time.perf_counter() - started
    finally:
        conn.close()


# --- pages -----------------------------------------------------------------------------------

@dataclass
class PageResult:
    label: str
    path: str
    times_s: list[float] = field(default_factory=list)
    statuses: set[int] = field(default_factory=set)
    size: int = 0
    note: str = ""

    def pct(self, q: float) -> float:
        ordered = sorted(self.times_s)
        return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered) + 0.5) - 1))] * 1000

    @property
    def median_ms(self) -> float:
        return statistics.median(self.times_s) * 1000

    @property
    def ok(self) -> bool:
        return bool(self.times_s) and self.statuses == {200} and self.pct(0.95) < TARGET_MS


def time_page(args, port: int, label: str, path: str, cookie: str = "") -> PageResult:
    result = PageResult(label, path)
    started = time.monotonic()
    for i in range(args.warmups + args.requests):
        try:
            status, body, seconds = get(port, path, cookie)
        except (OSError, http.client.HTTPException) as exc:
            result.note = f"{type(exc).__name__}: {exc}"
            result.statuses.add(0)
            break
        if i >= args.warmups:
            result.times_s.append(seconds)
            result.statuses.add(status)
            result.size = len(body)
        if time.monotonic() - started > args.page_budget:
            result.note = f"stopped after {args.page_budget:.0f} s"
            if not result.times_s:  # even the warm-ups were too slow: keep the last
                result.times_s.append(seconds)
                result.statuses.add(status)
                result.size = len(body)
            break
    return result


PAGE_HEADER = (f"{'page':<28} {'n':>3} {'median ms':>9} {'p95 ms':>8} {'max ms':>8} "
               f"{'bytes':>9} {'status':>6}  <{TARGET_MS} ms")


def format_page(r: PageResult) -> str:
    if not r.times_s:
        return f"{r.label:<28} {'-':>3}  {r.note}"
    statuses = ",".join(str(s) for s in sorted(r.statuses))
    verdict = "yes" if r.ok else "NO"
    return (f"{r.label:<28} {len(r.times_s):>3} {r.median_ms:>9.1f} {r.pct(0.95):>8.1f} "
            f"{max(r.times_s) * 1000:>8.1f} {r.size:>9,} {statuses:>6}  {verdict}"
            + (f"  ({r.note})" if r.note else ""))


# --- callbacks under page load ------------------------------------------------------------------

def run_wrk(port: int, seconds: int, run: int) -> dict[str, int]:
    command = ["wrk", "-t1", "-c16", f"-d{seconds}s", "--timeout", "10s", "-s", str(CALLBACKS_LUA),
               f"http://127.0.0.1:{port}/data/1", "--", str(run), "1000"]
    output = subprocess.run(command, capture_output=True, text=True, check=True,
                            timeout=seconds + 60).stdout
    line = next((line for line in output.splitlines() if line.startswith("RESULT ")), None)
    if line is None:
        sys.exit(f"wrk printed no RESULT line:\n{output}")
    return {key: int(value) for key, value in (pair.split("=") for pair in line.split()[1:])}


@dataclass
class LoadResult:
    label: str
    wrk: dict[str, int]
    pages: list[float]  # seconds of each page answered during the run
    page_errors: int

    @property
    def rate(self) -> float:
        return self.wrk["ok"] / (self.wrk["duration_us"] / 1e6)


def page_load(port: int, paths: list[str], threads: int, stop: threading.Event,
              deadline: float, times: list[float], errors: list[int]) -> list[threading.Thread]:
    """`threads` clients, each loading the paths in turn until stop (or the deadline)."""
    def client(k: int) -> None:
        i = k
        while not stop.is_set() and time.monotonic() < deadline and i < 100_000:
            try:
                status, _, seconds = get(port, paths[i % len(paths)], timeout=60)
                times.append(seconds)
                if status != 200:
                    errors.append(status)
            except (OSError, http.client.HTTPException):
                errors.append(0)
            i += 1
    workers = [threading.Thread(target=client, args=(k,), daemon=True) for k in range(threads)]
    for w in workers:
        w.start()
    return workers


def callbacks_run(args, label: str, callback_port: int, run: int, page_port: int | None = None,
                  page_paths: list[str] = ()) -> LoadResult:
    times: list[float] = []
    errors: list[int] = []
    stop = threading.Event()
    clients = []
    if page_port is not None:
        clients = page_load(page_port, list(page_paths), args.page_threads, stop,
                            time.monotonic() + args.duration + 30, times, errors)
        time.sleep(1)  # the pages are loading when wrk starts
    try:
        stats = run_wrk(callback_port, args.duration, run)
    finally:
        stop.set()
        for c in clients:
            c.join(timeout=70)
    return LoadResult(label, stats, times, len(errors))


LOAD_HEADER = (f"{'callbacks':<44} {'callbacks/s':>11} {'p50 ms':>7} {'p99 ms':>7} {'max ms':>7} "
               f"{'non-2xx':>7} {'errors':>6}  pages during the run")


def format_load(r: LoadResult) -> str:
    w = r.wrk
    errors = w["errors_connect"] + w["errors_read"] + w["errors_write"] + w["errors_timeout"]
    pages = "-"
    if r.pages:
        ordered = sorted(r.pages)
        pages = (f"{len(r.pages)} answered, median {statistics.median(r.pages) * 1000:.0f} ms, "
                 f"p95 {ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))] * 1000:.0f} ms"
                 + (f", {r.page_errors} not 200" if r.page_errors else ""))
    return (f"{r.label:<44} {r.rate:>11.1f} {w['p50_us'] / 1000:>7.1f} {w['p99_us'] / 1000:>7.1f} "
            f"{w['max_us'] / 1000:>7.1f} {w['non2xx']:>7} {errors:>6}  {pages}")


# --- main --------------------------------------------------------------------------------------

def main() -> int:
    args = arguments()
    if urlsplit(args.database_url).hostname not in {"127.0.0.1", "localhost"}:
        sys.exit("--database-url: only a local PostgreSQL (127.0.0.1)")
    OUT.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()

    def log(text: str) -> None:
        print(f"[{time.monotonic() - started:6.1f} s] {text}", flush=True)

    env = fleet_env(args)
    if args.reuse and fleet_counts(args.database_url) == (args.devices, 2 * args.series_devices):
        log("reusing the database")
    else:
        log("creating the database")
        recreate_database(args.database_url)
        subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v0"], cwd=ROOT,
                       env=env, check=True)
        load_fleet(args, log)
    subprocess.run([sys.executable, "manage.py", "collectstatic", "--noinput", "-v0"], cwd=ROOT,
                   env=env, check=True)
    session = admin_session(args)
    cookie = f"sessionid={session}"
    with psycopg.connect(args.database_url, autocommit=True) as db:
        postgres = db.execute("SHOW server_version").fetchone()[0]
        with_series = db.execute(
            "SELECT d.sigfox_id FROM readings_device d WHERE EXISTS (SELECT 1 FROM readings_series s "
            "WHERE s.device_id = d.id) ORDER BY d.sigfox_id LIMIT 1 OFFSET %s",
            [args.series_devices // 2]).fetchone()[0]
        without = db.execute(
            "SELECT d.sigfox_id FROM readings_device d WHERE NOT EXISTS (SELECT 1 FROM readings_series s "
            "WHERE s.device_id = d.id) ORDER BY d.sigfox_id LIMIT 1 OFFSET %s",
            [(args.devices - args.series_devices) // 2]).fetchone()[0]
        counts = db.execute(
            "SELECT (SELECT COUNT(*) FROM readings_device), (SELECT COUNT(*) FROM readings_series), "
            "(SELECT COUNT(*) FROM readings_devicetype), (SELECT COUNT(*) FROM readings_message), "
            "(SELECT COUNT(*) FROM readings_reading), "
            "pg_size_pretty(pg_database_size(current_database()))").fetchone()

    print(f"\nbench/fleet {datetime.now(UTC):%Y-%m-%d %H:%M} UTC: {machine()}, PostgreSQL {postgres}")
    print(f"data: {counts[0]:,} devices, {counts[1]:,} series, {counts[2]:,} device types, "
          f"{counts[3]:,} messages, {counts[4]:,} readings; database {counts[5]}")
    print(f"gunicorn: {args.workers} sync workers; pages one at a time on a new connection, "
          f"{args.warmups} warm-ups then {args.requests} timed (at most {args.page_budget:.0f} s each); "
          f"device with series {with_series}, without {without}", flush=True)

    main_server = Gunicorn(args, "pages", args.workers)
    servers = [main_server]
    try:
        port = main_server.port
        status, body, _ = get(port, "/api/devices/")
        next_url = json.loads(body).get("next") if status == 200 else None
        cursor_path = (urlsplit(next_url).path + "?" + urlsplit(next_url).query) if next_url else None
        pages = [
            ("/ (overview)", "/", ""),
            ("/?state=down", "/?state=down", ""),
            ("/?sort=-last_seen&page=100", "/?sort=-last_seen&page=100", ""),
            ("/?q=2000A", "/?q=2000A", ""),
            ("/graph", "/graph", ""),
            ("/graph?device=<series>", f"/graph?device={with_series}", ""),
            ("/devices/<series>", f"/devices/{with_series}", ""),
            ("/devices/<no series>", f"/devices/{without}", ""),
            ("/api/devices/", "/api/devices/", ""),
            ("/api/devices/?cursor=<next>", cursor_path, ""),
            ("/admin/readings/device/", "/admin/readings/device/", cookie),
            ("/admin/readings/device/?q=1A", "/admin/readings/device/?q=1A", cookie),
            ("/api/readings/?device=<series>", f"/api/readings/?device={with_series}", ""),
        ]
        print("\n" + PAGE_HEADER, flush=True)
        page_results = []
        for label, path, page_cookie in pages:
            if path is None:
                print(f"{label:<28}   -  no next cursor in /api/devices/", flush=True)
                continue
            page_results.append(time_page(args, port, label, path, page_cookie))
            print(format_page(page_results[-1]), flush=True)

        chart_paths = ["/graph", f"/devices/{with_series}"]
        print(f"\ncallbacks: wrk 1 thread, 16 connections, {args.duration} s, callbacks.lua; "
              f"page load: {args.page_threads} threads looping over {' and '.join(chart_paths)}")
        print(LOAD_HEADER, flush=True)
        run_wrk(port, 2, 15)  # warm-up, its own devices
        loads = [callbacks_run(args, f"alone ({args.workers} workers)", port, 0)]
        print(format_load(loads[-1]), flush=True)
        loads.append(callbacks_run(args, f"with {args.page_threads} page loaders (same pool)", port, 1,
                                   port, chart_paths))
        print(format_load(loads[-1]), flush=True)
        alone, loaded = loads[0].wrk["p99_us"], loads[1].wrk["p99_us"]
        suffers = loaded > 2 * alone or loaded > 1_000_000
        if args.split == "always" or (args.split == "auto" and suffers):
            callback_server = Gunicorn(args, "callbacks", args.callback_workers)
            servers.append(callback_server)
            run_wrk(callback_server.port, 2, 14)
            loads.append(callbacks_run(args, f"own pool of {args.callback_workers}, alone",
                                       callback_server.port, 2))
            print(format_load(loads[-1]), flush=True)
            loads.append(callbacks_run(
                args, f"own pool of {args.callback_workers}, pages on {args.workers}",
                callback_server.port, 3, port, chart_paths))
            print(format_load(loads[-1]), flush=True)
    finally:
        for server in servers:
            server.stop()

    print("\nsummary")
    for r in page_results:
        verdict = "PASS" if r.ok else "FAIL"
        why = f"p95 {r.pct(0.95):.1f} ms, median {r.median_ms:.1f} ms" if r.times_s else r.note
        if r.statuses - {200}:
            why += f", status {sorted(r.statuses)}"
        print(f"{verdict}  {r.label:<30} < {TARGET_MS} ms: {why}")
    for r in loads:
        if r.wrk["non2xx"]:
            print(f"FAIL  callbacks {r.label}: {r.wrk['non2xx']} non-2xx answers")
    ratio = loaded / alone if alone else float("nan")
    verdict = "PASS" if not suffers else "FAIL"
    print(f"{verdict}  callback p99 with page load, one pool: {loaded / 1000:.1f} ms, "
          f"{ratio:.1f}x alone ({alone / 1000:.1f} ms)")
    if len(loads) == 4:
        split_alone, split_loaded = loads[2].wrk["p99_us"], loads[3].wrk["p99_us"]
        split_ok = split_loaded <= 2 * alone and split_loaded <= 1_000_000
        print(f"{'PASS' if split_ok else 'FAIL'}  callback p99 with page load, own pool: "
              f"{split_loaded / 1000:.1f} ms, {split_loaded / alone:.1f}x the one pool alone "
              f"(own pool alone {split_alone / 1000:.1f} ms)")
    print(f"load average at the end: {' '.join(f'{x:.1f}' for x in os.getloadavg())}; "
          f"{time.monotonic() - started:.0f} s in all")
    return 0


if __name__ == "__main__":
    sys.exit(main())
