"""Retention (storage.retention): the policy of the site, device types and
devices applied to readings, messages, bodies, rollups, events and
locations; whole partitions dropped on PostgreSQL, batches elsewhere."""

from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from django.conf import settings as django_settings
from django.db import connection
from django.test.utils import CaptureQueriesContext

from readings.models import (
    Acknowledge,
    Device,
    DeviceEvent,
    DeviceLocation,
    DeviceType,
    Downlink,
    DownlinkMode,
    Message,
    MessageConflict,
    Reading,
    Reception,
    Rollup,
    RollupProgress,
    RollupResolution,
    SequenceGap,
)
from storage.models import RetentionRun
from storage.partitions import partitions_ensure, partitions_list
from storage.retention import (
    LOCK_KEY,
    PRUNE,
    RetentionBusy,
    policy_explained,
    retention_apply,
    retention_due,
)
from readings.selectors.retention import Kept
from tests.helpers import store

on_postgresql = pytest.mark.skipif(
    django_settings.DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql",
    reason="partitions and advisory locks are PostgreSQL's",
)
pytestmark = pytest.mark.django_db

NOW = datetime(2026, 12, 3, 12, tzinfo=UTC)
AGES = (1, 3, 7, 20, 45, 90, 200)  # days before NOW


@pytest.fixture(autouse=True)
def _rolled_up():
    """As after the worker's rollups pass: every reading taken in (the policy
    removes no reading the rollups have yet to take in)."""
    RollupProgress.objects.update_or_create(pk=1, defaults={"reading_id": 2**62})


def rolled_up_to(reading: Reading) -> None:
    RollupProgress.objects.filter(pk=1).update(reading_id=reading.pk)


def ago(days: float) -> datetime:
    return NOW - timedelta(days=days)


def fleet(settings) -> dict[str, Device]:
    """A site keeping 30 days, and a device of each kind of policy, each with
    a reading (and a message with a body) at every age of AGES."""
    settings.SIGFOX_RAW_RETENTION_DAYS = 30
    short_type = DeviceType.objects.create(sigfox_id="10", raw_retention_days=10)
    devices = {
        "site": store("5173", []),
        "type 10": store("7E10", []),
        "own 5": store("5", []),
        "own 60": store("60", []),
        "forever": store("F0", []),
        "own forever, type 10": store("F1", []),
    }
    Device.objects.filter(pk__in=[devices["type 10"].pk, devices["own forever, type 10"].pk]).update(
        device_type=short_type)
    for name, days in (("own 5", 5), ("own 60", 60), ("forever", 0), ("own forever, type 10", 0)):
        Device.objects.filter(pk=devices[name].pk).update(raw_retention_days=days)
    for device in devices.values():
        store(device.sigfox_id, [(ago(days), float(days)) for days in AGES])
    Message.objects.update(body_raw='{"device":"...","data":"0102"}')
    return devices


def ages(device: Device, model=Reading, **where) -> list[int]:
    """Days before NOW of the device's rows, whole days."""
    field = "start" if model is Rollup else "time"
    return sorted(round((NOW - t).total_seconds() / 86400)
                  for t in model.objects.filter(device=device, **where).values_list(field, flat=True))


def row_counts() -> dict[str, int]:
    return {model.__name__: model.objects.count() for model in (
        Message, Reading, Reception, SequenceGap, MessageConflict, Downlink, Rollup, DeviceEvent,
        DeviceLocation)} | {"bodies": Message.objects.exclude(body_raw="").count(),
                            "linked acknowledges": Acknowledge.objects.exclude(downlink=None).count()}


def on_partitions():
    """On PostgreSQL, monthly partitions for every row (migrated test
    databases hold them all in the default partition)."""
    partitions_ensure(now=NOW, cover=(ago(max(AGES) + 1), NOW))


