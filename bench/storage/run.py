"""bench/storage: disk per device per year at 140 messages a day, on PostgreSQL.

Issue 13, item 4: "the README's production section says how much disk a
fleet needs per device per year at 140 messages a day, measured."

For each scenario (--scenario, both by default):

1. Drops and creates the database (--database-url, default
   postgres://root@127.0.0.1:5432/sigfoxsite_bench_storage), migrates it,
   and makes the time partitions of the days to fill (storage.partitions).
2. Template: the first day of --template-devices devices goes through the
   real ingest path: each frame is POSTed to /data/1 through Django's
   handler in process (view, parser, serializer, readings.services.ingest),
   140 frames a day, 617 s apart.
   - tutorial: the README's tutorial body, `{"device":…,"time":"…","temp":…}`,
     one reading per message;
   - advanced: the README's raw-payload DATA callback (seqNumber, data,
     deviceTypeId, ack, station, rssi, snr), its 5-byte payload decoded by a
     payload config into temp, hum and vbat (3 readings), then the DATA
     ADVANCED callback of the same frame, which Sigfox sends some 30 s
     later (lqi, linkQuality, operatorName, countryCode, 3 duplicates,
     computedLocation), merged into the message.
3. Copy: the template rows (devices, series, messages, readings,
   receptions) are copied in SQL to --devices devices over --days days,
   each device shifted by a few minutes, each day's seqNumber and the ids and
   times inside body_raw rewritten: the same rows, byte for byte in length,
   as the template's.
4. Rollups: readings.services.rollups.rollups_refresh until caught up; with
   --rollups sql (quicker for fills of millions of readings), or where that
   module is missing, the hourly and daily rows are made by one SQL GROUP BY
   into readings_rollup instead (same rows and columns; the output says which).
5. VACUUM ANALYZE, then sizes per table (heap with TOAST, and indexes,
   summed over the partitions): bytes per message and per device-year
   (a day's bytes per device times 365), then the same with every body
   cleared (what SIGFOX_BODY_RETENTION_DAYS does): the messages' heap less
   what emptying body_raw saves on a compact copy of them (body_saving).
   Tables are as compact as bulk inserts leave them: a live table also
   carries the dead row versions autovacuum has yet to reclaim (each
   message is written twice when DATA ADVANCED follows).
6. Times storage.status.storage_status() on the filled database (median of 3).

    .venv/bin/python bench/storage/run.py [--devices 20] [--days 14] [--scenario advanced]
        [--rollups refresh|sql|none] [--keep]

The database is dropped at the end unless --keep. Needs PostgreSQL on
127.0.0.1:5432 reachable as root without a password, as bench/ingest.
"""

import argparse
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
# The machine line of bench/ingest, which the other benches print too.
sys.path.insert(0, str(ROOT / "bench" / "ingest"))  # its own import of reference.py
_spec = importlib.util.spec_from_file_location("bench_ingest_run", ROOT / "bench" / "ingest" / "run.py")
_ingest = sys.modules[_spec.name] = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_ingest)
machine = _ingest.machine
DEFAULT_URL = "postgres://root@127.0.0.1:5432/sigfoxsite_bench_storage"
PER_DAY = 140
SPACING_S = 86_400 // PER_DAY  # 617 s between frames
PAYLOAD_CONFIG = "temp::int:16:little-endian hum::uint:8 vbat::uint:16:little-endian"
MB = 1_000_000
DEVICE_TYPE = "5f3c9a1b2c4d5e6f7a8b9c0d"
SCENARIOS = {
    "tutorial": "README's tutorial body {device, time, temp}: 1 reading a message, no station",
    "advanced": ("README's raw-payload DATA callback, 5-byte payload decoded into temp, hum, "
                 "vbat (3 readings), then its DATA ADVANCED callback (3 duplicates, "
                 "computedLocation) merged in"),
}
# What the size table shows, in order: label, tables.
GROUPS = [
    ("messages", ["readings_message"]),
    ("readings", ["readings_reading"]),
    ("receptions", ["readings_reception"]),
    ("rollups", ["readings_rollup"]),
]
PER_DEVICE = ["readings_device", "readings_series", "readings_devicetype", "readings_quantity",
              "readings_sequencegap", "alerts_devicehealth"]


