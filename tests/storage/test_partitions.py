"""Time partitions on PostgreSQL (storage.partitions): made ahead, the default
partition emptied into the partitions its rows belong to, a range dropped
whole with the rows of devices kept longer moved, and a busy table left
alone rather than blocking callbacks. On SQLite the same calls do nothing."""

from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from django.conf import settings
from django.db import connection

from readings.models import Message, Reading, Reception
from storage.partitions import (
    PartitionBusy,
    is_partitioned,
    partition_range_drop,
    partitions_ensure,
    partitions_list,
    slot_end,
    slot_start,
)
from tests.helpers import store

on_postgresql = pytest.mark.skipif(
    settings.DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql",
    reason="partitions are PostgreSQL's",
)
pytestmark = pytest.mark.django_db

NOW = datetime(2026, 12, 3, 12, tzinfo=UTC)


def names(table="readings_reading"):
    return [p.name for p in partitions_list(table)]


def where(table: str, time: datetime) -> str:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT tableoid::regclass::text FROM {table} WHERE time = %s", [time])
        return cursor.fetchone()[0]


@pytest.mark.parametrize("interval, moment, start, end", [
    ("month", datetime(2026, 12, 31, 23, 59, tzinfo=UTC), datetime(2026, 12, 1, tzinfo=UTC),
     datetime(2027, 1, 1, tzinfo=UTC)),
    ("month", datetime(2024, 2, 29, tzinfo=UTC), datetime(2024, 2, 1, tzinfo=UTC),
     datetime(2024, 3, 1, tzinfo=UTC)),
    ("week", datetime(2026, 12, 3, 5, tzinfo=UTC), datetime(2026, 11, 30, tzinfo=UTC),
     datetime(2026, 12, 7, tzinfo=UTC)),
    ("day", datetime(2026, 12, 3, 23, 59, 59, tzinfo=UTC), datetime(2026, 12, 3, tzinfo=UTC),
     datetime(2026, 12, 4, tzinfo=UTC)),
])
def test_slots_are_utc_days_iso_weeks_and_months(interval, moment, start, end):
    assert slot_start(moment, interval) == start
    assert slot_end(start, interval) == end


def test_an_unknown_interval_is_named():
    with pytest.raises(ValueError, match="SIGFOX_PARTITION_INTERVAL.*'year'"):
        slot_start(NOW, "year")


@pytest.mark.skipif(connection.vendor == "postgresql", reason="SQLite's plain tables")
def test_on_sqlite_there_is_nothing_to_partition():
    assert not is_partitioned()
    assert partitions_ensure(now=NOW) == []
    assert partitions_list("readings_reading") == []


@on_postgresql
def test_partitions_are_made_ahead_in_both_tables():
    partitions_ensure(now=NOW)
    for table in ("readings_message", "readings_reading"):
        ranges = {(p.start, p.end) for p in partitions_list(table) if not p.is_default}
        for month in (datetime(2026, 12, 1, tzinfo=UTC), datetime(2027, 1, 1, tzinfo=UTC),
                      datetime(2027, 2, 1, tzinfo=UTC)):
            assert (month, slot_end(month, "month")) in ranges
        assert any(p.is_default for p in partitions_list(table))
    assert partitions_ensure(now=NOW) == []  # nothing more is due


@on_postgresql
def test_rows_of_the_default_partition_get_their_own():
    old = datetime(2021, 3, 5, 6, tzinfo=UTC)
    far = datetime(2031, 1, 1, tzinfo=UTC)
    store("1A2B3C", [(old, 1.0), (far, 2.0)])
    assert where("readings_reading", old) == "readings_reading_default"

    created = partitions_ensure(now=NOW)

    assert "readings_reading_p20210301" in created and "readings_message_p20210301" in created
    assert where("readings_reading", old) == "readings_reading_p20210301"
    assert where("readings_message", old) == "readings_message_p20210301"
    # A clock years ahead gets no partition of its own: its rows wait in the default one.
    assert where("readings_reading", far) == "readings_reading_default"
    assert Reading.objects.count() == 2 and Message.objects.count() == 2


