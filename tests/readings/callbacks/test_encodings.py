"""/data/<sensor>: one uplink, whatever method and content type the backend uses."""

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from readings.models import Device, DeviceType, Message, Reading, Reception

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parents[3]
FIRMWARE_CONFIG = (ROOT / "firmware" / "PAYLOAD_CONFIG").read_text()
TIME = datetime(2023, 11, 14, 22, 13, 20, tzinfo=UTC)

# Every variable of DATA UPLINK, BIDIR and ADVANCED, plus two customData values.
EVERYTHING = {
    "device": "bf1327",
    "time": 1700000000,
    "seqNumber": 12,
    "data": "15E40C00006A0220",
    "deviceTypeId": "5f1a2b3c4d5e6f7a8b9c0d1e",
    "ack": True,
    "longPolling": False,
    "duplicate": False,
    "station": "1a2b",
    "rssi": -120.0,
    "snr": 12.5,
    "avgSnr": 20.25,
    "lat": 43.0,
    "lng": 1.0,
    "lqi": "GOOD",
    "linkQuality": 3,
    "operatorName": "SIGFOX France",
    "countryCode": 250,
    "fixedLat": 43.6,
    "fixedLng": 1.44,
    "duplicates": [
        {"bsId": "1A2B", "rssi": -120.0, "snr": 12.5, "nbRep": 3},
        {"bsId": "3C4D", "rssi": -131.5, "snr": 8.0, "nbRep": 1},
    ],
    "computedLocation": {"lat": 43.61, "lng": 1.44, "radius": 1500, "source": 2, "status": 1},
    "temp": 21.5,
    "hum": 40,
}

EXPECTED_MESSAGE = {
    "device": "BF1327",
    "device_type": "5F1A2B3C4D5E6F7A8B9C0D1E",
    "time": TIME,
    "seq_number": 12,
    "sensor": "1",
    "data": "15e40c00006a0220",
    "ack": True,
    "long_polling": False,
    "station": "1A2B",
    "rssi": -120.0,
    "snr": 12.5,
    "avg_snr": 20.25,
    "lat": 43.0,
    "lng": 1.0,
    "lqi": "GOOD",
    "link_quality": 3,
    "operator_name": "SIGFOX France",
    "country_code": "250",
    "fixed_lat": 43.6,
    "fixed_lng": 1.44,
    "duplicates": EVERYTHING["duplicates"],
    "computed_location": EVERYTHING["computedLocation"],
    "downlink_data": "",
}

EXPECTED_READINGS = {
    ("temp", 21.5, False),
    ("hum", 40.0, False),
    ("vbat_mv", 3300.0, True),
    ("analog_raw", 0.0, True),
    ("interval_s", 618.0, True),
    ("demo", 0.0, True),
    ("temp_error", 0.0, True),
    ("vbat_error", 0.0, True),
    ("last_send_failed", 0.0, True),
    ("analog_on", 0.0, True),
    ("boot", 1.0, True),
}

# What the request itself decides, and so differs between encodings.
PER_REQUEST = {"id", "body_raw", "content_type", "received_at"}


@pytest.fixture(autouse=True)
def firmware_config(settings):
    settings.SIGFOX_PAYLOAD_CONFIG = FIRMWARE_CONFIG


def snapshot() -> dict:
    """Everything stored for the one message, without ids and per-request fields."""
    message = Message.objects.select_related("device", "device_type").get()
    fields = {
        field.name: getattr(message, field.attname)
        for field in Message._meta.concrete_fields
        if field.name not in PER_REQUEST and not field.is_relation
    }
    fields["device"] = message.device.sigfox_id
    fields["device_type"] = message.device_type.sigfox_id if message.device_type else None
    return {
        "message": fields,
        "readings": sorted(
            Reading.objects.values_list(
                "sensor", "quantity", "value", "time", "from_payload", "device__sigfox_id"
            )
        ),
        "receptions": list(Reception.objects.values_list("station", "rssi", "snr", "duplicate")),
        "devices": list(
            Device.objects.values_list(
                "sigfox_id", "device_type__sigfox_id", "first_seen", "last_seen"
            )
        ),
        "device_types": list(DeviceType.objects.values_list("sigfox_id", flat=True)),
    }