def arguments() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--database-url", default=os.environ.get("BENCH_DATABASE_URL", DEFAULT_URL),
                   help="database to create afresh (it is dropped first!)")
    p.add_argument("--devices", type=int, default=20, help="devices of the fleet (default 20)")
    p.add_argument("--days", type=int, default=14, help="days of data per device (default 14)")
    p.add_argument("--template-devices", type=int, default=2,
                   help="devices whose first day goes through the ingest path (default 2)")
    p.add_argument("--scenario", action="append", choices=sorted(SCENARIOS),
                   help="tutorial or advanced (repeatable; default both)")
    p.add_argument("--rollups", choices=["refresh", "sql", "none"], default="refresh",
                   help="refresh: rollups_refresh until caught up (default); sql: the SQL "
                        "stand-in, quicker for large fills; none")
    p.add_argument("--keep", action="store_true", help="keep the database of the last scenario")
    args = p.parse_args()
    args.scenario = args.scenario or ["tutorial", "advanced"]
    if not 1 <= args.template_devices <= args.devices:
        p.error("--template-devices must be between 1 and --devices")
    return args


def database_fresh(url: str, *, drop_only: bool = False) -> None:
    import psycopg

    admin_url, _, name = url.rpartition("/")
    with psycopg.connect(admin_url + "/postgres", autocommit=True) as db:
        db.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        if not drop_only:
            db.execute(f'CREATE DATABASE "{name}"')


def commit() -> str:
    done = subprocess.run(["git", "describe", "--always", "--dirty"], cwd=ROOT, capture_output=True,
                          text=True)
    return done.stdout.strip() or "unknown"


# The template: callbacks through the real handler.


def template_bodies(scenario: str, sigfox_id: str, epoch: int, n: int) -> list[str]:
    """The callback bodies of frame n of a device, in arrival order."""
    temp_centi, hum, vbat = 2150 + (n * 37) % 400 - 200, 40 + n % 30, 3300 - n % 50
    if scenario == "tutorial":
        return [json.dumps({"device": sigfox_id, "time": str(epoch), "temp": temp_centi / 100},
                           separators=(",", ":"))]
    payload = (temp_centi.to_bytes(2, "little", signed=True) + hum.to_bytes(1, "little")
               + vbat.to_bytes(2, "little")).hex()
    seq = n % 4096
    data = json.dumps({
        "device": sigfox_id, "time": epoch, "seqNumber": seq, "data": payload,
        "deviceTypeId": DEVICE_TYPE, "ack": False, "station": "1A2B", "rssi": -118.0 - n % 17,
        "snr": 8.5 + n % 9,
    }, separators=(",", ":"))
    duplicates = [{"bsId": station, "rssi": -118.0 - (n + k) % 17, "nbRep": 3}
                  for k, station in enumerate(("1A2B", "3C4D", "5E6F"))]
    location = {"lat": 43.6047, "lng": 1.4442, "radius": 2468, "source": 2, "status": 1}
    advanced = json.dumps({
        "device": sigfox_id, "time": epoch, "data": payload, "seqNumber": seq, "lqi": "Good",
        "linkQuality": 3, "operatorName": "SIGFOX_France", "countryCode": 250,
        "deviceTypeId": DEVICE_TYPE, "duplicates": duplicates,
        "computedLocation": location,
    }, separators=(",", ":"))
    return [data, advanced]


def template_ingest(scenario: str, device_ids: list[str], day0: datetime) -> tuple[int, float]:
    """POST the first day of each template device through the handler; (callbacks, seconds)."""
    from django.test import Client

    client = Client(HTTP_HOST="localhost")
    sent, started = 0, time.perf_counter()
    for sigfox_id in device_ids:
        for n in range(PER_DAY):
            epoch = int(day0.timestamp()) + n * SPACING_S
            for body in template_bodies(scenario, sigfox_id, epoch, n):
                response = client.post("/data/1", body, content_type="application/json",
                                       secure=True)
                if response.status_code not in (200, 204):
                    sys.exit(f"template callback refused, {response.status_code}: "
                             f"{response.content[:300]}")
                sent += 1
    return sent, time.perf_counter() - started


