"""Lone surrogates ("\\ud800", valid in JSON, not in UTF-8) wherever a callback can
hold one, and errors that echo the input: a 2xx or a 400, never a 500."""

import json

import pytest
from rest_framework.exceptions import ValidationError
from rest_framework.renderers import JSONRenderer

from readings.exceptions import encodable, exception_handler
from readings.models import Message
from tests.fuzzing import send

pytestmark = pytest.mark.django_db

FRAME = {"device": "1A2B3C", "time": 1700000000, "temp": 21}
JSON_ENCODINGS = ["json", "json-strings", "text-json", "put-json"]
SURROGATE_ERROR = "Must not contain NUL characters or lone surrogates."


@pytest.mark.parametrize("extra,named", [
    ({"\ud800": 1}, "\\ud800"),
    ({"x\udfff": "text"}, "x\\udfff"),
    ({"hum": "\ud800"}, "hum"),
    ({"duplicates": [{"bsId": "\ud800", "rssi": -120}]}, "duplicates"),
    ({"duplicates": ["\ud800"]}, "duplicates"),
    ({"computedLocation": {"\ud800": 1}}, "computedLocation"),
    ({"computedLocation": {"lat": "\udbff\udc00x\ud800"}}, "computedLocation"),
])
def test_it_stores_the_frame_and_names_the_field(client, extra, named):
    # Only JSON escapes can carry a lone surrogate: a form or a query string is bytes.
    for second, encoding in enumerate(JSON_ENCODINGS):
        frame = {**FRAME, "time": FRAME["time"] + second, **extra}
        response = send(client, encoding, "/data/1", frame)
        assert response.status_code == 204, (encoding, response.content)
        message = Message.objects.get(time__second=(20 + second) % 60)
        assert named in message.field_errors, encoding
        assert [r.quantity for r in message.readings.all()] == ["temp"]


@pytest.mark.parametrize("path", ["/data/1", "/sigfox/acknowledge"])
@pytest.mark.parametrize("variables", [
    {"device": "\ud800", "time": 1700000000},
    {"device": "1A2B3C", "time": "\ud800"},
    {"device": ["\ud800"], "time": 1700000000},
    {"device": {"\ud800": "1A2B3C"}, "time": 1700000000},
])
def test_it_refuses_an_identity_holding_one_with_a_readable_400(client, stored_rows, path,
                                                                variables):
    before = stored_rows()
    for encoding in JSON_ENCODINGS:
        response = send(client, encoding, path, variables)
        assert response.status_code == 400, encoding
        assert response["Content-Type"] == "application/json"
        assert {"device", "time", "non_field_errors"} & set(response.json()), response.json()
    assert stored_rows() == before


def test_an_error_that_echoes_one_renders_it_escaped():
    error = ValidationError({"\ud800x": ["No device named \ud800."], "time": ["fine"]})
    response = exception_handler(error, {})
    assert response.status_code == 400
    assert json.loads(JSONRenderer().render(response.data)) == {
        "\\ud800x": ["No device named \\ud800."], "time": ["fine"]}


def test_encodable_leaves_ordinary_text_and_values_alone():
    data = {"detail": "déjà vu 🙂", "n": 3, "list": ["a", None, 1.5]}
    assert encodable(data) == data
