"""readings.services.fastpath writes exactly the rows the ORM path (services) writes.

The same generated sequences of callbacks (retries, copies through other
sensor paths, late and out-of-order arrivals, counter wraps and resets,
padded ids, devices made in the admin, quantity scales) are applied once
through services.message_ingest, which takes the fast path for plain new
uplinks on PostgreSQL, and once through the ORM path alone; every row of
every table ingest writes must be the same.
"""

from datetime import UTC, datetime

import pytest
from django.conf import settings
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from readings.services import ingest as services
from readings.models import (
    Device,
    DeviceType,
    Message,
    MessageConflict,
    Quantity,
    QuantitySetting,
    Reading,
    Reception,
    SequenceGap,
    Series,
)
from readings.serializers import UplinkSerializer

pytestmark = [
    pytest.mark.skipif(
        settings.DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql",
        reason="the fast path runs on PostgreSQL only; CI runs the suite again on PostgreSQL",
    ),
    pytest.mark.django_db(transaction=True),
]

T0 = 1_700_000_000
NOW = datetime(2026, 11, 29, tzinfo=UTC)

callbacks = st.lists(
    st.fixed_dictionaries(
        {
            # Padded and unpadded spellings of the same devices.
            "device": st.sampled_from(["1A", "001a", "2B", "0002B", "3C"]),
            "slot": st.integers(0, 12),  # time = T0 + 600 s * slot: copies and neighbours
            "seqNumber": st.one_of(
                st.none(), st.integers(0, 12), st.sampled_from([4094, 4095, 0, 1, 2000])
            ),
            "sensor": st.sampled_from(["1", "1", "2"]),
            "temp": st.one_of(st.none(), st.integers(-20, 40)),
            "hum": st.one_of(st.none(), st.sampled_from([40, 41])),
            "lqi": st.one_of(st.none(), st.just("GOOD")),
            "extra": st.one_of(st.none(), st.sampled_from(["text", "NaN", "bad-rssi"])),
        }
    ),
    min_size=1,
    max_size=25,
)


def as_uplink(event: dict) -> services.UplinkCallback:
    body = {"device": event["device"], "time": T0 + 600 * event["slot"]}
    for name in ("seqNumber", "temp", "hum", "lqi"):
        if event[name] is not None:
            body[name] = event[name]
    if event["extra"] == "text":
        body["str"] = "ABCDEF"
    elif event["extra"] == "NaN":
        body["pressure"] = "NaN"
    elif event["extra"] == "bad-rssi":
        body["rssi"] = "loud"
    serializer = UplinkSerializer(data=body, context={"now": NOW})
    serializer.is_valid(raise_exception=True)
    return services.UplinkCallback(**serializer.validated_data, sensor=event["sensor"],
                           body_raw=repr(body), content_type="application/json")


def set_up() -> None:
    """What was there before the callbacks: a device with its series (whose plain
    uplinks take the fast path), a named device made in the admin, quantity scales."""
    device_type = DeviceType.objects.create(sigfox_id="ABC")
    Device.objects.create(sigfox_id="2B", name="Made in the admin", device_type=device_type)
    known = Device.objects.create(sigfox_id="1A")
    for sensor in ("1", "2"):
        for quantity in ("temp", "hum"):
            Series.objects.create(device=known, sensor=sensor, quantity=quantity, created_at=NOW)
    QuantitySetting.objects.create(device_type=device_type, quantity="temp", unit="°C", scale=0.1)
    QuantitySetting.objects.create(device=Device.objects.get(sigfox_id="2B"), quantity="hum",
                                   scale=2, offset=-1)


def clear() -> None:
    for model in (MessageConflict, SequenceGap, Reading, Reception, Message, QuantitySetting,
                  Series, Quantity, Device, DeviceType):
        model.objects.all().delete()


