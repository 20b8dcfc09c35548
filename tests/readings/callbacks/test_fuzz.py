"""Hostile input: whatever a client sends, never a 500 and never a row from a rejected request.

Every callback encoding (JSON, JSON with quoted scalars, form, text/plain
holding either, PUT, GET) with generated fields: lone surrogates ("\\ud800"
in a JSON name or value, in duplicates, in computedLocation), NUL, NaN,
huge numbers, nested values, odd names. Small in CI; FUZZ_EXAMPLES=N for a
long run (tests/fuzzing.py).
"""

import json
import socket
from datetime import UTC, datetime
from contextlib import contextmanager
from urllib.parse import urlencode

import pytest
from django.db import transaction
from hypothesis import given
from hypothesis import strategies as st

from readings import sigfox
from readings.models import Device, Message, Reading
from readings.serializers import MIN_EPOCH_S
from tests.conftest import TUTORIAL_BODY
from tests.fuzzing import FUZZ, Answers, send

pytestmark = [pytest.mark.django_db, pytest.mark.fuzz]

VARIABLES = ["device", "time", "seqNumber", "data", "ack", "duplicate", "station", "rssi", "snr",
             "avgSnr", "lat", "lng", "lqi", "linkQuality", "duplicates", "computedLocation",
             "deviceTypeId", "temp", "token", "infoCode", "infoMessage", "downlinkAck",
             "downlinkOverusage", "longPolling", "operatorName", "countryCode", "fixedLat",
             "fixedLng", "callbackType"]
CONTENT_TYPES = [
    "application/json", "application/x-www-form-urlencoded", "text/plain", "multipart/form-data",
    "application/xml", "application/json; charset=latin-1", "text/plain; charset=utf-16",
    "application/octet-stream", "*/*", "application/json, text/plain", "\x00",
]
ENCODINGS = ["json", "json-strings", "form", "text-json", "text-form", "put-json", "put-form",
             "put-text-form", "get"]
PATHS = ["/data/1", "/data/kitchen", "/sigfox/acknowledge", "/sigfox/status", "/sigfox/error",
         "/sigfox/event", "/sigfox/geoloc"]

# Every code point, lone surrogates included (hypothesis leaves them out by default).
any_char = st.characters(exclude_categories=())
any_text = st.text(any_char, max_size=12)
# What the backend renders for its variables, and what breaks parsers.
odd_strings = st.sampled_from([
    "", "null", "N/A", "true", "false", "NaN", "-Infinity", "1e400", "-0", "0x1F", "1_000",
    "١٢", " 12 ", "\x00", "\ud800", "\udfff\ud800", "1A2B3C", "15e40c", "[1,2]", '{"a":1}',
    '["\\ud800"]', '{"\\ud800":1}', '{"lat":"\\ud800"}', "9" * 400,
])
scalars = (st.none() | st.booleans() | st.integers() | st.floats() | any_text | odd_strings
           | st.integers(-2**70, 2**70))
json_values = st.recursive(
    scalars,
    lambda children: (st.lists(children, max_size=4)
                      | st.dictionaries(any_text, children, max_size=4)),
    max_leaves=10,
)
names = st.sampled_from(VARIABLES) | any_text | st.text(max_size=80)
identity = st.fixed_dictionaries({
    "device": st.sampled_from(["1A2B3C", "001A2B3C", "bf1327", "0", "FFFFFFFF"]),
    "time": st.integers(MIN_EPOCH_S, 1_700_000_000).flatmap(lambda s: st.sampled_from([s, str(s)])),
}, optional={"infoCode": st.integers(0, 99)})  # what an acknowledge needs besides
# Half the callbacks identify a frame, so that the paths that store are fuzzed too.
callbacks = st.one_of(
    st.builds(lambda ident, rest: {**rest, **ident}, identity,
              st.dictionaries(names, json_values, max_size=10)),
    st.dictionaries(names, json_values, max_size=12),
)


@contextmanager
def case_rolled_back():
    """Each case on a database as it was before the test's first: a long run
    stays as fast at its last case as at its first."""
    with transaction.atomic():
        yield
        transaction.set_rollback(True)


def counts():
    return Device.objects.count(), Message.objects.count(), Reading.objects.count()


def check(response, before):
    assert response.status_code < 500, response.content[:300]
    if response.status_code >= 400:
        assert counts() == before, f"rejected with {response.status_code} but stored something"
        assert response["Content-Type"].startswith("application/json"), response.content[:200]
        response.json()


