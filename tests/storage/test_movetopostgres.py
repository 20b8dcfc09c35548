"""manage.py movetopostgres: a SQLite installation with real history moves to a
fresh PostgreSQL database with every row and id kept, resumes after a kill,
and refuses a database holding another installation's data.

The history is made the way an installation makes it: callbacks of the
simulated fleet (raw payloads decoded by device configs, retries, duplicates,
every encoding) through the project's own views, the health callbacks, a
refused callback, months of readings in bulk, rollups, the worker's pass,
users with real password hashes, a group, a token, a session, failed logins.
The command runs in a subprocess against that file, as a user runs it.

PostgreSQL: MOVE_TO_POSTGRES_URL, else DATABASE_URL when it is PostgreSQL.
It runs in the suite's PostgreSQL pass (CI runs both passes) and skips in
the SQLite one, where it would cost half a minute for nothing new; it fails
under CI=true when the PostgreSQL named cannot be reached.
"""

import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from contextlib import closing
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest

from tests.conftest import missing_dependency
from tests.serving import ROOT, drop_postgres_database, migrate, postgres_database, served_env

# With the served tests in the slow tier: subprocesses and PostgreSQL databases of its own.
pytestmark = pytest.mark.http

# The bulk history: a frame every 6 hours over 500 days, two readings each,
# so that the copy spans more than a dozen monthly partitions.
BULK_FRAMES = 2000
BULK_STEP_HOURS = 6
FLEET_FRAMES = 100
PASSWORD_HASHES = {
    "admin": "pbkdf2_sha256$1000000$FoqDD53vDeGM4W5eVN42BQ$"
             "79n1noW3BIoD0RqF3/zegr7vV+kFbmu+VBboE5CruJM=",
    "alice": "pbkdf2_sha256$1000000$aC35f8gTGCIe0w3aetL4Xz$"
             "0xFUH0lZJHacRMKOKKyrrsPKsaFeU5aOY9/b5KOSNHs=",
}