@on_postgresql
def test_a_weekly_interval_fills_the_gaps_between_monthly_partitions(settings):
    partitions_ensure(now=NOW)
    settings.SIGFOX_PARTITION_INTERVAL = "week"
    later = NOW + timedelta(days=90)  # past the months made ahead
    created = partitions_ensure(now=later)
    ranges = sorted((p.start, p.end) for p in partitions_list("readings_reading") if not p.is_default)
    for (_, end), (start, _) in zip(ranges, ranges[1:]):
        assert end <= start  # never overlapping
    assert created and all(name.startswith(("readings_reading_p", "readings_message_p")) for name in created)
    assert ranges[-1][1] > later + timedelta(days=7)


@on_postgresql
def test_a_range_drops_whole_keeping_the_devices_kept_longer():
    march = datetime(2021, 3, 1, tzinfo=UTC)
    gone = store("1A2B3C", [(march + timedelta(hours=i), float(i)) for i in range(50)])
    kept = store("4D5E6F", [(march + timedelta(hours=i), float(i)) for i in range(20)])
    april = store("777777", [(datetime(2021, 4, 2, tzinfo=UTC), 1.0)])
    partitions_ensure(now=NOW)
    message = Message.objects.filter(device=gone).first()
    Reception.objects.create(message=message, station="1A2B", received_at=NOW)

    dropped = partition_range_drop(march, datetime(2021, 4, 1, tzinfo=UTC), keep_device_pks=[kept.pk])

    assert dropped.readings == 50 and dropped.messages == 50
    assert dropped.names == ["readings_reading_p20210301", "readings_message_p20210301"]
    assert not Reading.objects.filter(device=gone).exists()
    assert not Message.objects.filter(device=gone).exists()
    assert not Reception.objects.exists()  # no child left pointing at nothing
    assert Reading.objects.filter(device=kept).count() == 20
    assert Reading.objects.filter(device=april).count() == 1
    # The range still has its partition, holding only what was kept.
    assert "readings_reading_p20210301" in names()
    assert where("readings_reading", march) == "readings_reading_p20210301"
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM readings_reading_p20210301")
        assert cursor.fetchone()[0] == 20


@on_postgresql
def test_a_range_without_partitions_drops_nothing():
    dropped = partition_range_drop(datetime(2001, 1, 1, tzinfo=UTC), datetime(2001, 2, 1, tzinfo=UTC))
    assert (dropped.names, dropped.readings, dropped.messages) == ([], 0, 0)


@on_postgresql
@pytest.mark.django_db(transaction=True)  # the reader must see the committed partitions
def test_a_long_query_makes_the_drop_give_up_not_wait():
    """DETACH waits for every reader of the table, and every callback would
    queue behind it: with a reader holding on, the drop gives up instead."""
    # A month no other test uses: partitions made by committed tests outlive them.
    march = datetime(2003, 3, 1, tzinfo=UTC)
    store("1A2B3C", [(march, 1.0)])
    partitions_ensure(now=NOW)
    holder = where("readings_reading", march)
    (part,) = [p for p in partitions_list("readings_reading") if p.name == holder]
    assert not part.is_default
    db = connection.settings_dict
    reader = psycopg.connect(host=db["HOST"] or "127.0.0.1", port=db["PORT"] or 5432,
                             user=db["USER"], dbname=db["NAME"])
    reader.execute("SELECT count(*) FROM readings_reading")  # holds ACCESS SHARE until it ends
    try:
        with pytest.raises(PartitionBusy):
            partition_range_drop(part.start, part.end, retries=2)
        assert Reading.objects.count() == 1  # nothing changed
    finally:
        reader.rollback()
        reader.close()
    assert partition_range_drop(part.start, part.end).readings == 1


@pytest.mark.parametrize("name, value, message", [
    ("SIGFOX_PARTITION_INTERVAL", "year", "SIGFOX_PARTITION_INTERVAL is 'year'"),
    ("SIGFOX_PARTITIONS_AHEAD", -1, "SIGFOX_PARTITIONS_AHEAD is -1"),
    ("SIGFOX_RAW_RETENTION_DAYS", -5, "SIGFOX_RAW_RETENTION_DAYS is -5"),
])
def test_a_bad_storage_setting_fails_the_checks(settings, name, value, message):
    from django.core.management import call_command
    from django.core.management.base import SystemCheckError

    setattr(settings, name, value)
    with pytest.raises(SystemCheckError, match=message):
        call_command("check")