# The copy, in SQL.


def columns(model) -> list[str]:
    return [f.column for f in model._meta.concrete_fields if f.column != "id"]


def select_list(model, overrides: dict[str, str], alias: str) -> tuple[str, str]:
    """(column list, select list) of an INSERT ... SELECT copying `model`'s rows
    from `alias`, with SQL expressions for the columns in `overrides`."""
    names = columns(model)
    return (", ".join(f'"{c}"' for c in names),
            ", ".join(overrides.get(c, f'{alias}."{c}"') for c in names))


def fleet_copy(*, devices: int, days: int, template_ids: list[int],
               template_end: datetime) -> float:
    """Copy the template devices' rows (their messages before `template_end`)
    to `devices` devices over `days` days; seconds taken."""
    from django.db import connection

    from readings.models import Device, Message, Reading, Reception, Series

    started = time.perf_counter()
    with connection.cursor() as cursor:
        # Which template each device copies, and by how many seconds it is shifted.
        cursor.execute("CREATE TEMP TABLE bench_fleet (device_id bigint PRIMARY KEY, template_id bigint, "
                       "sigfox_id text, template_sigfox_id text, shift_s int)")
        cursor.execute("INSERT INTO bench_fleet SELECT id, id, sigfox_id, sigfox_id, 0 FROM readings_device")
        device_cols, device_select = select_list(Device, {
            # B000000 + n: as long as the templates' ids (A000000 + n), so bodies keep their length.
            "sigfox_id": "upper(to_hex(184549376 + new.n))",
            "first_seen": "d.first_seen + make_interval(secs => new.shift_s)",
            "last_seen": "d.last_seen + make_interval(secs => new.shift_s)",
        }, "d")
        cursor.execute(
            f"""
            WITH new AS (
                SELECT n, (%(templates)s::bigint[])[1 + n %% cardinality(%(templates)s::bigint[])] AS template_id,
                       (n * 37) %% 600 AS shift_s
                FROM generate_series(cardinality(%(templates)s::bigint[]), %(devices)s - 1) AS n
            ),
            ins AS (
                INSERT INTO readings_device ({device_cols})
                SELECT {device_select} FROM new JOIN readings_device d ON d.id = new.template_id
                RETURNING id, sigfox_id
            )
            INSERT INTO bench_fleet
            SELECT ins.id, new.template_id, ins.sigfox_id, d.sigfox_id, new.shift_s
            FROM ins JOIN new ON ins.sigfox_id = upper(to_hex(184549376 + new.n))
            JOIN readings_device d ON d.id = new.template_id
            """,
            {"templates": template_ids, "devices": devices},
        )
        series_cols, series_select = select_list(Series, {"device_id": "f.device_id"}, "s")
        cursor.execute(f"INSERT INTO readings_series ({series_cols}) SELECT {series_select} "
                       f"FROM bench_fleet f JOIN readings_series s ON s.device_id = f.template_id "
                       f"WHERE f.device_id <> f.template_id")
        message_cols, message_select = select_list(Message, {
            "device_id": "m.new_device",
            "time": "m.time + m.shift",
            "received_at": "m.time + m.shift + interval '2 seconds'",
            "seq_number": "(m.seq_number + %(k)s * 140) %% 4096",
            "body_raw": ("replace(replace(m.body_raw, m.template_sigfox_id, m.new_sigfox_id), "
                         "extract(epoch FROM m.time)::bigint::text, "
                         "extract(epoch FROM m.time + m.shift)::bigint::text)"),
        }, "m")
        reading_cols, reading_select = select_list(Reading, {
            "message_id": "ins.id", "device_id": "ins.device_id", "time": "ins.time",
            "value": "r.value + (ins.id %% 7) * 0.01",
        }, "r")
        reception_cols, reception_select = select_list(Reception, {
            "message_id": "ins.id", "received_at": "ins.received_at",
        }, "c")
        for k in range(days):
            cursor.execute(
                f"""
                WITH src AS (
                    SELECT m.*, f.device_id AS new_device, f.sigfox_id AS new_sigfox_id,
                           f.template_sigfox_id, make_interval(days => %(k)s, secs => f.shift_s) AS shift
                    FROM bench_fleet f JOIN readings_message m ON m.device_id = f.template_id
                    WHERE m.time < %(template_end)s AND NOT (f.device_id = f.template_id AND %(k)s = 0)
                ),
                ins AS (
                    INSERT INTO readings_message ({message_cols})
                    SELECT {message_select} FROM src AS m
                    RETURNING id, device_id, time, received_at
                ),
                origin AS (
                    SELECT ins.*, m.id AS template_message
                    FROM ins JOIN bench_fleet f ON f.device_id = ins.device_id
                    JOIN readings_message m ON m.device_id = f.template_id
                     AND m.time = ins.time - make_interval(days => %(k)s, secs => f.shift_s)
                ),
                readings AS (
                    INSERT INTO readings_reading ({reading_cols})
                    SELECT {reading_select} FROM origin AS ins
                    JOIN readings_reading r ON r.message_id = ins.template_message
                    RETURNING 1
                )
                INSERT INTO readings_reception ({reception_cols})
                SELECT {reception_select} FROM origin AS ins
                JOIN readings_reception c ON c.message_id = ins.template_message
                """,
                {"k": k, "template_end": template_end},
            )
        cursor.execute("UPDATE readings_device d SET first_seen = s.first, last_seen = s.last "
                       "FROM (SELECT device_id, min(time) AS first, max(time) AS last FROM readings_message "
                       "GROUP BY device_id) s WHERE s.device_id = d.id")
    return time.perf_counter() - started