def history_build() -> None:
    """Fill the database of DATABASE_URL (migrated) with an installation's
    history; run in a subprocess with Django set up."""
    import random
    from datetime import timedelta

    from axes.models import AccessAttempt, AccessLog
    from django.apps import apps
    from django.contrib.admin.models import CHANGE, LogEntry
    from django.contrib.auth.management import create_permissions
    from django.contrib.auth.models import Group, Permission, User
    from django.contrib.contenttypes.models import ContentType
    from django.db.models import Count, Max, Min, Sum
    from django.test import Client
    from django.utils import timezone
    from rest_framework.authtoken.models import Token

    from alerts.evaluation import evaluate
    from alerts.models import Channel, Rule
    from readings.models import Device, DeviceType, QuantitySetting, Reading, Rollup
    from readings.simulation.fleet import RAW_PAYLOAD_CONFIG, Fleet, callbacks_for
    from storage.models import RetentionRun
    from tests.helpers import store

    # The storage app came with a later release: its content type and
    # permissions were made after every other app's, so their ids are not
    # those a fresh migrate gives.
    ContentType.objects.filter(app_label="storage").delete()  # and its permissions
    ContentType.objects.clear_cache()
    create_permissions(apps.get_app_config("storage"), verbosity=0)

    now = timezone.now()
    kit = DeviceType.objects.create(sigfox_id="5F00AB", name="Akeru kit",
                                    payload_config=RAW_PAYLOAD_CONFIG, raw_retention_days=400)
    fleet = Fleet(devices=6, device_base=0x5F0000, interval_s=3 * 3600,
                  time_start_s=now.timestamp() - 90 * 86400, seed=13)
    for number, state in enumerate(fleet.devices):
        # Half the fleet is decoded by its own config, half by its type's.
        Device.objects.create(
            sigfox_id=state.sigfox_id, name=f"cellar {number}", device_type=kit,
            payload_config=RAW_PAYLOAD_CONFIG if number % 2 else "",
            downlink_data="00112233aabbccdd" if number == 0 else "",
        )
    QuantitySetting.objects.create(device_type=kit, quantity="temp", unit="°C", label="Temperature")
    QuantitySetting.objects.create(device=Device.objects.get(sigfox_id="5F0001"),
                                   quantity="battery_mv", unit="V", label="Battery", scale=0.001)

    client = Client()
    rng = random.Random(13)
    for frame in fleet.frames(count=FLEET_FRAMES):
        for callback in callbacks_for(frame, encoding="mixed", path="/data/1", raw=True,
                                      metadata=True, retry_probability=0.1,
                                      duplicate_probability=0.3, rng=rng):
            if callback.method == "GET":
                response = client.get(callback.target)
            else:
                response = client.generic(callback.method, callback.target, callback.body,
                                          content_type=callback.headers["Content-Type"])
            assert response.status_code in (200, 204), response.content
    Device.objects.create(sigfox_id="BF1327", downlink_data="0101038400000000")
    epoch_s = int(now.timestamp()) - 3600
    for path, body in [
        ("/data/2", {"device": "1A2B3C", "time": epoch_s - 1200, "seqNumber": 10, "temp": 21.5,
                     "humidity": 40}),
        ("/data/2", {"device": "1A2B3C", "time": epoch_s, "seqNumber": 15, "temp": 21.5}),  # 4 lost
        ("/data/1", {"device": "BF1327", "time": epoch_s, "seqNumber": 1, "data": "15",
                     "ack": True}),
        ("/sigfox/acknowledge", {"device": "BF1327", "time": epoch_s, "infoCode": 0,
                                 "downlinkAck": True}),
        ("/sigfox/status", {"device": "1A2B3C", "time": epoch_s + 60, "temp": 21.6, "batt": 3.3}),
        ("/sigfox/error", {"device": "1A2B3C", "time": epoch_s + 120, "severity": "ERROR",
                           "info": "No message received since yesterday"}),
        ("/sigfox/geoloc", {"device": "1A2B3C", "time": epoch_s + 180, "lat": 43.6, "lng": 1.44,
                            "radius": 2000, "geolocSource": "2", "seqNumber": 42}),
        ("/data/1", {"device": "not-hex", "time": epoch_s, "temp": 1}),  # refused: a Rejection
    ]:
        client.post(path, body, content_type="application/json")

    # 500 days of readings of one device in bulk, two quantities sharing the
    # frames, values and times with every digit.
    start = now - timedelta(hours=BULK_FRAMES * BULK_STEP_HOURS)
    hours = [start + timedelta(hours=i * BULK_STEP_HOURS, microseconds=i)
             for i in range(BULK_FRAMES)]
    store("BEEF01", [(t, 20 + (i % 97) / 7) for i, t in enumerate(hours)],
          rssi=lambda i: -100.5 - i % 30)
    store("BEEF01", [(t, 3.3 - i / 1e6) for i, t in enumerate(hours)], quantity="battery_v")
    # Daily rollups of the bulk series, as the worker keeps them.
    daily = (Reading.objects.filter(device__sigfox_id="BEEF01")
             .values("device_id", "sensor", "quantity", "time__date")
             .annotate(n=Count("id"), total=Sum("value"), low=Min("value"), high=Max("value"),
                       first=Min("time"), last=Max("time")))
    Rollup.objects.bulk_create(
        Rollup(device_id=row["device_id"], sensor=row["sensor"], quantity=row["quantity"],
               resolution_s=86400, count=row["n"], sum=row["total"],
               start=datetime(*row["time__date"].timetuple()[:3], tzinfo=UTC),
               first_epoch_s=row["first"].timestamp(), first=row["low"],
               min_epoch_s=row["first"].timestamp(), min=row["low"],
               max_epoch_s=row["last"].timestamp(), max=row["high"],
               last_epoch_s=row["last"].timestamp(), last=row["high"])
        for row in daily
    )

    Channel.objects.create(name="ops", url="json://127.0.0.1:9/alerts")
    Rule.objects.create(name="too warm", device_type=kit, kind="above", quantity="temp",
                        threshold=30)
    evaluate(now=now)

    # Real hashes (PBKDF2, the default hasher) made once, to spare the seconds of hashing.
    admin = User.objects.create_superuser("admin", "admin@example.com", None)
    alice = User.objects.create_user("alice")
    User.objects.filter(pk=admin.pk).update(password=PASSWORD_HASHES["admin"])
    User.objects.filter(pk=alice.pk).update(password=PASSWORD_HASHES["alice"])
    readers = Group.objects.create(name="readers")
    readers.permissions.set(Permission.objects.filter(codename__in=["view_device", "view_reading"]))
    alice.groups.add(readers)
    alice.user_permissions.add(*Permission.objects.filter(
        codename__in=["view_series", "view_retentionrun"]))
    Token.objects.create(user=admin)
    LogEntry.objects.create(user=admin, content_type=ContentType.objects.get_for_model(Device),
                            object_id=str(Device.objects.first().pk), object_repr="5F0000",
                            action_flag=CHANGE,
                            change_message='[{"changed": {"fields": ["Name"]}}]')
    Client().force_login(alice)  # a session row
    # What axes records of a failed login (a real one costs a second of hashing).
    AccessAttempt.objects.create(username="alice", ip_address="192.0.2.7", user_agent="curl/8",
                                 http_accept="*/*", path_info="/accounts/login/", get_data="",
                                 post_data="username=alice", failures_since_start=3)
    AccessLog.objects.create(username="admin", ip_address="2001:db8::1", user_agent="Firefox",
                             http_accept="text/html", path_info="/admin/login/")
    RetentionRun.objects.create(started_at=now, finished_at=now, trigger="prunereadings",
                                partitions_dropped=["readings_reading_p2020_01"],
                                readings_deleted=12)


