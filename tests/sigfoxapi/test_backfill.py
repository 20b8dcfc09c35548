"""manage.py sigfox backfill and the worker's backfill, against the API stand-in.

The stand-in (readings.simulation.cloud) holds what the simulated backend
received; some of it reaches the server by callback here, the rest only
through the API, as after an outage longer than the backend's retries.
"""

import json
import time
from datetime import UTC, datetime, timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from readings.models import Device, DeviceType, Downlink, Message, Reading, SequenceGap
from readings.simulation.fleet import RAW_PAYLOAD_CONFIG, Fleet
from sigfoxapi import backfill as backfill_module
from sigfoxapi.backfill import callback_time, uplink_variables
from sigfoxapi.client import SigfoxAPI
from sigfoxapi.models import ApiUsage, BackfillReason, BackfillRun
from sigfoxapi.watch import SETTLE, backfill_pass
from tests.sigfoxapi.conftest import CALLBACK_TOKEN, DEVICE_TYPE

pytestmark = pytest.mark.django_db

INTERVAL_S = 600


@pytest.fixture(autouse=True)
def raw_config(settings):
    settings.SIGFOX_PAYLOAD_CONFIG = RAW_PAYLOAD_CONFIG


def frames(count: int, *, devices: int = 2, start_s: float | None = None):
    start_s = time.time() - (count + 2) * INTERVAL_S if start_s is None else start_s
    fleet = Fleet(devices=devices, device_base=0x5F0000, interval_s=INTERVAL_S,
                  time_start_s=start_s, seed=3)
    return list(fleet.frames(count=count))


def callback(client, frame, *, sensor="1"):
    """The frame's raw-payload callback, as the backend sends it."""
    body = {"device": frame.device, "time": frame.time_s, "data": frame.payload_hex(),
            "seqNumber": frame.seq_number, "deviceTypeId": DEVICE_TYPE}
    post(client, f"/data/{sensor}", body)


def post(client, path: str, body: dict) -> None:
    response = client.post(path, json.dumps(body), content_type="application/json",
                           HTTP_AUTHORIZATION=f"Bearer {CALLBACK_TOKEN}")
    assert response.status_code == 204, response.content


def backfill(*args) -> str:
    out = StringIO()
    call_command("sigfox", "backfill", *args, stdout=out, stderr=StringIO())
    return out.getvalue()


def span_args(sent) -> list[str]:
    return ["--device-type", DEVICE_TYPE, "--since", str(sent[0].time_s),
            "--until", str(sent[-1].time_s + 1)]


def stored() -> dict[tuple[str, int], Message]:
    return {(m.device.sigfox_id, int(m.time.timestamp())): m
            for m in Message.objects.select_related("device")}


def test_it_stores_what_the_callbacks_missed_once_and_decodes_it(client, cloud):
    sent = frames(10)
    for frame in sent:
        cloud.record_frame(frame, device_type_id=DEVICE_TYPE)
    for frame in sent[:3] + sent[7:]:
        callback(client, frame, sensor="kitchen")

    output = backfill(*span_args(sent))

    assert "Fetched 10: 4 stored new, 6 already stored, 0 refused" in output
    messages = stored()
    assert set(messages) == {(f.device, f.time_s) for f in sent}
    for frame in sent[3:7]:
        message = messages[(frame.device, frame.time_s)]
        assert message.recovered == "api"
        assert message.seq_number == frame.seq_number
        assert message.data == frame.payload_hex()
        # No URL path: the sensor of the device's latest callback.
        assert message.sensor == "kitchen"
        values = dict(Reading.objects.filter(message=message).values_list("quantity", "value"))
        assert values == {"temp": frame.temp_c, "battery_mv": frame.battery_mv}
        assert message.station == frame.station
    assert {m.recovered for k, m in messages.items()
            if k in {(f.device, f.time_s) for f in sent[:3] + sent[7:]}} == {""}
    run = BackfillRun.objects.get()
    assert (run.reason, run.fetched, run.stored, run.already, run.complete) == (
        BackfillReason.MANUAL, 10, 4, 6, True)
    assert run.device_type == DeviceType.objects.get(sigfox_id=DEVICE_TYPE.upper())

    again = backfill(*span_args(sent))
    assert "Fetched 10: 0 stored new, 10 already stored" in again
    assert Message.objects.count() == 10


