"""The same callback many times at once (a retry racing the first try, duplicates
from several base stations) must still be stored once, on a real database."""

import threading
from datetime import UTC, datetime
from functools import partial

import pytest
from django.conf import settings
from django.db import connection
from django.test import Client

from readings.models import (
    Acknowledge,
    Device,
    DeviceType,
    Downlink,
    DownlinkMode,
    Message,
    Reading,
    Reception,
    SequenceGap,
)

pytestmark = [
    pytest.mark.skipif(
        settings.DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql",
        reason="needs PostgreSQL (DATABASE_URL=postgres://...): SQLite serialises writers, "
        "so it cannot show races; CI runs the suite again on PostgreSQL",
    ),
    pytest.mark.django_db(transaction=True),
]

THREADS = 10
ROUNDS = 3
DOWNLINK = "0101038400000000"
T0 = 1700000000


def at(epoch_s: int) -> datetime:
    return datetime.fromtimestamp(epoch_s, tz=UTC)


def race(send_callback, path: str, variables, *, encoding="json", threads: int = THREADS) -> list:
    """Send a callback from `threads` threads released at once, each with its own client.

    `variables` is a dict (the same callback everywhere) or a function of the
    thread's index. Returns each thread's response, or the exception it
    raised (the test client re-raises a view's exceptions: a 500 shows as one).
    """
    barrier = threading.Barrier(threads)
    results: list = [None] * threads

    def run(index: int) -> None:
        try:
            client = Client()
            sent = variables(index) if callable(variables) else variables
            barrier.wait(timeout=30)
            results[index] = send_callback(path, sent, encoding, client=client)
        except BaseException as exc:  # noqa: BLE001  (reported by the test)
            results[index] = exc
        finally:
            connection.close()

    workers = [threading.Thread(target=run, args=(index,)) for index in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=60)
    assert not any(worker.is_alive() for worker in workers), "a request hung"
    return results


def statuses(results: list) -> list:
    return [getattr(result, "status_code", repr(result)) for result in results]


@pytest.mark.parametrize("seq_number", [7, None], ids=["with-seq", "without-seq"])
def test_it_stores_identical_callbacks_of_a_new_device_once(send_callback, seq_number):
    for round_ in range(ROUNDS):
        device_id = f"A{round_}"
        variables = {"device": device_id, "time": T0, "deviceTypeId": f"B{round_}",
                     "station": "1A2B", "rssi": -120, "temp": 21}
        if seq_number is not None:
            variables["seqNumber"] = seq_number

        results = race(send_callback, "/data/1", variables)

        assert statuses(results) == [204] * THREADS
        assert Device.objects.filter(sigfox_id=device_id).count() == 1
        assert DeviceType.objects.filter(sigfox_id=f"B{round_}").count() == 1
        assert Message.objects.filter(device__sigfox_id=device_id).count() == 1
        assert Reading.objects.filter(device__sigfox_id=device_id).count() == 1
        assert Reception.objects.filter(message__device__sigfox_id=device_id).count() == 1


def duplicate_from_station(index: int, *, device_id: str) -> dict:
    return {"device": device_id, "time": T0, "seqNumber": 1, "station": f"{index:04X}",
            "duplicate": index > 0, "temp": 21}


def test_it_stores_duplicates_from_many_stations_at_once_as_one_message(send_callback):
    for round_ in range(ROUNDS):
        device_id = f"C{round_}"

        results = race(send_callback, "/data/1",
                       partial(duplicate_from_station, device_id=device_id), encoding="form")

        assert statuses(results) == [204] * THREADS
        assert Message.objects.filter(device__sigfox_id=device_id).count() == 1
        assert Reading.objects.filter(device__sigfox_id=device_id).count() == 1
        receptions = Reception.objects.filter(message__device__sigfox_id=device_id)
        assert receptions.count() == THREADS


def test_it_answers_identical_bidir_callbacks_with_one_downlink(send_callback):
    for round_ in range(ROUNDS):
        device_id = f"D{round_}"
        Device.objects.create(sigfox_id=device_id, downlink_data=DOWNLINK,
                              downlink_mode=DownlinkMode.ONCE)
        variables = {"device": device_id.lower(), "time": T0, "seqNumber": 3, "ack": True,
                     "temp": 21}

        results = race(send_callback, "/data/1", variables)

        assert statuses(results) == [200] * THREADS
        answer = b'{"%s":{"downlinkData":"%s"}}' % (device_id.lower().encode(), DOWNLINK.encode())
        assert {result.content for result in results} == {answer}
        assert Downlink.objects.filter(device__sigfox_id=device_id).count() == 1
        assert Message.objects.filter(device__sigfox_id=device_id).count() == 1
        assert Reading.objects.filter(device__sigfox_id=device_id).count() == 1


