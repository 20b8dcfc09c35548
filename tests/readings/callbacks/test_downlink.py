"""DATA BIDIR answers (/data/<sensor> with ack) and SERVICE ACKNOWLEDGE (/sigfox/acknowledge)."""

import json
from datetime import UTC, datetime

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from readings.models import Acknowledge, Device, Downlink, DownlinkMode, Message

pytestmark = pytest.mark.django_db

DOWNLINK = "0101038400000000"
T0 = 1700000000


def at(epoch_s: int) -> datetime:
    return datetime.fromtimestamp(epoch_s, tz=UTC)


def bidir(seq: int = 1, *, time: int = T0, ack=True, device: str = "bf1327", **variables) -> dict:
    return {"device": device, "time": time, "seqNumber": seq, "data": "15", "ack": ack, **variables}


def acknowledge(info_code=0, *, time: int = T0, device: str = "BF1327", **variables) -> dict:
    return {"device": device, "time": time, "infoCode": info_code, **variables}


@pytest.fixture
def device():
    return Device.objects.create(
        sigfox_id="BF1327", downlink_data=DOWNLINK, downlink_mode=DownlinkMode.ONCE
    )


@pytest.fixture
def uplink(send_callback):
    def send(variables, encoding="json"):
        return send_callback("/data/1", variables, encoding)

    return send


@pytest.fixture
def ack(send_callback):
    def send(variables, encoding="json"):
        return send_callback("/sigfox/acknowledge", variables, encoding)

    return send


def assert_answers(response, device_id="bf1327", data=DOWNLINK):
    assert response.status_code == 200, response.content
    assert response["Content-Type"] == "application/json"
    assert json.loads(response.content) == {device_id: {"downlinkData": data}}


def assert_no_answer(response):
    assert response.status_code == 204, response.content
    assert response.content == b""


# DATA BIDIR


def test_it_answers_with_the_pending_downlink(device, uplink):
    assert_answers(uplink(bidir()))


def test_it_answers_with_exactly_the_backend_format(device, uplink):
    response = uplink(bidir())
    assert response.content == b'{"bf1327":{"downlinkData":"0101038400000000"}}'


def test_it_answers_in_every_encoding(device, uplink, callback_encoding):
    assert_answers(uplink(bidir(), callback_encoding))


@pytest.mark.parametrize("ack_sent", [True, "true", "True", " true "])
def test_it_answers_whatever_form_true_takes(device, uplink, ack_sent):
    assert_answers(uplink(bidir(ack=ack_sent)))


@pytest.mark.parametrize("device_id", ["bf1327", "BF1327", "Bf1327", "00bf1327"])
def test_it_keys_the_answer_with_the_device_id_as_received(uplink, device_id):
    Device.objects.create(sigfox_id=device_id.lstrip("0").upper(), downlink_data=DOWNLINK)
    assert_answers(uplink(bidir(device=device_id)), device_id=device_id)


def test_it_answers_lower_case_hex(device, uplink):
    Device.objects.update(downlink_data="01FF0E1000000000")
    assert_answers(uplink(bidir()), data="01ff0e1000000000")


@pytest.mark.parametrize("ack_sent", [False, "false", None, "null"])
def test_it_answers_no_content_when_the_device_does_not_listen(device, uplink, ack_sent):
    assert_no_answer(uplink(bidir(ack=ack_sent)))
    assert Downlink.objects.count() == 0
    assert Message.objects.get().downlink_data == ""


def test_it_answers_no_content_without_ack(device, uplink):
    variables = bidir()
    del variables["ack"]
    assert_no_answer(uplink(variables))


def test_it_answers_no_content_when_no_downlink_is_set(uplink):
    Device.objects.create(sigfox_id="BF1327")
    assert_no_answer(uplink(bidir()))
    assert Downlink.objects.count() == 0


def test_it_answers_no_content_to_a_new_device(uplink):
    assert_no_answer(uplink(bidir()))


def test_it_answers_no_content_once_a_send_once_downlink_was_delivered(device, uplink):
    Device.objects.update(downlink_delivered_at=at(T0))
    assert_no_answer(uplink(bidir(time=T0 + 600)))
    assert Downlink.objects.count() == 0


def test_it_records_the_answer_on_the_message(device, uplink):
    uplink(bidir())
    message = Message.objects.get()
    assert (message.downlink_data, message.ack) == (DOWNLINK, True)