@pytest.mark.parametrize("apart", [1000, 0], ids=["device by device", "by filter"])
def test_each_device_keeps_what_its_policy_says(settings, monkeypatch, apart):
    monkeypatch.setattr("storage.retention.DEVICES_APART", apart)
    devices = fleet(settings)
    on_partitions()

    result = retention_apply(now=NOW)

    expected = {
        "site": [1, 3, 7, 20],
        "type 10": [1, 3, 7],
        "own 5": [1, 3],
        "own 60": [1, 3, 7, 20, 45],
        "forever": list(AGES),
        "own forever, type 10": list(AGES),
    }
    assert {name: ages(device) for name, device in devices.items()} == expected
    assert {name: ages(device, Message) for name, device in devices.items()} == expected
    assert result.readings == result.messages == 7 * 6 - sum(map(len, expected.values()))


def test_the_policy_explained_names_where_each_value_comes_from(settings):
    devices = fleet(settings)
    settings.SIGFOX_BODY_RETENTION_DAYS = None
    DeviceType.objects.update(rollup_retention_days=0)
    explained = policy_explained(Device.objects.select_related("device_type").get(pk=devices["type 10"].pk))
    assert {kept: (e.days, e.source) for kept, e in explained.items()} == {
        Kept.RAW: (10, "device type"), Kept.ROLLUP: (None, "device type"), Kept.BODY: (None, "site")}
    explained = policy_explained(Device.objects.get(pk=devices["own forever, type 10"].pk))
    assert (explained[Kept.RAW].days, explained[Kept.RAW].source) == (None, "device")


def test_nothing_goes_while_the_site_keeps_forever(settings):
    store("1A2B3C", [(ago(days), 1.0) for days in AGES])
    settings.SIGFOX_RAW_RETENTION_DAYS = None
    result = retention_apply(now=NOW)
    assert Reading.objects.count() == len(AGES)
    assert (result.readings, result.messages, result.partitions_dropped) == (0, 0, [])


def test_a_message_goes_with_its_children_and_readings(settings):
    settings.SIGFOX_RAW_RETENTION_DAYS = 30
    device = store("1A2B3C", [(ago(40), 1.0), (ago(1), 2.0)])
    store("1A2B3C", [(ago(40), 3.0)], quantity="hum")
    old = Message.objects.get(time=ago(40))
    Reception.objects.create(message=old, station="1A2B", received_at=ago(40))
    SequenceGap.objects.create(device=device, message=old, previous_seq_number=1, seq_number=3,
                               missing=1, time=ago(40))
    MessageConflict.objects.create(message=old, variable="seqNumber", kept_value="3", other_value="4",
                                   received_at=ago(40))
    downlink = Downlink.objects.create(device=device, message=old, data="00" * 8, mode=DownlinkMode.ONCE,
                                       answered_at=ago(40))
    acknowledge = Acknowledge.objects.create(device=device, time=ago(40), info_code=0, info_meaning="ACKED",
                                             downlink=downlink, received_at=ago(40))
    # A message that never had a reading is past the policy all the same.
    Message.objects.create(device=device, time=ago(41), sensor="1", received_at=ago(41))

    result = retention_apply(now=NOW)

    assert (result.readings, result.messages) == (2, 2)
    assert list(Reading.objects.values_list("value", flat=True)) == [2.0]
    assert Message.objects.count() == 1
    counts = row_counts()
    assert counts["Reception"] == counts["SequenceGap"] == counts["MessageConflict"] == counts["Downlink"] == 0
    acknowledge.refresh_from_db()
    assert acknowledge.downlink is None  # the acknowledge stays, unlinked
    connection.check_constraints()  # no key left pointing at a row gone (checked at commit otherwise)


def test_no_reading_goes_before_the_rollups_have_taken_it_in(settings):
    settings.SIGFOX_RAW_RETENTION_DAYS = 30
    device = store("1A2B3C", [(ago(days), float(days)) for days in (200, 90, 1)])
    store("1A2B3C", [(ago(100), 100.0)])  # a late backfill: a higher id than newer readings
    rolled_up_to(Reading.objects.get(value=1.0))
    on_partitions()

    would = retention_apply(now=NOW, dry_run=True)
    result = retention_apply(now=NOW)

    assert ages(device) == [1, 100]
    assert (would.readings, result.readings) == (2, 2)
    assert "readings_reading_p20260801" not in result.partitions_dropped  # 100 days: August
    rolled_up_to(Reading.objects.get(value=100.0))
    assert retention_apply(now=NOW).readings == 1
    assert ages(device) == [1]


