"""POST /data/<sensor>: the tutorial's callback and everything a client can get wrong."""

import json
from datetime import UTC, datetime

import pytest

from readings.models import Device, Message, MessageConflict, Reading
from tests.conftest import TUTORIAL_BODY

pytestmark = pytest.mark.django_db


def test_it_stores_the_tutorial_callback(post_json):
    response = post_json(TUTORIAL_BODY)
    assert response.status_code == 204
    device = Device.objects.get()
    assert device.sigfox_id == "1A2B3C"
    message = Message.objects.get()
    assert message.device == device
    assert message.sensor == "1"
    assert message.body_raw == TUTORIAL_BODY
    assert message.content_type == "application/json"
    reading = Reading.objects.get()
    assert (reading.quantity, reading.value, reading.sensor) == ("temp", 21.0, "1")
    assert reading.message == message and reading.device == device


def test_it_converts_epoch_seconds_to_aware_utc(post_json):
    post_json(TUTORIAL_BODY)
    time = Reading.objects.get().time
    assert time == datetime(2023, 11, 14, 22, 13, 20, tzinfo=UTC)
    assert time.utcoffset().total_seconds() == 0


def test_it_accepts_time_as_a_number(post_json):
    post_json('{"device":"1A2B3C","time":1700000000,"temp":21}')
    assert Message.objects.get().time == datetime(2023, 11, 14, 22, 13, 20, tzinfo=UTC)


def test_it_stores_utc_whatever_the_site_time_zone(post_json, settings):
    settings.TIME_ZONE = "Europe/Paris"
    post_json(TUTORIAL_BODY)
    assert Reading.objects.get().time == datetime(2023, 11, 14, 22, 13, 20, tzinfo=UTC)


def test_it_registers_the_device_upper_case(post_json):
    post_json('{"device":"bf1327","time":"1700000000","temp":21}')
    assert Device.objects.get().sigfox_id == "BF1327"


def test_it_sets_first_and_last_seen(post_json):
    post_json('{"device":"1A2B3C","time":"1700000600","temp":21}')
    post_json('{"device":"1A2B3C","time":"1700000000","temp":20}')
    post_json('{"device":"1A2B3C","time":"1700001200","temp":22}')
    device = Device.objects.get()
    assert device.first_seen == datetime.fromtimestamp(1700000000, tz=UTC)
    assert device.last_seen == datetime.fromtimestamp(1700001200, tz=UTC)


def test_it_stores_every_numeric_field_as_a_reading(post_json):
    post_json('{"device":"1A2B3C","time":"1700000000","temp":"21.5","hum":40,"vbat":"3.3e0"}')
    values = dict(Reading.objects.values_list("quantity", "value"))
    assert values == {"temp": 21.5, "hum": 40.0, "vbat": 3.3}


def test_it_keeps_sensors_apart(post_json):
    post_json(TUTORIAL_BODY, sensor="1")
    post_json(TUTORIAL_BODY, sensor="kitchen")
    assert sorted(Reading.objects.values_list("sensor", flat=True)) == ["1", "kitchen"]


def test_it_skips_null_values(post_json):
    post_json('{"device":"1A2B3C","time":"1700000000","temp":null,"hum":"N/A","vbat":3}')
    assert list(Reading.objects.values_list("quantity", flat=True)) == ["vbat"]


def test_it_stores_a_retried_callback_once(post_json):
    for _ in range(3):
        assert post_json(TUTORIAL_BODY).status_code == 204
    assert (Message.objects.count(), Reading.objects.count()) == (1, 1)


def test_it_keeps_the_first_value_of_a_frame_sent_again_with_another(post_json):
    # A device cannot send two frames within one second: same device and time, same frame.
    post_json(TUTORIAL_BODY)
    post_json('{"device":"1A2B3C","time":"1700000000","temp":22}')
    assert Message.objects.count() == 1
    assert list(Reading.objects.values_list("value", flat=True)) == [21.0]
    assert MessageConflict.objects.get().other_value == "22.0"