def test_it_records_a_downlink(device, uplink):
    uplink(bidir())
    downlink = Downlink.objects.get()
    assert (downlink.device, downlink.message, downlink.data, downlink.mode) == (
        device, Message.objects.get(), DOWNLINK, DownlinkMode.ONCE,
    )
    assert (downlink.acknowledged_at, downlink.info_code, downlink.delivered) == (None, None, None)
    assert downlink.answered_at is not None


def test_it_records_the_mode_in_force(device, uplink):
    Device.objects.update(downlink_mode=DownlinkMode.ALWAYS)
    uplink(bidir())
    assert Downlink.objects.get().mode == DownlinkMode.ALWAYS


def test_it_gives_a_retry_the_same_answer(device, uplink, callback_encoding):
    first = uplink(bidir())
    again = uplink(bidir(), callback_encoding)
    assert_answers(again)
    assert again.content == first.content
    assert (Downlink.objects.count(), Message.objects.count()) == (1, 1)


def test_it_gives_a_retry_the_same_answer_after_the_downlink_changed(device, uplink):
    uplink(bidir())
    Device.objects.update(downlink_data="0100000000000000")
    assert_answers(uplink(bidir()), data=DOWNLINK)
    assert Downlink.objects.count() == 1


def test_it_gives_a_retry_no_content_when_the_first_had_none(uplink):
    Device.objects.create(sigfox_id="BF1327")
    uplink(bidir())
    Device.objects.update(downlink_data=DOWNLINK)
    assert_no_answer(uplink(bidir()))
    assert Downlink.objects.count() == 0


def test_it_keeps_answering_a_send_once_downlink_until_acknowledged(device, uplink):
    assert_answers(uplink(bidir(1, time=T0)))
    assert_answers(uplink(bidir(2, time=T0 + 600)))
    assert Downlink.objects.count() == 2


def test_it_stores_the_readings_of_a_bidir_uplink(device, uplink):
    uplink(bidir(temp=21))
    assert Message.objects.get().readings.get().value == 21.0


# Measured: 14 on SQLite and PostgreSQL for a known device, type and series
# (two savepoints and their releases, device select and update, the frame
# look-up, message insert, quantity scales, the series look-up, one bulk
# insert of readings, reception, the messages before and after in time for
# the sequence records, downlink).
BIDIR_QUERY_LIMIT = 14


def count_queries(uplink, variables) -> tuple[int, object]:
    with CaptureQueriesContext(connection) as queries:
        response = uplink(variables)
    return len(queries.captured_queries), response


@pytest.mark.parametrize("readings", [1, 40])
def test_it_answers_in_a_few_queries(device, uplink, readings):
    values = {f"value_{n}": n for n in range(readings)}
    # The device, its type and its series are known.
    uplink(bidir(1, time=T0 - 600, deviceTypeId="ABC", **values))
    variables = bidir(2, station="1A2B", rssi=-120, deviceTypeId="ABC", **values)
    count, response = count_queries(uplink, variables)
    assert_answers(response)
    assert count <= BIDIR_QUERY_LIMIT


def test_it_answers_in_as_many_queries_whatever_the_number_of_readings(device, uplink):
    few, _ = count_queries(uplink, bidir(1, **{f"value_{n}": n for n in range(1)}))
    many, _ = count_queries(uplink, bidir(2, time=T0 + 600, **{f"value_{n}": n for n in range(60)}))
    assert few == many


def test_it_costs_one_query_more_to_answer_a_downlink(uplink):
    Device.objects.create(sigfox_id="BF1327")
    uplink(bidir(1, time=T0 - 600, temp=1))  # the series is known
    without, response = count_queries(uplink, bidir(2, time=T0, temp=1))
    assert_no_answer(response)
    Device.objects.update(downlink_data=DOWNLINK)
    with_downlink, response = count_queries(uplink, bidir(3, time=T0 + 600, temp=1))
    assert_answers(response)
    assert with_downlink == without + 1  # the Downlink insert


def test_it_answers_a_retry_in_fewer_queries(device, uplink):
    first, _ = count_queries(uplink, bidir())
    retry, response = count_queries(uplink, bidir())
    assert_answers(response)
    assert retry <= first


# SERVICE ACKNOWLEDGE


def test_it_records_an_acknowledge(device, ack):
    response = ack(acknowledge(0, infoMessage="Acked", downlinkAck=True, downlinkOverusage=False))
    assert_no_answer(response)
    stored = Acknowledge.objects.get()
    assert (stored.device, stored.time) == (device, at(T0))
    assert (stored.info_code, stored.info_meaning, stored.info_message) == (0, "ACKED", "Acked")
    assert (stored.downlink_ack, stored.downlink_overusage) == (True, False)
    assert stored.received_at is not None


