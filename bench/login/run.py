"""bench/login: callbacks while 8 clients send wrong admin passwords, with and without django-axes.

gunicorn serves the project as `make run` does (sigfoxsite.settings, so the
real PBKDF2 hasher; 2 sync workers per core; gunicorn.conf.py; access log
on) on a fresh PostgreSQL database, once with the login lockout switched off
(bench/login/unguarded_settings.py: what the project did before django-axes)
and once as it is. For each, wrk sends distinct tutorial callbacks
(bench/ingest/callbacks.lua) for a run alone, then for a run while 8 clients
POST wrong passwords for the admin account to the login page as fast as they
are answered. It prints the callbacks' throughput and latency in each run,
the logins tried and how they were answered, how many passwords the server
hashed, and whether the right password still logs in after the flood.

Every loop is bounded in count and time, and every request goes to
127.0.0.1. Run it with bench/login/run.sh (see bench/README.md); `--help`
lists the knobs.
"""

from __future__ import annotations

import argparse
import collections
import http.client
import importlib.util
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlencode, urlsplit

import psycopg

ROOT = Path(__file__).resolve().parents[2]
INGEST = ROOT / "bench" / "ingest"
sys.path.insert(0, str(INGEST))  # bench/ingest/run.py imports reference.py beside it
_spec = importlib.util.spec_from_file_location("bench_ingest_run", INGEST / "run.py")
ingest = sys.modules[_spec.name] = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(ingest)

HOST = "127.0.0.1"  # the only host this benchmark sends anything to
USERNAME = "admin"
PASSWORD = "bench-login-right-password-" + "x" * 12
VARIANTS = {
    # name: (settings module, callbacks served by a pool of their own)
    "unguarded": ("bench.login.unguarded_settings", False),  # the project before django-axes
    "axes": ("sigfoxsite.settings", False),  # the project as it is, as `make run` serves it
    "axes+pool": ("sigfoxsite.settings", True),  # the same, /data/ on its own gunicorn (README)
}
WARMUP, ALONE, FLOODED = 15, 0, 1  # callbacks.lua RUNs (+ 2 per variant): each run its own devices


def arguments() -> argparse.Namespace:
    cores = os.cpu_count() or 1
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--database-url", default="postgres://root@127.0.0.1:5432/sigfoxsite_login_bench",
                   help="database to create afresh (it is dropped first!)")
    p.add_argument("--duration", type=int, default=15, help="seconds of each wrk run (default 15)")
    p.add_argument("--connections", type=int, default=16, help="wrk connections (default 16)")
    p.add_argument("--clients", type=int, default=8, help="concurrent login clients (default 8)")
    p.add_argument("--max-attempts", type=int, default=20_000,
                   help="at most this many logins per client and run (default 20,000)")
    p.add_argument("--login-path", default="/admin/login/",
                   help="login page the clients flood (default /admin/login/; /accounts/login/ works too)")
    p.add_argument("--workers", type=int, default=2 * cores,
                   help=f"gunicorn sync workers (default 2 per core, as `make run`: {2 * cores}); "
                        "in axes+pool, those of the callbacks' pool")
    p.add_argument("--web-workers", type=int, default=2,
                   help="in axes+pool, workers of the pool for everything else (default 2)")
    p.add_argument("--limit-ms", type=float, default=1000,
                   help="p99 the callbacks must keep during the flood with axes (default 1000)")
    p.add_argument("--only", choices=sorted(VARIANTS), action="append",
                   help="run this variant only (repeatable)")
    args = p.parse_args()
    if args.duration > 600 or args.clients > 64 or args.max_attempts > 1_000_000:
        p.error("keep it bounded: --duration <= 600, --clients <= 64, --max-attempts <= 1,000,000")
    if urlsplit(args.database_url).hostname not in {"127.0.0.1", "localhost", "::1"}:
        p.error("--database-url: a database on this machine only (it is dropped and created)")
    args.devices, args.wrk_threads = 1000, 1  # what bench/ingest's run_wrk expects
    return args


@dataclass
class Flood:
    """What the login clients sent and got back."""

    seconds: float = 0.0
    answers: collections.Counter = field(default_factory=collections.Counter)
    latencies_ms: list[float] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def tries(self) -> int:
        return sum(self.answers.values())

    def summary(self) -> str:
        return ", ".join(f"{status}: {n}" for status, n in sorted(self.answers.items(), key=str))


def login_form(conn: http.client.HTTPConnection, path: str) -> tuple[str, str]:
    """(csrftoken cookie, form token) from a GET of the login page."""
    conn.request("GET", path)
    response = conn.getresponse()
    page = response.read().decode()
    cookies = " ".join(response.headers.get_all("Set-Cookie") or [])
    cookie = re.search(r"csrftoken=([^;]+)", cookies)
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page)
    if response.status != 200 or not cookie or not token:
        raise RuntimeError(f"GET {path}: {response.status}, no CSRF cookie or token")
    return cookie[1], token[1]