def test_it_stores_every_variable_in_every_encoding(send_callback, callback_encoding):
    response = send_callback("/data/1", EVERYTHING, callback_encoding)
    assert response.status_code == 204, response.content
    fields = snapshot()["message"]
    assert {name: fields[name] for name in EXPECTED_MESSAGE} == EXPECTED_MESSAGE


def test_it_stores_the_same_readings_in_every_encoding(send_callback, callback_encoding):
    send_callback("/data/1", EVERYTHING, callback_encoding)
    # customData "temp" (21.5) wins over the decoded one (21).
    assert set(Reading.objects.values_list("quantity", "value", "from_payload")) == EXPECTED_READINGS
    assert set(Reading.objects.values_list("sensor", "time")) == {("1", TIME)}


def test_it_stores_exactly_what_the_json_callback_stores(send_callback, callback_encoding):
    send_callback("/data/1", EVERYTHING, "json")
    reference = snapshot()
    Device.objects.all().delete()
    DeviceType.objects.all().delete()

    response = send_callback("/data/1", EVERYTHING, callback_encoding)

    assert response.status_code == 204
    assert snapshot() == reference


def test_it_answers_a_retry_in_another_encoding_as_the_same_message(
    send_callback, callback_encoding
):
    send_callback("/data/1", EVERYTHING, "form")
    response = send_callback("/data/1", EVERYTHING, callback_encoding)
    assert response.status_code == 204
    assert Message.objects.count() == 1
    assert Reading.objects.count() == len(EXPECTED_READINGS)


@pytest.mark.parametrize(
    "encoding, content_type",
    [
        ("json", "application/json"),
        ("json-strings", "application/json"),
        ("form", "application/x-www-form-urlencoded"),
        ("text-json", "text/plain"),
        ("text-form", "text/plain"),
        ("put-json", "application/json"),
        ("put-form", "application/x-www-form-urlencoded"),
        ("put-text-form", "text/plain"),
    ],
)
def test_it_records_the_content_type(send_callback, encoding, content_type):
    send_callback("/data/1", EVERYTHING, encoding)
    assert Message.objects.get().content_type == content_type


def test_it_keeps_a_form_body_as_received(client):
    body = "device=1A2B3C&time=1700000000&operatorName=SIGFOX+France&temp=21"
    client.post("/data/1", body, content_type="application/x-www-form-urlencoded")
    assert Message.objects.get().body_raw == body


def test_it_keeps_a_text_body_as_received(client):
    body = '\n  {"device":"1A2B3C","time":"1700000000","temp":21}\n'
    assert client.post("/data/1", body, content_type="text/plain").status_code == 204
    assert Message.objects.get().body_raw == body


def test_it_keeps_the_query_string_of_a_get_as_body_raw(client):
    client.get("/data/1?device=1A2B3C&time=1700000000&temp=21")
    assert Message.objects.get().body_raw == "device=1A2B3C&time=1700000000&temp=21"


def test_it_stores_nothing_in_content_type_for_a_get(client):
    client.get("/data/1?device=1A2B3C&time=1700000000&temp=21")
    assert Message.objects.get().content_type == ""


def test_it_decodes_escapes_in_a_form(client):
    body = "device=1A2B3C&time=1700000000&operatorName=SIGFOX+France%20%C3%A9&temp=%2D5.5"
    client.post("/data/1", body, content_type="application/x-www-form-urlencoded")
    message = Message.objects.get()
    assert message.operator_name == "SIGFOX France é"
    assert Reading.objects.get().value == -5.5