def test_the_admin_lists_and_filters_the_recovered_messages(client, admin_client, cloud):
    sent = frames(3, devices=1)
    for frame in sent:
        cloud.record_frame(frame, device_type_id=DEVICE_TYPE)
    callback(client, sent[0])
    backfill(*span_args(sent))

    def listed(query: str) -> int:
        response = admin_client.get(f"/admin/readings/message/{query}")
        assert response.status_code == 200
        return len(response.context["cl"].result_list)

    assert (listed(""), listed("?recovered=any"), listed("?recovered=api"),
            listed("?recovered=replay")) == (3, 2, 2, 0)
    run = BackfillRun.objects.get()
    runs_page = admin_client.get("/admin/sigfoxapi/backfillrun/").content.decode()
    assert DEVICE_TYPE.upper() in runs_page
    detail = admin_client.get(f"/admin/sigfoxapi/backfillrun/{run.pk}/change/")
    assert detail.status_code == 200 and "Attempts" in detail.content.decode()


def test_a_device_without_callbacks_takes_sensor_1(cloud):
    sent = frames(2, devices=1)
    for frame in sent:
        cloud.record_frame(frame, device_type_id=DEVICE_TYPE)
    backfill("--device", sent[0].device, "--since", str(sent[0].time_s),
             "--until", str(sent[-1].time_s + 1))
    assert set(Message.objects.values_list("sensor", "recovered")) == {("1", "api")}
    # The device type is known from the scope: a device type run names it.
    assert Device.objects.get().device_type is None


def test_a_failed_callback_is_replayed_from_its_body_with_the_token_masked(client, cloud):
    sent = frames(3, devices=1)
    for frame in sent:
        cloud.record_frame(frame, device_type_id=DEVICE_TYPE)
    callback(client, sent[0])
    lost = sent[1]
    body = json.dumps({"device": lost.device, "time": lost.time_s, "data": lost.payload_hex(),
                       "seqNumber": lost.seq_number, "deviceTypeId": DEVICE_TYPE,
                       "hum": 41.5, "token": CALLBACK_TOKEN})
    cloud.record_not_delivered(
        lost, device_type_id=DEVICE_TYPE, status=None, message="connection refused",
        parameters={}, callback={
            "url": f"https://sigfox.example.org/data/greenhouse?token={CALLBACK_TOKEN}",
            "headers": {"Authorization": f"Bearer {CALLBACK_TOKEN}"}, "body": body,
            "contentType": "application/json", "method": "POST"})

    output = backfill(*span_args(sent))

    assert "2 stored new (1 replayed from failed callbacks), 1 already stored" in output
    replayed = stored()[(lost.device, lost.time_s)]
    assert (replayed.recovered, replayed.sensor) == ("replay", "greenhouse")
    assert CALLBACK_TOKEN not in replayed.body_raw
    assert '"hum": 41.5' in replayed.body_raw
    assert replayed.content_type == "application/json"
    quantities = set(Reading.objects.filter(message=replayed).values_list("quantity", flat=True))
    assert quantities == {"temp", "battery_mv", "hum"}
    assert stored()[(sent[2].device, sent[2].time_s)].recovered == "api"
    assert not any(CALLBACK_TOKEN in str(run.error) for run in BackfillRun.objects.all())


def test_it_draws_a_progress_bar_when_asked(cloud):
    sent = frames(3, devices=1)
    for frame in sent:
        cloud.record_frame(frame, device_type_id=DEVICE_TYPE)
    err = StringIO()
    call_command("sigfox", "backfill", *span_args(sent), "--progress", stdout=StringIO(),
                 stderr=err)
    assert err.getvalue().endswith(f"] 100.0% 3 messages, back to "
                                   f"{datetime.fromtimestamp(sent[0].time_s, UTC):%Y-%m-%dT%H:%M:%SZ}\n")


def test_a_dry_run_stores_nothing(client, cloud):
    sent = frames(4)
    for frame in sent:
        cloud.record_frame(frame, device_type_id=DEVICE_TYPE)
    callback(client, sent[0])
    output = backfill(*span_args(sent), "--dry-run")
    assert "Fetched 4: 3 would be stored, 1 already stored" in output
    assert Message.objects.count() == 1
    assert not BackfillRun.objects.exists()


