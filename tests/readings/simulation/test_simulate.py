"""manage.py simulate, run against the project served by gunicorn (and a recorder)."""

import base64
import json
import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.request
from contextlib import closing
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from io import StringIO
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import pytest
from django.core.management import CommandError, call_command

from readings.simulation.fleet import RAW_PAYLOAD_CONFIG, Fleet
from tests.serving import free_port, gunicorn, migrate, served_env

T0 = 1_700_000_000  # 2023-11-14 22:13:20Z


def simulate(url: str, *args: str) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command("simulate", "--url", url, *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def rows(server, sql: str) -> list[tuple]:
    """server.query, always as a list of rows (it returns a lone value bare)."""
    result = server.query(sql)
    return result if isinstance(result, list) else [(result,)]


def epoch_s(value) -> int:
    """A stored datetime as epoch seconds: SQLite gives naive UTC text, psycopg a datetime."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return int(value.timestamp())


def stored_readings(server, device_base: int, devices: int) -> set[tuple]:
    ids = ", ".join(f"'{device_base + i:X}'" for i in range(devices))
    found = rows(server, "SELECT d.sigfox_id, r.time, r.quantity, r.value FROM readings_reading r "
                         f"JOIN readings_device d ON d.id = r.device_id WHERE d.sigfox_id IN ({ids})")
    return {(device, epoch_s(time_), quantity, value) for device, time_, quantity, value in found}


def stored_count(server, table: str, device_base: int, devices: int) -> int:
    ids = ", ".join(f"'{device_base + i:X}'" for i in range(devices))
    return server.query(f"SELECT COUNT(*) FROM {table} t JOIN readings_device d ON d.id = t.device_id "
                        f"WHERE d.sigfox_id IN ({ids})")


def expected_frames(*, devices: int, device_base: int, count: int, seed: int, interval_s=600):
    """The frames a run with base_args() sends: the fleet model is deterministic."""
    fleet = Fleet(devices=devices, device_base=device_base, interval_s=interval_s, time_start_s=T0,
                  seed=seed)
    return list(fleet.frames(count=count))


def expected_readings(frames) -> set[tuple]:
    return {(f.device, f.time_s, quantity, float(value)) for f in frames
            for quantity, value in (("temp", f.temp_c), ("battery_mv", f.battery_mv))}


def base_args(device_base: int, *, devices=3, count=30, seed=7) -> list[str]:
    return ["--device-base", f"{device_base:X}", "--devices", str(devices), "--count", str(count),
            "--time-start", str(T0), "--interval", "600", "--seed", str(seed)]


# --- Against the project --------------------------------------------------------------


def test_it_stores_each_message_once(server):
    out, _ = simulate(server.url, *base_args(0xA10000))
    assert stored_count(server, "readings_message", 0xA10000, 3) == 30
    assert stored_count(server, "readings_reading", 0xA10000, 3) == 60
    per_device = rows(server, "SELECT d.sigfox_id, COUNT(DISTINCT m.time) FROM readings_message m "
                              "JOIN readings_device d ON d.id = m.device_id "
                              "WHERE d.sigfox_id LIKE 'A1000%' GROUP BY d.sigfox_id ORDER BY 1")
    assert per_device == [("A10000", 10), ("A10001", 10), ("A10002", 10)]
    assert "  first sends        30: 204 x 30\n" in out
    assert out.splitlines()[-1].startswith("30 messages, 30 callbacks in ")
    assert "30 answered 2xx, 0 failed, p50 " in out.splitlines()[-1]


@pytest.mark.parametrize("encoding", ["json", "form", "text", "get", "mixed"])
def test_it_stores_the_readings_it_sent_whatever_the_encoding(server, encoding):
    # Same seed, so every encoding sends the same values: the rows must be those.
    device_base = 0xA20000 + 0x100 * ["json", "form", "text", "get", "mixed"].index(encoding)
    simulate(server.url, *base_args(device_base, count=12), "--encoding", encoding)
    frames = expected_frames(devices=3, device_base=device_base, count=12, seed=7)
    assert stored_readings(server, device_base, 3) == expected_readings(frames)


def test_it_stores_nothing_more_for_retries(server):
    out, _ = simulate(server.url, *base_args(0xA30000, count=20), "--retries", "1")
    assert "  retries            20: 204 x 20\n" in out
    assert stored_count(server, "readings_message", 0xA30000, 3) == 20
    frames = expected_frames(devices=3, device_base=0xA30000, count=20, seed=7)
    assert stored_readings(server, 0xA30000, 3) == expected_readings(frames)


def test_it_stores_nothing_more_for_duplicates(server):
    out, _ = simulate(server.url, *base_args(0xA40000, count=20), "--duplicates", "1")
    assert "  duplicates         20: 204 x 20\n" in out
    assert stored_count(server, "readings_message", 0xA40000, 3) == 20
    frames = expected_frames(devices=3, device_base=0xA40000, count=20, seed=7)
    assert stored_readings(server, 0xA40000, 3) == expected_readings(frames)
    # The message keeps the station of the first reception, not the duplicate's.
    stations = rows(server, "SELECT d.sigfox_id, m.station FROM readings_message m "
                            "JOIN readings_device d ON d.id = m.device_id WHERE d.sigfox_id LIKE 'A4000%'")
    assert set(stations) == {(f.device, f.station) for f in frames}


def test_it_sends_raw_payloads_with_sequence_numbers(server):
    simulate(server.url, *base_args(0xA50000, devices=2, count=8), "--raw")
    found = rows(server, "SELECT d.sigfox_id, m.seq_number, m.data FROM readings_message m "
                         "JOIN readings_device d ON d.id = m.device_id WHERE d.sigfox_id LIKE 'A5000%'")
    frames = expected_frames(devices=2, device_base=0xA50000, count=8, seed=7)
    assert sorted(found) == sorted((f.device, f.seq_number, f.payload_hex()) for f in frames)
    # That the server's config decodes them: tests/readings/simulation/test_simulation_fleet.py.


def test_it_backfills_up_to_now_and_stops(server):
    started = time.time()
    out, _ = simulate(server.url, "--device-base", "A60000", "--devices", "2", "--backfill", "0.25",
                      "--interval", "5000")
    # Device A60000 at 0, 5000, ... 20000 s; A60001 half an interval later, up to 17500 s.
    times = [epoch_s(t) for (t,) in rows(
        server, "SELECT m.time FROM readings_message m JOIN readings_device d ON d.id = m.device_id "
                "WHERE d.sigfox_id LIKE 'A6000%'")]
    assert len(times) == 9
    assert started - 21_600 - 1 <= min(times) and max(times) <= time.time()
    assert "until now" in out.splitlines()[0]


def test_it_sends_live_messages_when_they_fall_due(server):
    started = time.monotonic()
    simulate(server.url, "--device-base", "A70000", "--devices", "20", "--rate", "20",
             "--duration", "1")
    assert time.monotonic() - started >= 0.9
    sent = stored_count(server, "readings_message", 0xA70000, 20)
    assert 19 <= sent <= 21
    newest = epoch_s(rows(server, "SELECT MAX(m.time) FROM readings_message m JOIN readings_device d "
                                  "ON d.id = m.device_id WHERE d.sigfox_id LIKE 'A700%'")[0][0])
    assert abs(newest - time.time()) < 5


def test_it_plays_the_sigfox_cloud_for_a_server_that_answers(server):
    out, _ = simulate(server.url, *base_args(0xA90000, count=12), "--sigfox-api", "0",
                      "--exit-when-done", "--device-type", "5f00000000000000000000a9")
    assert re.search(r"^Sigfox API stand-in: http://127\.0\.0\.1:\d+/v2 \(login simulate, "
                     r"password simulate\)", out, re.MULTILINE)
    assert "  first sends        12: 204 x 12\n" in out and "\n  given up" not in out
    assert "0 failed, 0 given up to callbacks-not-delivered" in out.splitlines()[-1]
    assert stored_count(server, "readings_message", 0xA90000, 3) == 12
    types = rows(server, "SELECT DISTINCT t.sigfox_id FROM readings_device d JOIN "
                         "readings_devicetype t ON t.id = d.device_type_id "
                         "WHERE d.sigfox_id LIKE 'A9000%'")
    assert [(type_id.lower(),) for (type_id,) in types] == [("5f00000000000000000000a9",)]


def test_it_reports_answers_that_are_not_2xx(server):
    out = StringIO()
    with pytest.raises(CommandError, match=r"^5 of 5 callbacks were not answered 2xx\.$"):
        call_command("simulate", "--url", f"{server.url}/nowhere", *base_args(0xA80000, count=5),
                     stdout=out)
    assert "  first sends         5: 404 x 5\n" in out.getvalue()
    assert "0 answered 2xx, 5 failed" in out.getvalue()
    assert stored_count(server, "readings_message", 0xA80000, 3) == 0


# --- Arguments and connection errors --------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_it_explains_a_refused_connection():
    url = f"http://127.0.0.1:{_free_port()}"
    with pytest.raises(CommandError, match=r"connection refused .*Is the server running"):
        simulate(url, "--count", "1")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--url", "ftp://example.com"], "argument --url: must be an http"),
        (["--url", "http://127.0.0.1:8000?x=1"], "argument --url: .* without a query string"),
        (["--url", "http://127.0.0.1:99999"], "argument --url: has an invalid port"),
        (["--sensor", "a/b"], "argument --sensor: must be"),
        (["--devices", "0"], "argument --devices: must be between 1"),
        (["--devices", "many"], "argument --devices: expects a whole number"),
        (["--device-base", "XYZ"], "argument --device-base: must be hexadecimal"),
        (["--device-base", "100000000"], "argument --device-base: must be between 0 and FFFFFFFF"),
        (["--device-base", "FFFFFFFF", "--devices", "2"], "goes past FFFFFFFF"),
        (["--devices", "2", "--quiet", "3"], "--quiet 3 is more than the 2 devices"),
        (["--interval", "0.5"], "argument --interval: must be between 1"),
        (["--rate", "10", "--devices", "3"], "give --devices 10 or more"),
        (["--rate", "-1"], "argument --rate: must be between"),
        (["--interval", "10", "--rate", "1"], "not allowed with argument"),
        (["--count", "0"], "argument --count: must be between 1"),
        (["--duration", "nan"], "argument --duration: must be between"),
        (["--time-start", "yesterday"], "argument --time-start: expects a whole number"),
        (["--time-start", "1700000000", "--backfill", "1"], "not allowed with argument"),
        (["--backfill", "0"], "argument --backfill: must be between"),
        (["--encoding", "xml"], "invalid choice"),
        (["--retries", "1.5"], "argument --retries: must be between 0 and 1"),
        (["--duplicates", "-0.1"], "argument --duplicates: must be between 0 and 1"),
        (["--concurrency", "0"], "argument --concurrency: must be between 1"),
        (["--timeout", "0"], "argument --timeout: must be between 0.01"),
        (["--seed", "abc"], "argument --seed: expects a whole number"),
        (["--speed", "0.5"], "argument --speed: must be between 1"),
        (["--speed", "60"], "--speed 60 needs --duration or --count"),
        (["--sigfox-api", "65536"], "argument --sigfox-api: must be between 0 and 65535"),
        (["--device-type", "5f"], "argument --device-type: must be 24 hexadecimal characters"),
        (["--exit-when-done"], "--exit-when-done goes with --sigfox-api"),
        (["--api-login", "me"], "--api-login goes with --sigfox-api"),
    ],
)
def test_it_rejects_bad_arguments(args, message):
    with pytest.raises(CommandError, match=message.replace("?", r"\?")):
        call_command("simulate", *args, stdout=StringIO())


@pytest.mark.parametrize(
    ("args", "status", "message"),
    [
        # argparse's own exit: usage, then the error naming the option.
        (["--devices", "0"], 2,
         "simulate: error: argument --devices: must be between 1 and 1e+06, got 0\n"),
        # A check of options together: Django prints the CommandError.
        (["--rate", "10", "--devices", "3"], 1, "CommandError: --rate 10 with 3 devices"),
    ],
)
def test_it_exits_without_a_traceback_from_the_command_line(args, status, message):
    env = {**{k: v for k, v in os.environ.items() if k in {"PATH", "HOME", "LANG"}},
           "SIGFOXSITE_READ_DOT_ENV": "false", "SECRET_KEY": "simulate-test-" + "x" * 40}
    root = Path(__file__).resolve().parents[3]
    result = subprocess.run([sys.executable, "manage.py", "simulate", *args], cwd=root, env=env,
                            capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == status
    assert message in result.stderr
    assert "Traceback" not in result.stderr and result.stdout == ""


# --- What goes on the wire, seen by a recorder ----------------------------------------


class Recorder(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self):
        self.requests: list[dict] = []
        self.lock = threading.Lock()

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as the simulator expects

            def handle_any(handler):
                length = int(handler.headers.get("Content-Length") or 0)
                body = handler.rfile.read(length).decode()
                with self.lock:
                    self.requests.append({"method": handler.command, "path": handler.path,
                                          "headers": dict(handler.headers), "body": body})
                handler.send_response(204)
                handler.end_headers()

            do_GET = do_POST = handle_any

            def log_message(handler, *args):
                pass

        super().__init__(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server_address[1]}"

    def variables(self) -> list[dict]:
        """Each request's variables, whatever its encoding, in the order they arrived."""
        found = []
        for request in self.requests:
            if request["method"] == "GET":
                found.append(dict(parse_qsl(urlsplit(request["path"]).query)))
            elif request["headers"]["Content-Type"] == "application/x-www-form-urlencoded":
                found.append(dict(parse_qsl(request["body"])))
            else:
                found.append(json.loads(request["body"]))
        return found


@pytest.fixture
def recorder():
    server = Recorder()
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                              daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def test_it_sends_the_token_as_a_bearer_header(recorder):
    simulate(recorder.url, *base_args(0xB10000, count=3), "--token", "s3cret")
    assert [r["headers"]["Authorization"] for r in recorder.requests] == ["Bearer s3cret"] * 3


@pytest.mark.parametrize(
    ("encoding", "method", "content_type"),
    [("json", "POST", "application/json"), ("form", "POST", "application/x-www-form-urlencoded"),
     ("text", "POST", "text/plain"), ("get", "GET", None)],
)
def test_it_encodes_each_way_as_the_backend_does(recorder, encoding, method, content_type):
    simulate(recorder.url, *base_args(0xB20000, devices=1, count=1), "--encoding", encoding,
             "--sensor", "kitchen")
    [request] = recorder.requests
    assert request["method"] == method
    assert request["path"].startswith("/data/kitchen")
    assert request["headers"].get("Content-Type") == content_type
    [frame] = expected_frames(devices=1, device_base=0xB20000, count=1, seed=7)
    sent = recorder.variables()[0]
    assert sent["device"] == "B20000" and sent["time"] == str(T0)
    assert float(sent["temp"]) == frame.temp_c and float(sent["battery_mv"]) == frame.battery_mv


def test_it_sends_a_retry_as_the_very_same_request(recorder):
    simulate(recorder.url, *base_args(0xB30000, devices=1, count=4), "--retries", "1",
             "--concurrency", "1")
    bodies = [r["body"] for r in recorder.requests]
    assert len(bodies) == 8 and bodies[0::2] == bodies[1::2]


def test_it_sends_duplicates_from_another_station(recorder):
    simulate(recorder.url, *base_args(0xB40000, devices=1, count=4), "--duplicates", "1",
             "--concurrency", "1")
    sent = recorder.variables()
    assert len(sent) == 8
    for first, copy in zip(sent[0::2], sent[1::2]):
        assert (first["duplicate"], copy["duplicate"]) == (False, True)
        assert copy["station"] != first["station"] and copy["rssi"] < first["rssi"]
        assert {k: v for k, v in copy.items() if k not in {"duplicate", "station", "rssi", "snr"}} == \
            {k: v for k, v in first.items() if k not in {"duplicate", "station", "rssi", "snr"}}


def test_it_repeats_a_run_with_the_same_seed(recorder):
    for _ in range(2):
        simulate(recorder.url, *base_args(0xB50000, count=6, seed=42), "--encoding", "mixed",
                 "--retries", "0.5", "--concurrency", "1")
    requests = [(r["method"], r["path"], r["body"]) for r in recorder.requests]
    assert requests[: len(requests) // 2] == requests[len(requests) // 2 :]


def test_it_draws_a_progress_bar_when_asked(recorder):
    _, err = simulate(recorder.url, *base_args(0xB60000, count=5), "--progress")
    assert "\r[" in err and "100%" in err


def test_it_never_dates_a_frame_in_the_future_at_a_higher_speed(recorder):
    started = time.time()
    out, _ = simulate(recorder.url, "--device-base", "B80000", "--devices", "2", "--interval",
                      "60", "--speed", "600", "--duration", "0.5")
    times = [int(sent["time"]) for sent in recorder.variables()]
    # 0.5 real s at 600: 300 simulated s, two devices every 60 s, ending now.
    assert 9 <= len(times) <= 11
    assert max(times) <= time.time() and min(times) >= started - 300 - 1
    assert "Simulated time runs 600 times as fast as real time" in out


def test_it_sends_the_device_type_id_when_asked(recorder):
    simulate(recorder.url, *base_args(0xB90000, devices=1, count=1), "--device-type",
             "5F00000000000000000000CC")
    assert recorder.variables()[0]["deviceTypeId"] == "5f00000000000000000000cc"


def test_it_prints_each_callback_at_verbosity_2(recorder):
    out, _ = simulate(recorder.url, *base_args(0xB70000, devices=1, count=2), "-v", "2")
    lines = [line for line in out.splitlines() if line.startswith("POST /data/1 ")]
    assert len(lines) == 2 and all(" -> 204 " in line and line.endswith("(first)") for line in lines)


# --- The story of the API mode: a server down for a while -----------------------------


def api_get(url: str, login="simulate", password="simulate") -> dict:
    request = urllib.request.Request(url)
    token = base64.b64encode(f"{login}:{password}".encode()).decode()
    request.add_header("Authorization", f"Basic {token}")
    with urllib.request.urlopen(request, timeout=5) as response:
        return json.loads(response.read())


def api_items(url: str) -> list[dict]:
    """Every item of a list endpoint, following paging.next to the end."""
    page = api_get(url)
    items = list(page["data"])
    while "next" in page["paging"]:
        page = api_get(page["paging"]["next"])
        items += page["data"]
    return items


@pytest.mark.http
def test_an_outage_longer_than_the_retries_loses_nothing_once_the_worker_backfills(tmp_path):
    """The issue's story: simulate sends callbacks; the server is stopped for
    about 15 simulated minutes while the simulated backend retries and gives
    up; the server comes back; one worker pass backfills through the API
    stand-in; every frame the fleet sent is stored exactly once."""
    # 3.6 real s at 600: 36 simulated minutes; the server is down for about 15 of them.
    token = "outage-story-token"
    env = served_env(f"sqlite:///{tmp_path / 'story.sqlite3'}",
                     SIGFOX_PAYLOAD_CONFIG=RAW_PAYLOAD_CONFIG, SIGFOX_CALLBACK_TOKEN=token)
    migrate(env)
    port = free_port()
    type_id = "5f00000000000000000000c2"
    query = ("SELECT d.sigfox_id, m.time, m.recovered, "
             "(SELECT COUNT(*) FROM readings_reading r WHERE r.message_id = m.id) "
             "FROM readings_message m JOIN readings_device d "
             "ON d.id = m.device_id WHERE d.sigfox_id LIKE 'C2000%'")
    with gunicorn(env, tmp_path / "before.log", workers=1, port=port) as url:
        process = subprocess.Popen(
            [sys.executable, "manage.py", "simulate", "--url", url, "--sigfox-api", "0",
             "--device-type", type_id, "--device-base", "C20000", "--devices", "2", "--raw",
             "--interval", "60", "--speed", "600", "--duration", "3.6", "--seed", "3",
             "--token", token],
            cwd=Path(__file__).resolve().parents[3], env=env, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True,
        )
        lines = []
        while not (lines and lines[-1].startswith("Sending to ")):
            lines.append(process.stdout.readline())
            assert lines[-1], process.stderr.read()
        time.sleep(0.9)
    down_s = time.monotonic()
    try:
        time.sleep(0.6)
        with gunicorn(env, tmp_path / "after.log", workers=1, port=port):
            down_s = time.monotonic() - down_s
            while not (line := process.stdout.readline()).startswith("Serving the Sigfox API"):
                assert line, "".join(lines) + process.stderr.read()
                lines.append(line)
            api_url, login, password = re.match(
                r"Sigfox API stand-in: (\S+) \(login (\S+), password (\S+)\)", lines[0]).groups()
            received = api_items(f"{api_url}/device-types/{type_id}/messages")
            given_up = api_items(f"{api_url}/device-types/{type_id}/callbacks-not-delivered")
            frames = {(item["device"]["id"], item["time"] // 1000) for item in received}
            missed = {(item["device"], item["time"] // 1000) for item in given_up}
            before = {(device, epoch_s(time_)) for device, time_, *_ in sqlite_rows(env, query)}
            # The backend really gave some up: they are missing, and only those.
            assert 70 <= len(frames) <= 74 and len(missed) >= 4, (len(frames), len(missed))
            assert not before & missed and before | missed == frames
            # Each as the backend tried it, our token included.
            assert {item["callback"]["headers"]["Authorization"] for item in given_up} == {
                f"Bearer {token}"}

            worker = subprocess.run(
                [sys.executable, "manage.py", "runworker", "--once"],
                cwd=Path(__file__).resolve().parents[3], capture_output=True, text=True,
                timeout=60, env={**env, "SIGFOX_API_URL": api_url, "SIGFOX_API_LOGIN": login,
                                 "SIGFOX_API_PASSWORD": password},
            )
            assert worker.returncode == 0, worker.stdout + worker.stderr
            stored = sqlite_rows(env, query)
    finally:
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=10)
    assert process.returncode == 0, err
    # Every frame exactly once, each with its two readings (temp, battery_mv).
    assert len(stored) == len(frames)
    assert {(device, epoch_s(time_)) for device, time_, *_ in stored} == frames
    assert {count for *_, count in stored} == {2}
    # Those the backend gave up on were recovered through the API, the rest by callback.
    recovered = {(device, epoch_s(time_)): how for device, time_, how, _ in stored}
    assert {recovered[frame] for frame in missed} <= {"replay", "api"}
    assert {recovered[frame] for frame in frames - missed} == {""}
    assert re.search(r": backfill \S+ .*, stored [1-9]", worker.stdout), worker.stdout
    assert "stopped" not in worker.stdout
    # The outage, in simulated minutes: longer than the backend's 7 of retries.
    assert 12 <= down_s * 600 / 60 <= 25, down_s
    assert out.startswith(f"Stopped: {len(frames)} messages, ")
    assert f"  given up     {len(missed):>8}: connection refused x {len(missed)}\n" in lines


def sqlite_rows(env: dict[str, str], sql: str) -> list[tuple]:
    with closing(sqlite3.connect(env["DATABASE_URL"].removeprefix("sqlite:///"))) as db:
        return db.execute(sql).fetchall()
