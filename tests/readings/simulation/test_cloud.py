"""readings.simulation.cloud (the Sigfox API stand-in) and the simulated backend's
retries (readings.simulation.load.Backend), over real HTTP on this machine.

No database: the callbacks go to a small local server whose answers each test
chooses. The simulated clock is either injected (a list holding the now) or
runs fast (SimulatedClock(speed=...)), so no test waits minutes.
"""

import base64
import dataclasses
import json
import random
import re
import socket
import threading
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlencode

import pytest

from readings.simulation.cloud import SigfoxCloud
from readings.simulation.fleet import Fleet, callbacks_for
from readings.simulation.load import (
    RETRY_DELAYS_S,
    Attempt,
    Backend,
    Progress,
    SimulatedClock,
    Stats,
    send_all,
)

T0 = 1_700_000_000  # 2023-11-14 22:13:20Z
TYPE_ID = "5f00000000000000000000aa"
LOGIN, PASSWORD = "api-user", "api-secret"


def frames(count: int, *, devices=3, device_base=0xC10000, interval_s=60, time_start_s=T0):
    fleet = Fleet(devices=devices, device_base=device_base, interval_s=interval_s,
                  time_start_s=time_start_s, seed=1)
    return list(fleet.frames(count=count))


@pytest.fixture
def now():
    """The simulated now, epoch seconds, that the cloud of `cloud` reads: now[0]."""
    return [T0 + 10**6]


@pytest.fixture
def cloud(now):
    with SigfoxCloud(login=LOGIN, password=PASSWORD, clock=lambda: now[0]) as cloud:
        cloud.add_device_type(TYPE_ID)
        yield cloud


def call(url: str, method="GET", body=None, *, auth=(LOGIN, PASSWORD), raw_body: bytes | None = None):
    """(status, JSON body or None) of one request; `url` is absolute."""
    data = raw_body if raw_body is not None else (
        None if body is None else json.dumps(body).encode())
    request = urllib.request.Request(url, data=data, method=method)
    if auth is not None:
        token = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
        request.add_header("Authorization", f"Basic {token}")
    if data is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            status, content = response.status, response.read()
    except urllib.error.HTTPError as exc:
        status, content = exc.code, exc.read()
    return status, json.loads(content) if content else None


def api(cloud, path: str, method="GET", body=None, **params):
    query = f"?{urlencode(params)}" if params else ""
    return call(f"{cloud.url}{path}{query}", method, body)


def record(cloud, some_frames, type_id=TYPE_ID):
    for frame in some_frames:
        cloud.record_frame(frame, device_type_id=type_id)


def all_pages(cloud, path: str, **params) -> tuple[list, int]:
    """Every item, following paging.next; and how many pages it took."""
    status, page = api(cloud, path, **params)
    assert status == 200
    items, pages = list(page["data"]), 1
    while "next" in page["paging"]:
        assert page["paging"]["next"].startswith(cloud.url + "/")
        status, page = call(page["paging"]["next"])
        assert status == 200
        items += page["data"]
        pages += 1
    return items, pages


# --- Reading messages back -------------------------------------------------------------


def test_it_pages_newest_first_to_the_end(cloud):
    record(cloud, frames(250))
    items, pages = all_pages(cloud, f"/device-types/{TYPE_ID}/messages")
    assert pages == 3 and len(items) == 250
    keys = [(item["time"], item["device"]["id"]) for item in items]
    assert keys == sorted(keys, reverse=True) and len(set(keys)) == 250


def test_it_pages_by_limit_and_offset(cloud):
    record(cloud, frames(7))
    status, page = api(cloud, f"/device-types/{TYPE_ID}/messages", limit=3, offset=3)
    assert status == 200 and len(page["data"]) == 3
    assert "limit=3" in page["paging"]["next"] and "offset=6" in page["paging"]["next"]
    status, last = call(page["paging"]["next"])
    assert len(last["data"]) == 1 and last["paging"] == {}