def test_messages_it_stores_fill_the_sequence_gap_they_were_lost_in(client, cloud):
    sent = frames(5, devices=1)
    for frame in sent:
        cloud.record_frame(frame, device_type_id=DEVICE_TYPE)
    for frame in (sent[0], sent[4]):
        callback(client, frame)
    assert list(SequenceGap.objects.values_list("missing", flat=True)) == [3]

    backfill(*span_args(sent))

    assert not SequenceGap.objects.exists()


def test_api_milliseconds_are_the_callbacks_truncated_seconds(client, scripted_api, settings):
    settings.SIGFOX_API_URL, settings.SIGFOX_API_LOGIN = scripted_api.url, "user"
    settings.SIGFOX_API_PASSWORD = "secret"
    now_s = int(time.time()) - 3600
    settings.SIGFOX_CALLBACK_TOKEN = CALLBACK_TOKEN
    post(client, "/data/1", {"device": "5F0001", "time": now_s, "data": "00", "seqNumber": 7})
    item = {"device": {"id": "5F0001"}, "time": now_s * 1000 + 999, "data": "00", "seqNumber": 7}
    later = {"device": {"id": "5F0001"}, "time": (now_s + 600) * 1000 + 500, "data": "01",
             "seqNumber": 8}
    scripted_api.then(200, {"data": []})  # callbacks-not-delivered
    scripted_api.then(200, {"data": [later, item]})

    output = backfill("--device", "5F0001", "--since", str(now_s - 10),
                      "--until", str(now_s + 700))

    assert "Fetched 2: 1 stored new, 1 already stored" in output
    assert sorted(int(m.time.timestamp()) for m in Message.objects.all()) == [now_s, now_s + 600]
    assert callback_time(1_700_000_000_999) == datetime.fromtimestamp(1_700_000_000, UTC)
    arrived = scripted_api.arrived[-1]
    assert (arrived.query["since"], arrived.query["before"]) == (
        str((now_s - 10) * 1000), str((now_s + 700) * 1000))


def test_an_api_error_is_clear_and_recorded(cloud, settings):
    settings.SIGFOX_API_PASSWORD = "Not-The-Pa55word"
    with pytest.raises(CommandError, match="login or password") as raised:
        backfill("--device-type", DEVICE_TYPE, "--since", "2026-01-01")
    run = BackfillRun.objects.get()
    assert not run.complete and "HTTP 401" in run.error
    assert "Pa55word" not in run.error + str(raised.value)


def test_it_needs_api_credentials(settings):
    settings.SIGFOX_API_LOGIN = ""
    with pytest.raises(CommandError, match="SIGFOX_API_LOGIN"):
        backfill("--device-type", DEVICE_TYPE, "--since", "2026-01-01")


def test_it_refuses_a_span_that_ends_before_it_starts(cloud):
    with pytest.raises(CommandError, match="not before"):
        backfill("--device-type", DEVICE_TYPE, "--since", "2026-02-01", "--until", "2026-01-01")


def test_rinfos_and_computed_location_become_the_advanced_callbacks_variables():
    item = {"device": {"id": "1a2b"}, "time": 1_700_000_000_123, "data": "aa", "seqNumber": 3,
            "ackRequired": False, "lqi": 2,
            "computedLocation": [{"lat": 43.5, "lng": 1.4, "radius": 1200, "source": 2}],
            "rinfos": [{"baseStation": {"id": "0A1B", "name": "x"}, "lat": 43.6, "lng": 1.5,
                        "rep": 2, "cbStatus": [{"status": 500}]}]}
    assert uplink_variables(item, device_type_id=DEVICE_TYPE) == {
        "device": "1a2b", "time": 1_700_000_000, "data": "aa", "seqNumber": 3, "ack": False,
        "linkQuality": 2, "deviceTypeId": DEVICE_TYPE,
        "computedLocation": {"lat": 43.5, "lng": 1.4, "radius": 1200, "source": 2, "status": 1},
        "duplicates": [{"bsId": "0A1B", "nbRep": 2, "lat": 43.6, "lng": 1.5}],
        "station": "0A1B", "lat": 43.6, "lng": 1.5,
    }


# --- The worker ---------------------------------------------------------------------------