ROLLUPS_SQL = """
INSERT INTO readings_rollup (device_id, sensor, quantity, resolution_s, start, count, sum,
    first_epoch_s, first, min_epoch_s, min, max_epoch_s, max, last_epoch_s, last)
SELECT device_id, sensor, quantity, %(resolution)s,
       date_bin(make_interval(secs => %(resolution)s), time, timestamptz '2000-01-01 00:00+00') AS bucket,
       count(*), sum(value), min(extract(epoch FROM time)), min(value), min(extract(epoch FROM time)),
       min(value), max(extract(epoch FROM time)), max(value), max(extract(epoch FROM time)), max(value)
FROM readings_reading GROUP BY device_id, sensor, quantity, bucket
"""


def rollups_make(how: str) -> tuple[str, float]:
    """Hourly and daily rollups of every reading, by `how` (--rollups): (what was done, seconds)."""
    from django.db import connection
    from django.utils import timezone

    started = time.perf_counter()
    if how == "none":
        return "none made (--rollups none)", 0.0
    try:
        from readings.services.rollups import rollups_refresh
    except ImportError:
        how, why = "sql", "readings.services.rollups is not in this tree"
    else:
        why = "--rollups sql"
    if how == "sql":
        with connection.cursor() as cursor:
            for resolution in (3600, 86400):
                cursor.execute(ROLLUPS_SQL, {"resolution": resolution})
        return (f"SQL stand-in ({why}): one GROUP BY per resolution into readings_rollup, the same "
                "rows and columns as rollups_refresh makes", time.perf_counter() - started)
    from readings.models import Reading, RollupProgress

    # Readings become safe to take once every transaction older than a pass's
    # note has ended, server-wide: passes repeat until the watermark is past them all.
    newest = Reading.objects.order_by("-pk").values_list("pk", flat=True).first() or 0
    passes = 0
    while time.perf_counter() - started < 600:
        done = rollups_refresh(now=timezone.now())
        passes += 1
        if done.caught_up and RollupProgress.objects.get(pk=1).reading_id >= newest:
            break
        if not done.readings:
            time.sleep(0.2)
    else:
        sys.exit("rollups_refresh did not catch up within 10 minutes")
    return f"readings.services.rollups.rollups_refresh, {passes} passes", time.perf_counter() - started


# Sizes.