@pytest.fixture
def answers(request):
    """The mix of answers of one test, shown at its end."""
    seen = Answers(request.node.name)
    yield seen
    seen.show(request.config)


@pytest.fixture
def stored_and_refused(answers):
    yield answers
    # A generator whose callbacks are all refused at the door proves little.
    total = answers.total(0, 600)
    assert answers.total(200, 300) >= total // 10, answers.lines()
    assert answers.total(400, 500) >= total // 10, answers.lines()


@FUZZ
@given(variables=callbacks, encoding=st.sampled_from(ENCODINGS), path=st.sampled_from(PATHS))
def test_it_stores_or_refuses_any_callback_in_any_encoding(client, stored_and_refused, variables,
                                                           encoding, path):
    with case_rolled_back():
        before = counts()
        response = send(client, encoding, path, variables)
        stored_and_refused.add(f"{encoding} {path.split('/')[1]}", response.status_code)
        check(response, before)
        if 200 <= response.status_code < 300 and path.startswith("/data/"):
            # A 2xx means stored: the frame is there, whatever its other fields held.
            device_id = sigfox.normalize_device_id(str(variables["device"]))
            epoch_s = int(str(variables["time"]).strip())
            assert Message.objects.filter(
                device__sigfox_id=device_id, time=datetime.fromtimestamp(epoch_s, tz=UTC)
            ).exists()


bodies = st.one_of(
    st.binary(max_size=512),
    st.text(any_char, max_size=256).map(lambda t: t.encode("utf-8", "surrogatepass")),
    callbacks.map(lambda o: json.dumps(o).encode()),
    json_values.map(lambda o: json.dumps(o).encode()),
    st.integers(1, 5000).map(lambda depth: b'{"device":"1A2B3C","x":' + b"[" * depth + b"]" * depth + b"}"),
)


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


@FUZZ
@given(body=bodies | mutated(), content_type=st.sampled_from(CONTENT_TYPES),
       method=st.sampled_from(["POST", "PUT"]), path=st.sampled_from(PATHS))
def test_it_survives_any_body(client, answers, body, content_type, method, path):
    with case_rolled_back():
        before = counts()
        # generic() sends the bytes as they are, whatever charset the type names.
        response = client.generic(method, path, body, content_type=content_type)
        answers.add(ascii(content_type.split(";")[0]), response.status_code)
        check(response, before)


@FUZZ
@given(head=st.none() | identity,
       query=st.lists(st.tuples(names, any_text | odd_strings), max_size=12))
def test_it_survives_any_query_string(client, answers, head, query):
    """Repeated names, names without a value, bytes that are no UTF-8."""
    pairs = [*(head or {}).items(), *query]
    with case_rolled_back():
        before = counts()
        response = client.get("/data/1?" + urlencode(pairs, errors="surrogatepass"))
        answers.add("get", response.status_code)
        check(response, before)


@pytest.fixture
def guarded(settings):
    # Set once for all the cases: each assignment stacks an override.
    settings.SIGFOX_CALLBACK_TOKEN = "secret-token"
    settings.SIGFOX_CALLBACK_NETWORKS = ["185.110.96.0/22"]
    settings.BEHIND_TLS_PROXY = True


@FUZZ
@given(authorization=st.text(max_size=80) | st.sampled_from(["Bearer secret-token", "Basic Onx"]),
       forwarded=st.text(max_size=40) | st.sampled_from(["185.110.96.1", "10.0.0.1, 185.110.97.3"]),
       token=st.text(max_size=20) | st.just("secret-token"))
def test_it_survives_header_tricks(client, guarded, answers, authorization, forwarded, token):
    with case_rolled_back():
        before = counts()
        try:
            response = client.post(f"/data/1?token={token}", TUTORIAL_BODY,
                                   content_type="application/json",
                                   HTTP_AUTHORIZATION=authorization, HTTP_X_FORWARDED_FOR=forwarded)
        except (ValueError, UnicodeEncodeError):
            return  # the test client itself cannot send such a header
        answers.add("headers", response.status_code)
        check(response, before)


def test_it_refuses_a_huge_declared_body_without_reading_it(server):
    """A client announcing 100 MB gets 413 at once: the server reads none of it."""
    host, port = server.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(b"POST /data/1 HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                     b"Content-Length: 104857600\r\n\r\n{\"device\":")
        answer = sock.recv(4096).decode("latin-1")
    assert answer.startswith("HTTP/1.1 413"), answer[:200]
