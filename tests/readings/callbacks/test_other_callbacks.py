"""The callbacks about a device's health (CALLBACKS.md section 7): SERVICE STATUS
(/sigfox/status), ERROR (/sigfox/error), EVENT (/sigfox/event), GEOLOC (/sigfox/geoloc)."""

from datetime import UTC, datetime

import pytest
from django.db import transaction
from hypothesis import given
from hypothesis import strategies as st

from readings.models import (
    Device,
    DeviceEvent,
    DeviceLocation,
    Message,
    Reading,
    Rejection,
)
from readings.services import rejections
from tests.fuzzing import FUZZ, send
from tests.readings.callbacks.test_fuzz import ENCODINGS, identity, json_values, names

pytestmark = pytest.mark.django_db

T0 = 1700000000
TOKEN = "s3cret-Token_42"


@pytest.fixture(autouse=True)
def _fresh_rejection_windows():
    rejections._rejection_windows.clear()
    yield
    rejections._rejection_windows.clear()


def at(epoch_s: int) -> datetime:
    return datetime.fromtimestamp(epoch_s, tz=UTC)


def status_callback(**variables) -> dict:
    return {"device": "1A2B3C", "time": T0, "temp": 21.5, "batt": 3.3, "seqNumber": 42,
            **variables}


def error_callback(**variables) -> dict:
    return {"device": "1A2B3C", "time": T0, "severity": "ERROR",
            "info": "No message received since 2023-11-13 22:13:20", **variables}


def event_callback(**variables) -> dict:
    return {"time": T0, "severity": "ERROR", "eventType": "OFF_CONTRACT", "sourceType": "DEVICE",
            "sourceId": "1A2B3C", "groupId": "5a1b", "deviceInfo": {"id": "1A2B3C", "name": "kit"},
            "deviceShortCause": "Token expired", **variables}


def geoloc_callback(**variables) -> dict:
    return {"device": "1A2B3C", "time": T0, "lat": 43.6, "lng": 1.44, "radius": 2000,
            "geolocSource": "2", "seqNumber": 42, **variables}


CALLBACKS = {
    "/sigfox/status": status_callback,
    "/sigfox/error": error_callback,
    "/sigfox/event": event_callback,
    "/sigfox/geoloc": geoloc_callback,
}


def stored_count() -> dict[str, int]:
    return {model.__name__: model.objects.count()
            for model in (Device, Message, Reading, DeviceEvent, DeviceLocation)}


def nothing_stored() -> bool:
    return not any(stored_count().values())


def assert_stored(response):
    assert response.status_code == 204, response.content
    assert response.content == b""


def status_readings() -> dict[str, float]:
    return dict(Reading.objects.filter(sensor="status").values_list("quantity", "value"))


# Every endpoint


@pytest.mark.parametrize("path", CALLBACKS)
def test_it_accepts_every_kind_in_every_encoding(send_callback, callback_encoding, path):
    assert_stored(send_callback(path, CALLBACKS[path](), callback_encoding))
    assert Device.objects.filter(sigfox_id="1A2B3C").exists()


@pytest.mark.parametrize("path", CALLBACKS)
def test_it_requires_the_token(send_callback, settings, path):
    settings.SIGFOX_CALLBACK_TOKEN = TOKEN
    response = send_callback(path, CALLBACKS[path]())
    assert response.status_code == 401, response.content
    assert nothing_stored()


@pytest.mark.parametrize("path", CALLBACKS)
def test_it_accepts_the_token(send_callback, settings, path):
    settings.SIGFOX_CALLBACK_TOKEN = TOKEN
    response = send_callback(path, CALLBACKS[path](), headers={"Authorization": f"Bearer {TOKEN}"})
    assert_stored(response)


@pytest.mark.parametrize("path", CALLBACKS)
def test_it_stores_a_retry_once(send_callback, path):
    assert_stored(send_callback(path, CALLBACKS[path]()))
    counts = stored_count()
    assert_stored(send_callback(path, CALLBACKS[path]()))
    assert_stored(send_callback(path, CALLBACKS[path](), "form"))
    assert stored_count() == counts


@pytest.mark.parametrize("path", CALLBACKS)
def test_it_refuses_a_bad_time_and_records_why(send_callback, path):
    response = send_callback(path, CALLBACKS[path](time="yesterday"))
    assert response.status_code == 400
    assert response.json() == {"time": ["Must be a whole number of Unix epoch seconds."]}
    assert nothing_stored()
    assert Rejection.objects.get().path == path