def test_it_gives_messages_the_shape_of_api_md(cloud):
    [frame] = frames(1)
    record(cloud, [frame])
    cloud.record_attempt(frame, status=204, info="", time_s=T0 + 0.5, cb_def="[POST] http://x/data/1")
    assert api(cloud, f"/devices/{frame.device}/messages")[0] == 200
    [item] = api(cloud, f"/devices/{frame.device}/messages")[1]["data"]
    assert item == {
        "device": {"id": frame.device},
        "time": T0 * 1000,
        "data": frame.payload_hex(),
        "ackRequired": False,
        "seqNumber": frame.seq_number,
        "nbFrames": 3,
        "lqi": item["lqi"],
        "lqiRepeaters": 4,
        "computedLocation": [],
        "rinfos": [{
            "baseStation": {"id": frame.station, "name": f"Simulated station {frame.station}"},
            "lat": item["rinfos"][0]["lat"], "lng": item["rinfos"][0]["lng"],
            "delay": item["rinfos"][0]["delay"], "rep": 3,
            "cbStatus": [{"status": 204, "info": "", "cbDef": "[POST] http://x/data/1",
                          "time": T0 * 1000 + 500}],
        }],
    }
    assert item["lqi"] in range(4)


def test_it_keeps_another_station_as_one_more_reception(cloud):
    [frame] = frames(1)
    record(cloud, [frame, dataclasses.replace(frame, station="0ABC", rssi_dbm=-140.0)])
    [item] = api(cloud, f"/device-types/{TYPE_ID}/messages")[1]["data"]
    assert [r["baseStation"]["id"] for r in item["rinfos"]] == [frame.station, "0ABC"]