def test_it_identifies_a_message_by_device_and_time_whatever_its_sequence_number(post_json):
    post_json('{"device":"1A2B3C","time":"1700000000","seqNumber":"7","temp":21}')
    post_json('{"device":"1A2B3C","time":"1700000000","seqNumber":7,"temp":21}')
    post_json('{"device":"1A2B3C","time":"1700000000","seqNumber":8,"temp":21}')
    assert list(Message.objects.values_list("seq_number", flat=True)) == [7]
    assert MessageConflict.objects.get().variable == "seqNumber"


def test_it_accepts_put(client):
    response = client.put("/data/1", TUTORIAL_BODY, content_type="application/json")
    assert response.status_code == 204
    assert Reading.objects.count() == 1


def assert_rejected(response, stored, status=400, mentions=""):
    assert response.status_code == status, response.content
    assert response["Content-Type"].startswith("application/json")
    if mentions:
        assert mentions in response.content.decode()
    assert stored() == (0, 0, 0)


@pytest.mark.parametrize(
    "body, mentions",
    [
        ('{"device":"1A2B3C","time":"1700000000","temp":21', "JSON"),
        ("not json at all", "JSON"),
        ("", "device"),
        ('["1A2B3C", 1700000000, 21]', "object"),
        ('"a string"', "object"),
        ('{"time":"1700000000","temp":21}', "device"),
        ('{"device":"1A2B3C","temp":21}', "time"),
        ('{"device":"XYZ","time":"1700000000","temp":21}', "device"),
        ('{"device":"123456789","time":"1700000000","temp":21}', "device"),
        ('{"device":"","time":"1700000000","temp":21}', "device"),
        ('{"device":12.5,"time":"1700000000","temp":21}', "device"),
        ('{"device":"1A2B3C","time":"soon","temp":21}', "time"),
        ('{"device":"1A2B3C","time":"1700000000.5","temp":21}', "time"),
        ('{"device":"1A2B3C","time":1700000000.5,"temp":21}', "time"),
        ('{"device":"1A2B3C","time":true,"temp":21}', "time"),
        ('{"device":"1A2B3C","time":"-5","temp":21}', "time"),
        ('{"device":"1A2B3C","time":"99999999999","temp":21}', "time"),
        ('{"device":"1A2B3C","time":1e400,"temp":21}', "time"),
    ],
)
def test_it_rejects_bad_input(post_json, stored, body, mentions):
    assert_rejected(post_json(body), stored, mentions=mentions)


# One bad field never loses the frame: it is left out, named, and the rest is stored.
@pytest.mark.parametrize(
    "body, field, kept_as",
    [
        ('{"device":"1A2B3C","time":"1700000000","temp":NaN,"hum":40}', "temp", "error"),
        ('{"device":"1A2B3C","time":"1700000000","temp":Infinity,"hum":40}', "temp", "error"),
        ('{"device":"1A2B3C","time":"1700000000","temp":-Infinity,"hum":40}', "temp", "error"),
        ('{"device":"1A2B3C","time":"1700000000","temp":"NaN","hum":40}', "temp", "error"),
        ('{"device":"1A2B3C","time":"1700000000","temp":"inf","hum":40}', "temp", "error"),
        ('{"device":"1A2B3C","time":"1700000000","temp":"-Infinity","hum":40}', "temp", "error"),
        ('{"device":"1A2B3C","time":"1700000000","temp":"1e999","hum":40}', "temp", "error"),
        ('{"device":"1A2B3C","time":"1700000000","temp":1e999,"hum":40}', "temp", "error"),
        ('{"device":"1A2B3C","time":"1700000000","temp":[21],"hum":40}', "temp", "error"),
        ('{"device":"1A2B3C","time":"1700000000","temp":{"v":21},"hum":40}', "temp", "error"),
        ('{"device":"1A2B3C","time":"1700000000","temp":"warm","hum":40}', "temp", "text"),
        ('{"device":"1A2B3C","time":"1700000000","temp":"1_000","hum":40}', "temp", "text"),
        ('{"device":"1A2B3C","time":"1700000000","seqNumber":"x","hum":40}', "seqNumber", "error"),
        ('{"device":"1A2B3C","time":"1700000000","seqNumber":-1,"hum":40}', "seqNumber", "error"),
        ('{"device":"1A2B3C","time":"1700000000","rssi":"loud","hum":40}', "rssi", "error"),
        ('{"device":"1A2B3C","time":"1700000000","data":"zz","hum":40}', "data", "error"),
    ],
)
def test_it_stores_the_frame_without_a_bad_field(post_json, body, field, kept_as):
    response = post_json(body)
    assert response.status_code == 204
    message = Message.objects.get()
    assert dict(message.readings.values_list("quantity", "value")) == {"hum": 40.0}
    if kept_as == "text":
        assert message.text_values == {field: json.loads(body)[field]}
        assert not message.field_errors
    else:
        assert field in message.field_errors
    assert message.body_raw == body