def sizes(tables: list[str]) -> dict[str, tuple[int, int, int]]:
    """{table: (heap bytes with TOAST, FSM and VM; index bytes; rows)}, partitions summed."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT t.name, sum(pg_table_size(leaves.oid))::bigint,
                   sum(pg_indexes_size(leaves.oid))::bigint, sum(greatest(leaf.reltuples, 0))::bigint
            FROM unnest(%s::text[]) AS t(name)
            JOIN pg_class c ON c.oid = to_regclass(t.name)
            CROSS JOIN LATERAL (
                SELECT tree.relid FROM pg_partition_tree(c.oid) AS tree WHERE tree.isleaf
                UNION ALL SELECT c.oid WHERE c.relkind <> 'p'
            ) AS leaves(oid)
            JOIN pg_class leaf ON leaf.oid = leaves.oid
            GROUP BY t.name
            """,
            [tables],
        )
        return {name: (heap, index, rows) for name, heap, index, rows in cursor.fetchall()}


def vacuum() -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")


def body_saving() -> int:
    """Heap bytes that emptying every body_raw saves: the messages copied
    twice into plain tables, with and without their bodies, and the two
    heaps compared. (Emptying them in place and VACUUM FULL would measure
    the same, but neither reclaims a row while any session of the server
    holds an older snapshot: on a shared server, a session of another
    database, which this bench cannot wait for.)"""
    from django.db import connection

    from readings.models import Message

    names = ["id", *columns(Message)]
    listed = ", ".join(f'"{c}"' for c in names)
    cleared = ", ".join("''" if c == "body_raw" else f'"{c}"' for c in names)
    heaps = []
    with connection.cursor() as cursor:
        for name, select in (("bench_with_bodies", listed), ("bench_bodies_cleared", cleared)):
            cursor.execute(f"CREATE TABLE {name} "
                           f"(LIKE readings_message INCLUDING DEFAULTS INCLUDING STORAGE)")
            cursor.execute(f"INSERT INTO {name} ({listed}) "
                           f"SELECT {select} FROM readings_message ORDER BY time")
            cursor.execute(f"SELECT pg_table_size('{name}')")
            heaps.append(cursor.fetchone()[0])
            cursor.execute(f"DROP TABLE {name}")
    return heaps[0] - heaps[1]


def report(measured: dict, *, messages: int, device_days: int,
           body_cleared_heap: int | None) -> list[str]:
    """The size table: bytes per message and MB (10^6 bytes) per device-year."""
    per_year = 365 / device_days
    lines = [f"{'':<22}{'bytes/message':>14}{'MB/device-year':>16}"]
    total = 0

    def line(label: str, size: int) -> str:
        return f"{label:<22}{size / messages:>14.1f}{size * per_year / MB:>16.2f}"

    for label, tables in GROUPS:
        heap = sum(measured[t][0] for t in tables)
        index = sum(measured[t][1] for t in tables)
        lines += [line(f"{label} table", heap), line(f"{label} indexes", index)]
        total += heap + index
    other = sum(measured[t][0] + measured[t][1] for t in PER_DEVICE if t in measured)
    lines.append(line("devices, series, ...", other))
    total += other
    raw = total - sum(measured["readings_rollup"][:2])
    lines += [line("total", total), line("  of which rollups", total - raw)]
    if body_cleared_heap is not None:
        saved = measured["readings_message"][0] - body_cleared_heap
        lines += ["bodies cleared (SIGFOX_BODY_RETENTION_DAYS):",
                  line("messages table", body_cleared_heap), line("total", total - saved),
                  line("  saved", saved)]
    return lines