def snapshot() -> dict:
    """Every row ingest writes, without primary keys (the two runs number rows apart)."""
    return {
        "devices": sorted(Device.objects.values_list(
            "sigfox_id", "name", "first_seen", "last_seen", "device_type__sigfox_id",
            "series_refused")),
        "series": sorted(Series.objects.values_list("device__sigfox_id", "sensor", "quantity")),
        "messages": sorted(
            (m.device.sigfox_id, m.time, m.seq_number, m.sensor, m.body_raw, m.content_type,
             m.received_at, m.data, m.lqi, m.rssi, repr(m.values_raw), repr(m.text_values),
             repr(m.field_errors), m.downlink_data)
            for m in Message.objects.select_related("device")
        ),
        "readings": sorted(Reading.objects.values_list(
            "device__sigfox_id", "message__time", "sensor", "quantity", "value", "time", "from_payload")),
        "gaps": sorted(SequenceGap.objects.values_list(
            "device__sigfox_id", "message__time", "previous_seq_number", "seq_number", "missing",
            "reset", "time")),
        "conflicts": sorted(MessageConflict.objects.values_list(
            "message__device__sigfox_id", "message__time", "variable", "sensor", "kept_value",
            "other_value")),
    }


def apply(events: list[dict], *, fast: bool) -> list[str]:
    set_up()
    paths = []
    for event in events:
        uplink = as_uplink(event)
        if fast:
            result = services.message_ingest(uplink=uplink, now=NOW)
        else:
            result = services._message_ingest_orm(uplink=uplink, now=NOW)
        paths.append(result.path)
    return paths


@hypothesis_settings(max_examples=hypothesis_settings.default.max_examples // 4, deadline=None,
                     suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(events=callbacks)
def test_it_writes_the_same_rows_as_the_orm_path(events):
    clear()
    paths = apply(events, fast=True)
    through_both = snapshot()
    clear()
    apply(events, fast=False)
    through_orm = snapshot()
    clear()
    assert through_both == through_orm
    # A new frame of the device whose series are known takes the fast path: it really ran.
    first_of_1a = next((i for i, e in enumerate(events) if e["device"].lstrip("0").upper() == "1A"), None)
    if first_of_1a is not None:
        assert paths[first_of_1a] == "fast"


def test_it_takes_the_fast_path_for_a_plain_new_uplink_of_known_series():
    first = as_uplink({"device": "1A", "slot": 0, "seqNumber": 1, "sensor": "1", "temp": 21,
                       "hum": None, "lqi": None, "extra": None})
    # The first reading of a series registers it within the bounds, through the ORM.
    assert services.message_ingest(uplink=first, now=NOW).path == "orm"
    uplink = as_uplink({"device": "1A", "slot": 1, "seqNumber": 2, "sensor": "1", "temp": 21,
                        "hum": None, "lqi": None, "extra": None})
    assert services.message_ingest(uplink=uplink, now=NOW).path == "fast"
    # A copy of that frame is merged through the ORM.
    assert services.message_ingest(uplink=uplink, now=NOW).path == "orm"
    assert Message.objects.count() == 2


def test_it_records_a_reset_and_a_loss_as_the_orm_path_does():
    events = [
        {"device": "1A", "slot": 0, "seqNumber": 20, "sensor": "1", "temp": 1},
        {"device": "1A", "slot": 1, "seqNumber": 21, "sensor": "1", "temp": 2},
        {"device": "1A", "slot": 7, "seqNumber": 0, "sensor": "1", "temp": 3},  # an hour later
        {"device": "1A", "slot": 8, "seqNumber": 4, "sensor": "1", "temp": 4},
    ]
    events = [{"hum": None, "lqi": None, "extra": None, **event} for event in events]
    paths = apply(events, fast=True)
    assert paths == ["fast"] * 4  # set_up registered the series of 1A
    assert list(SequenceGap.objects.order_by("time").values_list(
        "previous_seq_number", "seq_number", "missing", "reset")) == [
        (21, 0, 0, True), (0, 4, 3, False)]