def test_it_takes_since_included_and_before_excluded_in_ms(cloud):
    record(cloud, frames(6, devices=1, interval_s=60))  # T0, T0 + 60, ... T0 + 300
    items, _ = all_pages(cloud, f"/device-types/{TYPE_ID}/messages",
                         since=(T0 + 60) * 1000, before=(T0 + 240) * 1000)
    assert [item["time"] // 1000 - T0 for item in items] == [180, 120, 60]
    items, _ = all_pages(cloud, f"/device-types/{TYPE_ID}/messages", since=(T0 + 60) * 1000 + 1)
    assert [item["time"] // 1000 - T0 for item in items] == [300, 240, 180, 120]


def test_it_shows_no_frame_received_after_the_simulated_now(cloud, now):
    record(cloud, frames(6, devices=1, interval_s=60))
    now[0] = T0 + 150.5
    items, _ = all_pages(cloud, f"/device-types/{TYPE_ID}/messages")
    assert [item["time"] // 1000 - T0 for item in items] == [120, 60, 0]
    now[0] = T0 + 300
    assert len(all_pages(cloud, f"/device-types/{TYPE_ID}/messages")[0]) == 6


def test_it_lists_one_device_s_messages(cloud):
    record(cloud, frames(9))
    items, _ = all_pages(cloud, "/devices/c10001/messages")
    assert len(items) == 3 and {item["device"]["id"] for item in items} == {"C10001"}


def test_it_lists_device_types_and_devices(cloud, now):
    record(cloud, frames(3, devices=2))
    cloud.add_device_type("5f00000000000000000000bb", devices=["D00000"])
    status, types = api(cloud, "/device-types/")
    assert status == 200
    assert [t["id"] for t in types["data"]] == [TYPE_ID, "5f00000000000000000000bb"]
    status, devices = api(cloud, "/devices/", deviceTypeId=TYPE_ID)
    assert [(d["id"], d["deviceType"]["id"]) for d in devices["data"]] == [
        ("C10000", TYPE_ID), ("C10001", TYPE_ID)]
    status, device = api(cloud, "/devices/C10000")
    assert status == 200 and device["lastCom"] == (T0 + 60) * 1000
    status, device = api(cloud, "/devices/D00000")
    assert device["deviceType"] == {"id": "5f00000000000000000000bb"} and "lastCom" not in device


# --- Strictness ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"sinse": "0"}, "unknown parameter 'sinse'"),
        ({"limit": "0"}, "parameter 'limit' must be an integer from 1 to 100"),
        ({"limit": "101"}, "parameter 'limit' must be an integer from 1 to 100"),
        ({"limit": "ten"}, "parameter 'limit' must be an integer from 1 to 100"),
        ({"offset": "-1"}, "parameter 'offset' must be a non-negative integer"),
        ({"since": "1.7e12"}, "parameter 'since' must be an integer number of milliseconds"),
        ({"before": "2023-11-14"}, "parameter 'before' must be an integer number of milliseconds"),
        ({"since": "2000", "before": "1000"}, "parameter 'since' (2000) is after 'before' (1000)"),
    ],
)
def test_it_refuses_bad_parameters(cloud, params, message):
    status, body = api(cloud, f"/device-types/{TYPE_ID}/messages", **params)
    assert (status, body) == (400, {"message": body["message"]})
    assert body["message"].startswith(message)


def test_it_refuses_a_repeated_parameter(cloud):
    status, body = call(f"{cloud.url}/device-types/{TYPE_ID}/messages?limit=1&limit=2")
    assert (status, body) == (400, {"message": "parameter 'limit' is given more than once"})


@pytest.mark.parametrize("auth", [None, (LOGIN, "wrong"), ("other", PASSWORD)])
def test_it_wants_the_api_login_and_password(cloud, auth):
    status, body = call(f"{cloud.url}/device-types/{TYPE_ID}/messages", auth=auth)
    assert status == 401 and "HTTP Basic" in body["message"]


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("/device-types/5f00000000000000000000ff/messages",
         "device type '5f00000000000000000000ff' not found"),
        ("/devices/ABCDEF/messages", "device 'ABCDEF' not found"),
        ("/devices/ABCDEF", "device 'ABCDEF' not found"),
        ("/device-types/5f00000000000000000000ff/callbacks",
         "device type '5f00000000000000000000ff' not found"),
        ("/nowhere", "no such path '/v2/nowhere'"),
    ],
)
def test_it_answers_404_to_what_it_does_not_know(cloud, path, message):
    assert api(cloud, path) == (404, {"message": message})


def test_it_answers_405_to_a_wrong_method(cloud):
    status, body = api(cloud, f"/device-types/{TYPE_ID}/messages", method="DELETE")
    assert (status, body) == (405, {"message": f"method DELETE not allowed on /v2/device-types/"
                                                f"{TYPE_ID}/messages"})


def test_it_refuses_a_body_where_none_is_expected(cloud):
    status, body = call(f"{cloud.url}/device-types/{TYPE_ID}/messages", raw_body=b"{}")
    assert status == 400 and "takes no body" in body["message"]


# --- Callbacks set up through the API --------------------------------------------------

URL_CALLBACK = {
    "channel": "URL", "callbackType": 0, "callbackSubtype": 2, "payloadConfig": "",
    "enabled": True, "sendDuplicate": False, "url": "https://example.com/data/1",
    "httpMethod": "POST", "headers": {"Authorization": "Bearer s3cret"}, "sendSni": True,
    "bodyTemplate": '{"device":"{device}","time":{time}}', "contentType": "application/json",
}


def callbacks(cloud) -> list[dict]:
    status, page = api(cloud, f"/device-types/{TYPE_ID}/callbacks")
    assert status == 200
    return page["data"]