def test_the_worker_backfills_a_sequence_gap_once(client, cloud):
    sent = frames(6, devices=1)
    for frame in sent:
        cloud.record_frame(frame, device_type_id=DEVICE_TYPE)
    for frame in (sent[0], sent[1], sent[5]):
        callback(client, frame)
    assert SequenceGap.objects.get().missing == 3

    runs = backfill_pass(now=timezone.now())

    assert len(runs) == 1 and runs[0].stored == 3 and runs[0].complete
    assert runs[0].since == callback_time(sent[1].time_s * 1000) + timedelta(seconds=1)
    assert Message.objects.count() == 6
    assert not SequenceGap.objects.exists()
    assert backfill_pass(now=timezone.now()) == []


def test_the_worker_leaves_a_gap_to_the_backends_retries_for_a_while(client, cloud):
    # The latest frame is 5 minutes old: its predecessors' callbacks may still come.
    sent = frames(4, devices=1, start_s=time.time() - 3 * INTERVAL_S - 300)
    for frame in sent:
        cloud.record_frame(frame, device_type_id=DEVICE_TYPE)
    for frame in (sent[0], sent[3]):
        callback(client, frame)

    assert backfill_pass(now=timezone.now()) == []
    runs = backfill_pass(now=timezone.now() + SETTLE)
    assert [(run.reason, run.stored) for run in runs] == [(BackfillReason.SEQUENCE_GAP, 2)]


def test_the_worker_backfills_a_silence_across_the_device_type(client, cloud, settings):
    # Three devices every 10 minutes: a message every 200 s across the type;
    # then nothing for an hour; devices without seqNumbers, so no sequence gap.
    start_s = time.time() - 40 * INTERVAL_S
    sent = frames(30, devices=3, start_s=start_s)
    for frame in sent:
        cloud.record_frame(frame, device_type_id=DEVICE_TYPE)
    for frame in sent[:12] + sent[30 - 6:]:
        post(client, "/data/1", {"device": frame.device, "time": frame.time_s,
                                 "data": frame.payload_hex(), "deviceTypeId": DEVICE_TYPE})

    runs = backfill_pass(now=timezone.now())

    gap = [run for run in runs if run.reason == BackfillReason.ARRIVAL_GAP]
    assert len(gap) == 1 and gap[0].stored == 12
    assert Message.objects.count() == 30


def test_after_an_outage_each_devices_gap_is_read_with_its_types_silence(client, cloud):
    # With seqNumbers, every device has a gap reaching past the type's silence.
    sent = frames(30, devices=3, start_s=time.time() - 40 * INTERVAL_S)
    for frame in sent:
        cloud.record_frame(frame, device_type_id=DEVICE_TYPE)
    for frame in sent[:12] + sent[24:]:
        callback(client, frame)
    assert SequenceGap.objects.count() == 3

    runs = backfill_pass(now=timezone.now())

    assert {run.scope for run in runs} == {"device_type"}
    assert sum(run.stored for run in runs) == 12 and len(runs) <= 3
    assert Message.objects.count() == 30 and not SequenceGap.objects.exists()


def test_the_worker_replays_what_the_backend_gave_up_on(client, cloud):
    sent = frames(2, devices=1)
    for frame in sent:
        cloud.record_frame(frame, device_type_id=DEVICE_TYPE)
    callback(client, sent[0])  # the device type is known from its callbacks
    lost = sent[1]
    cloud.record_not_delivered(
        lost, device_type_id=DEVICE_TYPE, status=500, message="HTTP 500", parameters={},
        callback={"url": "https://sigfox.example.org/data/1",
                  "headers": {"Authorization": f"Bearer {CALLBACK_TOKEN}"},
                  "body": json.dumps({"device": lost.device, "time": lost.time_s,
                                      "data": lost.payload_hex()}),
                  "contentType": "application/json", "method": "POST"})

    runs = backfill_pass(now=timezone.now())

    assert [(run.reason, run.stored, run.replayed) for run in runs] == [
        (BackfillReason.NOT_DELIVERED, 1, 1)]
    assert stored()[(lost.device, lost.time_s)].recovered == "replay"