@pytest.mark.parametrize("path", CALLBACKS)
def test_it_refuses_a_body_that_is_no_object(client, path):
    response = client.post(path, "[1, 2]", content_type="application/json")
    assert response.status_code == 400
    assert nothing_stored()


@pytest.mark.parametrize("path", CALLBACKS)
def test_it_refuses_an_unknown_content_type(client, path):
    response = client.post(path, b"\x01\x02", content_type="application/octet-stream")
    assert response.status_code == 415
    assert nothing_stored()


@pytest.mark.parametrize("path", ["/sigfox/status", "/sigfox/error", "/sigfox/geoloc"])
def test_it_refuses_a_bad_device(send_callback, path):
    response = send_callback(path, CALLBACKS[path](device="not-hex"))
    assert response.status_code == 400
    assert response.json() == {"device": ["Must be hexadecimal (0-9, A-F)."]}
    assert nothing_stored()


# SERVICE STATUS


def test_status_makes_readings_of_sensor_status(send_callback, callback_encoding):
    assert_stored(send_callback("/sigfox/status", status_callback(), callback_encoding))
    message = Message.objects.get()
    assert (message.sensor, message.time, message.seq_number) == ("status", at(T0), 42)
    assert status_readings() == {"module_temp_c": 21.5, "battery_v": 3.3}


def test_status_keeps_the_values_as_sent(send_callback):
    assert_stored(send_callback("/sigfox/status", status_callback(temp="-4", batt="3.25")))
    message = Message.objects.get()
    assert message.values_raw == {"status": {"module_temp_c": -4, "battery_v": 3.25}}
    assert '"temp": "-4"' in message.body_raw


def test_status_keeps_the_radio_variables(send_callback):
    send_callback("/sigfox/status", status_callback(station="1B2C", rssi=-120.5, snr=12.0))
    message = Message.objects.get()
    assert (message.station, message.rssi, message.snr) == ("1B2C", -120.5, 12.0)
    assert message.receptions.get().station == "1B2C"


def test_status_readings_are_in_the_read_api(send_callback, admin_client):
    send_callback("/sigfox/status", status_callback())
    response = admin_client.get("/api/readings/?device=1A2B3C&sensor=status")
    assert response.status_code == 200, response.content
    rows = {r["quantity"]: (r["value"], r["unit"]) for r in response.json()["results"]}
    assert rows == {"module_temp_c": (21.5, "°C"), "battery_v": (3.3, "V")}


def test_status_registers_the_device_as_seen(send_callback):
    send_callback("/sigfox/status", status_callback())
    device = Device.objects.get()
    assert device.first_seen == device.last_seen == at(T0)


def test_status_of_the_second_of_a_data_frame_still_makes_its_readings(send_callback):
    assert_stored(send_callback("/data/1", {"device": "1A2B3C", "time": T0, "temp": 19}))
    assert_stored(send_callback("/sigfox/status", status_callback(seqNumber=None)))
    assert Message.objects.count() == 1
    assert set(Reading.objects.values_list("sensor", "quantity")) == {
        ("1", "temp"), ("status", "module_temp_c"), ("status", "battery_v")}
    assert Message.objects.get().values_raw == {
        "1": {"temp": 19}, "status": {"module_temp_c": 21.5, "battery_v": 3.3}}


def test_status_keeps_the_frame_over_a_bad_value(send_callback):
    assert_stored(send_callback("/sigfox/status", status_callback(temp="hot")))
    message = Message.objects.get()
    assert status_readings() == {"battery_v": 3.3}
    assert message.field_errors == {"temp": "Must be a number or a string holding one."}


@pytest.mark.parametrize("batt", ["NaN", "Infinity", True])
def test_status_makes_no_reading_of_a_value_that_is_no_finite_number(send_callback, batt):
    assert_stored(send_callback("/sigfox/status", status_callback(batt=batt)))
    assert status_readings() == {"module_temp_c": 21.5}
    assert "batt" in Message.objects.get().field_errors


def test_status_keeps_the_frame_over_a_bad_seq_number(send_callback):
    assert_stored(send_callback("/sigfox/status", status_callback(seqNumber=5000)))
    message = Message.objects.get()
    assert message.seq_number is None
    assert "seqNumber" in message.field_errors
    assert status_readings() == {"module_temp_c": 21.5, "battery_v": 3.3}