def test_bodies_are_cleared_and_their_messages_kept(settings):
    settings.SIGFOX_BODY_RETENTION_DAYS = 5
    device = store("1A2B3C", [(ago(days), 1.0) for days in AGES])
    store("F0", [(ago(days), 1.0) for days in AGES])
    Device.objects.filter(sigfox_id="F0").update(body_retention_days=0)
    Message.objects.update(body_raw="{}")

    result = retention_apply(now=NOW, batch_size=2)

    assert list(Message.objects.filter(device=device).exclude(body_raw="").values_list("time", flat=True)
                .order_by("time")) == [ago(3), ago(1)]
    assert Message.objects.filter(device__sigfox_id="F0").exclude(body_raw="").count() == len(AGES)
    assert result.bodies_cleared == len(AGES) - 2
    assert Reading.objects.count() == Message.objects.count() == 2 * len(AGES)


def rollup(device, start, resolution=RollupResolution.HOUR, value=1.0):
    epoch = start.timestamp()
    return Rollup.objects.create(
        device=device, sensor="1", quantity="temp", resolution_s=resolution, start=start, count=1,
        sum=value, first_epoch_s=epoch, first=value, min_epoch_s=epoch, min=value, max_epoch_s=epoch,
        max=value, last_epoch_s=epoch, last=value)


def test_rollups_outlive_the_readings_they_summarise(settings):
    settings.SIGFOX_RAW_RETENTION_DAYS = 30
    device = store("1A2B3C", [(ago(days), float(days)) for days in AGES])
    hours = [rollup(device, ago(days).replace(minute=0, second=0), value=float(days)) for days in AGES]
    before = list(Rollup.objects.order_by("pk").values())

    retention_apply(now=NOW)

    assert ages(device) == [1, 3, 7, 20]
    assert list(Rollup.objects.order_by("pk").values()) == before  # not one changed
    assert len(hours) == len(before)


@pytest.mark.parametrize("apart", [1000, 0], ids=["device by device", "by filter"])
def test_the_rollup_policy_deletes_rollups_but_not_before_the_readings_go(settings, monkeypatch, apart):
    monkeypatch.setattr("storage.retention.DEVICES_APART", apart)
    settings.SIGFOX_RAW_RETENTION_DAYS = 30
    settings.SIGFOX_ROLLUP_RETENTION_DAYS = 10  # shorter than the readings': 30 wins
    device = store("1A2B3C", [])
    forever = store("F0", [])
    Device.objects.filter(pk=forever.pk).update(rollup_retention_days=0)
    day = NOW.replace(hour=0)
    for days in (1, 20, 29, 31, 45, 90):
        rollup(device, day - timedelta(days=days), RollupResolution.DAY)
        rollup(device, ago(days).replace(minute=0), RollupResolution.HOUR)
        rollup(forever, ago(days).replace(minute=0), RollupResolution.HOUR)

    result = retention_apply(now=NOW)

    # A daily rollup goes once its whole day is past the cutoff (NOW - 30 days).
    assert sorted((NOW - start).days for start in Rollup.objects.filter(
        device=device, resolution_s=RollupResolution.DAY).values_list("start", flat=True)) == [1, 20, 29]
    assert ages(device, Rollup, resolution_s=RollupResolution.HOUR) == [1, 20, 29]
    assert Rollup.objects.filter(device=forever).count() == 6
    assert result.rollups == 6


def test_events_and_locations_follow_the_readings_policy(settings):
    settings.SIGFOX_RAW_RETENTION_DAYS = 30
    device = store("1A2B3C", [])
    forever = store("F0", [])
    Device.objects.filter(pk=forever.pk).update(raw_retention_days=0)
    for n, (owner, days) in enumerate([(device, 40), (device, 2), (forever, 40), (None, 40), (None, 2)]):
        DeviceEvent.objects.create(device=owner, time=ago(days), kind="error", fingerprint=f"f{n}",
                                   received_at=ago(days))
        if owner is not None:
            DeviceLocation.objects.create(device=owner, time=ago(days), lat=1.0, lng=2.0, received_at=ago(days))

    result = retention_apply(now=NOW)

    assert sorted((e.device_id == forever.pk, (NOW - e.time).days) for e in DeviceEvent.objects.all()) == [
        (False, 2), (False, 2), (True, 40)]
    assert sorted((NOW - t).days for t in DeviceLocation.objects.values_list("time", flat=True)) == [2, 40]
    assert (result.events, result.locations) == (2, 1)


