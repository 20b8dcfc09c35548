"""bench/health: one worker pass over 100,000 devices, on PostgreSQL.

Issue 12, item 4: "One pass evaluates 100,000 devices in under a second on
PostgreSQL (set-based SQL, not a Python loop per device)."

1. Drops and creates the database (BENCH_DATABASE_URL, default
   postgres://root@127.0.0.1:5432/sigfoxsite_health_bench), migrates it, and
   fills it in SQL: DEVICES devices, each with 20 messages at its own
   interval (5 to 60 min), its DeviceHealth learned; a tenth of them silent
   for long enough to be down.
2. Times, each in its own transaction rolled back so every run sees the
   same data:
   - the first pass (alerts.evaluation.evaluate) after the fill: the state
     of every device, a tenth of them changed and written;
   - the next pass, 30 s later, with no new message;
   - the pass after NEW devices received one message each (learning), a
     minute after a first pass;
   - the reference: the same states computed in Python, one device at a
     time (alerts.health.state_of over the ORM rows), no writes at all.
   Each is the median of --runs.

    .venv/bin/python bench/health/run.py [--devices 100000] [--new 5000] [--runs 5]
"""

import argparse
import os
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
URL = os.environ.get("BENCH_DATABASE_URL",
                     "postgres://root@127.0.0.1:5432/sigfoxsite_health_bench")
NOW = datetime(2026, 6, 1, 12, tzinfo=UTC)
LATER = NOW + timedelta(minutes=1)  # when the new messages of the learning pass arrive


def database_fresh(url: str) -> None:
    import psycopg

    admin_url, _, name = url.rpartition("/")
    with psycopg.connect(admin_url + "/postgres", autocommit=True) as db:
        db.execute(f'DROP DATABASE IF EXISTS "{name}"')
        db.execute(f'CREATE DATABASE "{name}"')


FILL_SQL = """
INSERT INTO readings_device (sigfox_id, name, first_seen, last_seen, payload_config,
    payload_config_notice, downlink_data, downlink_mode, series_refused)
SELECT upper(to_hex(1048576 + i)), '', %(now)s - interval '2 days',
       %(now)s - make_interval(secs => CASE WHEN i %% 10 = 0 THEN 86400
                                           ELSE (i %% 7) * 60 END),
       '', '', '', 'once', 0
FROM generate_series(1, %(devices)s) AS i;

INSERT INTO readings_message (device_id, time, sensor, body_raw, content_type, received_at,
    data, lqi, operator_name, country_code, station, downlink_data)
SELECT d.id, d.last_seen - make_interval(secs => k * (300 + (d.id %% 12) * 300)),
       '1', '', '', %(now)s, '', '', '', '', '', ''
FROM readings_device d CROSS JOIN generate_series(0, 19) AS k;

INSERT INTO alerts_devicehealth (device_id, state, samples, alert_open, learned_interval_s,
    learned_until)
SELECT d.id, 'up', '[]', false, 300 + (d.id %% 12) * 300, d.last_seen FROM readings_device d;
"""


def timed(function, runs: int) -> float:
    from django.db import transaction

    times = []
    for _ in range(runs):
        with transaction.atomic():
            started = time.perf_counter()
            function()
            times.append(time.perf_counter() - started)
            transaction.set_rollback(True)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=100_000)
    parser.add_argument("--new", type=int, default=5000,
                        help="devices with one new message for the learning pass")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()

    database_fresh(URL)
    os.environ.update(DATABASE_URL=URL, SECRET_KEY="bench", SIGFOXSITE_READ_DOT_ENV="false",
                      DJANGO_SETTINGS_MODULE="sigfoxsite.settings")
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    from alerts import health
    from alerts.evaluation import evaluate
    from alerts.models import DeviceHealth

    call_command("migrate", verbosity=0)
    started = time.perf_counter()
    with connection.cursor() as cursor:
        for statement in FILL_SQL.split(";\n"):
            if statement.strip():
                cursor.execute(statement, {"now": NOW, "devices": args.devices})
        cursor.execute("VACUUM ANALYZE")
    print(f"filled {args.devices} devices, {args.devices * 20} messages "
          f"in {time.perf_counter() - started:.1f} s")

    def new_messages():
        with connection.cursor() as cursor:
            cursor.execute(
                "INSERT INTO readings_message (device_id, time, sensor, body_raw, content_type, "
                "received_at, data, lqi, operator_name, country_code, station, downlink_data) "
                "SELECT id, %s, '1', '', '', %s, '', '', '', '', '', '' FROM readings_device "
                "WHERE id %% 20 = 1 ORDER BY id LIMIT %s", [LATER, LATER, args.new])
            cursor.execute("UPDATE readings_device SET last_seen = %s WHERE id %% 20 = 1 "
                           "AND id IN (SELECT id FROM readings_device WHERE id %% 20 = 1 "
                           "ORDER BY id LIMIT %s)", [LATER, args.new])

    def first():
        evaluate(now=NOW)

    def steady():
        evaluate(now=NOW)  # the first pass after the fill writes its changes...
        started = time.perf_counter()
        evaluate(now=NOW + timedelta(seconds=30))  # ...the next finds few or none
        steady.seconds.append(time.perf_counter() - started)

    steady.seconds = []

    def learning():
        evaluate(now=NOW)  # the first pass's changes, untimed
        new_messages()
        started = time.perf_counter()
        result = evaluate(now=LATER)
        learning.seconds.append(time.perf_counter() - started)
        learning.learned = result.devices_learned

    learning.seconds = []

    def reference():
        thresholds = health.Thresholds()
        rows = DeviceHealth.objects.select_related("device").iterator(chunk_size=2000)
        changed = 0
        for row in rows:
            state = health.state_of(last_seen=row.device.last_seen,
                                    interval_s=row.interval_s or row.learned_interval_s,
                                    thresholds=thresholds, now=NOW,
                                    muted_until=row.muted_until)
            changed += state != row.state
        reference.changed = changed

    first_s = timed(first, args.runs)
    timed(steady, args.runs)
    pass_s = statistics.median(steady.seconds)
    with transaction_rolled_back():
        changes = len(evaluate(now=NOW).changes)
    timed(learning, args.runs)
    learn_s = statistics.median(learning.seconds)
    reference_s = timed(reference, args.runs)
    print(f"first pass after the fill: {first_s * 1000:7.0f} ms for {args.devices} devices "
          f"({changes} changes of state written)")
    print(f"next pass, no new message: {pass_s * 1000:7.0f} ms for {args.devices} devices")
    print(f"pass, {args.new} with a new message: {learn_s * 1000:7.0f} ms "
          f"({learning.learned} devices learned)")
    print(f"reference, a Python loop per device, computing only: {reference_s * 1000:7.0f} ms "
          f"({reference.changed} changes found)")
    print(f"pass / reference: {pass_s / reference_s:.2f}")


class transaction_rolled_back:
    def __enter__(self):
        from django.db import transaction

        self.atomic = transaction.atomic()
        self.atomic.__enter__()

    def __exit__(self, *exc):
        from django.db import transaction

        transaction.set_rollback(True)
        self.atomic.__exit__(*exc)


if __name__ == "__main__":
    main()
