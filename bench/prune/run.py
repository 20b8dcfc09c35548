"""bench/prune: retention on a time-partitioned database while callbacks arrive at a steady rate.

A fresh PostgreSQL database, its readings and messages partitioned by month
(storage.partitions), gets 1,000,000 readings (and their messages) in one
month thirteen months ago and a share of readings in every month since;
gunicorn serves the project as in bench/ingest and bench/prune/steady.py
posts distinct tutorial callbacks to it at a steady rate all along. The
rollups are brought up to date after the load (retention deletes only
readings they have taken in, as the worker's pass runs them first). Then:

1. baseline: callbacks alone;
2. partition drop: storage.partitions.partition_range_drop of that month
   (both tables, with the messages' children), timed; afterwards the dead
   rows (pg_stat_user_tables.n_dead_tup) of the partitions that remain;
3. batch deletes: a shorter raw retention on some devices
   (Device.raw_retention_days), applied by storage.retention.retention_apply
   (the worker's policy run): their older readings and messages deleted in
   batches, each its own transaction, from partitions the other devices keep;
4. after: callbacks alone again.

It prints the callbacks' latency in each window, the drop's and the
batches' times, and checks the targets: the month gone in under 5 s with no
dead rows left, callbacks' p99 under 100 ms during the drop and the batches,
every 2xx stored, exactly the rows past the policy gone.

Run it with bench/prune/run.sh (see bench/README.md); `--help` lists the knobs.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import resource
import signal
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parents[2]
INGEST = ROOT / "bench" / "ingest"
sys.path.insert(0, str(INGEST))  # bench/ingest/run.py imports reference.py beside it
_spec = importlib.util.spec_from_file_location("bench_ingest_run", INGEST / "run.py")
ingest = sys.modules[_spec.name] = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(ingest)

DAY = 86_400
STEADY_BASE = 0xE000000  # steady.py's devices; the loaded ones are 10000001 and up


def arguments() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--database-url", default="postgres://root@127.0.0.1:5432/sigfoxsite_bench_prune",
                   help="database to create afresh (it is dropped first!)")
    p.add_argument("--month-readings", type=int, default=1_000_000,
                   help="readings in the month that is dropped (default 1,000,000)")
    p.add_argument("--monthly-readings", type=int, default=100_000,
                   help="readings in each later month, up to now (default 100,000)")
    p.add_argument("--devices", type=int, default=100, help="devices holding them (default 100)")
    p.add_argument("--short-devices", type=int, default=50,
                   help="devices given a shorter raw retention (default 50)")
    p.add_argument("--short-days", type=int, default=90,
                   help="their Device.raw_retention_days (default 90)")
    p.add_argument("--batch-size", type=int, default=2000, help="retention_apply's batch_size")
    p.add_argument("--rate", type=float, default=50, help="callbacks per second (default 50)")
    p.add_argument("--baseline", type=float, default=20, help="seconds of the windows before and after")
    p.add_argument("--warmup", type=float, default=15, help="seconds of callbacks before any measure")
    p.add_argument("--workers", type=int, default=4, help="gunicorn sync workers (default 4)")
    p.add_argument("--limit-ms", type=float, default=100, help="callbacks' p99 target (default 100 ms)")
    p.add_argument("--drop-limit-s", type=float, default=5, help="the drop's target (default 5 s)")
    p.add_argument("--env", action="append", default=[], metavar="NAME=VALUE",
                   help="extra environment for the server and the retention (repeatable)")
    args = p.parse_args()
    args.worker_class, args.threads = "sync", 1  # what bench/ingest's helpers expect
    return args


def month_start(moment: datetime, back: int = 0) -> datetime:
    start = moment.astimezone(UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    for _ in range(back):
        start = (start - timedelta(days=1)).replace(day=1)
    return start


def next_month(start: datetime) -> datetime:
    return (start.replace(day=28) + timedelta(days=4)).replace(day=1)


def load(url: str, *, devices: int, spans: list[tuple[datetime, datetime, int]]) -> None:
    """`devices` devices; for each (start, end, readings) of `spans`, that many
    messages of one `temp` reading each, spread evenly over the devices and
    the span, in arrival order (time, then device)."""
    with psycopg.connect(url, autocommit=True) as db:
        db.execute("SET synchronous_commit = off")
        db.execute("""INSERT INTO readings_device (sigfox_id, name, first_seen, last_seen, payload_config,
                          payload_config_notice, downlink_data, downlink_mode, series_refused)
                      SELECT upper(to_hex(268435456 + i)), 'prune bench ' || i,
                             %s, now(), '', '', '', 'once', 0
                      FROM generate_series(1, %s) i""", [spans[0][0], devices])
        for start, end, readings in spans:
            per_device = readings // devices
            step = (end - start).total_seconds() / per_device
            # One tutorial callback per message (its body kept, as ingest does).
            db.execute("""INSERT INTO readings_message (device_id, time, sensor, body_raw, content_type,
                              received_at, data, station, lqi, operator_name, country_code,
                              downlink_data)
                          SELECT d.id, s.t, '1',
                                 '{"device":"' || d.sigfox_id || '","time":"' || extract(epoch FROM s.t)::bigint
                                     || '","temp":21}',
                                 'application/json', s.t + interval '2 seconds',
                                 '', '', '', '', '', ''
                          FROM readings_device d, LATERAL (
                              SELECT %(start)s + (k * %(step)s + d.id %% 60) * interval '1 second' AS t
                              FROM generate_series(0, %(n)s - 1) k) s
                          WHERE d.name LIKE 'prune bench %%'
                          ORDER BY s.t, d.id""",
                       {"start": start, "step": step, "n": per_device})
            db.execute("""INSERT INTO readings_reading (message_id, device_id, sensor, quantity, value, time,
                              from_payload)
                          SELECT id, device_id, '1', 'temp', round((15 + 10 * random())::numeric, 2), time, false
                          FROM readings_message WHERE time >= %s AND time < %s ORDER BY id""", [start, end])
        # What ingest registers with a series' first reading.
        db.execute("""INSERT INTO readings_series (device_id, sensor, quantity, created_at)
                      SELECT id, '1', 'temp', now() FROM readings_device ON CONFLICT DO NOTHING""")
        db.execute("""INSERT INTO readings_quantity (name, created_at) VALUES ('temp', now())
                      ON CONFLICT DO NOTHING""")
        db.execute("VACUUM ANALYZE")
        defaults = db.execute("SELECT (SELECT count(*) FROM readings_message_default), "
                              "(SELECT count(*) FROM readings_reading_default)").fetchone()
        if any(defaults):
            sys.exit(f"rows landed in the default partitions: {defaults}")


def dead_rows(url: str) -> tuple[int, int, str]:
    """(live, dead) rows of the partitions of readings and messages, from
    pg_stat_user_tables once its counters are flushed, and the worst partitions."""
    time.sleep(1.5)  # backends flush their table counters at least every second
    with psycopg.connect(url, autocommit=True) as db:
        db.execute("SELECT pg_stat_clear_snapshot()")
        rows = db.execute("""SELECT relname, n_live_tup, n_dead_tup FROM pg_stat_user_tables
                             WHERE relname ~ '^readings_(reading|message)_' ORDER BY n_dead_tup DESC""").fetchall()
    worst = ", ".join(f"{name} {dead}" for name, _, dead in rows[:3] if dead)
    return sum(r[1] for r in rows), sum(r[2] for r in rows), worst or "none"


def latencies(path: Path) -> list[tuple[float, float, int]]:
    rows = []
    for line in path.read_text().splitlines():
        due, end, status = line.split()
        rows.append((float(due), float(end), int(status)))
    return rows


def window(rows, start: float, end: float) -> dict:
    """Callbacks due within [start, end): count, rate, latency percentiles (ms), failures."""
    inside = [r for r in rows if start <= r[0] < end]
    ms = sorted((e - d) * 1000 for d, e, _ in inside)
    if not ms:
        return {"n": 0}

    def pct(p: float) -> float:
        return ms[min(len(ms) - 1, round(p / 100 * (len(ms) - 1)))]

    return {"n": len(ms), "secs": end - start, "p50": pct(50), "p90": pct(90), "p99": pct(99), "max": ms[-1],
            "failed": sum(1 for *_, s in inside if not 200 <= s < 300)}


def row(name: str, w: dict) -> str:
    if not w.get("n"):
        return f"{name:<24} (no callbacks)"
    return (f"{name:<24} {w['secs']:>6.1f} {w['n']:>6} {w['n'] / w['secs']:>6.1f} {w['p50']:>7.1f} "
            f"{w['p90']:>7.1f} {w['p99']:>7.1f} {w['max']:>7.1f} {w['failed']:>6}")


def backend_cpu_s() -> float:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        return ingest.process_cpu_s(cursor.fetchone()[0])


def main() -> int:
    args = arguments()
    env = ingest.project_env(args)
    started = time.monotonic()
    ingest.recreate_database(args.database_url)
    subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v0"], cwd=ROOT, env=env, check=True)
    os.environ.update({**env, "DJANGO_SETTINGS_MODULE": "sigfoxsite.settings"})
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.db import connection

    from readings.models import Device, Reading
    from storage.partitions import (
        PartitionBusy,
        partition_range_drop,
        partitions_ensure,
        partitions_list,
    )
    from storage.retention import retention_apply

    now = datetime.now(UTC)
    dropped_start = month_start(now, 13)
    dropped_end = next_month(dropped_start)
    partitions_ensure(now=now, cover=(dropped_start, now))
    spans = [(dropped_start, dropped_end, args.month_readings)]
    start = dropped_end
    while start < month_start(now):
        spans.append((start, next_month(start), args.monthly_readings))
        start = next_month(start)
    spans.append((month_start(now), now - timedelta(days=2), args.monthly_readings // 30 * max(1, now.day - 2)))
    spans = [s for s in spans if s[1] > s[0] and s[2] >= args.devices]
    load(args.database_url, devices=args.devices, spans=spans)
    loaded = sum(n // args.devices * args.devices for *_, n in spans)
    # Retention deletes only readings the rollups have taken in: bring them up
    # to date first, as the worker's pass does before its retention step.
    t = time.monotonic()
    from readings.models import RollupProgress
    from readings.services.rollups import rollups_refresh

    newest = Reading.objects.order_by("-pk").values_list("pk", flat=True).first() or 0
    for _ in range(100):
        refreshed = rollups_refresh(now=datetime.now(UTC), max_readings=10_000_000)
        if refreshed.caught_up and (RollupProgress.objects.values_list("reading_id", flat=True).first() or 0) >= newest:
            break
    rollups_s = time.monotonic() - t
    with psycopg.connect(args.database_url, autocommit=True) as db:
        postgres, autovacuum = db.execute("SELECT version(), current_setting('autovacuum')").fetchone()
        size = db.execute("SELECT pg_size_pretty(pg_database_size(current_database()))").fetchone()[0]
        in_month = db.execute("SELECT count(*) FROM readings_reading WHERE time >= %s AND time < %s",
                              [dropped_start, dropped_end]).fetchone()[0]
    print(f"bench/prune {datetime.now(UTC):%Y-%m-%d %H:%M} UTC: {ingest.machine()}, {postgres.split(' on ')[0]}, "
          f"autovacuum {autovacuum}")
    print(f"data: {loaded:,} readings (one message each) of {args.devices} devices, monthly partitions: "
          f"{in_month:,} in {dropped_start:%Y-%m} (the one dropped), {args.monthly_readings:,} in each month "
          f"since; {len(partitions_list('readings_reading'))} partitions of readings_reading; database {size}, "
          f"created in {time.monotonic() - started:.0f} s, rollups brought up to date in {rollups_s:.0f} s of it")
    print(f"gunicorn: {args.workers} sync workers; callbacks: bench/prune/steady.py, {args.rate:g}/s "
          f"(open loop, latency from when each was due); batch deletes: {args.short_devices} devices given "
          f"raw_retention_days={args.short_days}, retention_apply(batch_size={args.batch_size})", flush=True)

    port = ingest.free_port()
    ingest.OUT.mkdir(parents=True, exist_ok=True)
    log_path = ingest.OUT / "gunicorn-prune.log"
    with log_path.open("wb") as log:
        server = subprocess.Popen(ingest.gunicorn_command(args, ingest.SERVERS["project"], port), env=env,
                                  stdout=log, stderr=subprocess.STDOUT)
    marks, clients, outputs, warm_outputs = {}, [], [], []

    def client_start(measured: bool = True) -> None:
        out = ingest.OUT / f"prune-callbacks-{len(outputs) if measured else 'warm-up'}.txt"
        (outputs if measured else warm_outputs).append(out)
        # Each client its own day back: the same devices, never the same message.
        clients.append(subprocess.Popen([sys.executable, str(Path(__file__).with_name("steady.py")),
                                         f"http://127.0.0.1:{port}/data/1", str(args.rate), "3600", str(out),
                                         "100", f"{STEADY_BASE:X}", str(len(clients) + 1)]))

    def client_stop() -> None:
        clients[-1].send_signal(signal.SIGTERM)
        clients[-1].wait(timeout=60)

    busy = None
    try:
        ingest.wait_until_listening(port, server, log_path)
        # A first client registers its devices (a device's first callback is
        # the slow path) and warms the workers; it is not measured.
        client_start(measured=False)
        time.sleep(args.warmup)
        client_stop()
        client_start()
        time.sleep(2)
        marks["before"] = time.time()
        time.sleep(args.baseline)

        # Whole partition, while the callbacks arrive.
        marks["drop"] = time.time()
        cpu = backend_cpu_s()
        t = time.monotonic()
        try:
            gone = partition_range_drop(dropped_start, dropped_end)
        except PartitionBusy as exc:
            # The drop could not lock the tables with callbacks arriving: measured
            # again with the callbacks stopped, so that its own cost is known.
            busy = (time.monotonic() - t, str(exc))
            marks["busy_end"] = time.time()
            time.sleep(1)
            client_stop()
            cpu = backend_cpu_s()
            t = time.monotonic()
            gone = partition_range_drop(dropped_start, dropped_end)
        drop_s = time.monotonic() - t
        drop_cpu = backend_cpu_s() - cpu
        marks["drop_end"] = time.time()
        if busy:
            client_start()
            time.sleep(5)
        else:
            time.sleep(3)
        live_after_drop, dead_after_drop, worst_after_drop = dead_rows(args.database_url)
        marks["between"] = time.time()
        time.sleep(args.baseline / 2)

        # Batches: a shorter raw policy on some devices.
        short = list(Device.objects.filter(name__startswith="prune bench ").order_by("pk")
                     .values_list("pk", flat=True)[: args.short_devices])
        Device.objects.filter(pk__in=short).update(raw_retention_days=args.short_days)
        policy_now = datetime.now(UTC)
        cutoff = policy_now - timedelta(days=args.short_days)
        due = Reading.objects.filter(device_id__in=short, time__lt=cutoff).count()
        batch_marks = []
        cpu, usage = backend_cpu_s(), resource.getrusage(resource.RUSAGE_SELF)
        marks["batches"] = time.time()
        t = time.monotonic()
        result = retention_apply(now=policy_now, batch_size=args.batch_size,
                                 on_batch=lambda n: batch_marks.append(time.monotonic()))
        batches_s = time.monotonic() - t
        marks["batches_end"] = time.time()
        after_usage = resource.getrusage(resource.RUSAGE_SELF)
        batches_cpu = backend_cpu_s() - cpu
        python_cpu = (after_usage.ru_utime + after_usage.ru_stime) - (usage.ru_utime + usage.ru_stime)
        connection.close()
        marks["after"] = time.time()
        time.sleep(args.baseline)
        marks["end"] = time.time()
    finally:
        if clients and clients[-1].poll() is None:
            client_stop()
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)

    calls = sorted(c for out in outputs for c in latencies(out))
    drop_window_end = marks["busy_end"] if busy else marks["drop_end"]
    windows = {
        "baseline before": window(calls, marks["before"], marks["drop"]),
        ("drop tries (PartitionBusy)" if busy else "during the drop"): window(calls, marks["drop"], drop_window_end),
        ("tries + 3 s" if busy else "drop + 3 s"): window(calls, marks["drop"], drop_window_end + 3),
        "between": window(calls, marks["between"], marks["batches"]),
        "during the batches": window(calls, marks["batches"], marks["batches_end"]),
        "baseline after": window(calls, marks["after"], marks["end"]),
    }
    gaps = [b - a for a, b in zip([t] + batch_marks, batch_marks)] if batch_marks else []
    live_after, dead_after, worst_after = dead_rows(args.database_url)
    with psycopg.connect(args.database_url, autocommit=True) as db:
        stored = db.execute("""SELECT count(*) FROM readings_message m JOIN readings_device d ON d.id = m.device_id
                               WHERE d.sigfox_id LIKE %s""", [f"{STEADY_BASE:X}"[:-3] + "%"]).fetchone()[0]
        left_old = db.execute("SELECT count(*) FROM readings_reading WHERE device_id = ANY(%s) AND time < %s",
                              [short, cutoff]).fetchone()[0]
        left_month = db.execute("SELECT (SELECT count(*) FROM readings_reading WHERE time >= %(a)s AND time < %(b)s),"
                                " (SELECT count(*) FROM readings_message WHERE time >= %(a)s AND time < %(b)s)",
                                {"a": dropped_start, "b": dropped_end}).fetchone()
        kept = db.execute("""SELECT count(*) FROM readings_reading r JOIN readings_device d ON d.id = r.device_id
                             WHERE d.name LIKE 'prune bench %%'""").fetchone()[0]
        orphans = db.execute("""SELECT count(*) FROM readings_message m WHERE NOT EXISTS
                                (SELECT 1 FROM readings_reading r WHERE r.message_id = m.id AND r.time = m.time)
                             """).fetchone()[0]
    ok_2xx = sum(1 for *_, s in calls if 200 <= s < 300)
    warm_2xx = sum(1 for out in warm_outputs for *_, s in latencies(out) if 200 <= s < 300)
    print(f"load average at the end: {' '.join(f'{x:.1f}' for x in os.getloadavg())}\n")
    print(f"{'window':<24} {'secs':>6} {'calls':>6} {'per s':>6} {'p50 ms':>7} {'p90 ms':>7} {'p99 ms':>7} "
          f"{'max ms':>7} {'failed':>6}")
    for name, w in windows.items():
        print(row(name, w))
    if busy:
        print(f"\npartition drop with the callbacks arriving: {busy[1]} (PartitionBusy after {busy[0]:.1f} s); "
              f"then again with the callbacks stopped:", end="")
    print(f"\npartition drop: partition_range_drop({dropped_start:%Y-%m-%d}, {dropped_end:%Y-%m-%d}): "
          f"{drop_s:.2f} s wall, {drop_cpu:.2f} s CPU in its PostgreSQL backend; {gone.readings:,} readings and "
          f"{gone.messages:,} messages gone ({', '.join(gone.names)})")
    print(f"  then: {left_month[0]} readings and {left_month[1]} messages of that month in the database; "
          f"remaining partitions: {live_after_drop:,} live rows, {dead_after_drop} dead ({worst_after_drop})")
    print(f"batch deletes: retention_apply, {args.short_devices} devices at raw_retention_days={args.short_days}: "
          f"{batches_s:.1f} s wall; {result.summary()}")
    print(f"  {due:,} readings were past their policy; {len(batch_marks)} batches"
          + (f", one every {statistics.median(gaps) * 1e3:.0f} ms (median), slowest {max(gaps) * 1e3:.0f} ms"
             if gaps else "")
          + f"; CPU {python_cpu:.1f} s in Python, {batches_cpu:.1f} s in its PostgreSQL backend")
    print(f"  then: remaining partitions {live_after:,} live rows, {dead_after:,} dead ({worst_after}); "
          f"autovacuum {autovacuum}")
    print(f"callbacks: {len(calls):,} sent, {ok_2xx:,} answered 2xx; with the warm-up's {warm_2xx:,}, "
          f"{stored:,} messages stored")

    drop_w, batch_w = windows["tries + 3 s" if busy else "drop + 3 s"], windows["during the batches"]
    checks = [
        ("the drop gets its locks while callbacks arrive", busy is None,
         f"PartitionBusy after {busy[0]:.1f} s" if busy else ""),
        (f"the month's partition dropped in < {args.drop_limit_s:g} s" + (" (callbacks stopped)" if busy else ""),
         drop_s < args.drop_limit_s and gone.readings == in_month, f"{drop_s:.2f} s for {gone.readings:,} readings"),
        ("no dead rows left by the drop", dead_after_drop == 0 and left_month == (0, 0),
         f"{dead_after_drop} dead rows in the remaining partitions"),
        (f"callbacks' p99 during the drop (and 3 s after) < {args.limit_ms:g} ms",
         drop_w.get("n", 0) > 0 and drop_w["p99"] < args.limit_ms,
         (f"{drop_w.get('p99', float('nan')):.1f} ms (baseline {windows['baseline before']['p99']:.1f}), "
         f"max {drop_w.get('max', float('nan')):.1f} ms")),
        (f"callbacks' p99 during the batch deletes < {args.limit_ms:g} ms",
         batch_w.get("n", 0) > 0 and batch_w["p99"] < args.limit_ms,
         (f"{batch_w.get('p99', float('nan')):.1f} ms (baseline {windows['baseline before']['p99']:.1f}), "
         f"max {batch_w.get('max', float('nan')):.1f} ms")),
        ("every reading past the policy deleted, no other", left_old == 0 and result.readings == due
         and kept == loaded - in_month - due, f"{result.readings:,} deleted of {due:,}"),
        ("no message left without its reading", orphans == 0, ""),
        ("every callback answered 2xx and stored", ok_2xx == len(calls) and stored == ok_2xx + warm_2xx,
         "" if ok_2xx == len(calls) and stored == ok_2xx + warm_2xx
         else f"{len(calls) - ok_2xx} not 2xx, {stored - ok_2xx - warm_2xx:+} stored"),
    ]
    print()
    for name, ok, detail in checks:
        print(f"{'PASS' if ok else 'FAIL'}  {name}" + (f": {detail}" if detail else ""))
    return 0 if all(ok for _, ok, _ in checks) else 1


if __name__ == "__main__":
    sys.exit(main())