def test_it_stores_identical_acknowledges_once(send_callback):
    for round_ in range(ROUNDS):
        device_id = f"E{round_}"
        Device.objects.create(sigfox_id=device_id, downlink_data=DOWNLINK,
                              downlink_mode=DownlinkMode.ONCE)
        bidir = {"device": device_id, "time": T0, "seqNumber": 3, "ack": True}
        assert send_callback("/data/1", bidir).status_code == 200
        variables = {"device": device_id, "time": T0, "infoCode": 0, "downlinkAck": True}

        results = race(send_callback, "/sigfox/acknowledge", variables)

        assert statuses(results) == [204] * THREADS
        acknowledge = Acknowledge.objects.get(device__sigfox_id=device_id)
        downlink = Downlink.objects.get(device__sigfox_id=device_id)
        assert acknowledge.downlink == downlink
        assert (downlink.info_code, downlink.delivered) == (0, True)
        assert Device.objects.get(sigfox_id=device_id).downlink_delivered_at == at(T0)


def test_it_stores_identical_acknowledges_of_a_new_device_once(send_callback):
    for round_ in range(ROUNDS):
        device_id = f"F{round_}"
        variables = {"device": device_id, "time": T0, "infoCode": 1}

        results = race(send_callback, "/sigfox/acknowledge", variables)

        assert statuses(results) == [204] * THREADS
        assert Device.objects.filter(sigfox_id=device_id).count() == 1
        assert Acknowledge.objects.filter(device__sigfox_id=device_id).count() == 1


def message_number(index: int, *, device_id: str) -> dict:
    return {"device": device_id, "time": T0 + 600 * index, "seqNumber": index,
            "deviceTypeId": "ABC", "temp": index}


def test_it_stores_different_messages_of_a_new_device_at_once(send_callback):
    for round_ in range(ROUNDS):
        device_id = f"AB{round_}"

        results = race(send_callback, "/data/1", partial(message_number, device_id=device_id))

        assert statuses(results) == [204] * THREADS
        assert Device.objects.filter(sigfox_id=device_id).count() == 1
        assert DeviceType.objects.filter(sigfox_id="ABC").count() == 1
        assert Message.objects.filter(device__sigfox_id=device_id).count() == THREADS
        values = Reading.objects.filter(device__sigfox_id=device_id).values_list("value", flat=True)
        assert sorted(values) == [float(index) for index in range(THREADS)]
        device = Device.objects.get(sigfox_id=device_id)
        assert (device.first_seen, device.last_seen) == (at(T0), at(T0 + 600 * (THREADS - 1)))


def test_it_counts_no_loss_for_messages_of_one_device_arriving_at_once(
    send_callback, monkeypatch
):
    # Force the interleaving the race needs: both requests get as far as the
    # device, then the newer message commits first. device_type_upsert runs
    # between the device read and its update, so both requests wait for each
    # other there (not for long: with a row lock, the second cannot get there).
    from readings.services import devices as services

    device_type_upsert = services.device_type_upsert
    both_read = threading.Barrier(2)

    def wait_for_the_other(*, sigfox_id, now):
        try:
            both_read.wait(timeout=3)
        except threading.BrokenBarrierError:
            pass
        if threading.current_thread().name == "older":
            threading.Event().wait(0.5)  # let the newer message commit first
        return device_type_upsert(sigfox_id=sigfox_id, now=now)

    def older_then_newer(index: int, *, device_id: str) -> dict:
        threading.current_thread().name = ("older", "newer")[index]
        return {"device": device_id, "time": T0 + 600 * (index + 1), "seqNumber": index + 1,
                "deviceTypeId": "ABC", "temp": index}

    monkeypatch.setattr(services, "device_type_upsert", wait_for_the_other)
    DeviceType.objects.create(sigfox_id="ABC")
    for round_ in range(ROUNDS):
        device_id = f"BC{round_}"
        first = {"device": device_id, "time": T0, "seqNumber": 0, "temp": 0}
        assert send_callback("/data/1", first).status_code == 204
        both_read.reset()

        results = race(send_callback, "/data/1", partial(older_then_newer, device_id=device_id),
                       threads=2)

        assert statuses(results) == [204, 204]
        device = Device.objects.get(sigfox_id=device_id)
        assert device.last_seen == at(T0 + 1200)
        assert not SequenceGap.objects.filter(device=device).exists()


def test_it_counts_no_loss_for_plain_uplinks_of_one_device_arriving_at_once(
    send_callback, monkeypatch
):
    # Plain uplinks take the fast path (readings.services.fastpath): its device row
    # lock must order them as the ORM path's does.
    from readings.services import fastpath

    ran = []
    ingest = fastpath.ingest

    def counted(*args, **kwargs):
        created = ingest(*args, **kwargs)
        ran.append(created)
        return created

    monkeypatch.setattr(fastpath, "ingest", counted)
    for round_ in range(ROUNDS):
        device_id = f"CD{round_}"
        # A first callback registers the series; the next ones take the fast path.
        first = {"device": device_id, "time": T0 - 600, "seqNumber": 4095, "temp": 0}
        assert send_callback("/data/1", first).status_code == 204
        results = race(send_callback, "/data/1", lambda index, device_id=device_id: {
            "device": device_id, "time": T0 + 600 * index, "seqNumber": index, "temp": index,
        })
        assert statuses(results) == [204] * THREADS
        device = Device.objects.get(sigfox_id=device_id)
        assert device.messages.count() == THREADS + 1
        assert list(SequenceGap.objects.filter(device=device)) == []
    assert ran.count(True) == ROUNDS * THREADS
