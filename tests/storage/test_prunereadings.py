"""manage.py prunereadings (storage.retention with its own rule instead of the policy)."""

from datetime import timedelta
from io import StringIO

import psycopg
import pytest
from django.conf import settings
from django.core.management import CommandError, call_command
from django.db import connection
from django.utils import timezone

from readings.models import Message, Reading
from readings.services.ingest import UplinkCallback, message_ingest
from storage.partitions import partitions_ensure, partitions_list
from storage.retention import LOCK_KEY

pytestmark = pytest.mark.django_db


def ingest(device="1A2B3C", *, days_ago: float, sensor="1", now=None, **values):
    now = now or timezone.now()
    uplink = UplinkCallback(
        device_id=device,
        time=(now - timedelta(days=days_ago)).replace(microsecond=0),
        sensor=sensor,
        values=values or {"temp": 20.0},
    )
    message_ingest(uplink=uplink, now=now)


def prune(*args) -> str:
    out = StringIO()
    call_command("prunereadings", *args, stdout=out)
    return out.getvalue()


def test_it_deletes_readings_older_than_days():
    for days_ago in (40, 31, 29, 1):
        ingest(days_ago=days_ago, temp=days_ago)
    output = prune("--older-than", "30")
    assert sorted(Reading.objects.values_list("value", flat=True)) == [1.0, 29.0]
    assert output == "Deleted 2 readings and 2 messages (older than 30 days).\n"


def test_it_keeps_the_newest_n_per_series():
    for i in range(15):
        ingest(days_ago=i, temp=i, hum=100 + i)
    ingest("BF1327", days_ago=50, temp=-1)
    output = prune("--keep-last", "10")
    temps = sorted(Reading.objects.filter(device__sigfox_id="1A2B3C", quantity="temp").values_list("value", flat=True))
    assert temps == [float(i) for i in range(10)]
    assert Reading.objects.filter(quantity="hum").count() == 10
    assert Reading.objects.filter(device__sigfox_id="BF1327").count() == 1
    assert output.startswith("Deleted 10 readings and 5 messages")


def test_it_keeps_series_of_each_sensor_apart():
    for i in range(3):
        ingest(days_ago=i, sensor="1", temp=i)
        ingest(days_ago=i, sensor="2", temp=i)
    prune("--keep-last", "1")
    assert sorted(Reading.objects.values_list("sensor", "value")) == [("1", 0.0), ("2", 0.0)]


def test_it_combines_both_options_as_protections():
    for i in (1, 2, 40, 41, 42):
        ingest(days_ago=i, temp=i)
    prune("--older-than", "30", "--keep-last", "3")
    assert sorted(Reading.objects.values_list("value", flat=True)) == [1.0, 2.0, 40.0]


def test_it_limits_itself_to_one_device():
    ingest("1A2B3C", days_ago=40)
    ingest("BF1327", days_ago=40)
    output = prune("--older-than", "30", "--device", "bf1327")
    assert list(Reading.objects.values_list("device__sigfox_id", flat=True)) == ["1A2B3C"]
    assert "device BF1327" in output


def test_it_counts_without_deleting_on_dry_run():
    for i in (1, 40, 41):
        ingest(days_ago=i, temp=i, hum=i)
    output = prune("--older-than", "30", "--dry-run")
    assert output == "Would delete 4 readings and 2 messages (older than 30 days).\n"
    assert Reading.objects.count() == 6 and Message.objects.count() == 3


def test_it_keeps_a_message_that_still_has_readings():
    for i in range(3):
        ingest(days_ago=i, temp=i)
    ingest(days_ago=5, temp=5.0, hum=1.0)
    for i in range(3):
        ingest(days_ago=i + 10, hum=i)
    # hum keeps its 3 newest, which include the message at 5 days; temp keeps 3.
    output = prune("--keep-last", "3", "--dry-run")
    assert output.startswith("Would delete 2 readings and 1 messages")
    prune("--keep-last", "3")
    assert Reading.objects.count() == 6
    assert Message.objects.filter(readings__isnull=True).count() == 0
    assert Message.objects.count() == 6  # of 7: only the one at 12 days emptied


def test_it_leaves_messages_that_never_had_readings():
    ingest(days_ago=40)
    now = timezone.now()
    message_ingest(uplink=UplinkCallback(device_id="1A2B3C", time=now - timedelta(days=41), sensor="1"), now=now)
    prune("--older-than", "30")
    assert Message.objects.count() == 1 and not Reading.objects.exists()


def test_it_deletes_in_batches():
    for i in range(25):
        ingest(days_ago=40 + i, temp=i)
    err = StringIO()
    call_command("prunereadings", "--older-than", "30", "--batch-size", "10", "-v", "2",
                 stdout=StringIO(), stderr=err)
    assert err.getvalue().splitlines() == [
        "  10 readings deleted so far", "  20 readings deleted so far", "  25 readings deleted so far",
    ]
    assert not Reading.objects.exists()