def test_it_keeps_the_acknowledge_body_as_received(device, send_callback):
    variables = acknowledge(1, infoMessage="No answer")
    send_callback("/sigfox/acknowledge", variables, "form")
    body_raw = Acknowledge.objects.get().body_raw
    assert body_raw == "device=BF1327&time=1700000000&infoCode=1&infoMessage=No+answer"


def test_it_records_an_acknowledge_in_every_encoding(device, ack, callback_encoding):
    variables = acknowledge(1, infoMessage="No answer", downlinkAck=False, downlinkOverusage=True)
    assert_no_answer(ack(variables, callback_encoding))
    stored = Acknowledge.objects.get()
    assert (stored.info_code, stored.info_meaning) == (1, "NO_ANSWER")
    assert stored.info_message == "No answer"
    assert (stored.downlink_ack, stored.downlink_overusage) == (False, True)


@pytest.mark.parametrize(
    "code, meaning",
    [
        (0, "ACKED"), (1, "NO_ANSWER"), (2, "INVALID_PAYLOAD"), (3, "OVERRUN_ERROR"),
        (4, "NETWORK_ERROR"), (5, "PENDING"), (6, "NO_DOWNLINK_CONTRACT"),
        (7, "TOO_MANY_REQUESTS"), (8, "INVALID_CONFIGURATION"), (9, "UNKNOWN"), (42, "UNKNOWN"),
    ],
)
def test_it_names_the_info_code(device, ack, code, meaning):
    ack(acknowledge(code))
    assert Acknowledge.objects.get().info_meaning == meaning


def test_it_reads_the_info_code_as_text(device, ack):
    ack(acknowledge("4"))
    assert Acknowledge.objects.get().info_code == 4


def test_it_leaves_optional_acknowledge_variables_empty(device, ack):
    ack(acknowledge(0))
    stored = Acknowledge.objects.get()
    assert (stored.info_message, stored.downlink_ack, stored.downlink_overusage) == ("", None, None)


@pytest.mark.parametrize(
    "variables, field",
    [
        ({"device": "BF1327", "time": T0}, "infoCode"),
        ({"device": "BF1327", "time": T0, "infoCode": "null"}, "infoCode"),
        ({"device": "BF1327", "time": T0, "infoCode": "ACKED"}, "infoCode"),
        ({"device": "BF1327", "time": T0, "infoCode": True}, "infoCode"),
        ({"device": "BF1327", "time": T0, "infoCode": -1}, "infoCode"),
        ({"device": "BF1327", "time": T0, "infoCode": 1.5}, "infoCode"),
        ({"time": T0, "infoCode": 0}, "device"),
        ({"device": "BF1327", "infoCode": 0}, "time"),
        ({"device": "XYZ", "time": T0, "infoCode": 0}, "device"),
        ({"device": "BF1327", "time": T0, "infoCode": 0, "downlinkAck": "maybe"}, "downlinkAck"),
    ],
)
def test_it_rejects_a_bad_acknowledge(device, ack, stored_rows, variables, field):
    before = stored_rows()
    response = ack(variables)
    assert response.status_code == 400
    assert field in response.json()
    assert stored_rows() == before


def test_it_stores_a_retried_acknowledge_once(device, ack, uplink):
    uplink(bidir())
    for _ in range(3):
        assert_no_answer(ack(acknowledge(0)))
    assert Acknowledge.objects.count() == 1
    assert Downlink.objects.get().acknowledges.count() == 1


def test_it_links_the_acknowledge_to_the_downlink(device, ack, uplink):
    uplink(bidir())
    ack(acknowledge(0))
    assert Acknowledge.objects.get().downlink == Downlink.objects.get()


def test_it_links_the_latest_unacknowledged_downlink(device, ack, uplink):
    uplink(bidir(1, time=T0))
    uplink(bidir(2, time=T0 + 600))
    ack(acknowledge(0, time=T0 + 600))
    latest = Downlink.objects.get(message__seq_number=2)
    assert Acknowledge.objects.get().downlink == latest
    assert Downlink.objects.get(message__seq_number=1).acknowledged_at is None