def test_it_decodes_escapes_in_a_query_string(client):
    client.get("/data/1?device=1A2B3C&time=1700000000&operatorName=SIGFOX+France&temp=%2D5.5")
    assert Message.objects.get().operator_name == "SIGFOX France"
    assert Reading.objects.get().value == -5.5


@pytest.mark.parametrize(
    "content_type",
    [
        "application/json; charset=utf-8",
        "application/x-www-form-urlencoded; charset=UTF-8",
        "text/plain;charset=UTF-8",
    ],
)
def test_it_accepts_a_charset_parameter(client, content_type):
    body = (
        json.dumps({"device": "1A2B3C", "time": 1700000000, "temp": 21})
        if "json" in content_type
        else "device=1A2B3C&time=1700000000&temp=21"
    )
    assert client.post("/data/1", body, content_type=content_type).status_code == 204
    assert Reading.objects.get().value == 21.0


@pytest.mark.parametrize(
    "name, sent, column, expected",
    [
        ("ack", True, "ack", True),
        ("ack", "true", "ack", True),
        ("ack", "false", "ack", False),
        ("ack", False, "ack", False),
        ("longPolling", "true", "long_polling", True),
        ("seqNumber", 12, "seq_number", 12),
        ("seqNumber", "12", "seq_number", 12),
        ("rssi", -120, "rssi", -120.0),
        ("rssi", "-120.00", "rssi", -120.0),
        ("rssi", "null", "rssi", None),
        ("rssi", None, "rssi", None),
        ("avgSnr", "N/A", "avg_snr", None),
        ("avgSnr", "17.85", "avg_snr", 17.85),
        ("lat", "43", "lat", 43.0),
        ("lng", -2, "lng", -2.0),
        ("linkQuality", "3", "link_quality", 3),
        ("countryCode", 250, "country_code", "250"),
        ("station", 1234, "station", "1234"),
    ],
)
def test_it_reads_a_variable_sent_as_a_json_type_or_a_string(
    send_callback, name, sent, column, expected
):
    variables = {"device": "1A2B3C", "time": 1700000000, "temp": 21, name: sent}
    assert send_callback("/data/1", variables).status_code == 204
    assert getattr(Message.objects.get(), column) == expected


def test_it_reads_a_device_id_sent_as_a_json_number(send_callback):
    send_callback("/data/1", {"device": 123456, "time": 1700000000, "temp": 21})
    assert Device.objects.get().sigfox_id == "123456"


@pytest.mark.parametrize(
    "sent, expected",
    [
        (12, 12.0), ("12", 12.0), ("-120.00", -120.0), (3.5, 3.5),
        (True, 1.0), ("true", 1.0), ("false", 0.0),
    ],
)
def test_it_reads_a_value_sent_as_a_json_type_or_a_string(send_callback, sent, expected):
    send_callback("/data/1", {"device": "1A2B3C", "time": "1700000000", "temp": sent})
    assert Reading.objects.get().value == expected


@pytest.mark.parametrize("sent", [None, "null", "N/A", ""])
def test_it_makes_no_reading_of_an_absent_value(send_callback, callback_encoding, sent):
    variables = {"device": "1A2B3C", "time": 1700000000, "temp": sent, "hum": 40}
    assert send_callback("/data/1", variables, callback_encoding).status_code == 204
    assert list(Reading.objects.values_list("quantity", flat=True)) == ["hum"]


@pytest.mark.parametrize("method", ["post", "put"])
@pytest.mark.parametrize(
    "content_type",
    ["application/xml", "multipart/form-data; boundary=x", "text/csv", "application/octet-stream"],
)
def test_it_refuses_an_unreadable_content_type(client, stored_rows, method, content_type):
    body = '{"device":"1A2B3C","time":"1700000000","temp":21}'
    response = getattr(client, method)("/data/1", body, content_type=content_type)
    assert response.status_code == 415
    assert not any(stored_rows().values())


