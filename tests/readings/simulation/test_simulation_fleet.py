"""readings.simulation.fleet: the simulated fleet and its callbacks, without a server."""

import itertools
import json
import random
from urllib.parse import parse_qsl, urlsplit

import pytest

from readings import payload
from readings.sigfox import SEQ_MODULO
from readings.simulation.fleet import (
    DEVICE_ID_MAX,
    ENCODINGS,
    RAW_PAYLOAD_CONFIG,
    Fleet,
    as_text,
    build_callback,
    callbacks_for,
    duplicate_copy,
)

T0 = 1_700_000_000  # 2023-11-14 22:13:20Z


def fleet(*, devices=3, device_base=1, interval_s=600, time_start_s=T0, seed=7) -> Fleet:
    return Fleet(devices=devices, device_base=device_base, interval_s=interval_s,
                 time_start_s=time_start_s, seed=seed)


def first_frame(**kwargs):
    return next(fleet(devices=1, **kwargs).frames())


def callbacks(frame, **kwargs):
    options = {"encoding": "json", "path": "/data/1", "raw": False, "metadata": False,
               "retry_probability": 0, "duplicate_probability": 0, "rng": random.Random(1)}
    return callbacks_for(frame, **{**options, **kwargs})


def sent_variables(callback) -> dict:
    """The variables as the server reads them back from the request."""
    if callback.method == "GET":
        return dict(parse_qsl(urlsplit(callback.target).query))
    if callback.headers["Content-Type"] == "application/x-www-form-urlencoded":
        return dict(parse_qsl(callback.body.decode()))
    return json.loads(callback.body)


# --- The timeline -----------------------------------------------------------------------


def test_it_spreads_the_devices_evenly_over_each_interval():
    frames = list(fleet(devices=4, interval_s=600).frames(count=8))
    assert [f.device for f in frames] == ["1", "2", "3", "4"] * 2
    assert [f.due_s - T0 for f in frames] == [0, 150, 300, 450, 600, 750, 900, 1050]


def test_it_stamps_frames_in_whole_seconds_rounded_down():
    frames = list(fleet(devices=3, interval_s=100).frames(count=3))
    assert [f.due_s - T0 for f in frames] == pytest.approx([0, 100 / 3, 200 / 3])
    assert [f.time_s - T0 for f in frames] == [0, 33, 66]


def test_it_names_the_devices_in_hex_from_the_base():
    devices = fleet(devices=3, device_base=0x5F00FF).devices
    assert [d.sigfox_id for d in devices] == ["5F00FF", "5F0100", "5F0101"]
    assert DEVICE_ID_MAX == 0xFFFFFFFF


def test_it_stops_after_count_frames():
    assert len(list(fleet().frames(count=7))) == 7


def test_it_stops_at_the_first_frame_due_after_until_s():
    frames = list(fleet(devices=2).frames(until_s=T0 + 900))
    assert [f.due_s - T0 for f in frames] == [0, 300, 600, 900]


def test_it_stops_at_whichever_bound_comes_first():
    assert len(list(fleet(devices=2).frames(count=3, until_s=T0 + 900))) == 3
    assert len(list(fleet(devices=2).frames(count=30, until_s=T0 + 900))) == 4


def test_it_goes_on_where_the_last_frames_stopped():
    model = fleet(devices=2)
    first, second = list(model.frames(count=2)), list(model.frames(count=2))
    assert [f.due_s - T0 for f in first + second] == [0, 300, 600, 900]
    assert [f.seq_number for f in first + second][::2] == [
        first[0].seq_number, (first[0].seq_number + 1) % 4096]


def test_it_keeps_the_frame_due_after_until_s_for_the_next_call():
    model = fleet(devices=2)
    assert len(list(model.frames(until_s=T0 + 900))) == 4
    assert [f.due_s - T0 for f in model.frames(count=2)] == [1200, 1500]