def test_it_rejects_a_time_too_far_in_the_future(post_json, stored):
    future = int(datetime.now(UTC).timestamp()) + 3 * 86_400
    response = post_json(json.dumps({"device": "1A2B3C", "time": str(future), "temp": 21}))
    assert_rejected(response, stored, mentions="time")


def test_it_rejects_a_body_over_64_kib(post_json, stored):
    body = json.dumps({"device": "1A2B3C", "time": "1700000000", "temp": 21, "pad": "x" * 65_536})
    assert_rejected(post_json(body), stored, status=413, mentions="64 KiB")


def test_it_accepts_a_body_just_under_the_limit(post_json):
    body = {"device": "1A2B3C", "time": "1700000000", "temp": 21}
    body["n" * 40] = 1
    assert post_json(json.dumps(body) + " " * (65_536 - len(json.dumps(body)))).status_code == 204


def test_it_rejects_invalid_utf8(client, stored):
    response = client.post("/data/1", b'{"device":"1A2B3C","time":"1700000000","t\xff":1}',
                           content_type="application/json")
    assert_rejected(response, stored, mentions="UTF-8")


def test_it_rejects_deeply_nested_json(post_json, stored):
    body = '{"device":"1A2B3C","time":"1700000000","x":' + "[" * 10_000 + "]" * 10_000 + "}"
    assert_rejected(post_json(body), stored, mentions="nested")


@pytest.mark.parametrize("method", ["delete", "patch", "head", "options", "trace"])
def test_it_refuses_other_methods(client, stored, method):
    response = getattr(client, method)("/data/1")
    assert response.status_code == 405
    assert stored() == (0, 0, 0)


def test_it_refuses_an_unreadable_content_type(client, stored):
    response = client.post("/data/1", TUTORIAL_BODY, content_type="application/xml")
    assert_rejected(response, stored, status=415, mentions="application/xml")


def test_it_answers_json_404_for_a_bad_sensor_name(post_json, stored):
    assert_rejected(post_json(TUTORIAL_BODY, sensor="a" * 65), stored, status=404)


def test_it_keeps_serving_after_bad_input(post_json):
    post_json("{{{")
    assert post_json(TUTORIAL_BODY).status_code == 204
    assert Reading.objects.count() == 1


def test_it_names_the_field_in_the_error(post_json):
    response = post_json('{"device":"1A2B3C","time":"soon","temp":21}')
    assert response.json() == {"time": ["Must be a whole number of Unix epoch seconds."]}


def test_it_names_the_fields_it_left_out(post_json):
    post_json('{"device":"1A2B3C","time":"1700000000","temp":[21],"rssi":"loud","hum":40}')
    assert Message.objects.get().field_errors == {
        "rssi": "Value must be a number or a string holding one.",
        "temp": "Value must be a number or text, not a list or an object.",
    }


def test_it_needs_no_csrf_token(settings, stored):
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    response = client.post("/data/1", TUTORIAL_BODY, content_type="application/json")
    assert response.status_code == 204
