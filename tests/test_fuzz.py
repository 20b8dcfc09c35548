"""Hostile input: whatever a client sends, never a 500 and never a row from a rejected request."""

import json
import socket

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from readings.models import Device, Message, Reading
from tests.conftest import TUTORIAL_BODY

pytestmark = pytest.mark.django_db

VARIABLES = ["device", "time", "seqNumber", "data", "ack", "duplicate", "station", "rssi", "snr",
             "avgSnr", "lat", "lng", "lqi", "linkQuality", "duplicates", "computedLocation",
             "deviceTypeId", "temp", "token", "infoCode"]
CONTENT_TYPES = [
    "application/json", "application/x-www-form-urlencoded", "text/plain", "multipart/form-data",
    "application/xml", "application/json; charset=latin-1", "text/plain; charset=utf-16",
    "application/octet-stream", "*/*", "application/json, text/plain", "\x00",
]

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=12,
)
callback_objects = st.dictionaries(st.sampled_from(VARIABLES) | st.text(max_size=10), json_values, max_size=12)


@st.composite
def mutated(draw) -> bytes:
    """The tutorial body with a few bytes replaced, inserted or removed."""
    data = bytearray(TUTORIAL_BODY.encode())
    for _ in range(draw(st.integers(1, 4))):
        position = draw(st.integers(0, len(data)))
        action = draw(st.sampled_from(["replace", "insert", "delete"]))
        byte = draw(st.integers(0, 255))
        if action == "insert" or position == len(data):
            data.insert(position, byte)
        elif action == "replace":
            data[position] = byte
        else:
            del data[position]
    return bytes(data)


bodies = st.one_of(
    st.binary(max_size=512),
    st.text(max_size=256).map(str.encode),
    callback_objects.map(lambda o: json.dumps(o).encode()),
    json_values.map(lambda o: json.dumps(o).encode()),
    mutated(),
    st.integers(1, 5000).map(lambda depth: b'{"device":"1A2B3C","x":' + b"[" * depth + b"]" * depth + b"}"),
)


def counts():
    return Device.objects.count(), Message.objects.count(), Reading.objects.count()


def check(response, before):
    assert response.status_code < 500, response.content[:300]
    if response.status_code >= 400:
        assert counts() == before, f"rejected with {response.status_code} but stored something"
        assert response["Content-Type"].startswith("application/json"), response.content[:200]


FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@FUZZ
@given(body=bodies, content_type=st.sampled_from(CONTENT_TYPES), method=st.sampled_from(["POST", "PUT"]),
       path=st.sampled_from(["/data/1", "/sigfox/acknowledge"]))
def test_it_survives_any_body(client, body, content_type, method, path):
    before = counts()
    # generic() sends the bytes as they are, whatever charset the type names.
    check(client.generic(method, path, body, content_type=content_type), before)


@FUZZ
@given(fields=st.dictionaries(st.sampled_from(VARIABLES) | st.text(max_size=10), st.text(max_size=40), max_size=12))
def test_it_survives_any_query_string(client, fields):
    before = counts()
    check(client.get("/data/1", fields), before)


@FUZZ
@given(obj=callback_objects)
def test_it_survives_any_form(client, obj):
    from urllib.parse import urlencode

    before = counts()
    form = urlencode({k: v if isinstance(v, str) else json.dumps(v) for k, v in obj.items()})
    check(client.post("/data/1", form, content_type="application/x-www-form-urlencoded"), before)


@FUZZ
@given(authorization=st.text(max_size=80), forwarded=st.text(max_size=40), token=st.text(max_size=20))
def test_it_survives_header_tricks(client, settings, authorization, forwarded, token):
    settings.SIGFOX_CALLBACK_TOKEN = "secret-token"
    settings.SIGFOX_CALLBACK_NETWORKS = ["185.110.96.0/22"]
    settings.BEHIND_TLS_PROXY = True
    before = counts()
    try:
        response = client.post(f"/data/1?token={token}", TUTORIAL_BODY, content_type="application/json",
                               HTTP_AUTHORIZATION=authorization, HTTP_X_FORWARDED_FOR=forwarded)
    except (ValueError, UnicodeEncodeError):
        return  # the test client itself cannot send such a header
    check(response, before)


def test_it_refuses_a_huge_declared_body_without_reading_it(server):
    """A client announcing 100 MB gets 413 at once: the server reads none of it."""
    host, port = server.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(b"POST /data/1 HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                     b"Content-Length: 104857600\r\n\r\n{\"device\":")
        answer = sock.recv(4096).decode("latin-1")
    assert answer.startswith("HTTP/1.1 413"), answer[:200]