# --- Fixtures ------------------------------------------------------------------------


def postgres_base_url() -> str:
    url = os.environ.get("MOVE_TO_POSTGRES_URL") or os.environ.get("DATABASE_URL", "")
    if not url.startswith(("postgres://", "postgresql://")):
        pytest.skip("runs in the PostgreSQL pass (DATABASE_URL or MOVE_TO_POSTGRES_URL)")
    try:
        psycopg.connect(url, connect_timeout=3).close()
    except Exception as exc:  # noqa: BLE001  (any failure here means: no database)
        missing_dependency(f"PostgreSQL at {url} cannot be reached: {exc}")
    return url


@pytest.fixture(scope="module")
def installation(tmp_path_factory) -> Path:
    """A migrated SQLite file holding an installation's history."""
    postgres_base_url()  # skips before the history is made, where it would not be moved
    path = tmp_path_factory.mktemp("move") / "installed.sqlite3"
    env = served_env(f"sqlite:///{path}", ALLOWED_HOSTS="testserver")
    migrate(env)  # a copy of the suite's first migrated SQLite file, when there is one
    subprocess.run(
        [sys.executable, "-c",
         ("import django; django.setup(); "
          "from tests.storage.test_movetopostgres import history_build; history_build()")],
        cwd=ROOT, env={**env, "DJANGO_SETTINGS_MODULE": "sigfoxsite.settings"}, check=True,
        timeout=120,
    )
    return path


def command(target: str, *args: str) -> list[str]:
    return [sys.executable, "manage.py", "movetopostgres", "--to", target, "--no-input", *args]


def run(installation: Path, target: str, *args: str) -> subprocess.CompletedProcess:
    """movetopostgres from `installation` to `target`, as a user runs it."""
    return subprocess.run(command(target, *args), cwd=ROOT,
                          env=served_env(f"sqlite:///{installation}"),
                          capture_output=True, text=True, timeout=120, check=False)


@dataclass
class Moved:
    url: str
    readings_when_killed: int
    killed_output: str
    resumed: subprocess.CompletedProcess


@pytest.fixture(scope="module")
def moved(installation) -> Moved:
    """A fresh PostgreSQL database (no tables) that the command filled from
    `installation`, killed (SIGKILL, as a power cut) in the middle of the
    readings the first time, then run again to the end."""
    base = postgres_base_url()
    url = postgres_database(base, f"sigfoxsite_move_{os.getpid()}")
    process = subprocess.Popen(command(url, "--batch-size", "25"), cwd=ROOT,
                               env=served_env(f"sqlite:///{installation}"),
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    count_sql = "SELECT count(*) FROM readings_reading"
    deadline = time.monotonic() + 60
    try:
        with psycopg.connect(url, autocommit=True) as db:
            while process.poll() is None and time.monotonic() < deadline:
                try:
                    if db.execute(count_sql).fetchone()[0]:
                        break
                except psycopg.errors.UndefinedTable:  # migrate has not made it yet
                    pass
                time.sleep(0.01)
    finally:
        process.send_signal(signal.SIGKILL)
        output = process.communicate()[0].decode()
    copied = pg_rows(url, count_sql)[0][0]
    yield Moved(url=url, readings_when_killed=copied, killed_output=output,
                resumed=run(installation, url))
    drop_postgres_database(base, url)


# --- Reading both databases ----------------------------------------------------------


def tables(installation: Path) -> list[str]:
    with closing(sqlite3.connect(installation)) as db:
        return [name for (name,) in db.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' "
            "AND name != 'django_migrations' ORDER BY name")]