def test_it_creates_and_lists_a_callback(cloud):
    status, created = api(cloud, f"/device-types/{TYPE_ID}/callbacks", "POST", URL_CALLBACK)
    assert status == 201 and re.fullmatch(r"[0-9a-f]{24}", created["id"])
    assert callbacks(cloud) == [{"id": created["id"], **URL_CALLBACK, "downlinkHook": False}]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"callbackName": "x"}, "unknown field 'callbackName'"),
        ({"enabled": "true"}, "field 'enabled' must be a boolean"),
        ({"callbackType": True}, "field 'callbackType' must be an integer from 0 to 2"),
        ({"callbackSubtype": 7}, "field 'callbackSubtype' must be an integer from 0 to 6"),
        ({"httpMethod": "PATCH"}, 'field \'httpMethod\' must be one of "GET", "POST", "PUT"'),
        ({"headers": {"X": 1}}, "field 'headers' must be an object of header name"),
        ({"url": ""}, "field 'url' is required for the URL channel"),
        ({"downlinkHook": True}, "only a BIDIR callback"),
    ],
)
def test_it_refuses_a_bad_callback(cloud, change, message):
    status, body = api(cloud, f"/device-types/{TYPE_ID}/callbacks", "POST",
                       {**URL_CALLBACK, **change})
    assert status == 400 and body["message"].startswith(message)
    assert callbacks(cloud) == []


def test_it_wants_the_required_callback_fields(cloud):
    body = {k: v for k, v in URL_CALLBACK.items() if k != "channel"}
    assert api(cloud, f"/device-types/{TYPE_ID}/callbacks", "POST", body) == (
        400, {"message": "field 'channel' is required"})
    status, answer = call(f"{cloud.url}/device-types/{TYPE_ID}/callbacks", "POST",
                          raw_body=b"not json")
    assert (status, answer) == (400, {"message": "the body is not JSON"})


def test_it_updates_enables_and_deletes_a_callback(cloud):
    _, created = api(cloud, f"/device-types/{TYPE_ID}/callbacks", "POST", URL_CALLBACK)
    path = f"/device-types/{TYPE_ID}/callbacks/{created['id']}"
    assert api(cloud, path, "PUT", {"url": "https://example.com/data/2"}) == (204, None)
    assert api(cloud, path, "PUT", {"color": "red"}) == (400, {"message": "unknown field 'color'"})
    assert api(cloud, f"{path}/enable", "PUT", enabled="false") == (204, None)
    [found] = callbacks(cloud)
    assert (found["url"], found["enabled"], found["bodyTemplate"]) == (
        "https://example.com/data/2", False, URL_CALLBACK["bodyTemplate"])
    assert api(cloud, f"{path}/enable", "PUT", enabled="yes")[0] == 400
    assert api(cloud, f"{path}/enable", "PUT")[0] == 400
    assert api(cloud, path, "DELETE") == (204, None)
    assert callbacks(cloud) == []
    assert api(cloud, path, "PUT", {"enabled": True})[0] == 404


def test_it_makes_one_bidir_callback_the_downlink_one(cloud):
    bidir = {**URL_CALLBACK, "callbackSubtype": 3}
    ids = [api(cloud, f"/device-types/{TYPE_ID}/callbacks", "POST", body)[1]["id"]
           for body in (URL_CALLBACK, bidir, bidir)]
    base = f"/device-types/{TYPE_ID}/callbacks"
    status, body = api(cloud, f"{base}/{ids[0]}/downlink", "PUT")
    assert status == 400 and "only a BIDIR callback" in body["message"]
    assert api(cloud, f"{base}/{ids[1]}/downlink", "PUT") == (204, None)
    assert api(cloud, f"{base}/{ids[2]}/downlink", "PUT") == (204, None)
    assert {c["id"]: c["downlinkHook"] for c in callbacks(cloud)} == {
        ids[0]: False, ids[1]: False, ids[2]: True}


# --- The backend's retries and what it gives up ----------------------------------------