def log_in(conn: http.client.HTTPConnection, path: str, csrf: tuple[str, str], password: str) -> int:
    cookie, token = csrf
    body = urlencode({"csrfmiddlewaretoken": token, "username": USERNAME, "password": password,
                      "next": "/admin/"})
    conn.request("POST", path, body, {"Content-Type": "application/x-www-form-urlencoded",
                                      "Cookie": f"csrftoken={cookie}"})
    response = conn.getresponse()
    response.read()
    return response.status


def flood_client(port: int, args, n: int, stop: threading.Event, deadline: float, flood: Flood) -> None:
    """One client: wrong passwords, one after the other, until stopped (or the bounds)."""
    conn = http.client.HTTPConnection(HOST, port, timeout=30)
    try:
        csrf = login_form(conn, args.login_path)
        for attempt in range(args.max_attempts):
            if stop.is_set() or time.monotonic() > deadline:
                break
            started = time.monotonic()
            try:
                status = log_in(conn, args.login_path, csrf, f"wrong-{n}-{attempt}")
            except (OSError, http.client.HTTPException) as exc:
                status = type(exc).__name__
                conn.close()
            with flood.lock:
                flood.answers[status] += 1
                flood.latencies_ms.append((time.monotonic() - started) * 1000)
    finally:
        conn.close()


def wrk_with_flood(port: int, login_port: int, args, run: int) -> tuple[dict, Flood]:
    """wrk for --duration while --clients clients send wrong passwords (from a second before)."""
    flood, stop = Flood(), threading.Event()
    deadline = time.monotonic() + args.duration + 30
    clients = [threading.Thread(target=flood_client, args=(login_port, args, n, stop, deadline, flood))
               for n in range(args.clients)]
    started = time.monotonic()
    for client in clients:
        client.start()
    try:
        time.sleep(1)
        stats = ingest.run_wrk(args, port, "/data/1", args.connections, args.duration, run)
    finally:
        stop.set()
        for client in clients:
            client.join(timeout=60)
    flood.seconds = time.monotonic() - started
    return stats, flood


def right_password(port: int, args) -> int:
    """The answer to the right password, from the flooding address, after the flood."""
    conn = http.client.HTTPConnection(HOST, port, timeout=30)
    try:
        return log_in(conn, args.login_path, login_form(conn, args.login_path), PASSWORD)
    finally:
        conn.close()


def hashed_by_axes(url: str) -> int:
    """Failed logins axes let through to the hasher (a refused try during a lockout is not counted)."""
    with psycopg.connect(url, autocommit=True) as db:
        return db.execute("SELECT coalesce(sum(failures_since_start), 0) FROM axes_accessattempt").fetchone()[0]


def reset_axes(url: str) -> None:
    with psycopg.connect(url, autocommit=True) as db:
        db.execute("DELETE FROM axes_accessattempt")


def server_command(port: int, workers: int) -> list[str]:
    """`make run`'s gunicorn command, on a free port."""
    return [str(Path(sys.executable).with_name("gunicorn")), "sigfoxsite.wsgi",
            "--config", str(ROOT / "gunicorn.conf.py"), "--bind", f"{HOST}:{port}",
            "--workers", str(workers), "--access-logfile", "-",
            "--forwarded-allow-ips", "127.0.0.1,::1"]


def start_server(env: dict, name: str, workers: int) -> tuple[subprocess.Popen, int]:
    port = ingest.free_port()
    ingest.OUT.mkdir(parents=True, exist_ok=True)
    log_path = ingest.OUT / f"gunicorn-login-{name}.log"
    with log_path.open("wb") as log:
        server = subprocess.Popen(server_command(port, workers), cwd=ROOT, env=env, stdout=log,
                                  stderr=subprocess.STDOUT)
    ingest.wait_until_listening(port, server, log_path)
    return server, port


def stop_server(server: subprocess.Popen) -> None:
    server.send_signal(signal.SIGTERM)
    try:
        server.wait(timeout=30)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait()


@dataclass
class Row:
    variant: str
    flooded: bool
    stats: dict
    flood: Flood | None = None
    hashed: int | None = None


def bench_variant(args, name: str, env: dict, split: bool, first_run: int) -> tuple[list[Row], int]:
    """Callbacks alone, then with the flood; split: the logins go to a second gunicorn
    (what nginx does with the README's two upstreams), the callbacks to the first."""
    servers = []
    try:
        servers.append(start_server(env, name + ("-callbacks" if split else ""), args.workers))
        if split:
            servers.append(start_server(env, name + "-web", args.web_workers))
        callbacks_port, web_port = servers[0][1], servers[-1][1]
        ingest.run_wrk(args, callbacks_port, "/data/1", args.connections, 2, WARMUP)
        reset_axes(args.database_url)
        alone = ingest.run_wrk(args, callbacks_port, "/data/1", args.connections, args.duration,
                               first_run + ALONE)
        rows = [Row(name, False, alone)]
        stats, flood = wrk_with_flood(callbacks_port, web_port, args, first_run + FLOODED)
        hashed = hashed_by_axes(args.database_url) if name != "unguarded" else flood.answers.get(200, 0)
        rows.append(Row(name, True, stats, flood, hashed))
        answer = right_password(web_port, args)
    finally:
        for server, _ in servers:
            stop_server(server)
    return rows, answer


