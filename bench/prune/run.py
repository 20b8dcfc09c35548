"""bench/prune: `manage.py prunereadings` deleting a million old readings while callbacks arrive.

A fresh PostgreSQL database gets 1,000,000 readings older than 400 days
(and their messages) plus recent ones that must survive; gunicorn serves the
project as in bench/ingest and wrk sends it distinct tutorial callbacks
(bench/ingest/callbacks.lua): once with no prune (baseline), once while
`prunereadings --older-than 365` runs (wrk stops when the prune ends), once
while VACUUM cleans up after it (what autovacuum would do), once more after
that. It prints the callbacks' latency in each phase, the prune's time and
CPU, and checks that every 2xx was stored, the old readings are gone and the
recent ones are still there.

Run it with bench/prune/run.sh (see bench/README.md); `--help` lists the knobs.
"""

from __future__ import annotations

import argparse
import importlib.util
import itertools
import os
import signal
import statistics
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parents[2]
INGEST = ROOT / "bench" / "ingest"
sys.path.insert(0, str(INGEST))  # bench/ingest/run.py imports reference.py beside it
_spec = importlib.util.spec_from_file_location("bench_ingest_run", INGEST / "run.py")
ingest = sys.modules[_spec.name] = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(ingest)

DAY = 86_400
WARMUP, BEFORE, DURING, VACUUM, AFTER = 15, 0, 1, 2, 3  # callbacks.lua RUNs: each phase its own devices


def arguments() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--database-url", default="postgres://root@127.0.0.1:5432/sigfoxsite_prune_bench",
                   help="database to create afresh (it is dropped first!)")
    p.add_argument("--old", type=int, default=1_000_000, help="old readings to prune (default 1,000,000)")
    p.add_argument("--recent", type=int, default=100_000, help="recent readings that must survive")
    p.add_argument("--devices", type=int, default=100, help="devices holding them (default 100)")
    p.add_argument("--older-than", type=int, default=365, help="prunereadings --older-than DAYS")
    p.add_argument("--batch-size", type=int, help="prunereadings --batch-size (default: its own)")
    p.add_argument("--connections", type=int, default=16, help="wrk connections (default 16)")
    p.add_argument("--baseline", type=int, default=15, help="seconds of each baseline run")
    p.add_argument("--limit-ms", type=float, default=1000, help="latency limit during the prune")
    p.add_argument("--workers", type=int, default=4, help="gunicorn sync workers (default 4)")
    p.add_argument("--no-vacuum", dest="vacuum", action="store_false",
                   help="skip the VACUUM of the pruned tables under load (what autovacuum would do)")
    p.add_argument("--env", action="append", default=[], metavar="NAME=VALUE",
                   help="extra environment for the server and the prune (repeatable)")
    args = p.parse_args()
    args.worker_class, args.threads = "sync", 1  # what bench/ingest's helpers expect
    return args


def load(url: str, *, devices: int, old: int, recent: int, now: int) -> str:
    """Old readings every 10 min per device ending 400 days ago, recent ones ending now.

    Device ids 10000001 and up: callbacks.lua's own devices stay below 1000000 (hex)."""
    old_per, recent_per = old // devices, recent // devices
    with psycopg.connect(url, autocommit=True) as db:
        db.execute("SET synchronous_commit = off")
        db.execute("""INSERT INTO readings_device (sigfox_id, name, first_seen, last_seen, payload_config,
                          payload_config_notice, downlink_data, downlink_mode)
                      SELECT upper(to_hex(268435456 + i)), 'prune bench ' || i,
                             to_timestamp(%s), to_timestamp(%s), '', '', '', 'once'
                      FROM generate_series(1, %s) i""",
                   [now - 400 * DAY - (old_per - 1) * 600, now - 60, devices])
        # One tutorial callback per message, in arrival order (as the table fills up).
        db.execute("""INSERT INTO readings_message (device_id, time, sensor, body_raw, content_type,
                          received_at, data, station, lqi, operator_name, country_code,
                          downlink_data)
                      SELECT d.id, to_timestamp(s.t), '1',
                             '{"device":"' || d.sigfox_id || '","time":"' || s.t || '","temp":21}',
                             'application/json', to_timestamp(s.t + 2),
                             '', '', '', '', '', ''
                      FROM readings_device d, LATERAL (
                          SELECT %(old_end)s - k * 600 AS t FROM generate_series(0, %(old_per)s - 1) k
                          UNION ALL
                          SELECT %(now)s - 60 - k * 600 FROM generate_series(0, %(recent_per)s - 1) k) s
                      WHERE d.name LIKE 'prune bench %%'
                      ORDER BY s.t, d.id""",
                   {"old_end": now - 400 * DAY, "old_per": old_per, "now": now, "recent_per": recent_per})
        db.execute("""INSERT INTO readings_reading (message_id, device_id, sensor, quantity, value, time, decoded)
                      SELECT id, device_id, '1', 'temp', round((15 + 10 * random())::numeric, 2), time, false
                      FROM readings_message ORDER BY id""")
        # What ingest registers with a series' first reading.
        db.execute("""INSERT INTO readings_series (device_id, sensor, quantity, created_at)
                      SELECT id, '1', 'temp', now() FROM readings_device ON CONFLICT DO NOTHING""")
        db.execute("""INSERT INTO readings_quantity (name, created_at) VALUES ('temp', now())
                      ON CONFLICT DO NOTHING""")
        db.execute("VACUUM ANALYZE")
        return db.execute("SELECT pg_size_pretty(pg_database_size(current_database()))").fetchone()[0]