def sqlite_rows(installation: Path, sql: str) -> list[tuple]:
    with closing(sqlite3.connect(installation)) as db:
        return db.execute(sql).fetchall()


def pg_rows(url: str, sql: str) -> list[tuple]:
    with psycopg.connect(url) as db:
        return db.execute(sql).fetchall()


def sqlite_time(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text).replace(tzinfo=UTC)


def counts(installation: Path, target: str) -> tuple[dict[str, int], dict[str, int]]:
    names = tables(installation)
    union = " UNION ALL ".join(f"SELECT '{n}', count(*) FROM \"{n}\"" for n in names)
    return dict(sqlite_rows(installation, union)), dict(pg_rows(target, union))


# --- Tests ---------------------------------------------------------------------------


def test_a_killed_move_resumes_where_it_stopped(installation, moved):
    total = sqlite_rows(installation, "SELECT count(*) FROM readings_reading")[0][0]
    assert 0 < moved.readings_when_killed < total, moved.killed_output
    done = moved.resumed
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Resuming" in done.stdout
    # The tables copied before the kill are not copied again; the readings go on.
    skipped = r"readings\.device +(\d+) / \1 +100% +already copied"
    assert re.search(skipped, done.stdout), done.stdout
    copied_on = rf"readings\.reading +{total:,} / {total:,} +100% +[\d,]+ rows/s"
    assert re.search(copied_on, done.stdout), done.stdout
    assert "Counts verified" in done.stdout


def test_every_row_moves_with_its_id(installation, moved):
    source, target = counts(installation, moved.url)
    assert source == target
    assert source["readings_reading"] > 2 * BULK_FRAMES
    empty = {name for name, n in source.items() if n == 0}
    # Every kind of row the history makes is there to be moved.
    assert not empty & {
        "readings_device", "readings_devicetype", "readings_message", "readings_reading",
        "readings_reception", "readings_sequencegap", "readings_series", "readings_quantity",
        "readings_downlink", "readings_acknowledge",
        "readings_quantitysetting", "readings_rollup", "readings_rejection", "readings_deviceevent",
        "readings_devicelocation", "alerts_devicehealth", "alerts_channel", "alerts_rule",
        "auth_user", "auth_group", "auth_group_permissions", "auth_user_groups",
        "auth_user_user_permissions", "authtoken_token", "django_session", "django_admin_log",
        "axes_accessattempt", "storage_retentionrun", "django_content_type", "auth_permission",
    }, empty

    # Readings and messages: ids, values and times to the digit, in monthly partitions.
    readings_sql = ("SELECT id, message_id, device_id, sensor, quantity, value, time "
                    "FROM readings_reading ORDER BY id")
    assert pg_rows(moved.url, readings_sql) == [
        (*row[:6], sqlite_time(row[6])) for row in sqlite_rows(installation, readings_sql)]
    messages_sql = ("SELECT id, device_id, time, seq_number, rssi, data, values_raw "
                    "FROM readings_message ORDER BY id")
    assert pg_rows(moved.url, messages_sql) == [
        (i, device, sqlite_time(t), seq, rssi, data, None if raw is None else json.loads(raw))
        for i, device, t, seq, rssi, data, raw in sqlite_rows(installation, messages_sql)]
    for table in ("readings_reading", "readings_message"):
        assert pg_rows(moved.url, f"SELECT count(*) FROM {table}_default") == [(0,)]
        [(partitions,)] = pg_rows(
            moved.url, f"SELECT count(*) FROM pg_inherits WHERE inhparent = '{table}'::regclass")
        assert partitions >= BULK_FRAMES * BULK_STEP_HOURS // (31 * 24)

    # Users log in with the passwords they had; configs decode as before.
    users_sql = "SELECT id, username, password, is_superuser, is_staff FROM auth_user ORDER BY id"
    assert pg_rows(moved.url, users_sql) == [
        (i, name, password, bool(superuser), bool(staff))
        for i, name, password, superuser, staff in sqlite_rows(installation, users_sql)]
    devices_sql = ("SELECT id, sigfox_id, name, device_type_id, payload_config, downlink_data, "
                   "raw_retention_days FROM readings_device ORDER BY id")
    assert pg_rows(moved.url, devices_sql) == sqlite_rows(installation, devices_sql)
    types_sql = ("SELECT id, sigfox_id, payload_config, raw_retention_days "
                 "FROM readings_devicetype ORDER BY id")
    assert pg_rows(moved.url, types_sql) == sqlite_rows(installation, types_sql)
    # Content types and permissions keep the source's ids, which the groups,
    # users and the admin's log point at.
    for sql in ("SELECT id, app_label, model FROM django_content_type ORDER BY id",
                "SELECT id, content_type_id, codename FROM auth_permission ORDER BY id"):
        assert pg_rows(moved.url, sql) == sqlite_rows(installation, sql)
    grants_sql = ("SELECT g.name, ct.app_label, p.codename FROM auth_group_permissions gp "
                  "JOIN auth_group g ON g.id = gp.group_id "
                  "JOIN auth_permission p ON p.id = gp.permission_id "
                  "JOIN django_content_type ct ON ct.id = p.content_type_id ORDER BY 1, 2, 3")
    assert pg_rows(moved.url, grants_sql) == sqlite_rows(installation, grants_sql)
    # JSON as stored; text keys (sessions) as they were.
    assert pg_rows(moved.url, "SELECT partitions_dropped FROM storage_retentionrun") == [
        (["readings_reading_p2020_01"],)]
    sessions_sql = "SELECT session_key, session_data FROM django_session ORDER BY session_key"
    assert (pg_rows(moved.url, sessions_sql + ' COLLATE "C"')
            == sqlite_rows(installation, sessions_sql))

    # New rows take the next ids.
    [(next_id, last_id)] = pg_rows(
        moved.url, "SELECT nextval(pg_get_serial_sequence('readings_reading', 'id')), "
                   "(SELECT max(id) FROM readings_reading)")
    assert next_id == last_id + 1