def test_it_counts_sequence_numbers_per_device_modulo_4096():
    frames = list(fleet(devices=2, seed=1).frames(count=2 * 5000))
    for device in ("1", "2"):
        numbers = [f.seq_number for f in frames if f.device == device]
        assert all(b == (a + 1) % 4096 for a, b in itertools.pairwise(numbers))
        assert 0 in numbers[1:]  # it wrapped
    assert SEQ_MODULO == 4096


def test_it_keeps_readings_plausible():
    frames = list(fleet(devices=5, seed=3).frames(count=5 * 1000))
    assert all(5 < f.temp_c < 35 and f.temp_c * 16 == int(f.temp_c * 16) for f in frames)
    assert all(-160 < f.rssi_dbm < -70 and f.snr_db >= 0 for f in frames)
    first = [f for f in frames if f.device == "1"]
    assert first[-1].battery_mv < first[0].battery_mv  # draining


def test_it_repeats_the_frames_of_a_seed():
    assert list(fleet(seed=42).frames(count=30)) == list(fleet(seed=42).frames(count=30))
    assert list(fleet(seed=42).frames(count=30)) != list(fleet(seed=43).frames(count=30))


# --- Payloads and variables -------------------------------------------------------------


def test_its_raw_payloads_decode_with_the_raw_payload_config():
    frames = list(fleet(devices=2, device_base=0xA50000).frames(count=8))
    for f in frames:
        assert payload.decode(RAW_PAYLOAD_CONFIG, f.payload_hex()) == {
            "temp": f.temp_c, "battery_mv": f.battery_mv}


def test_its_raw_payload_is_six_bytes_of_lower_case_hex():
    data = first_frame().payload_hex()
    assert len(data) == 12 and data == data.lower()


def test_it_sends_the_tutorials_decoded_values_by_default():
    frame = first_frame()
    assert frame.variables(raw=False, metadata=False) == {
        "device": "1", "time": str(T0), "temp": frame.temp_c, "battery_mv": frame.battery_mv}


def test_it_sends_data_and_seq_number_in_raw_mode():
    frame = first_frame()
    assert frame.variables(raw=True, metadata=False) == {
        "device": "1", "time": str(T0), "data": frame.payload_hex(), "seqNumber": frame.seq_number}


def test_it_adds_the_network_variables_with_metadata():
    frame = first_frame()
    variables = frame.variables(raw=False, metadata=True)
    assert list(variables)[-4:] == ["duplicate", "station", "rssi", "snr"]
    assert variables["duplicate"] is False
    assert (variables["station"], variables["rssi"], variables["snr"]) == (
        frame.station, frame.rssi_dbm, frame.snr_db)


def test_a_duplicate_is_the_same_frame_from_another_weaker_station():
    for frame in fleet().frames(count=50):
        copy = duplicate_copy(frame, random.Random(frame.time_s))
        assert copy.station != frame.station and len(copy.station) == 4
        assert copy.rssi_dbm < frame.rssi_dbm and 0 <= copy.snr_db <= frame.snr_db
        assert (copy.device, copy.time_s, copy.seq_number, copy.temp_c, copy.battery_mv) == (
            frame.device, frame.time_s, frame.seq_number, frame.temp_c, frame.battery_mv)


# --- Requests ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("encoding", "method", "headers"),
    [("json", "POST", {"Content-Type": "application/json"}),
     ("form", "POST", {"Content-Type": "application/x-www-form-urlencoded"}),
     ("text", "POST", {"Content-Type": "text/plain"}),
     ("get", "GET", {})],
)
def test_it_encodes_each_way_as_the_backend_does(encoding, method, headers):
    frame = first_frame()
    variables = frame.variables(raw=False, metadata=True)
    callback = build_callback(kind="first", encoding=encoding, path="/data/kitchen",
                              variables=variables)
    assert (callback.kind, callback.method, callback.headers) == ("first", method, headers)
    assert urlsplit(callback.target).path == "/data/kitchen"
    if encoding == "get":
        assert callback.body is None
    else:
        assert callback.target == "/data/kitchen"
    if encoding in ("json", "text"):
        assert sent_variables(callback) == variables
    else:
        assert sent_variables(callback) == {name: as_text(v) for name, v in variables.items()}
        assert sent_variables(callback)["duplicate"] == "false"