def test_status_without_values_is_stored_as_a_message(send_callback):
    assert_stored(send_callback("/sigfox/status", {"device": "1A2B3C", "time": T0, "temp": "null"}))
    assert Message.objects.get().sensor == "status"
    assert not Reading.objects.exists()


def test_status_does_not_read_other_fields(send_callback):
    assert_stored(send_callback("/sigfox/status", status_callback(hum=40)))
    assert status_readings() == {"module_temp_c": 21.5, "battery_v": 3.3}


def test_status_applies_a_scale_to_the_battery(send_callback):
    device = Device.objects.create(sigfox_id="1A2B3C")
    device.quantity_settings.create(quantity="battery_v", unit="V", scale=0.001)
    assert_stored(send_callback("/sigfox/status", status_callback(batt=3300)))
    assert status_readings()["battery_v"] == pytest.approx(3.3)
    assert Message.objects.get().values_raw["status"]["battery_v"] == 3300


# ERROR


def test_error_is_an_event_of_the_device(send_callback, callback_encoding):
    assert_stored(send_callback("/sigfox/error", error_callback(), callback_encoding))
    event = DeviceEvent.objects.get()
    assert (event.device.sigfox_id, event.time, event.kind) == ("1A2B3C", at(T0), "error")
    assert (event.severity, event.event_type) == ("ERROR", "")
    assert event.info == "No message received since 2023-11-13 22:13:20"
    assert event.body_raw


def test_error_registers_an_unknown_device_as_not_seen(send_callback):
    assert_stored(send_callback("/sigfox/error", error_callback(device="004e2f1a")))
    device = Device.objects.get()
    assert device.sigfox_id == "4E2F1A"
    assert (device.first_seen, device.last_seen) == (None, None)
    assert not Message.objects.exists()


def test_error_leaves_the_last_seen_of_a_known_device(send_callback):
    send_callback("/data/1", {"device": "1A2B3C", "time": T0 - 86400, "temp": 20})
    assert_stored(send_callback("/sigfox/error", error_callback()))
    assert Device.objects.get().last_seen == at(T0 - 86400)
    assert DeviceEvent.objects.get().device == Device.objects.get()


def test_error_writes_the_severity_in_upper_case(send_callback):
    send_callback("/sigfox/error", error_callback(severity="warn", info="Sigfox network issues"))
    assert DeviceEvent.objects.get().severity == "WARN"


def test_error_and_warning_of_one_second_are_two_events(send_callback):
    send_callback("/sigfox/error", error_callback())
    send_callback("/sigfox/error", error_callback(severity="WARN", info="Network issues"))
    assert sorted(DeviceEvent.objects.values_list("severity", flat=True)) == ["ERROR", "WARN"]


def test_error_of_two_devices_at_one_time_are_two_events(send_callback):
    send_callback("/sigfox/error", error_callback())
    send_callback("/sigfox/error", error_callback(device="BF1327"))
    assert DeviceEvent.objects.count() == 2


def test_error_cuts_a_long_info(send_callback):
    assert_stored(send_callback("/sigfox/error", error_callback(info="x" * 5000)))
    event = DeviceEvent.objects.get()
    assert event.info == "x" * 1000
    assert len(event.body_raw) > 5000


def test_error_is_kept_over_a_bad_field(send_callback):
    assert_stored(send_callback("/sigfox/error", error_callback(severity="S" * 40)))
    event = DeviceEvent.objects.get()
    assert event.severity == ""
    assert event.field_errors == {"severity": "Ensure this field has no more than 16 characters."}


# EVENT


def test_event_is_an_event_of_the_device_it_names(send_callback, callback_encoding):
    assert_stored(send_callback("/sigfox/event", event_callback(), callback_encoding))
    event = DeviceEvent.objects.get()
    assert (event.device.sigfox_id, event.time, event.kind) == ("1A2B3C", at(T0), "event")
    assert (event.event_type, event.severity, event.info) == ("OFF_CONTRACT", "ERROR", "Token expired")
    # deviceInfo arrives as JSON text in a form or a query string: kept as the object.
    assert event.variables["deviceInfo"] == {"id": "1A2B3C", "name": "kit"}
    assert event.variables["groupId"] == "5a1b"


def test_event_prefers_the_device_field(send_callback):
    send_callback("/sigfox/event", event_callback(device="BF1327"))
    assert DeviceEvent.objects.get().device.sigfox_id == "BF1327"