def test_a_finished_move_run_again_copies_nothing(installation, moved):
    before = counts(installation, moved.url)[1]
    again = run(installation, moved.url)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "0 rows copied by this run" in again.stdout
    assert counts(installation, moved.url)[1] == before


def test_a_database_holding_other_data_is_refused(installation, moved):
    # A device renamed and a user the source lacks: not a copy of this
    # installation any more (put back afterwards, for the other tests).
    [(device_id, name)] = pg_rows(moved.url, "SELECT id, name FROM readings_device "
                                             "ORDER BY id DESC LIMIT 1")
    with psycopg.connect(moved.url, autocommit=True) as db:
        db.execute("UPDATE readings_device SET name = 'not ours' WHERE id = %s", [device_id])
        db.execute("INSERT INTO auth_user (id, password, is_superuser, username, first_name, "
                   "last_name, email, is_staff, is_active, date_joined) "
                   "VALUES (1000, '', false, 'mallory', '', '', '', false, true, now())")
    try:
        before = counts(installation, moved.url)[1]
        refused = run(installation, moved.url)
        assert refused.returncode == 1, refused.stdout + refused.stderr
        assert "readings.device: rows differ from the source's" in refused.stderr
        extra_user = "auth.user: 3 rows in the target, 2 in the source up to the same key"
        assert extra_user in refused.stderr
        assert "Move into an empty database" in refused.stderr
        assert counts(installation, moved.url)[1] == before
    finally:
        with psycopg.connect(moved.url, autocommit=True) as db:
            db.execute("UPDATE readings_device SET name = %s WHERE id = %s", [name, device_id])
            db.execute("DELETE FROM auth_user WHERE id = 1000")


def test_the_source_must_be_sqlite():
    # Refused before any connection: neither database needs to exist.
    done = subprocess.run(command("postgres://127.0.0.1:1/target"), cwd=ROOT,
                          env=served_env("postgres://127.0.0.1:1/source"),
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 1
    assert "the source (DATABASE_URL) is postgresql, not SQLite" in done.stderr