HEADER = (f"{'server':<10} {'flood':<5} {'callbacks/s':>11} {'p50 ms':>7} {'p90 ms':>7} {'p99 ms':>7} "
          f"{'max ms':>7} {'non-2xx':>7} {'errors':>6} {'logins':>7} {'logins/s':>8} {'login p50 ms':>12}"
          f" {'hashed':>6}  login answers")


def format_row(row: Row) -> str:
    s = row.stats
    secs = s["duration_us"] / 1e6
    errors = sum(v for k, v in s.items() if k.startswith("errors_"))
    text = (f"{row.variant:<10} {'yes' if row.flooded else 'no':<5} {s['ok'] / secs:>11.1f} "
            f"{s['p50_us'] / 1e3:>7.1f} {s['p90_us'] / 1e3:>7.1f} {s['p99_us'] / 1e3:>7.1f} "
            f"{s['max_us'] / 1e3:>7.1f} {s['non2xx']:>7} {errors:>6}")
    if row.flood:
        f = row.flood
        p50 = sorted(f.latencies_ms)[len(f.latencies_ms) // 2] if f.latencies_ms else float("nan")
        text += (f" {f.tries:>7} {f.tries / f.seconds:>8.1f} {p50:>12.1f} {row.hashed:>6}"
                 f"  {f.summary()}")
    return text


def main() -> int:
    args = arguments()
    if not shutil.which("wrk"):
        sys.exit("wrk is missing: apt-get install wrk")
    base_env = {**ingest.project_env(argparse.Namespace(database_url=args.database_url, env=[])),
                "SECRET_KEY": "bench-login-" + "x" * 40}
    ingest.recreate_database(args.database_url)
    subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v0"], cwd=ROOT,
                   env=base_env, check=True, timeout=300)
    subprocess.run([sys.executable, "manage.py", "shell", "-c",
                    "from django.contrib.auth.models import User; "
                    f"User.objects.create_superuser({USERNAME!r}, password={PASSWORD!r})"],
                   cwd=ROOT, env=base_env, check=True, timeout=120)
    with psycopg.connect(args.database_url, autocommit=True) as db:
        postgres = db.execute("SHOW server_version").fetchone()[0]
    print(f"bench/login {datetime.now(UTC):%Y-%m-%d %H:%M} UTC: {ingest.machine()}, PostgreSQL {postgres}")
    print(f"gunicorn as `make run`: {args.workers} sync workers (axes+pool: those for /data/ and "
          f"{args.web_workers} more for the rest), gunicorn.conf.py, access log on, "
          f"PBKDF2 (Django's default hasher); wrk: 1 thread, {args.connections} connections, "
          f"{args.duration} s per run; flood: {args.clients} clients POSTing wrong passwords for "
          f"{USERNAME!r} to {args.login_path}, each waiting for its answer", flush=True)
    print(HEADER, flush=True)
    rows, right = [], {}
    for index, (name, (module, split)) in enumerate(VARIANTS.items()):
        if args.only and name not in args.only:
            continue
        env = {**base_env, "DJANGO_SETTINGS_MODULE": module}
        variant_rows, right[name] = bench_variant(args, name, env, split, first_run=2 * index)
        for row in variant_rows:
            print(format_row(row), flush=True)
        rows += variant_rows

    print(f"\nload average at the end: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    for name, status in right.items():
        meaning = {302: "logged in", 429: "refused: locked out", 200: "refused"}.get(status, "?")
        failures = next(r.flood.tries for r in rows if r.variant == name and r.flood)
        print(f"{name}: the right password after {failures} wrong ones from the same address: "
              f"{status} ({meaning})")
    checks = []
    by_key = {(r.variant, r.flooded): r for r in rows}
    for name in ("axes", "axes+pool"):
        if (name, True) not in by_key:
            continue
        flooded = by_key[(name, True)]
        p99_ms = flooded.stats["p99_us"] / 1e3
        errors = sum(v for k, v in flooded.stats.items() if k.startswith("errors_"))
        checks += [
            (f"{name}: callbacks p99 during the flood < {args.limit_ms:.0f} ms", p99_ms < args.limit_ms,
             f"{p99_ms:.1f} ms"),
            (f"{name}: no callback refused or timed out during the flood",
             flooded.stats["non2xx"] == 0 and errors == 0, ""),
            (f"{name}: the flood was locked out (429) and hashed at most a few passwords",
             flooded.flood.answers.get(429, 0) > 0 and flooded.hashed <= 5 + args.clients,
             f"{flooded.hashed} hashed of {flooded.flood.tries} tries"),
            (f"{name}: the right password is refused after the flood", right.get(name) == 429, ""),
            (f"{name}: no login answered 5xx or failed",
             all(isinstance(k, int) and k < 500 for k in flooded.flood.answers), flooded.flood.summary()),
        ]
    print()
    for name, ok, detail in checks:
        print(f"{'PASS' if ok else 'FAIL'}  {name}" + (f": {detail}" if detail else ""))
    return 0 if all(ok for _, ok, _ in checks) else 1


if __name__ == "__main__":
    sys.exit(main())