def test_event_reads_the_device_from_device_info(send_callback):
    variables = event_callback(sourceType="DEVICE_TYPE", sourceId="5f0c1a2b3c4d5e6f7a8b9c0d")
    assert_stored(send_callback("/sigfox/event", variables, "form"))
    assert DeviceEvent.objects.get().device.sigfox_id == "1A2B3C"


def test_event_that_names_no_device_is_kept_without_one(send_callback):
    variables = {"time": T0, "severity": "INFO", "eventType": "CONTRACT_ENDED",
                 "sourceType": "GROUP", "sourceId": "5a1b"}
    assert_stored(send_callback("/sigfox/event", variables))
    assert_stored(send_callback("/sigfox/event", variables, "get"))
    event = DeviceEvent.objects.get()
    assert event.device is None
    assert not Device.objects.exists()


def test_event_of_two_sources_at_one_time_are_two_events(send_callback):
    variables = {"time": T0, "eventType": "X", "sourceType": "GROUP"}
    send_callback("/sigfox/event", {**variables, "sourceId": "5a1b"})
    send_callback("/sigfox/event", {**variables, "sourceId": "5a1c"})
    assert DeviceEvent.objects.count() == 2


def test_event_refuses_a_device_source_that_is_no_device_id(send_callback):
    response = send_callback("/sigfox/event", event_callback(sourceId="zz"))
    assert response.status_code == 400
    assert response.json() == {
        "sourceId": ["The id of a DEVICE source must be 1 to 8 hexadecimal digits."]}
    assert nothing_stored()


def test_event_requires_a_time(send_callback):
    variables = event_callback()
    del variables["time"]
    response = send_callback("/sigfox/event", variables)
    assert response.status_code == 400
    assert response.json() == {"time": ["This field is required."]}
    assert nothing_stored()


def test_event_registers_an_unknown_device_as_not_seen(send_callback):
    send_callback("/sigfox/event", event_callback())
    device = Device.objects.get()
    assert (device.sigfox_id, device.last_seen) == ("1A2B3C", None)


def test_event_does_not_keep_the_token(send_callback, settings):
    settings.SIGFOX_CALLBACK_TOKEN = TOKEN
    assert_stored(send_callback("/sigfox/event", event_callback(), "get", query=f"token={TOKEN}"))
    event = DeviceEvent.objects.get()
    assert "token" not in event.variables
    assert TOKEN not in event.body_raw


def test_event_keeps_the_variables_of_its_type(send_callback):
    variables = event_callback(eventType="BREAK_IN_SEQUENCE", deviceLastSeqnumber=40,
                               deviceMessageSeqnumber=42, deviceMessageTime="2023-11-14 22:13:20")
    send_callback("/sigfox/event", variables)
    kept = DeviceEvent.objects.get().variables
    assert (kept["deviceLastSeqnumber"], kept["deviceMessageSeqnumber"]) == (40, 42)
    assert kept["deviceMessageTime"] == "2023-11-14 22:13:20"


# GEOLOC


def test_geoloc_is_a_location_of_the_message(send_callback, callback_encoding):
    assert_stored(send_callback("/sigfox/geoloc", geoloc_callback(), callback_encoding))
    location = DeviceLocation.objects.get()
    assert (location.device.sigfox_id, location.time) == ("1A2B3C", at(T0))
    assert (location.lat, location.lng, location.radius_m) == (43.6, 1.44, 2000)
    assert (location.source, location.sigfox_source, location.seq_number) == ("geoloc", "2", 42)


def test_geoloc_keeps_one_location_per_message(send_callback):
    send_callback("/sigfox/geoloc", geoloc_callback())
    send_callback("/sigfox/geoloc", geoloc_callback(time=T0 + 600, lat=43.7))
    send_callback("/sigfox/geoloc", geoloc_callback(lat=10))  # a late copy: the first stays
    assert list(DeviceLocation.objects.order_by("time").values_list("lat", flat=True)) == [43.6, 43.7]


@pytest.mark.parametrize("field", ["lat", "lng"])
def test_geoloc_requires_a_position(send_callback, field):
    variables = geoloc_callback()
    del variables[field]
    response = send_callback("/sigfox/geoloc", variables)
    assert response.status_code == 400
    assert response.json() == {field: ["This field is required."]}
    assert nothing_stored()


def test_geoloc_refuses_a_position_off_the_earth(send_callback):
    response = send_callback("/sigfox/geoloc", geoloc_callback(lat=91))
    assert response.status_code == 400
    assert response.json() == {"lat": ["A latitude must be between -90 and 90 degrees."]}
    assert nothing_stored()