def test_a_run_is_recorded(settings):
    fleet(settings)
    settings.SIGFOX_BODY_RETENTION_DAYS = 2
    result = retention_apply(now=NOW, trigger="runworker")
    run = RetentionRun.objects.get()
    assert (run.started_at, run.trigger, run.error) == (NOW, "runworker", "")
    assert NOW <= run.finished_at < NOW + timedelta(seconds=30)
    assert (run.readings_deleted, run.messages_deleted, run.bodies_cleared, run.rollups_deleted) == (
        result.readings, result.messages, result.bodies_cleared, result.rollups)
    assert run.partitions_dropped == result.partitions_dropped
    assert "readings" in result.summary() and "bodies" in result.summary()


def test_a_failed_run_records_its_error(settings, monkeypatch):
    settings.SIGFOX_RAW_RETENTION_DAYS = settings.SIGFOX_BODY_RETENTION_DAYS = 1
    store("1A2B3C", [(ago(5), 1.0)])
    store("F0", [(ago(5), 1.0)])
    Device.objects.filter(sigfox_id="F0").update(raw_retention_days=0)
    Message.objects.update(body_raw="{}")
    monkeypatch.setattr("storage.retention._Pass.bodies_clear", lambda *_: 1 / 0)

    with pytest.raises(ZeroDivisionError):
        retention_apply(now=NOW)

    run = RetentionRun.objects.get()
    assert run.error == "ZeroDivisionError: division by zero"
    assert run.finished_at is not None and run.readings_deleted == 1  # what was done before


def test_a_dry_run_counts_what_the_run_removes_and_changes_nothing(settings):
    fleet(settings)
    settings.SIGFOX_BODY_RETENTION_DAYS = 2
    settings.SIGFOX_ROLLUP_RETENTION_DAYS = 1
    rollup(Device.objects.get(sigfox_id="5173"), ago(100).replace(minute=0))
    on_partitions()
    before = row_counts()
    partitions = [p.name for p in partitions_list("readings_reading")]

    would = retention_apply(now=NOW, dry_run=True)

    assert row_counts() == before
    assert [p.name for p in partitions_list("readings_reading")] == partitions
    assert not RetentionRun.objects.exists()
    did = retention_apply(now=NOW)
    assert would.dry_run and not did.dry_run
    assert (would.readings, would.messages, would.bodies_cleared, would.rollups) == (
        did.readings, did.messages, did.bodies_cleared, did.rollups)
    assert sorted(would.partitions_dropped) == sorted(did.partitions_dropped)
    assert "would be deleted" in would.summary()


def test_device_pks_limit_a_run_to_those_devices(settings):
    devices = fleet(settings)
    retention_apply(now=NOW, device_pks=[devices["own 5"].pk])
    assert ages(devices["own 5"]) == [1, 3]
    assert ages(devices["site"]) == list(AGES)


def test_a_run_is_due_an_interval_after_the_last_policy_run(settings):
    settings.SIGFOX_RETENTION_INTERVAL_S = 3600
    assert retention_due(NOW)
    retention_apply(now=NOW)
    assert not retention_due(NOW + timedelta(minutes=59))
    assert retention_due(NOW + timedelta(hours=1))
    RetentionRun.objects.all().delete()
    retention_apply(now=NOW, trigger=PRUNE, older_than=timedelta(days=365))
    assert retention_due(NOW + timedelta(minutes=1))  # prunereadings applies no policy