def wrk(port: int, connections: int, run: int, seconds: int, stop: threading.Event | None = None) -> dict:
    """One wrk run of callbacks.lua; with `stop`, ended by SIGINT (wrk then reports as usual)."""
    command = ["wrk", "-t1", "-c", str(connections), "-d", f"{seconds}s", "--timeout", "10s",
               "-s", str(INGEST / "callbacks.lua"), f"http://127.0.0.1:{port}/data/1", "--", str(run), "1000"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if stop is not None:
        stop.wait(seconds)
        process.send_signal(signal.SIGINT)
    output = process.communicate(timeout=seconds + 30)[0]
    line = next((x for x in output.splitlines() if x.startswith("RESULT ")), None)
    if line is None:
        sys.exit(f"wrk printed no RESULT line:\n{output}")
    stats = {k: int(v) for k, v in (pair.split("=") for pair in line.split()[1:])}
    stats["errors"] = sum(stats[k] for k in stats if k.startswith("errors_"))
    return stats


def stored(url: str, port: int, run: int) -> tuple[int, int]:
    """(messages, readings) of the devices of one wrk run, once the server is idle (as count_rows)."""
    base = run * 16 * 65536  # callbacks.lua: thread 0's devices
    query = """SELECT count(DISTINCT m.id), count(r.id) FROM readings_device d
               JOIN readings_message m ON m.device_id = d.id LEFT JOIN readings_reading r ON r.message_id = m.id
               WHERE d.sigfox_id IN (SELECT upper(to_hex(%s + i)) FROM generate_series(0, 999) i)"""
    counts = []
    with psycopg.connect(url, autocommit=True) as db:
        for _ in range(240):
            counts.append(db.execute(query, [base]).fetchone())
            if len(counts) >= 3 and counts[-1] == counts[-2] == counts[-3] and not ingest.accept_queue(port):
                return counts[-1]
            time.sleep(0.5)
    sys.exit("the callbacks were still being stored 2 minutes after wrk stopped")


def prune(args, env: dict) -> dict:
    """Run prunereadings -v2, timing it and each batch (one progress line on stderr per batch),
    with the CPU of its Python process and of its PostgreSQL backend (found by application_name)."""
    command = [sys.executable, "manage.py", "prunereadings", "--older-than", str(args.older_than), "-v", "2"]
    command += ["--batch-size", str(args.batch_size)] if args.batch_size else []
    named = args.database_url + ("&" if "?" in args.database_url else "?") + "application_name=prunereadings"
    env = {**env, "PYTHONUNBUFFERED": "1", "DATABASE_URL": named}
    backend_cpu, done = [0.0], threading.Event()

    def sample() -> None:
        with psycopg.connect(args.database_url, autocommit=True) as db:
            while not done.wait(0.5):
                for (pid,) in db.execute("SELECT pid FROM pg_stat_activity WHERE application_name = 'prunereadings'"):
                    backend_cpu[0] = max(backend_cpu[0], ingest.process_cpu_s(pid))

    sampler = threading.Thread(target=sample)
    sampler.start()
    started = time.monotonic()
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    marks, other = [], []
    for line in process.stderr:
        (marks if "deleted so far" in line else other).append((time.monotonic(), line.strip()))
    summary = process.stdout.read().strip()
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = code = os.waitstatus_to_exitcode(status)
    wall = time.monotonic() - started
    done.set()
    sampler.join()
    gaps = [b[0] - a[0] for a, b in itertools.pairwise(marks)]
    return {"wall": wall, "code": code, "summary": summary, "batches": len(marks),
            "python_cpu": usage.ru_utime + usage.ru_stime, "backend_cpu": backend_cpu[0],
            "first": marks[0][0] - started if marks else float("nan"),
            "median": statistics.median(gaps) if gaps else float("nan"), "max": max(gaps, default=float("nan")),
            "errors": "\n".join(line for _, line in other)}


def vacuum(url: str) -> float:
    """What autovacuum (off on some servers) does after a large prune: VACUUM the two tables."""
    started = time.monotonic()
    with psycopg.connect(url, autocommit=True) as db:
        db.execute("VACUUM (ANALYZE) readings_reading, readings_message")
    return time.monotonic() - started


def under_load(port: int, args, run: int, action) -> tuple:
    """(wrk's stats, rows stored, what action() returned): wrk runs from a second before
    action() until it returns, then stops on SIGINT (and reports as usual)."""
    stop, holder = threading.Event(), {}
    load = threading.Thread(target=lambda: holder.update(s=wrk(port, args.connections, run, 3600, stop)))
    load.start()
    time.sleep(1)
    try:
        outcome = action()
    finally:
        stop.set()
        load.join()
    return holder["s"], stored(args.database_url, port, run), outcome


def row(name: str, s: dict, messages: int) -> str:
    secs = s["duration_us"] / 1e6
    note = "= 2xx" if messages == s["ok"] else f"= 2xx + {messages - s['ok']} in flight at the stop"
    return (f"{name:<16} {secs:>6.1f} {s['ok'] / secs:>11.1f} {s['p50_us'] / 1e3:>7.1f} {s['p90_us'] / 1e3:>7.1f} "
            f"{s['p99_us'] / 1e3:>7.1f} {s['max_us'] / 1e3:>7.1f} {s['non2xx']:>7} {s['errors']:>6}  {messages} {note}")


def main() -> int:
    args = arguments()
    env = ingest.project_env(args)
    now, started = int(time.time()), time.monotonic()
    ingest.recreate_database(args.database_url)
    subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v0"], cwd=ROOT, env=env, check=True)
    size = load(args.database_url, devices=args.devices, old=args.old, recent=args.recent, now=now)
    with psycopg.connect(args.database_url, autocommit=True) as db:
        postgres, autovacuum = db.execute("SELECT version(), current_setting('autovacuum')").fetchone()
    print(f"bench/prune {datetime.now(UTC):%Y-%m-%d %H:%M} UTC: {ingest.machine()}, {postgres.split(' on ')[0]}, "
          f"autovacuum {autovacuum}")
    print(f"data: {args.old:,} readings older than 400 days and {args.recent:,} of the last "
          f"{args.recent // args.devices * 600 / DAY:.1f} days, {args.devices} devices, one message each; "
          f"database {size}, created in {time.monotonic() - started:.0f} s")
    print(f"gunicorn: {args.workers} sync workers; wrk: 1 thread, {args.connections} connections, "
          f"callbacks.lua; prune: prunereadings --older-than {args.older_than}"
          + (f" --batch-size {args.batch_size}" if args.batch_size else ""), flush=True)

    port = ingest.free_port()
    ingest.OUT.mkdir(parents=True, exist_ok=True)
    log_path = ingest.OUT / "gunicorn-prune.log"
    with log_path.open("wb") as log:
        server = subprocess.Popen(ingest.gunicorn_command(args, ingest.SERVERS["project"], port), env=env,
                                  stdout=log, stderr=subprocess.STDOUT)
    results, vacuumed = {}, None
    try:
        ingest.wait_until_listening(port, server, log_path)
        wrk(port, args.connections, WARMUP, 2)
        stored(args.database_url, port, WARMUP)
        results[BEFORE] = wrk(port, args.connections, BEFORE, args.baseline), stored(args.database_url, port, BEFORE)
        stats, rows, pruned = under_load(port, args, DURING, lambda: prune(args, env))
        results[DURING] = stats, rows
        if args.vacuum:
            stats, rows, vacuumed = under_load(port, args, VACUUM, lambda: vacuum(args.database_url))
            results[VACUUM] = stats, rows
        results[AFTER] = wrk(port, args.connections, AFTER, args.baseline), stored(args.database_url, port, AFTER)
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)

    print(f"load average at the end: {' '.join(f'{x:.1f}' for x in os.getloadavg())}\n")
    print(f"{'phase':<16} {'secs':>6} {'callbacks/s':>11} {'p50 ms':>7} {'p90 ms':>7} {'p99 ms':>7} "
          f"{'max ms':>7} {'non-2xx':>7} {'errors':>6}  stored messages")
    names = {BEFORE: "baseline before", DURING: "during the prune", VACUUM: "during VACUUM", AFTER: "baseline after"}
    for run in (BEFORE, DURING, VACUUM, AFTER):
        if run in results:
            print(row(names[run], results[run][0], results[run][1][0]))
    print(f"\nprune: {pruned['wall']:.1f} s wall (exit {pruned['code']}): {pruned['summary']}")
    print(f"  CPU: {pruned['python_cpu']:.1f} s in its Python process, {pruned['backend_cpu']:.1f} s in its "
          f"PostgreSQL backend")
    print(f"  {pruned['batches']} batches, {args.old / max(pruned['batches'], 1):,.0f} readings each; "
          f"first one done {pruned['first']:.1f} s after the start (Django start-up and the series query); "
          f"then one every {pruned['median'] * 1e3:.0f} ms (median), slowest {pruned['max'] * 1e3:.0f} ms")
    if pruned["errors"]:
        print("  prune stderr:\n" + pruned["errors"])

    cutoff = now - args.older_than * DAY
    with psycopg.connect(args.database_url, autocommit=True) as db:
        old_left, recent_left, old_messages, orphans = db.execute(
            """SELECT (SELECT count(*) FROM readings_reading WHERE time < to_timestamp(%(c)s)),
                      (SELECT count(*) FROM readings_reading r JOIN readings_device d ON d.id = r.device_id
                        WHERE d.name LIKE 'prune bench %%' AND r.time >= to_timestamp(%(c)s)),
                      (SELECT count(*) FROM readings_message WHERE time < to_timestamp(%(c)s)),
                      (SELECT count(*) FROM readings_message m
                        WHERE NOT EXISTS (SELECT 1 FROM readings_reading r WHERE r.message_id = m.id))""",
            {"c": cutoff}).fetchone()
        dead, size = db.execute(
            """SELECT string_agg(relname || ' ' || n_live_tup || ' live, ' || n_dead_tup || ' dead', '; '),
                      pg_size_pretty(pg_database_size(current_database()))
               FROM pg_stat_user_tables WHERE relname IN ('readings_reading', 'readings_message')""").fetchone()
    if vacuumed is not None:
        print(f"VACUUM (ANALYZE) of readings_reading and readings_message: {vacuumed:.1f} s")
    print(f"after: {old_left} readings and {old_messages} messages older than the cutoff, "
          f"{recent_left:,} of the {args.recent:,} recent readings, {orphans} messages without readings; "
          f"{dead}; database {size}")

    during, base = results[DURING][0], results[BEFORE][0]
    checks = [
        (f"max latency during the prune < {args.limit_ms:.0f} ms", during["max_us"] / 1e3 < args.limit_ms,
         f"{during['max_us'] / 1e3:.1f} ms (baseline {base['max_us'] / 1e3:.1f})"),
        (f"p99 during the prune < {args.limit_ms:.0f} ms", during["p99_us"] / 1e3 < args.limit_ms,
         f"{during['p99_us'] / 1e3:.1f} ms, {during['p99_us'] / base['p99_us']:.2f}x the baseline's"),
    ]
    if VACUUM in results:
        s = results[VACUUM][0]
        checks.append((f"max latency during the VACUUM after it < {args.limit_ms:.0f} ms",
                       s["max_us"] / 1e3 < args.limit_ms, f"{s['max_us'] / 1e3:.1f} ms, p99 {s['p99_us'] / 1e3:.1f}"))
    checks += [
        ("no non-2xx answers or socket errors", not any(s["non2xx"] + s["errors"] for s, _ in results.values()), ""),
        ("every 2xx answer stored (one reading per message)",
         all(s["ok"] <= m <= s["sent"] - s["non2xx"] and m == r for s, (m, r) in results.values()), ""),
        ("prune succeeded, every old reading and message gone, none orphaned",
         pruned["code"] == 0 and old_left == old_messages == orphans == 0
         and f"Deleted {args.old // args.devices * args.devices} readings" in pruned["summary"], ""),
        ("every recent reading survived", recent_left == args.recent // args.devices * args.devices, ""),
    ]
    print()
    for name, ok, detail in checks:
        print(f"{'PASS' if ok else 'FAIL'}  {name}" + (f": {detail}" if detail else ""))
    return 0 if all(ok for _, ok, _ in checks) else 1


if __name__ == "__main__":
    sys.exit(main())