def test_it_refuses_a_body_without_a_content_type(client, stored_rows):
    body = '{"device":"1A2B3C","time":"1700000000","temp":21}'
    response = client.generic("POST", "/data/1", body, content_type="")
    assert response.status_code == 415
    assert "Content-Type" in response.json()["detail"]
    assert not any(stored_rows().values())


@pytest.mark.parametrize(
    "content_type, body",
    [
        ("text/plain", "hello there"),
        ("text/plain", '{"device":"1A2B3C","time":'),
        ("text/plain", '["1A2B3C", 1700000000]'),
        ("application/x-www-form-urlencoded", "device=1A2B3C&&&time"),
        ("application/x-www-form-urlencoded", "device=1A2B3C&time=soon&temp=21"),
    ],
)
def test_it_rejects_an_unreadable_body(client, stored_rows, content_type, body):
    response = client.post("/data/1", body, content_type=content_type)
    assert response.status_code == 400
    assert not any(stored_rows().values())


@pytest.mark.parametrize(
    "query",
    [
        "",
        "device=1A2B3C",
        "device=1A2B3C&time=soon&temp=21",
    ],
)
def test_it_rejects_a_get_without_valid_variables(client, stored_rows, query):
    response = client.get(f"/data/1?{query}")
    assert response.status_code == 400
    assert not any(stored_rows().values())


@pytest.mark.parametrize(
    "path, body",
    [
        ("/data/1", b"device=1A2B3C&time=1700000000&temp=21&\x00="),
        ("/sigfox/acknowledge", b"device=1A2B3C&time=1700000000&infoCode=0&note=\x00"),
    ],
)
def test_it_refuses_a_nul_byte_in_the_body(client, stored_rows, path, body):
    response = client.post(path, body, content_type="application/x-www-form-urlencoded")
    assert response.status_code == 400
    assert not any(stored_rows().values())


def test_it_stores_no_more_of_the_content_type_than_the_column_holds(client):
    content_type = "application/json; charset=utf-8; note=" + "x" * 100
    body = '{"device":"1A2B3C","time":"1700000000","temp":21}'
    response = client.post("/data/1", body, content_type=content_type)
    assert response.status_code in (204, 400, 415)
    stored = Message.objects.values_list("content_type", flat=True)
    assert all(len(content_type) <= 100 for content_type in stored)


@pytest.mark.parametrize(
    "content_type, body",
    [
        ("application/x-www-form-urlencoded", "device=1A2B3C&time=1700000000&temp=21&&str=ABCDEF"),
        ("application/x-www-form-urlencoded", "device=1A2B3C&time=1700000000&temp=21&str=ABCDEF&"),
        # The backend's default content type, with a JSON template.
        ("application/x-www-form-urlencoded",
         '{"device":"1A2B3C","time":"1700000000","temp":21,"str":"ABCDEF"}'),
        ("text/plain", '{"device":"1A2B3C","time":"1700000000","temp":21,"str":"ABCDEF"}'),
    ],
)
def test_it_reads_what_the_backend_sends_in_its_default_encoding(client, content_type, body):
    response = client.post("/data/1", body, content_type=content_type)
    assert response.status_code == 204, response.content
    message = Message.objects.get()
    assert dict(message.readings.values_list("quantity", "value")) == {"temp": 21.0}
    assert message.text_values == {"str": "ABCDEF"}


@pytest.mark.parametrize("query", ["format=3", "format=json", "format=csv"])
def test_it_stores_a_get_callback_with_a_format_field(client, query):
    """DRF reads ?format= as a renderer's name; here it is a callback variable."""
    response = client.get(f"/data/1?device=1A2B3C&time=1700000000&temp=21&{query}",
                          HTTP_ACCEPT="text/html")
    assert response.status_code == 204, response.content
    message = Message.objects.get()
    assert "format" in {**(message.text_values or {}),
                        **dict(message.readings.values_list("quantity", "value"))}