def test_it_links_no_downlink_already_acknowledged(device, ack, uplink):
    uplink(bidir(1, time=T0))
    ack(acknowledge(1, time=T0))
    ack(acknowledge(0, time=T0 + 10))
    assert Acknowledge.objects.get(info_code=0).downlink is None


def test_it_links_no_downlink_answered_after_the_acknowledged_time(device, ack, uplink):
    uplink(bidir(1, time=T0 + 600))
    ack(acknowledge(0, time=T0))
    assert Acknowledge.objects.get().downlink is None


def test_it_records_an_acknowledge_of_an_unknown_device(ack):
    assert_no_answer(ack(acknowledge(0, device="ffff")))
    assert Acknowledge.objects.get().device.sigfox_id == "FFFF"


def test_it_settles_the_downlink_on_acked(device, ack, uplink):
    uplink(bidir())
    ack(acknowledge(0))
    downlink = Downlink.objects.get()
    assert (downlink.acknowledged_at, downlink.info_code, downlink.delivered) == (at(T0), 0, True)


def test_it_counts_a_send_once_downlink_delivered_on_acked(device, ack, uplink):
    uplink(bidir())
    ack(acknowledge(0))
    assert Device.objects.get().downlink_delivered_at == at(T0)


def test_it_answers_no_more_once_acked(device, ack, uplink):
    uplink(bidir(1))
    ack(acknowledge(0))
    assert_no_answer(uplink(bidir(2, time=T0 + 600)))
    assert Downlink.objects.count() == 1


@pytest.mark.parametrize("code", [1, 2, 3, 4, 6, 7, 8, 42])
def test_it_keeps_a_send_once_downlink_pending_unless_acked(device, ack, uplink, code):
    uplink(bidir(1))
    ack(acknowledge(code))
    downlink = Downlink.objects.get()
    assert (downlink.info_code, downlink.delivered) == (code, False)
    assert Device.objects.get().downlink_delivered_at is None
    assert_answers(uplink(bidir(2, time=T0 + 600)))


def test_it_leaves_the_downlink_open_on_pending_for_a_later_acked(device, ack, uplink):
    uplink(bidir(1))
    ack(acknowledge(5, time=T0))
    downlink = Downlink.objects.get()
    assert (downlink.info_code, downlink.delivered, downlink.acknowledged_at) == (None, None, None)
    assert_answers(uplink(bidir(2, time=T0 + 600)))
    ack(acknowledge(0, time=T0 + 1))
    assert Downlink.objects.filter(delivered=True).count() == 1
    assert Device.objects.get().downlink_delivered_at == at(T0 + 1)


def test_it_delivers_after_a_no_answer_then_an_acked(device, ack, uplink):
    uplink(bidir(1, time=T0))
    ack(acknowledge(1, time=T0))
    uplink(bidir(2, time=T0 + 600))
    ack(acknowledge(0, time=T0 + 600))
    delivered = Downlink.objects.order_by("answered_at").values_list("delivered", flat=True)
    assert list(delivered) == [False, True]
    assert Device.objects.get().downlink_delivered_at == at(T0 + 600)
    assert_no_answer(uplink(bidir(3, time=T0 + 1200)))


def test_it_keeps_answering_in_always_mode_after_acked(device, ack, uplink):
    Device.objects.update(downlink_mode=DownlinkMode.ALWAYS)
    uplink(bidir(1))
    ack(acknowledge(0))
    assert Downlink.objects.get().delivered is True
    assert_answers(uplink(bidir(2, time=T0 + 600)))
    assert Downlink.objects.count() == 2


def test_it_does_not_deliver_downlink_data_changed_since_the_answer(device, ack, uplink):
    uplink(bidir())
    Device.objects.update(downlink_data="0100000000000000")
    ack(acknowledge(0))
    assert Device.objects.get().downlink_delivered_at is None
    assert_answers(uplink(bidir(2, time=T0 + 600)), data="0100000000000000")


def test_it_settles_nothing_with_an_acknowledge_of_no_downlink(device, ack):
    ack(acknowledge(0))
    assert Acknowledge.objects.get().downlink is None
    assert Device.objects.get().downlink_delivered_at is None


def test_it_does_not_settle_again_on_a_retried_acknowledge(device, ack, uplink):
    uplink(bidir(1, time=T0))
    ack(acknowledge(1, time=T0))
    uplink(bidir(2, time=T0 + 600))
    ack(acknowledge(1, time=T0))  # retry of the first: must not touch the second downlink
    assert Downlink.objects.get(message__seq_number=2).acknowledged_at is None
