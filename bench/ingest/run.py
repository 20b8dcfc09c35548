"""bench/ingest: how many tutorial callbacks a second the project stores, against a reference.

Both servers run under the same gunicorn settings on the same fresh
PostgreSQL database, one after the other, and wrk (callbacks.lua) sends each
of them distinct callbacks at every concurrency asked for. After each run the
rows stored are compared with the 2xx answers wrk counted: a 2xx must mean
"stored", so fewer rows than 2xx answers is a lost message and fails the run.

Run it with bench/ingest/run.sh (see bench/README.md); `--help` lists the knobs.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import psycopg

import reference  # beside this file

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
OUT = ROOT / "bench" / "out"
WARMUP_RUN = 15  # callbacks.lua's RUN for the warm-up, apart from the measured runs


@dataclass
class Server:
    name: str
    wsgi_app: str
    chdir: Path
    table: str  # one row per stored callback


SERVERS = {
    "project": Server("project", "sigfoxsite.wsgi:application", ROOT, "readings_message"),
    "reference": Server("reference", "reference:application", HERE, "reference_callback"),
}


@dataclass
class Result:
    server: str
    connections: int
    seconds: float
    ok: int
    non2xx: int
    sent: int
    errors: int
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    stored: int
    cpu_s: float  # gunicorn and PostgreSQL backends, during the run

    @property
    def cpu_ms_per_callback(self) -> float:
        return self.cpu_s * 1000 / self.ok if self.ok else float("nan")

    @property
    def rate(self) -> float:
        return self.ok / self.seconds

    @property
    def unanswered(self) -> int:
        """Requests wrk wrote but got no answer to: in flight when the run stopped."""
        return max(0, self.sent - self.ok - self.non2xx)

    def check(self) -> str | None:
        """What is wrong with the rows stored, or None."""
        if self.stored < self.ok:
            return f"{self.ok - self.stored} callbacks answered 2xx were not stored"
        # In-flight requests may have been stored after wrk stopped reading.
        if self.stored > self.ok + self.unanswered:
            return f"{self.stored - self.ok - self.unanswered} rows stored that no request explains"
        return None


def arguments() -> argparse.Namespace:
    env = os.environ.get
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=int, default=int(env("BENCH_DURATION", "15")),
                        help="seconds per measured run (default 15, env BENCH_DURATION)")
    parser.add_argument("--connections", default=env("BENCH_CONNECTIONS", "16,64"),
                        help="comma-separated wrk connection counts (default 16,64)")
    parser.add_argument("--workers", type=int, default=int(env("BENCH_WORKERS", "4")),
                        help="gunicorn worker processes for both servers (default 4)")
    parser.add_argument("--worker-class", default=env("BENCH_WORKER_CLASS", "sync"),
                        help="gunicorn worker class for both servers (default sync)")
    parser.add_argument("--threads", type=int, default=int(env("BENCH_THREADS", "1")),
                        help="gunicorn threads per worker (gthread; default 1)")
    parser.add_argument("--wrk-threads", type=int, default=1,
                        help="wrk threads (default 1: one core's worth of the load generator "
                             "is plenty and leaves the rest to the servers)")
    parser.add_argument("--devices", type=int, default=1000,
                        help="devices per wrk thread (default 1000)")
    parser.add_argument("--warmup", type=int, default=2, help="seconds of unmeasured warm-up")
    parser.add_argument("--database-url",
                        default=env("BENCH_DATABASE_URL", "postgres://root@127.0.0.1:5432/sigfoxsite_bench"),
                        help="database to create afresh (it is dropped first!)")
    parser.add_argument("--only", choices=sorted(SERVERS), help="benchmark one server only")
    parser.add_argument("--path", default="/data/1",
                        help="the project's callback path (default /data/1), to measure a variant")
    parser.add_argument("--profile", action="store_true",
                        help="record the project's workers with py-spy during its runs "
                             "(bench/out/profile-*.txt, needs `pip install py-spy`)")
    parser.add_argument("--env", action="append", default=[], metavar="NAME=VALUE",
                        help="extra environment for the project server (repeatable), e.g. "
                             "CONN_MAX_AGE=0 to measure a setting")
    return parser.parse_args()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def recreate_database(url: str) -> None:
    base, _, name = url.rpartition("/")
    if not re.fullmatch(r"[a-z_][a-z0-9_]*", name):
        sys.exit(f"database name {name!r}: use lower-case letters, digits and _")
    with psycopg.connect(f"{base}/postgres", autocommit=True) as db:
        db.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        db.execute(f"CREATE DATABASE {name}")


def project_env(args) -> dict[str, str]:
    env = {
        **{k: v for k, v in os.environ.items() if k in {"PATH", "HOME", "LANG", "LC_ALL"}},
        "SIGFOXSITE_READ_DOT_ENV": "false",
        "SECRET_KEY": "bench-ingest-" + "x" * 40,
        "DATABASE_URL": args.database_url,
        "DEBUG": "false",
        # wrk speaks plain HTTP to 127.0.0.1; production sits behind TLS.
        "SECURE_SSL_REDIRECT": "false",
        "SECURE_COOKIES": "false",
        "SECURE_HSTS_SECONDS": "0",
    }
    for assignment in args.env:
        name, _, value = assignment.partition("=")
        env[name] = value
    return env


def gunicorn_command(args, server: Server, port: int) -> list[str]:
    return [
        str(Path(sys.executable).with_name("gunicorn")), server.wsgi_app,
        "--chdir", str(server.chdir),
        "--bind", f"127.0.0.1:{port}",
        "--workers", str(args.workers),
        "--worker-class", args.worker_class,
        "--threads", str(args.threads),
        # Default backlog (2048) holds every wrk connection; no access log:
        # it is the application that is measured.
        "--log-level", "warning",
    ]


def wait_until_listening(port: int, process: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + 30
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                sys.exit(f"gunicorn did not start:\n{log.read_text()[-3000:]}")
            time.sleep(0.2)


def accept_queue(port: int) -> int:
    """Connections waiting in the listen backlog of 127.0.0.1:port (Linux /proc/net/tcp)."""
    local = f"0100007F:{port:04X}"
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if fields[1] == local and fields[3] == "0A":  # LISTEN: rx_queue is the backlog
            return int(fields[4].split(":")[1], 16)
    return 0


def count_rows(url: str, table: str, port: int) -> int:
    """Rows once the server is idle.

    wrk stops with requests in flight, and the listen backlog still holds
    connections it opened: gunicorn serves those after wrk has gone, and they
    commit. Wait until the backlog is empty and the count has stood still
    for a second, so that each run is charged with its own rows.
    """
    deadline = time.monotonic() + 120
    with psycopg.connect(url, autocommit=True) as db:
        counts: list[int] = []
        while time.monotonic() < deadline:
            counts.append(db.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])
            if len(counts) >= 3 and counts[-1] == counts[-2] == counts[-3] and not accept_queue(port):
                return counts[-1]
            time.sleep(0.5)
    sys.exit(f"{table} was still growing 2 minutes after the run")


def process_cpu_s(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:  # gone
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def server_cpu_s(master_pid: int, url: str) -> float:
    """CPU time used so far by gunicorn (master and workers) and by the
    PostgreSQL backends serving the bench database. Unlike callbacks/s, it
    hardly moves when other programs load the machine, so it compares
    variants fairly on a busy machine. Backends that exited are not counted."""
    pids = {master_pid}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == master_pid:
                pids.add(int(stat.parent.name))
        except (OSError, ValueError):
            pass
    name = url.rpartition("/")[2]
    with psycopg.connect(url, autocommit=True) as db:
        pids.update(pid for (pid,) in db.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()", (name,)))
    return sum(process_cpu_s(pid) for pid in pids)


def run_wrk(args, port: int, path: str, connections: int, seconds: int, run: int) -> dict[str, int]:
    command = [
        "wrk", "-t", str(args.wrk_threads), "-c", str(connections), "-d", f"{seconds}s",
        "--timeout", "10s", "-s", str(HERE / "callbacks.lua"),
        f"http://127.0.0.1:{port}{path}", "--", str(run), str(args.devices),
    ]
    output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    line = next((line for line in output.splitlines() if line.startswith("RESULT ")), None)
    if line is None:
        sys.exit(f"wrk printed no RESULT line:\n{output}")
    return {key: int(value) for key, value in (pair.split("=") for pair in line.split()[1:])}


def start_profiler(pid: int, seconds: int, path: Path) -> subprocess.Popen | None:
    py_spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if not Path(py_spy).exists() and not shutil.which("py-spy"):
        sys.exit("--profile needs py-spy: .venv/bin/pip install py-spy")
    return subprocess.Popen(
        [py_spy, "record", "--pid", str(pid), "--subprocesses", "--nonblocking", "--rate", "250",
         "--duration", str(seconds), "--format", "raw", "--output", str(path)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )


def profile_summary(path: Path, top: int = 25) -> str:
    """Share of the samples per function (inclusive), from py-spy's collapsed stacks,
    leaving out the call chain that every request goes through (gunicorn, Django's handler)."""
    inclusive: Counter[str] = Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        total += int(count)
        # "function (module.py:line)" -> "function (module.py)": merge lines.
        frames = [f for f in stack.split(";") if not f.startswith(("process ", "thread "))]
        for frame in {re.sub(r":\d+\)$", ")", frame) for frame in frames}:
            inclusive[frame] += int(count)
    if not total:
        return "no samples"
    shares = [(n / total, frame) for frame, n in inclusive.most_common() if n / total < 0.85]
    lines = [f"{share:6.1%}  {frame}" for share, frame in shares[:top]]
    return f"{total} samples; share of the samples in each function (inclusive):\n" + "\n".join(lines)


def bench_server(args, server: Server, connections_list: list[int], results: list[Result]) -> None:
    port = free_port()
    path = args.path if server.name == "project" else "/"
    OUT.mkdir(parents=True, exist_ok=True)
    log_path = OUT / f"gunicorn-{server.name}.log"
    env = project_env(args) if server.name == "project" else {
        **{k: v for k, v in os.environ.items() if k in {"PATH", "HOME", "LANG"}},
        "DATABASE_URL": args.database_url,
    }
    with log_path.open("wb") as log:
        process = subprocess.Popen(gunicorn_command(args, server, port), env=env, stdout=log,
                                   stderr=subprocess.STDOUT)
    try:
        wait_until_listening(port, process, log_path)
        # Warm-up: every worker imports, connects and fills its caches.
        run_wrk(args, port, path, max(connections_list), args.warmup, WARMUP_RUN)
        for run, connections in enumerate(connections_list):
            before = count_rows(args.database_url, server.table, port)
            cpu_before = server_cpu_s(process.pid, args.database_url)
            profiler = None
            if args.profile and server.name == "project":
                profile_path = OUT / f"profile-project-c{connections}.txt"
                profiler = start_profiler(process.pid, args.duration, profile_path)
            stats = run_wrk(args, port, path, connections, args.duration, run)
            stored = count_rows(args.database_url, server.table, port) - before
            cpu_s = server_cpu_s(process.pid, args.database_url) - cpu_before
            if profiler is not None:
                profiler.wait(timeout=60)
                print(f"\nprofile of the project at {connections} connections "
                      f"({profile_path.relative_to(ROOT)}): {profile_summary(profile_path)}\n")
            results.append(Result(
                server=server.name, connections=connections, seconds=stats["duration_us"] / 1e6,
                ok=stats["ok"], non2xx=stats["non2xx"], sent=stats["sent"],
                errors=stats["errors_connect"] + stats["errors_read"] + stats["errors_write"]
                + stats["errors_timeout"],
                p50_ms=stats["p50_us"] / 1000, p90_ms=stats["p90_us"] / 1000,
                p99_ms=stats["p99_us"] / 1000, max_ms=stats["max_us"] / 1000, stored=stored,
                cpu_s=cpu_s,
            ))
            print(format_result(results[-1]), flush=True)
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()


HEADER = (f"{'server':<10} {'conns':>5} {'callbacks/s':>11} {'p50 ms':>7} {'p90 ms':>7} "
          f"{'p99 ms':>7} {'max ms':>7} {'non-2xx':>7} {'errors':>6} {'cpu ms/cb':>9}  stored rows")


def format_result(r: Result) -> str:
    stored = f"{r.stored} = 2xx" if r.stored == r.ok else (
        f"{r.stored} = 2xx + {r.stored - r.ok} of {r.unanswered} in flight at the stop")
    return (f"{r.server:<10} {r.connections:>5} {r.rate:>11.1f} {r.p50_ms:>7.1f} {r.p90_ms:>7.1f} "
            f"{r.p99_ms:>7.1f} {r.max_ms:>7.1f} {r.non2xx:>7} {r.errors:>6} "
            f"{r.cpu_ms_per_callback:>9.2f}  {stored}")


def machine() -> str:
    cpu = platform.processor() or "cpu"
    try:
        names = re.findall(r"^model name\s*:\s*(.+)$", Path("/proc/cpuinfo").read_text(), re.M)
        cpu = names[0] if names else cpu
    except OSError:
        pass
    load = " ".join(f"{x:.1f}" for x in os.getloadavg())
    return f"{os.cpu_count()} cores ({cpu}, load average {load}), Python {platform.python_version()}"


def main() -> int:
    args = arguments()
    if not shutil.which("wrk"):
        sys.exit("wrk is missing: apt-get install wrk")
    connections_list = [int(n) for n in args.connections.split(",")]
    recreate_database(args.database_url)
    subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v0"], cwd=ROOT,
                   env=project_env(args), check=True)
    with psycopg.connect(args.database_url, autocommit=True) as db:
        db.execute(reference.TABLE)
        postgres = db.execute("SHOW server_version").fetchone()[0]

    print(f"bench/ingest {datetime.now(UTC):%Y-%m-%d %H:%M} UTC: {machine()}, PostgreSQL {postgres}")
    print(f"gunicorn: {args.workers} workers, class {args.worker_class}, {args.threads} thread(s) "
          f"each, for both servers; wrk: {args.wrk_threads} thread(s), {args.duration} s per run, "
          f"{args.devices} devices per wrk thread" + (f"; project env {' '.join(args.env)}" if args.env else ""))
    print(HEADER, flush=True)
    results: list[Result] = []
    for name in ([args.only] if args.only else ["project", "reference"]):
        bench_server(args, SERVERS[name], connections_list, results)

    by_key = {(r.server, r.connections): r for r in results}
    print()
    for connections in connections_list:
        ours, yardstick = by_key.get(("project", connections)), by_key.get(("reference", connections))
        if ours and yardstick:
            print(f"project/reference at {connections:>2} connections: "
                  f"{ours.rate / yardstick.rate:.2f} of the callbacks/s, "
                  f"p99 {ours.p99_ms / yardstick.p99_ms:.1f}x, "
                  f"server CPU per callback {ours.cpu_ms_per_callback / yardstick.cpu_ms_per_callback:.1f}x")
    failures = [f"{r.server} at {r.connections} connections: {problem}"
                for r in results if (problem := r.check())]
    failures += [f"{r.server} at {r.connections} connections: {r.non2xx} non-2xx answers"
                 for r in results if r.non2xx]
    if "project" in {r.server for r in results}:
        with psycopg.connect(args.database_url, autocommit=True) as db:
            messages, readings = db.execute(
                "SELECT (SELECT COUNT(*) FROM readings_message), (SELECT COUNT(*) FROM readings_reading)"
            ).fetchone()
        if messages != readings:  # each tutorial callback carries one value
            failures.append(f"project: {messages} messages but {readings} readings")
    if failures:
        print("\nFAILED:\n  " + "\n  ".join(failures))
        return 1
    print("Every 2xx answer was stored, by both servers.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