@pytest.mark.parametrize(
    "args, message",
    [
        ([], "give --older-than DAYS, --keep-last N, or both"),
        (["--older-than", "soon"], "argument --older-than: expected a whole number, got 'soon'"),
        (["--older-than", "0"], "argument --older-than: expected a number of at least 1, got 0"),
        (["--keep-last", "-3"], "argument --keep-last: expected a number of at least 1, got -3"),
        (["--older-than", "99999999999"], "more than a century"),
        (["--keep-last", "2", "--device", "XYZ"], "argument --device: 'XYZ' is not a Sigfox id"),
        (["--keep-last", "2", "--device", "ABCDEF01"], "no device ABCDEF01"),
        (["--keep-last", "2", "--batch-size", "0"], "argument --batch-size: expected a number of at least 1"),
    ],
)
def test_it_rejects_bad_arguments(args, message):
    ingest(days_ago=40)
    with pytest.raises(CommandError, match=message.replace("-", r"\-").replace("(", r"\(")):
        call_command("prunereadings", *args, stdout=StringIO())
    assert Reading.objects.count() == 1


def test_it_reports_bad_arguments_without_a_traceback():
    import subprocess
    import sys

    result = subprocess.run(
        [sys.executable, "manage.py", "prunereadings", "--older-than", "x"],
        capture_output=True, text=True, env={"PATH": "/usr/bin:/bin", "DEBUG": "true",
                                             "SIGFOXSITE_READ_DOT_ENV": "false",
                                             "DATABASE_URL": "sqlite:////tmp/sigfoxsite-prune-test.sqlite3"},
    )
    # argparse's own report, naming the option, and its exit status for bad usage.
    assert result.returncode == 2
    assert result.stderr.strip().endswith(
        "error: argument --older-than: expected a whole number, got 'x'")
    assert "Traceback" not in result.stderr


# -- PostgreSQL: whole partitions ------------------------------------------------------------

on_postgresql = pytest.mark.skipif(
    settings.DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql",
    reason="partitions are PostgreSQL's",
)


def partitioned(now):
    """Monthly partitions for every row (the test database holds them all in the default one)."""
    partitions_ensure(now=now, cover=(now - timedelta(days=500), now))


@on_postgresql
def test_it_drops_whole_partitions_and_names_them():
    now = timezone.now()
    for days_ago in (400, 200, 1):
        ingest(days_ago=days_ago, now=now, temp=days_ago)
    # A message that never had readings goes with its partition.
    message_ingest(uplink=UplinkCallback(device_id="BF1327", time=now - timedelta(days=400), sensor="1"),
                   now=now)
    partitioned(now)
    old = {p.name for p in partitions_list("readings_reading") if p.end and p.end <= now - timedelta(days=100)
           and Reading.objects.filter(time__gte=p.start, time__lt=p.end).exists()}
    assert len(old) == 2

    would = prune("--older-than", "100", "--dry-run")
    output = prune("--older-than", "100")

    assert list(Reading.objects.values_list("value", flat=True)) == [1.0]
    assert Message.objects.count() == 1
    assert output.startswith("Deleted 2 readings and 3 messages (older than 100 days); dropped partitions: ")
    assert old <= set(output.rstrip(".\n").split(": ")[1].split(", "))
    assert would.replace("Would delete", "Deleted").replace("would drop", "dropped") == output


@on_postgresql
def test_a_partition_keeps_the_rows_that_the_keep_last_window_reaches():
    now = timezone.now()
    for days_ago in (400, 399, 200, 1):
        ingest(days_ago=days_ago, now=now, temp=days_ago)
    for days_ago in (400, 1):
        ingest("BF1327", days_ago=days_ago, now=now, temp=days_ago)
    partitioned(now)

    output = prune("--older-than", "100", "--keep-last", "2")

    # 1A2B3C's two newest reach back 200 days; BF1327's, 400: both keep their rows there.
    assert sorted(Reading.objects.filter(device__sigfox_id="1A2B3C").values_list("value", flat=True)) == [1.0, 200.0]
    assert Reading.objects.filter(device__sigfox_id="BF1327").count() == 2
    assert output.startswith("Deleted 2 readings and 2 messages")


@on_postgresql
def test_it_says_so_when_another_run_holds_the_lock():
    ingest(days_ago=40)
    db = connection.settings_dict
    other = psycopg.connect(host=db["HOST"] or "127.0.0.1", port=db["PORT"] or 5432, user=db["USER"],
                            dbname=db["NAME"], autocommit=True)
    try:
        other.execute("SELECT pg_advisory_lock(%s)", [LOCK_KEY])
        with pytest.raises(CommandError, match="another retention run is in progress; nothing more was done"):
            prune("--older-than", "30")
        other.execute("SELECT pg_advisory_unlock(%s)", [LOCK_KEY])
    finally:
        other.close()
    assert Reading.objects.count() == 1
