"""Rollups (readings.services.rollups): every hourly and daily row equals
what the readings give, over generated histories; the watermark never passes
a reading that may still be committed."""

import json
import math
import threading
from collections import defaultdict
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from readings import db
from readings.models import (
    Device,
    Message,
    QuantitySetting,
    Reading,
    Rollup,
    RollupDirty,
    RollupProgress,
    RollupResolution,
)
from readings.services.maintenance import messages_redecode
from readings.services.rollups import RollupRefresh, rollups_invalidate, rollups_refresh
from tests.helpers import T0, minutes, store

NOW = T0 + timedelta(days=30)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def refreshed(now: datetime = NOW, **options) -> RollupRefresh:
    """rollups_refresh until what was committed before is in: one pass on
    SQLite; on PostgreSQL the pass after the one that notes the candidate."""
    passes = [rollups_refresh(now=now, **options) for _ in range(2 if db.is_postgresql() else 1)]
    return RollupRefresh(readings=sum(p.readings for p in passes),
                         hours=sum(p.hours for p in passes), days=sum(p.days for p in passes),
                         caught_up=passes[-1].caught_up)


def expected_rollups() -> dict[tuple, tuple]:
    """{(device pk, sensor, quantity, resolution_s, start): (count, sum, (first_e, first),
    (min_e, min), (max_e, max), (last_e, last))} from the readings, in Python."""
    groups = defaultdict(list)
    for device_pk, sensor, quantity, time, value in Reading.objects.values_list(
            "device_id", "sensor", "quantity", "time", "value"):
        for step in RollupResolution:
            start = EPOCH + (time - EPOCH) // timedelta(seconds=step) * timedelta(seconds=step)
            key = (device_pk, sensor, quantity, int(step), start)
            groups[key].append((time.timestamp(), value))
    return {
        key: (len(rows), math.fsum(v for _, v in rows), min(rows),
              min(rows, key=lambda r: (r[1], r[0])), max(rows, key=lambda r: (r[1], -r[0])),
              max(rows))
        for key, rows in groups.items()
    }


def stored_rollups() -> dict[tuple, tuple]:
    return {
        (r.device_id, r.sensor, r.quantity, r.resolution_s, r.start): (
            r.count, r.sum, (r.first_epoch_s, r.first), (r.min_epoch_s, r.min),
            (r.max_epoch_s, r.max), (r.last_epoch_s, r.last))
        for r in Rollup.objects.all()
    }


def assert_rollups_match_readings() -> None:
    expected, stored = expected_rollups(), stored_rollups()
    assert set(stored) == set(expected)
    for key, (count, total, *pairs) in expected.items():
        got_count, got_total, *got_pairs = stored[key]
        assert got_count == count, key
        assert math.isclose(got_total, total, rel_tol=1e-9, abs_tol=1e-9), key
        for (e, value), (got_e, got_value) in zip(pairs, got_pairs, strict=True):
            # Epochs as the series query computes them: whole milliseconds apart here.
            assert (db.ms(got_e), got_value) == (db.ms(e), value), key


# -- generated histories ------------------------------------------------------------------------

HOUR_MS = 3_600_000
# Times cluster on hour and day edges (a millisecond either side), else fall anywhere in three
# days; whole milliseconds (SQLite's strftime rounds a time to the millisecond).
times_ms = st.one_of(
    st.builds(lambda hour, side: hour * HOUR_MS + side,
              st.integers(-2, 50), st.sampled_from([-1, 0, 1])),
    st.integers(-2 * HOUR_MS, 72 * HOUR_MS),
)
readings_st = st.lists(
    st.tuples(st.sampled_from(["1A2B3C", "BF1327"]), st.sampled_from(["1", "2"]),
              st.sampled_from(["temp", "hum"]), times_ms,
              st.sampled_from([-1.5, 0.0, 1.0, 2.0, 2.0, 1e300])),
    min_size=1, max_size=25,
)
steps_st = st.lists(
    st.one_of(
        st.tuples(st.just("add"), readings_st),
        st.tuples(st.just("refresh"), st.integers(1, 30)),  # a pass taking at most this many
        st.tuples(st.just("delete"), st.sampled_from([-1.5, 0.0, 1.0, 2.0])),  # readings of a value
    ),
    min_size=1, max_size=6,
)