class Answering(ThreadingHTTPServer):
    """Answers each callback with the next of `statuses` (the last one forever after)."""

    daemon_threads = True

    def __init__(self, statuses: list[int]):
        self.statuses = list(statuses)
        self.received: list[tuple[str, str, dict, str]] = []
        lock = threading.Lock()

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def handle_any(handler):
                length = int(handler.headers.get("Content-Length") or 0)
                body = handler.rfile.read(length).decode()
                with lock:
                    self.received.append((handler.command, handler.path, dict(handler.headers),
                                          body))
                    status = self.statuses.pop(0) if len(self.statuses) > 1 else self.statuses[0]
                handler.send_response(status)
                handler.send_header("Content-Length", "0")
                handler.end_headers()

            do_GET = do_POST = handle_any

            def log_message(handler, *args):
                pass

        super().__init__(("127.0.0.1", 0), Handler)
        self.port = self.server_address[1]


@pytest.fixture
def answering():
    servers = []

    def start(statuses) -> Answering:
        server = Answering(statuses)
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                         daemon=True).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


SPEED = 1200  # 420 simulated seconds of retries take 0.35 s


def play(port: int, some_frames, *, encoding="json", duplicates=0.0):
    """Send `some_frames` as `simulate --sigfox-api` does (clock at SPEED, all due at
    once) until the retries settle: returns the cloud (not serving: `with cloud:`
    serves it), the stats and the simulated time the sending started."""
    clock = SimulatedClock(speed=SPEED)
    started_s = clock.now_s()
    cloud = SigfoxCloud(login=LOGIN, password=PASSWORD, clock=clock.now_s)
    cloud.add_device_type(TYPE_ID)
    backend = Backend(cloud=cloud, clock=clock, device_type_id=TYPE_ID,
                      base_url=f"http://127.0.0.1:{port}", headers={"Authorization": "Bearer tok"})
    rng = random.Random(3)
    schedule = [(0, callbacks_for(frame, encoding=encoding, path="/data/1", raw=True,
                                  metadata=False, retry_probability=0,
                                  duplicate_probability=duplicates, rng=rng,
                                  device_type_id=TYPE_ID))
                for frame in some_frames]
    stats = Stats()
    send_all(schedule, scheme="http", host="127.0.0.1", port=port, timeout_s=5,
             headers={"User-Agent": "test", "Authorization": "Bearer tok"}, concurrency=2,
             stats=stats, progress=Progress(lambda text: None, enabled=False, total=None,
                                            duration_s=None),
             clock=clock, backend=backend)
    return cloud, stats, started_s


def test_it_retries_1_2_and_4_minutes_apart_then_gives_up_a_500(answering):
    server = answering([500])
    [frame] = frames(1)
    cloud, stats, started_s = play(server.port, [frame])
    assert len(server.received) == 4
    assert stats.counts == {("first", "500"): 1, ("redelivery", "500"): 3}
    assert stats.given_up == {"500": 1}
    with cloud:
        [message] = api(cloud, f"/devices/{frame.device}/messages")[1]["data"]
    attempts = message["rinfos"][0]["cbStatus"]
    assert [(a["status"], a["info"]) for a in attempts] == [(500, "HTTP 500")] * 4
    first_ms = attempts[0]["time"]
    assert 0 <= first_ms / 1000 - started_s < 60
    offsets_s = [(a["time"] - first_ms) / 1000 for a in attempts[1:]]
    # Never early; late by what a loaded machine adds (30 simulated s = 25 real ms).
    assert all(due - 0.01 <= offset < due + 30 for offset, due in zip(offsets_s, RETRY_DELAYS_S))
    [item] = cloud.given_up()
    assert item == {
        "device": frame.device, "deviceType": TYPE_ID, "time": T0 * 1000,
        "data": frame.payload_hex(), "snr": frame.snr_db, "status": 500, "message": "HTTP 500",
        "callback": {
            "url": f"http://127.0.0.1:{server.port}/data/1",
            "headers": {"Authorization": "Bearer tok"},
            "body": server.received[0][3],
            "contentType": "application/json",
            "method": "POST",
            "error": "HTTP 500",
        },
        "parameters": {"device": frame.device, "time": str(T0), "deviceTypeId": TYPE_ID,
                       "data": frame.payload_hex(), "seqNumber": str(frame.seq_number)},
    }