def test_it_writes_booleans_in_forms_as_the_backend_does():
    assert (as_text(True), as_text(False), as_text(12.5), as_text("AB")) == (
        "true", "false", "12.5", "AB")


def test_it_refuses_an_unknown_encoding():
    with pytest.raises(ValueError, match="unknown encoding 'xml'"):
        build_callback(kind="first", encoding="xml", path="/data/1", variables={})


def test_it_sends_one_callback_per_frame_by_default():
    [callback] = callbacks(first_frame())
    assert callback.kind == "first"


def test_it_sends_a_retry_as_the_very_same_request():
    first, retry = callbacks(first_frame(), retry_probability=1)
    assert retry.kind == "retry"
    assert (retry.method, retry.target, retry.headers, retry.body) == (
        first.method, first.target, first.headers, first.body)


@pytest.mark.parametrize("encoding", ENCODINGS)
def test_it_sends_a_duplicate_with_the_network_variables(encoding):
    first, copy = callbacks(first_frame(), encoding=encoding, duplicate_probability=1)
    assert copy.kind == "duplicate" and copy.method == first.method
    sent, copied = sent_variables(first), sent_variables(copy)
    assert "station" not in sent  # no --metadata: only the copy needs it
    assert str(copied["duplicate"]).lower() == "true"
    network = {"duplicate", "station", "rssi", "snr"}
    assert {k: v for k, v in copied.items() if k not in network} == sent


def test_it_sends_the_retry_before_the_duplicate():
    group = callbacks(first_frame(), metadata=True, retry_probability=1, duplicate_probability=1)
    assert [c.kind for c in group] == ["first", "retry", "duplicate"]


def test_it_mixes_the_encodings_when_asked():
    rng = random.Random(5)
    groups = [callbacks(f, encoding="mixed", rng=rng) for f in fleet().frames(count=60)]
    kinds = {(c.method, c.headers.get("Content-Type")) for [c] in groups}
    assert kinds == {("POST", "application/json"), ("POST", "application/x-www-form-urlencoded"),
                     ("POST", "text/plain"), ("GET", None)}


def test_it_repeats_the_requests_of_a_seed():
    def run():
        rng = random.Random("42:sends")
        return [callbacks(f, encoding="mixed", retry_probability=0.5, duplicate_probability=0.5,
                          rng=rng) for f in fleet(seed=42).frames(count=20)]

    assert run() == run()


def test_its_sending_choices_leave_the_readings_alone():
    plain, busy = fleet(seed=9), fleet(seed=9)
    busy_frames = []
    rng = random.Random(0)
    for frame in busy.frames(count=20):
        callbacks(frame, encoding="mixed", retry_probability=0.5, duplicate_probability=0.5,
                  rng=rng)
        busy_frames.append(frame)
    assert busy_frames == list(plain.frames(count=20))


def test_quiet_devices_stop_sending_from_their_time_on():
    fleet = Fleet(devices=3, device_base=0x5F0000, interval_s=60, time_start_s=1_700_000_000,
                  seed=1, quiet=1, quiet_from_s=1_700_000_000 + 300)
    frames = list(fleet.frames(until_s=1_700_000_000 + 600))
    quiet = [f for f in frames if f.device == "5F0002"]
    assert quiet and max(f.due_s for f in quiet) < 1_700_000_000 + 300
    talking = [f for f in frames if f.device == "5F0000"]
    assert max(f.due_s for f in talking) >= 1_700_000_000 + 540


def test_a_fleet_gone_wholly_quiet_ends():
    fleet = Fleet(devices=2, device_base=0x5F0000, interval_s=60, time_start_s=0, seed=1,
                  quiet=2, quiet_from_s=120)
    assert len(list(fleet.frames())) == 4