def scenario_run(args, scenario: str, now: datetime) -> None:
    from django.core.management import call_command
    from django.db import connection, connections

    from readings.models import Device, Message, Reading, Reception, Rollup
    from storage.partitions import partitions_ensure
    from storage.status import storage_status

    connections.close_all()
    database_fresh(args.database_url)
    started = time.perf_counter()
    call_command("migrate", verbosity=0)
    day0 = (now - timedelta(days=args.days + 1)).replace(hour=0, minute=0, second=0, microsecond=0)
    partitions_ensure(now=now, cover=(day0, now))
    template = [f"{0xA000000 + n:X}" for n in range(args.template_devices)]
    callbacks, ingest_s = template_ingest(scenario, template, day0)
    template_ids = list(Device.objects.filter(sigfox_id__in=template).order_by("sigfox_id")
                        .values_list("id", flat=True))
    template_rows = {m._meta.db_table: m.objects.count() for m in (Message, Reading)}
    copy_s = fleet_copy(devices=args.devices, days=args.days, template_ids=template_ids,
                        template_end=day0 + timedelta(days=1))
    rollups_how, rollups_s = rollups_make(args.rollups)
    vacuum()
    tables = [t for _, ts in GROUPS for t in ts] + PER_DEVICE
    measured = sizes(tables)
    messages = Message.objects.count()
    readings = Reading.objects.count()
    receptions = Reception.objects.count()
    with connection.cursor() as cursor:
        cursor.execute("SELECT avg(octet_length(body_raw)) FROM readings_message")
        body_avg = cursor.fetchone()[0]
    hourly = Rollup.objects.filter(resolution_s=3600).count()
    daily = Rollup.objects.filter(resolution_s=86400).count()
    timings = []
    for _ in range(3):
        timings.append(storage_status().took_ms)
    cleared_heap = measured["readings_message"][0] - body_saving()
    device_days = args.devices * args.days

    print(f"\nscenario {scenario}: {SCENARIOS[scenario]}")
    print(f"template: {args.template_devices} devices x 1 day, {callbacks} callbacks POSTed to "
          f"/data/1 in process ({ingest_s:.1f} s, {ingest_s / callbacks * 1000:.1f} ms each): "
          f"{template_rows['readings_message']} messages, "
          f"{template_rows['readings_reading']} readings")
    print(f"fleet: {args.devices} devices x {args.days} days x {PER_DAY} messages a day; "
          f"copied in SQL in {copy_s:.1f} s")
    print(f"rows: {messages:,} messages ({messages / device_days:.0f} per device-day), "
          f"{readings:,} readings ({readings / messages:.2f} per message), {receptions:,} receptions, "
          f"{hourly:,} hourly + {daily:,} daily rollups; body_raw {body_avg or 0:.0f} bytes on average")
    print(f"rollups: {rollups_how} ({rollups_s:.1f} s)")
    print(f"after VACUUM ANALYZE; MB = 10^6 bytes; a device-year = a device-day x 365 "
          f"({device_days} device-days measured)")
    for line in report(measured, messages=messages, device_days=device_days,
                       body_cleared_heap=cleared_heap):
        print("  " + line)
    print(f"storage_status() on this database: median {statistics.median(timings):.0f} ms "
          f"(runs: {', '.join(f'{t:.0f}' for t in timings)}); scenario took "
          f"{time.perf_counter() - started:.0f} s")


def main() -> None:
    args = arguments()
    os.environ.update(DATABASE_URL=args.database_url, SECRET_KEY="bench",
                      SIGFOXSITE_READ_DOT_ENV="false", DJANGO_SETTINGS_MODULE="sigfoxsite.settings",
                      DEBUG="false",
                      ALLOWED_HOSTS="localhost", SIGFOX_PAYLOAD_CONFIG=PAYLOAD_CONFIG,
                      SIGFOX_CALLBACK_TOKEN="", SIGFOX_CALLBACK_RATE="")
    import django

    django.setup()
    from django.db import connection, connections

    now = datetime.now(UTC)
    started = time.perf_counter()
    print(f"bench/storage {now:%Y-%m-%d %H:%M} UTC: {machine()}, commit {commit()}")
    for scenario in args.scenario:
        scenario_run(args, scenario, now)
    with connection.cursor() as cursor:
        cursor.execute("SELECT version()")
        version = cursor.fetchone()[0].split(" on ")[0]
    connections.close_all()
    if not args.keep:
        database_fresh(args.database_url, drop_only=True)
    print(f"\n{version}; {time.perf_counter() - started:.0f} s in all"
          + (f"; database kept: {args.database_url}" if args.keep else ""))


if __name__ == "__main__":
    main()