def test_the_worker_keeps_to_its_hourly_budget_and_takes_the_rest_up_later(
        client, cloud, settings):
    settings.SIGFOX_BACKFILL_CALLS_PER_HOUR = 1
    sent = frames(3, devices=1)
    for frame in sent:
        cloud.record_frame(frame, device_type_id=DEVICE_TYPE)
    for frame in (sent[0], sent[2]):
        callback(client, frame)

    # The hour's one request went to the list of failed callbacks: the gap
    # is recorded, to do.
    assert backfill_pass(now=timezone.now()) == []
    pending = BackfillRun.objects.get()
    assert (pending.reason, pending.complete, pending.attempts) == (
        BackfillReason.SEQUENCE_GAP, False, 0)
    assert Message.objects.count() == 2
    assert ApiUsage.objects.get().calls == 1

    settings.SIGFOX_BACKFILL_CALLS_PER_HOUR = 10
    later = backfill_pass(now=timezone.now())
    assert [(run.pk, run.stored, run.complete) for run in later] == [(pending.pk, 1, True)]
    assert Message.objects.count() == 3


def test_a_run_cut_short_resumes_where_it_stopped(cloud, settings):
    sent = frames(150, devices=5)
    for frame in sent:
        cloud.record_frame(frame, device_type_id=DEVICE_TYPE)
    api = SigfoxAPI.from_settings(max_calls=2)  # callbacks-not-delivered, one page
    run, outcome = backfill_module.backfill(
        api=api, device_type=DEVICE_TYPE, since=callback_time(sent[0].time_s * 1000),
        until=callback_time(sent[-1].time_s * 1000 + 1000))
    assert (run.complete, run.stored, run.retry_after is not None) == (False, 100, True)
    assert run.resume_before == callback_time(sent[50].time_s * 1000) + timedelta(seconds=1)
    backfill_module.backfill_run(api=SigfoxAPI.from_settings(), run=run)
    run.refresh_from_db()
    assert (run.complete, run.stored, run.attempts, run.retry_after) == (True, 150, 2, None)
    assert Message.objects.count() == 150


def test_a_malformed_answer_of_the_api_is_refused_not_a_crash(scripted_api, settings):
    settings.SIGFOX_API_URL, settings.SIGFOX_API_LOGIN = scripted_api.url, "user"
    settings.SIGFOX_API_PASSWORD = "secret"
    now_s = int(time.time()) - 3600
    good = {"device": {"id": "5F0001"}, "time": now_s * 1000, "data": "00", "seqNumber": 7,
            "rinfos": 5, "computedLocation": 5}
    scripted_api.then(200, {"data": [{"device": "5F0001", "time": 10**22,
                                      "callback": {"url": "https://[bad/data/1"}}]})
    scripted_api.then(200, {"data": [good, {"device": {"id": "5F0001"}, "time": 10**22},
                                     {"device": {"id": "zz"}, "time": now_s * 1000}, "text"]})
    output = backfill("--device", "5F0001", "--since", str(now_s - 10))
    assert "Fetched 3: 1 stored new, 0 already stored, 2 refused" in output
    scripted_api.then(200, {"data": 5, "paging": []})
    with pytest.raises(CommandError, match="not a page"):
        backfill("--device", "5F0001", "--since", str(now_s - 10))


def test_a_recovered_request_for_a_downlink_is_not_answered(cloud):
    sent = frames(1, devices=1)
    cloud.record_frame(sent[0], device_type_id=DEVICE_TYPE)
    Device.objects.create(sigfox_id=sent[0].device, downlink_data="0102030405060708",
                          first_seen=timezone.now(), last_seen=timezone.now())
    item = dict(api_items(cloud)[0], ackRequired=True)
    variables = uplink_variables(item, device_type_id=DEVICE_TYPE)
    backfill_module._store(variables=variables, sensor="1", body_raw="", content_type="",
                           recovered="api", now=timezone.now())
    message = Message.objects.get()
    assert message.ack is True and message.downlink_data == ""
    assert not Downlink.objects.exists()


def api_items(cloud) -> list[dict]:
    return list(SigfoxAPI.from_settings().messages(
        device_type=DEVICE_TYPE, since_ms=0, before_ms=int(time.time() * 1000) + 1))


def test_the_worker_does_nothing_without_api_credentials(client, settings):
    settings.SIGFOX_API_LOGIN = ""
    DeviceType.objects.create(sigfox_id=DEVICE_TYPE.upper())
    assert backfill_pass(now=timezone.now()) == []