def add(readings) -> None:
    taken = set(Reading.objects.values_list("device__sigfox_id", "sensor", "quantity", "time"))
    series = defaultdict(dict)
    for device, sensor, quantity, at_ms, value in readings:
        time = T0 + timedelta(milliseconds=at_ms)
        if (device, sensor, quantity, time) not in taken:
            series[(device, sensor, quantity)][time] = value
    for (device, sensor, quantity), points in series.items():
        store(device, sorted(points.items()), sensor=sensor, quantity=quantity)


@pytest.mark.django_db
@hypothesis_settings(max_examples=hypothesis_settings.default.max_examples // 4, deadline=None,
                     suppress_health_check=[HealthCheck.too_slow])
@given(steps=steps_st)
def test_rollups_equal_the_readings_over_any_history(steps):
    Device.objects.all().delete()
    RollupProgress.objects.all().delete()
    RollupDirty.objects.all().delete()
    for step, argument in steps:
        if step == "add":
            add(argument)  # late readings too: any time, after any refresh
        elif step == "refresh":
            rollups_refresh(now=NOW, max_readings=argument)
        else:
            doomed = Reading.objects.filter(value=argument)
            rollups_invalidate(doomed)
            doomed.delete()
    while not refreshed().caught_up:
        pass
    assert_rollups_match_readings()


# -- the watermark ------------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_pass_takes_at_most_max_readings_and_the_next_one_goes_on():
    store("1A2B3C", minutes(50))
    first = rollups_refresh(now=NOW, max_readings=20)
    if db.is_postgresql():  # the first pass only notes the candidate
        assert first == RollupRefresh(readings=0, hours=0, days=0, caught_up=True)
        first = rollups_refresh(now=NOW, max_readings=20)
    assert (first.readings, first.caught_up) == (20, False)
    assert RollupProgress.objects.get().reading_id == Reading.objects.order_by("pk")[19].pk
    second = rollups_refresh(now=NOW, max_readings=20)
    third = rollups_refresh(now=NOW, max_readings=20)
    assert (second.readings, third.readings, third.caught_up) == (20, 10, True)
    assert_rollups_match_readings()


@pytest.mark.django_db
def test_a_late_reading_recomputes_its_hour_and_day_only():
    store("1A2B3C", minutes(180))
    refreshed()
    store("1A2B3C", [(T0 + timedelta(minutes=30, seconds=1), 99.0)])  # into the first hour
    result = refreshed()
    assert (result.readings, result.hours, result.days) == (1, 1, 1)
    assert Rollup.objects.get(resolution_s=3600, start=T0).max == 99.0
    assert Rollup.objects.get(resolution_s=86400, start=T0).count == 181
    assert_rollups_match_readings()


@pytest.mark.django_db
def test_hours_past_the_raw_retention_keep_their_rollups(settings):
    store("1A2B3C", minutes(120))
    refreshed(now=T0 + timedelta(days=1))
    before = stored_rollups()
    # Retention removed the readings of the first hour; a deletion in it comes later.
    Reading.objects.filter(time__lt=T0 + timedelta(minutes=50)).delete()
    rollups_invalidate(Reading.objects.filter(time__lt=T0 + timedelta(hours=1)))
    Reading.objects.filter(time__lt=T0 + timedelta(hours=1)).delete()
    settings.SIGFOX_RAW_RETENTION_DAYS = 30
    result = refreshed(now=T0 + timedelta(days=30, minutes=30))
    assert (result.hours, result.days) == (0, 0)
    assert stored_rollups() == before
    assert not RollupDirty.objects.exists()


@pytest.mark.django_db
def test_the_rollups_of_a_deleted_device_go_with_it_and_its_dirty_hours_are_dropped():
    store("1A2B3C", minutes(10))
    store("BF1327", minutes(10))
    refreshed()
    gone = Device.objects.get(sigfox_id="BF1327")
    rollups_invalidate(Reading.objects.filter(device=gone))
    gone.delete()
    assert refreshed().hours == 0
    assert not RollupDirty.objects.exists()
    assert set(Rollup.objects.values_list("device__sigfox_id", flat=True)) == {"1A2B3C"}


@pytest.mark.django_db
def test_the_first_pass_over_an_old_database_catches_up_over_several_passes():
    store("1A2B3C", minutes(100))
    taken = []
    for _ in range(8):
        result = rollups_refresh(now=NOW, max_readings=30)
        taken.append(result.readings)
        if result.caught_up and sum(taken) == 100:
            break
    assert [n for n in taken if n] == [30, 30, 30, 10]
    assert_rollups_match_readings()