def test_it_gives_up_a_refused_connection_with_the_request_tried():
    some_frames = frames(4, devices=2)
    port = closed_port()
    cloud, stats, _ = play(port, some_frames, encoding="get", duplicates=1)
    assert stats.counts == {("first", "connection refused"): 4,
                            ("duplicate", "connection refused"): 4,
                            ("redelivery", "connection refused"): 24}
    given_up = cloud.given_up()
    assert len(given_up) == 8
    assert {(item["device"], item["time"] // 1000) for item in given_up} == {
        (f.device, f.time_s) for f in some_frames}
    for item in given_up:
        assert (item["status"], item["message"]) == (None, "connection refused")
        assert item["callback"]["method"] == "GET" and item["callback"]["body"] == ""
        assert item["callback"]["url"].startswith(f"http://127.0.0.1:{port}/data/1?device=")
        assert item["callback"]["headers"] == {"Authorization": "Bearer tok"}


def test_it_stops_retrying_once_a_retry_is_answered(answering):
    server = answering([503, 500, 204])
    cloud, stats, _ = play(server.port, frames(1))
    assert stats.counts == {("first", "503"): 1, ("redelivery", "500"): 1,
                            ("redelivery", "204"): 1}
    assert stats.given_up == {} and cloud.given_up() == []


def test_it_serves_what_was_given_up_through_the_api():
    cloud, _, _ = play(closed_port(), frames(3))
    with cloud:
        items, _ = all_pages(cloud, f"/device-types/{TYPE_ID}/callbacks-not-delivered", limit=2)
        assert [item["time"] // 1000 for item in items] == [T0 + 40, T0 + 20, T0]
        items, _ = all_pages(cloud, "/devices/C10001/callbacks-not-delivered",
                             since=T0 * 1000, before=(T0 + 60) * 1000)
        assert [item["device"] for item in items] == ["C10001"]
        assert api(cloud, f"/device-types/{TYPE_ID}/callbacks-not-delivered", foo="1")[0] == 400


def test_it_schedules_each_retry_from_the_first_attempt():
    [frame] = frames(1)
    recorded = []

    class Cloud:
        def record_frame(self, frame, *, device_type_id):
            pass

        def record_attempt(self, frame, **kwargs):
            pass

        def record_not_delivered(self, frame, **kwargs):
            recorded.append(kwargs)

    [callback] = callbacks_for(frame, encoding="json", path="/data/1", raw=False, metadata=False,
                               retry_probability=0, duplicate_probability=0,
                               rng=random.Random(1))
    backend = Backend(cloud=Cloud(), clock=SimulatedClock(), device_type_id=TYPE_ID,
                      base_url="http://127.0.0.1:1", headers={})
    stats = Stats()
    attempt, sent_s, due = Attempt(callback), 1000.0, []
    for delay_s in RETRY_DELAYS_S:
        backend.answered(attempt, "timeout", sent_s, stats)
        due_s = backend.next_due_s()
        attempt = backend.pop()
        due.append(due_s)
        assert attempt.callback.kind == "redelivery" and attempt.first_s == 1000.0
        sent_s = due_s + 2.5  # late, as a busy worker is: the next is still from the first
    assert due == [1060.0, 1180.0, 1420.0]
    backend.answered(attempt, "timeout", sent_s, stats)
    assert backend.next_due_s() is None and stats.given_up == {"timeout": 1}
    assert [r["message"] for r in recorded] == ["timeout"]


def test_it_runs_the_simulated_clock_fast_and_meets_the_real_one():
    real = [100.0]
    clock = SimulatedClock(speed=60, meets_real_s=110.0, real=lambda: real[0])
    assert clock.now_s() == 110.0 - 10 * 60
    real[0] = 110.0
    assert clock.now_s() == 110.0
    assert clock.real_wait_s(170.0) == 1.0


# --- manage.py simulate --sigfox-api in a process of its own -----------------------------