def test_geoloc_refuses_a_null_position(send_callback):
    response = send_callback("/sigfox/geoloc", geoloc_callback(lng=None), "form")
    assert response.status_code == 400
    assert response.json() == {"lng": ["A GEOLOC callback needs a longitude."]}


def test_geoloc_is_kept_over_a_bad_radius(send_callback):
    assert_stored(send_callback("/sigfox/geoloc", geoloc_callback(radius=-5)))
    location = DeviceLocation.objects.get()
    assert location.radius_m is None
    assert location.field_errors == {"radius": "Must be from 0 to 20037509 metres."}


def test_geoloc_registers_an_unknown_device_as_not_seen(send_callback):
    send_callback("/sigfox/geoloc", geoloc_callback())
    device = Device.objects.get()
    assert (device.first_seen, device.last_seen) == (None, None)


# Where they are shown: the read API, the admin


def test_events_are_in_the_read_api_newest_first(send_callback, admin_client):
    send_callback("/sigfox/error", error_callback())
    send_callback("/sigfox/event", event_callback(time=T0 + 60))
    send_callback("/sigfox/error", error_callback(device="BF1327"))
    response = admin_client.get("/api/devices/1a2b3c/events/")
    assert response.status_code == 200, response.content
    rows = response.json()["results"]
    assert [(r["kind"], r["time"], r["device"]) for r in rows] == [
        ("event", "2023-11-14T22:14:20Z", "1A2B3C"), ("error", "2023-11-14T22:13:20Z", "1A2B3C")]
    assert rows[0]["variables"]["eventType"] == "OFF_CONTRACT"
    assert rows[1]["info"] == "No message received since 2023-11-13 22:13:20"


def test_events_of_an_unknown_device_are_not_found(admin_client):
    response = admin_client.get("/api/devices/1A2B3C/events/")
    assert response.status_code == 404
    assert response.json() == {"detail": "No such device."}


def test_events_need_a_reader(client, send_callback):
    send_callback("/sigfox/error", error_callback())
    assert client.get("/api/devices/1A2B3C/events/").status_code == 401


@pytest.mark.parametrize("model", ["deviceevent", "devicelocation"])
def test_the_admin_lists_and_shows_them_read_only(send_callback, admin_client, model):
    send_callback("/sigfox/event", event_callback())
    send_callback("/sigfox/geoloc", geoloc_callback())
    queries = ["", "?q=1a2b", "?time__year=2023", "?o=1"]
    for query in queries + (["?kind__exact=event"] if model == "deviceevent" else []):
        response = admin_client.get(f"/admin/readings/{model}/{query}")
        assert response.status_code == 200, query
        assert b"1A2B3C" in response.content
    pk = (DeviceEvent if model == "deviceevent" else DeviceLocation).objects.get().pk
    response = admin_client.get(f"/admin/readings/{model}/{pk}/change/")
    assert response.status_code == 200
    assert b'name="_save"' not in response.content
    assert admin_client.get(f"/admin/readings/{model}/add/").status_code == 403


# Hostile input


OUR_VARIABLES = st.sampled_from([
    "temp", "batt", "severity", "info", "eventType", "sourceType", "sourceId", "deviceInfo",
    "deviceCause", "deviceShortCause", "radius", "geolocSource", "lat", "lng", "seqNumber"])
hostile = st.builds(
    lambda ident, rest: {**rest, **ident}, identity,
    st.dictionaries(OUR_VARIABLES | names, json_values, max_size=10))


@pytest.mark.fuzz
@FUZZ
@given(variables=hostile, encoding=st.sampled_from(ENCODINGS), path=st.sampled_from(list(CALLBACKS)))
def test_it_never_fails_on_any_callback(client, variables, encoding, path):
    with transaction.atomic():
        before = stored_count()
        response = send(client, encoding, path, variables)
        assert response.status_code < 500, response.content[:300]
        if response.status_code >= 400:
            assert stored_count() == before
            response.json()
        transaction.set_rollback(True)


@pytest.mark.parametrize("path", ["/sigfox/error", "/sigfox/event"])
@pytest.mark.parametrize("absent", [None, "null", "N/A", ""])
def test_an_absent_severity_or_info_is_kept_empty(send_callback, path, absent):
    assert_stored(send_callback(path, CALLBACKS[path](severity=absent, info=absent,
                                                      deviceShortCause=absent)))
    event = DeviceEvent.objects.get()
    assert (event.severity, event.info) == ("", "")