def test_a_batch_costs_the_same_few_statements_whatever_its_size(settings):
    """Each batch deletes in a fixed number of statements (no per-row work,
    no Django collector): its time grows with the rows it removes only."""
    settings.SIGFOX_RAW_RETENTION_DAYS = 1

    def statements(batch_size: int) -> int:
        store("1A2B3C", [(ago(2) - timedelta(minutes=i), 1.0) for i in range(batch_size)])
        with CaptureQueriesContext(connection) as queries:
            retention_apply(now=NOW, batch_size=batch_size)
        assert not Reading.objects.exists()
        return len(queries)

    assert statements(5) == statements(500)


# -- PostgreSQL: whole partitions ------------------------------------------------------------


@on_postgresql
def test_partitions_past_the_site_policy_are_dropped_keeping_the_devices_kept_longer(settings):
    devices = fleet(settings)
    on_partitions()

    result = retention_apply(now=NOW)

    # Cutoff 2026-11-03 12:00: every month up to October goes whole; what
    # is left past the policy (early November, devices kept shorter) goes in batches.
    # June to August hold nothing: no drop (it would only make them anew).
    assert sorted(result.partitions_dropped) == sorted(
        f"readings_{table}_p2026{month:02}01" for table in ("reading", "message") for month in (5, 9, 10))
    assert ages(devices["own 60"]) == [1, 3, 7, 20, 45]  # 45 days: moved out of October's
    assert ages(devices["forever"]) == list(AGES)
    assert RetentionRun.objects.get().partitions_dropped == result.partitions_dropped

    # A range left with kept rows only is not dropped (moved) again every run.
    again = retention_apply(now=NOW + timedelta(hours=1))
    assert (again.partitions_dropped, again.readings, again.messages) == ([], 0, 0)

    # A month on, October is past the 60 days too: it goes, keeping the forever devices.
    later = retention_apply(now=NOW + timedelta(days=31))
    assert "readings_reading_p20261001" in later.partitions_dropped
    assert ages(devices["own 60"]) == [1, 3, 7, 20]  # its cutoff: 29 days before NOW
    assert ages(devices["forever"]) == list(AGES)


@on_postgresql
def test_a_partition_dropped_takes_its_downlinks_and_unlinks_their_acknowledges(settings):
    settings.SIGFOX_RAW_RETENTION_DAYS = 30
    device = store("1A2B3C", [(ago(200), 1.0), (ago(1), 2.0)])
    old = Message.objects.get(time=ago(200))
    downlink = Downlink.objects.create(device=device, message=old, data="00" * 8, mode=DownlinkMode.ONCE,
                                       answered_at=ago(200))
    Acknowledge.objects.create(device=device, time=ago(200), info_code=0, info_meaning="ACKED",
                               downlink=downlink, received_at=ago(200))
    on_partitions()

    result = retention_apply(now=NOW)

    assert "readings_message_p20260501" in result.partitions_dropped
    assert not Downlink.objects.exists()
    assert Acknowledge.objects.get().downlink_id is None
    connection.check_constraints()  # at commit, the acknowledge's key must not point at a dropped downlink


@on_postgresql
def test_rows_of_the_default_partition_go_in_batches(settings):
    settings.SIGFOX_RAW_RETENTION_DAYS = 30
    store("1A2B3C", [(ago(days), 1.0) for days in AGES])  # no partitions made: all in the default one
    result = retention_apply(now=NOW)
    assert result.partitions_dropped == []
    assert ages(Device.objects.get()) == [1, 3, 7, 20]


@on_postgresql
def test_a_second_run_at_once_is_refused():
    db = connection.settings_dict
    other = psycopg.connect(host=db["HOST"] or "127.0.0.1", port=db["PORT"] or 5432,
                            user=db["USER"], dbname=db["NAME"], autocommit=True)
    try:
        other.execute("SELECT pg_advisory_lock(%s)", [LOCK_KEY])  # a run in another worker
        with pytest.raises(RetentionBusy):
            retention_apply(now=NOW)
        assert not RetentionRun.objects.exists()
        other.execute("SELECT pg_advisory_unlock(%s)", [LOCK_KEY])
    finally:
        other.close()
    retention_apply(now=NOW)
    assert RetentionRun.objects.count() == 1