def _insert_in_open_transaction(device: Device, time: datetime, inserted: threading.Event,
                                release: threading.Event, done: threading.Event) -> None:
    """In a connection of its own: insert a reading, then hold the transaction
    open until released."""
    from django.db import connection, transaction

    try:
        with transaction.atomic():
            message = Message.objects.create(device=device, time=time, sensor="1", received_at=NOW)
            Reading.objects.create(message=message, device=device, sensor="1", quantity="temp",
                                   value=-40.0, time=time)
            inserted.set()
            release.wait(timeout=30)
    finally:
        connection.close()
        done.set()


@pytest.mark.django_db(transaction=True)
def test_the_watermark_waits_for_a_transaction_that_may_commit_a_lower_id():
    if not db.is_postgresql():
        pytest.skip("SQLite has one writer at a time: what it committed is safe at once")
    device = store("1A2B3C", minutes(5))
    inserted, release, done = threading.Event(), threading.Event(), threading.Event()
    writer = threading.Thread(target=_insert_in_open_transaction,
                              args=(device, T0 + timedelta(hours=2), inserted, release, done))
    writer.start()
    try:
        assert inserted.wait(timeout=30)
        store("1A2B3C", minutes(5, start=T0 + timedelta(hours=3)))  # higher ids, committed
        newest = Reading.objects.order_by("-pk").values_list("pk", flat=True).first()
        rollups_refresh(now=NOW)  # notes the candidate: the newest id, with the writer running
        assert RollupProgress.objects.get().candidate_id == newest
        for _ in range(2):
            assert rollups_refresh(now=NOW).readings == 0
        assert RollupProgress.objects.get().reading_id == 0
    finally:
        release.set()
        done.wait(timeout=30)
        writer.join(timeout=30)
    taken = rollups_refresh(now=NOW)
    assert taken.readings == 11
    assert Rollup.objects.get(resolution_s=3600, start=T0 + timedelta(hours=2)).min == -40.0
    assert_rollups_match_readings()


# -- what marks hours dirty ---------------------------------------------------------------------


@pytest.mark.django_db
def test_redecode_recomputes_the_hours_whose_readings_it_replaces_or_rescales(post_json):
    for i, data in enumerate(["15e40c", "16e40c", "17e40c"]):
        body = {"device": "1A2B3C", "time": str(1767225600 + 1800 * i), "data": data, "hum": 40 + i}
        assert post_json(json.dumps(body)).status_code == 204
    Device.objects.update(payload_config="temp::int:8 vbat::uint:16:little-endian")
    messages_redecode()
    refreshed()
    assert_rollups_match_readings()
    Device.objects.update(payload_config="temp::int:8")  # vbat goes, temp stays
    device = Device.objects.get()
    QuantitySetting.objects.create(device=device, quantity="hum", scale=2.0, offset=1.0)
    messages_redecode()
    assert RollupDirty.objects.exists()
    refreshed()
    assert not Rollup.objects.filter(quantity="vbat").exists()
    assert Rollup.objects.get(quantity="hum", resolution_s=86400).max == 85.0
    assert_rollups_match_readings()


@pytest.mark.django_db
def test_an_admin_deletion_of_readings_or_messages_recomputes_their_hours(admin_client):
    store("1A2B3C", minutes(150, values=lambda i: float(i % 11)))
    refreshed()
    doomed = list(Reading.objects.filter(value=10.0).values_list("pk", flat=True))
    response = admin_client.post("/admin/readings/reading/", {
        "action": "delete_selected", "_selected_action": doomed, "post": "yes"})
    assert response.status_code == 302
    reading = Reading.objects.filter(value=9.0).first()
    response = admin_client.post(f"/admin/readings/reading/{reading.pk}/delete/", {"post": "yes"})
    assert response.status_code == 302
    messages = list(Message.objects.filter(readings__value=8.0).values_list("pk", flat=True))
    response = admin_client.post("/admin/readings/message/", {
        "action": "delete_selected", "_selected_action": messages, "post": "yes"})
    assert response.status_code == 302
    assert RollupDirty.objects.exists()
    refreshed()
    assert not Rollup.objects.filter(max=10.0).exists()
    assert_rollups_match_readings()
