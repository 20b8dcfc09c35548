"""/data/<sensor>: the Sigfox variables, decoding at ingest, identity and sequence gaps."""

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from readings.models import (
    Device,
    DeviceType,
    Message,
    MessageConflict,
    Reading,
    Reception,
    SequenceGap,
)

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parents[3]
FIRMWARE_CONFIG = (ROOT / "firmware" / "PAYLOAD_CONFIG").read_text()
FIRMWARE_FRAME = "15e40c00006a0220"
T0 = 1700000000


def at(epoch_s: int) -> datetime:
    return datetime.fromtimestamp(epoch_s, tz=UTC)


def uplink(**variables) -> dict:
    return {"device": "1A2B3C", "time": T0, **variables}


@pytest.fixture
def send(send_callback):
    def post(variables: dict, encoding: str = "json", sensor: str = "1"):
        response = send_callback(f"/data/{sensor}", variables, encoding)
        assert response.status_code in (200, 204), response.content
        return response

    return post


def readings() -> dict[str, float]:
    return dict(Reading.objects.values_list("quantity", "value"))


# Variables


def test_it_stores_the_uplink_variables_on_the_message(send):
    send(uplink(seqNumber=7, data="0a0b", ack=False, longPolling=True, duplicate=False,
                station="1a2b", rssi=-121.5, snr=9.25, avgSnr=15.5, lat=43, lng=1, temp=21))
    message = Message.objects.get()
    assert (message.time, message.seq_number, message.data) == (at(T0), 7, "0a0b")
    assert (message.ack, message.long_polling) == (False, True)
    assert (message.station, message.rssi, message.snr) == ("1A2B", -121.5, 9.25)
    assert message.avg_snr == 15.5
    assert (message.lat, message.lng) == (43.0, 1.0)


def test_it_stores_the_data_advanced_variables_on_the_message(send):
    send(uplink(seqNumber=7, lqi="EXCELLENT", linkQuality=4, operatorName="SIGFOX_France",
                countryCode="250", fixedLat=43.6, fixedLng=1.44))
    message = Message.objects.get()
    assert (message.lqi, message.link_quality) == ("EXCELLENT", 4)
    assert (message.operator_name, message.country_code) == ("SIGFOX_France", "250")
    assert (message.fixed_lat, message.fixed_lng) == (43.6, 1.44)


DUPLICATES = [
    {"bsId": "1A2B", "rssi": -120.0, "snr": 12.5, "nbRep": 3},
    {"bsId": "3C4D", "rssi": None},
]
LOCATION = {"lat": 43.61, "lng": 1.44, "radius": 1500, "source": 2, "status": 1}


def test_it_stores_duplicates_sent_as_real_json(send):
    send(uplink(seqNumber=7, duplicates=DUPLICATES))
    assert Message.objects.get().duplicates == DUPLICATES


def test_it_stores_duplicates_sent_as_a_json_string_in_a_form(send):
    send(uplink(seqNumber=7, duplicates=DUPLICATES), encoding="form")
    assert Message.objects.get().duplicates == DUPLICATES


def test_it_stores_duplicates_sent_as_a_json_string_in_json(send):
    send(uplink(seqNumber=7, duplicates=json.dumps(DUPLICATES)))
    assert Message.objects.get().duplicates == DUPLICATES


def test_it_stores_the_computed_location(send):
    send(uplink(seqNumber=7, computedLocation=LOCATION), encoding="form")
    assert Message.objects.get().computed_location == LOCATION


def test_it_stores_no_duplicates_when_none_are_sent(send):
    send(uplink(seqNumber=7, temp=21))
    message = Message.objects.get()
    assert (message.duplicates, message.computed_location) == (None, None)


@pytest.mark.parametrize(
    "variables",
    [
        {"duplicates": "[not json"},
        {"duplicates": {"bsId": "1A2B"}},
        {"duplicates": "42"},
        {"duplicates": [{"bsId": str(n)} for n in range(101)]},
        {"computedLocation": [1, 2]},
        {"computedLocation": "{oops"},
    ],
)
def test_it_stores_the_frame_without_malformed_json_variables(send_callback, variables):
    response = send_callback("/data/1", uplink(seqNumber=7, temp=21, **variables))
    assert_stored_without(response, next(iter(variables)))


@pytest.mark.parametrize(
    "variable",
    [
        '"duplicates":[{"bsId":"1A2B","rssi":1e400}]',
        '"computedLocation":{"lat":-1e400}',
        '"duplicates":[{"bsId":"\\u0000"}]',
        '"computedLocation":{"source":"\\u0000"}',
    ],
)
def test_it_stores_the_frame_without_json_variables_no_column_can_hold(client, variable):
    body = '{"device":"1A2B3C","time":1700000000,"seqNumber":1,"temp":21,' + variable + "}"
    response = client.post("/data/1", body, content_type="application/json")
    assert_stored_without(response, variable.split('"')[1])


def assert_stored_without(response, field: str) -> None:
    """One bad field never loses the frame: 2xx, stored with its other values, the field named."""
    assert response.status_code == 204, response.content
    message = Message.objects.get()
    assert field in message.field_errors
    assert readings() == {"temp": 21.0}


def test_it_turns_unknown_numeric_fields_into_readings(send):
    send(uplink(seqNumber=7, rssi=-120, temp=21, humidity="40.5", door="true"))
    assert readings() == {"temp": 21.0, "humidity": 40.5, "door": 1.0}


@pytest.mark.parametrize("encoding", ["json", "form"])
def test_it_stores_the_frame_without_a_value_without_a_name(send_callback, encoding):
    response = send_callback("/data/1", uplink(seqNumber=1, temp=21, **{"": 5}), encoding)
    assert_stored_without(response, "(empty name)")


@pytest.mark.parametrize("name", ["callbackType", "type", "token"])
def test_it_never_turns_callback_descriptions_into_readings(send, name):
    send(uplink(seqNumber=7, temp=21, **{name: "1"}))
    assert readings() == {"temp": 21.0}


def test_it_makes_no_reading_of_a_protocol_variable(send):
    send(uplink(seqNumber=7, data="0a", ack=True, longPolling=False, duplicate=False,
                station="1A2B", rssi=-120, snr=10, avgSnr=12, lat=43, lng=1, linkQuality=2,
                fixedLat=43.6, fixedLng=1.4, countryCode=250, deviceTypeId="ABC"))
    assert Reading.objects.count() == 0


def test_it_keeps_everything_in_body_raw(send_callback):
    body = json.dumps(uplink(seqNumber=7, lqi="GOOD", duplicates=DUPLICATES, temp=21, extra=1))
    send_callback("/data/1", json.loads(body))
    assert json.loads(Message.objects.get().body_raw) == json.loads(body)


def test_it_stores_raw_data_lower_case(send):
    send(uplink(data="0A0B0C"))
    assert Message.objects.get().data == "0a0b0c"


@pytest.mark.parametrize("data", ["", "00", "0123456789abcdef01234567"])
def test_it_accepts_raw_data_of_0_to_12_bytes(send, data):
    send(uplink(seqNumber=1, data=data))
    assert Message.objects.get().data == data


@pytest.mark.parametrize(
    "data",
    ["0", "abc", "0123456789abcdef0123456789", "0123456789abcdef012345678", "zz", "0x12", "12 34"],
)
def test_it_stores_the_frame_without_raw_data_that_is_not_up_to_12_bytes_of_hex(
    send_callback, callback_encoding, data
):
    response = send_callback("/data/1", uplink(seqNumber=1, data=data, temp=21), callback_encoding)
    assert_stored_without(response, "data")
    assert Message.objects.get().data == ""


def test_it_leaves_out_raw_data_sent_as_a_json_number(send_callback):
    # 0012 would arrive as 12: the leading zero bytes are lost, so it is not decoded.
    response = send_callback("/data/1", uplink(seqNumber=1, data=12, temp=21))
    assert_stored_without(response, "data")


def test_it_registers_the_device_type(send):
    send(uplink(seqNumber=1, deviceTypeId="5f1a2b3c4d5e6f7a8b9c0d1e"))
    device_type = DeviceType.objects.get()
    assert device_type.sigfox_id == "5F1A2B3C4D5E6F7A8B9C0D1E"
    assert Device.objects.get().device_type == device_type
    assert Message.objects.get().device_type == device_type


def test_it_registers_a_device_type_once_for_many_devices(send):
    send(uplink(device="1A", deviceTypeId="abc"))
    send(uplink(device="2B", deviceTypeId="ABC"))
    device_type = DeviceType.objects.get()
    assert set(device_type.devices.values_list("sigfox_id", flat=True)) == {"1A", "2B"}


def test_it_links_a_known_device_to_its_new_type(send):
    send(uplink(seqNumber=1, deviceTypeId="AAA"))
    send(uplink(seqNumber=2, time=T0 + 600, deviceTypeId="BBB"))
    assert Device.objects.get().device_type.sigfox_id == "BBB"
    assert DeviceType.objects.count() == 2


def test_it_keeps_the_device_type_when_a_message_does_not_name_one(send):
    send(uplink(seqNumber=1, deviceTypeId="AAA"))
    send(uplink(seqNumber=2, time=T0 + 600))
    assert Device.objects.get().device_type.sigfox_id == "AAA"


@pytest.mark.parametrize("device_type_id", ["XYZ", "0" * 25, True])
def test_it_stores_the_frame_without_a_bad_device_type_id(send_callback, device_type_id):
    response = send_callback("/data/1", uplink(seqNumber=1, deviceTypeId=device_type_id, temp=21))
    assert_stored_without(response, "deviceTypeId")
    assert not DeviceType.objects.exists()


# Decoding at ingest


def test_it_decodes_the_firmware_frame_with_the_site_config(send, settings):
    settings.SIGFOX_PAYLOAD_CONFIG = FIRMWARE_CONFIG
    send(uplink(seqNumber=1, data=FIRMWARE_FRAME))
    assert readings() == {
        "temp": 21.0, "vbat_mv": 3300.0, "analog_raw": 0.0, "interval_s": 618.0,
        "demo": 0.0, "temp_error": 0.0, "vbat_error": 0.0, "last_send_failed": 0.0,
        "analog_on": 0.0, "boot": 1.0,
    }
    assert set(Reading.objects.values_list("from_payload", flat=True)) == {True}


def test_it_keeps_the_whole_decode_on_the_message(send, settings):
    settings.SIGFOX_PAYLOAD_CONFIG = FIRMWARE_CONFIG
    send(uplink(seqNumber=1, data=FIRMWARE_FRAME))
    assert Message.objects.get().payload_fields == {
        "temp": 21, "vbat_mv": 3300, "analog_raw": 0, "interval_s": 618, "demo": False,
        "temp_error": False, "vbat_error": False, "last_send_failed": False, "analog_on": False,
        "boot": True,
    }


def test_it_gives_decoded_readings_the_message_time_and_sensor(send, settings):
    settings.SIGFOX_PAYLOAD_CONFIG = "temp::int:8"
    send(uplink(seqNumber=1, data="ec"), sensor="kitchen")
    reading = Reading.objects.get()
    assert (reading.quantity, reading.value) == ("temp", -20.0)
    assert (reading.sensor, reading.time) == ("kitchen", at(T0))
    assert reading.device.sigfox_id == "1A2B3C"


def test_it_prefers_the_device_type_config_to_the_site_config(send, settings):
    settings.SIGFOX_PAYLOAD_CONFIG = "site::uint:8"
    DeviceType.objects.create(sigfox_id="ABC", payload_config="of_type::uint:8")
    send(uplink(seqNumber=1, data="2a", deviceTypeId="abc"))
    assert readings() == {"of_type": 42.0}


def test_it_prefers_the_device_config_to_the_device_type_config(send, settings):
    settings.SIGFOX_PAYLOAD_CONFIG = "site::uint:8"
    device_type = DeviceType.objects.create(sigfox_id="ABC", payload_config="of_type::uint:8")
    Device.objects.create(sigfox_id="1A2B3C", device_type=device_type, payload_config="own::uint:8")
    send(uplink(seqNumber=1, data="2a", deviceTypeId="ABC"))
    assert readings() == {"own": 42.0}


def test_it_uses_the_type_of_a_known_device_when_the_message_names_none(send):
    device_type = DeviceType.objects.create(sigfox_id="ABC", payload_config="of_type::uint:8")
    Device.objects.create(sigfox_id="1A2B3C", device_type=device_type)
    send(uplink(seqNumber=1, data="2a"))
    assert readings() == {"of_type": 42.0}


def test_it_falls_back_past_blank_configs(send, settings):
    settings.SIGFOX_PAYLOAD_CONFIG = "site::uint:8"
    device_type = DeviceType.objects.create(sigfox_id="ABC", payload_config="  ")
    Device.objects.create(sigfox_id="1A2B3C", device_type=device_type, payload_config="\n")
    send(uplink(seqNumber=1, data="2a"))
    assert readings() == {"site": 42.0}


def test_it_decodes_nothing_without_a_config(send, settings):
    settings.SIGFOX_PAYLOAD_CONFIG = ""
    send(uplink(seqNumber=1, data=FIRMWARE_FRAME))
    assert Reading.objects.count() == 0
    assert Message.objects.get().payload_fields is None


def test_it_decodes_nothing_without_raw_data(send, settings):
    settings.SIGFOX_PAYLOAD_CONFIG = "temp::int:8"
    send(uplink(seqNumber=1, hum=40))
    assert readings() == {"hum": 40.0}
    assert Message.objects.get().payload_fields is None


def test_it_keeps_text_fields_in_the_decode_only(send, settings):
    settings.SIGFOX_PAYLOAD_CONFIG = "temp::int:8 label::char:3"
    send(uplink(seqNumber=1, data="15414243"))
    assert readings() == {"temp": 21.0}
    assert Message.objects.get().payload_fields == {"temp": 21, "label": "ABC"}


def test_it_makes_no_reading_of_a_field_beyond_the_payload(send, settings):
    settings.SIGFOX_PAYLOAD_CONFIG = FIRMWARE_CONFIG
    send(uplink(seqNumber=1, data="15e40c"))
    assert readings() == {"temp": 21.0, "vbat_mv": 3300.0}
    decoded = Message.objects.get().payload_fields
    assert decoded["interval_s"] is None and decoded["boot"] is None


def test_it_stores_a_text_field_holding_a_nul_byte(send_callback, settings):
    settings.SIGFOX_PAYLOAD_CONFIG = "temp::int:8 label::char:3"
    response = send_callback("/data/1", uplink(seqNumber=1, data="15410042"))
    assert response.status_code == 204
    assert readings() == {"temp": 21.0}
    assert Message.objects.get().payload_fields == {"temp": 21, "label": "A\ufffdB"}


def test_it_stores_the_message_when_a_decoded_field_name_is_too_long(send_callback, settings):
    settings.SIGFOX_PAYLOAD_CONFIG = "temp::int:8 " + "x" * 65 + "::uint:8"
    response = send_callback("/data/1", uplink(seqNumber=1, data="1505"))
    assert response.status_code == 204
    assert Message.objects.count() == 1
    quantities = Reading.objects.values_list("quantity", flat=True)
    assert all(len(quantity) <= 64 for quantity in quantities)


def test_it_lets_values_sent_in_the_body_win_over_decoded_ones(send, settings):
    settings.SIGFOX_PAYLOAD_CONFIG = FIRMWARE_CONFIG
    send(uplink(seqNumber=1, data=FIRMWARE_FRAME, temp=22.5))
    assert Reading.objects.get(quantity="temp").value == 22.5
    assert Reading.objects.get(quantity="temp").from_payload is False
    assert Reading.objects.get(quantity="vbat_mv").from_payload is True
    assert Reading.objects.count() == 10


def test_it_keeps_custom_data_readings_undecoded(send, settings):
    settings.SIGFOX_PAYLOAD_CONFIG = FIRMWARE_CONFIG
    send(uplink(seqNumber=1, temp=21, hum=40))
    assert set(Reading.objects.values_list("quantity", "from_payload")) == {
        ("temp", False), ("hum", False),
    }


def test_it_stores_the_message_when_a_stored_config_no_longer_parses(send):
    # Configs are validated in forms; one written around them must not lose data.
    DeviceType.objects.create(sigfox_id="ABC")
    DeviceType.objects.update(payload_config="temp::int:99")
    send(uplink(seqNumber=1, data="15", deviceTypeId="ABC", hum=40))
    assert readings() == {"hum": 40.0}
    assert Message.objects.get().payload_fields is None


def test_it_stores_no_infinite_decoded_float(send, settings):
    settings.SIGFOX_PAYLOAD_CONFIG = "x::float:32 temp::int:8"
    send(uplink(seqNumber=1, data="7f80000015"))
    assert readings() == {"temp": 21.0}
    assert Message.objects.get().payload_fields == {"x": None, "temp": 21}


# Identity and duplicates


def test_it_stores_a_retried_callback_once(send, settings):
    settings.SIGFOX_PAYLOAD_CONFIG = FIRMWARE_CONFIG
    for _ in range(3):
        send(uplink(seqNumber=1, data=FIRMWARE_FRAME, hum=40))
    assert Message.objects.count() == 1
    assert Reading.objects.count() == 11


def test_it_identifies_a_frame_by_device_and_time(send):
    send(uplink(seqNumber=1, temp=21))
    send(uplink(seqNumber=1, temp=21, time=T0 + 1))
    send(uplink(seqNumber=2, temp=21))
    send(uplink(seqNumber=1, temp=21, device="FFFF"))
    assert Message.objects.count() == 3
    # A copy of a frame with another seqNumber keeps the first, and says so.
    conflict = MessageConflict.objects.get()
    assert (conflict.variable, conflict.kept_value, conflict.other_value) == ("seqNumber", "1", "2")


def test_it_takes_a_callback_with_the_same_sequence_number_and_time_as_the_same_message(send):
    send(uplink(seqNumber=1, temp=21))
    send(uplink(seqNumber=1, temp=99, hum=40))
    assert Message.objects.count() == 1
    assert readings() == {"temp": 21.0, "hum": 40.0}
    conflict = MessageConflict.objects.get()
    assert (conflict.variable, conflict.sensor, conflict.kept_value, conflict.other_value) == (
        "temp", "1", "21.0", "99.0")


def test_it_identifies_a_message_without_sequence_number_by_device_and_time(send):
    send(uplink(temp=21))
    send(uplink(temp=21))
    send(uplink(temp=22))
    send(uplink(temp=21), sensor="kitchen")
    send(uplink(temp=21, data="15"))
    message = Message.objects.get()
    assert message.data == "15"
    assert set(Reading.objects.values_list("sensor", "quantity", "value")) == {
        ("1", "temp", 21.0), ("kitchen", "temp", 21.0)}
    assert MessageConflict.objects.get().other_value == "22.0"


def test_it_adds_no_reading_for_a_duplicate_from_another_station(send):
    send(uplink(seqNumber=1, station="1A2B", rssi=-120, snr=10, temp=21))
    send(uplink(seqNumber=1, station="3C4D", rssi=-130, snr=5, duplicate=True, temp=21))
    assert Message.objects.count() == 1
    assert Reading.objects.count() == 1


def test_it_keeps_the_first_station_on_the_message(send):
    send(uplink(seqNumber=1, station="1A2B", rssi=-120, snr=10, temp=21))
    send(uplink(seqNumber=1, station="3C4D", rssi=-130, snr=5, duplicate=True, temp=21))
    message = Message.objects.get()
    assert (message.station, message.rssi, message.snr) == ("1A2B", -120.0, 10.0)


def test_it_keeps_every_reception(send):
    send(uplink(seqNumber=1, station="1A2B", rssi=-120, snr=10, temp=21))
    send(uplink(seqNumber=1, station="3C4D", rssi="-130.50", snr="5", duplicate="true", temp=21),
         "form")
    send(uplink(seqNumber=1, station="5E6F", rssi="null", duplicate=True, temp=21))
    receptions = Reception.objects.order_by("station")
    assert list(receptions.values_list("station", "rssi", "snr", "duplicate")) == [
        ("1A2B", -120.0, 10.0, False),
        ("3C4D", -130.5, 5.0, True),
        ("5E6F", None, None, True),
    ]
    assert set(Reception.objects.values_list("message", flat=True)) == {Message.objects.get().pk}


def test_it_keeps_one_reception_per_station_across_retries(send):
    for _ in range(3):
        send(uplink(seqNumber=1, station="1A2B", rssi=-120, temp=21))
        send(uplink(seqNumber=1, station="3C4D", rssi=-130, duplicate=True, temp=21))
    assert Reception.objects.count() == 2


def test_it_makes_no_reception_without_a_station(send):
    send(uplink(seqNumber=1, rssi=-120, temp=21))
    assert Reception.objects.count() == 0


def test_it_adds_no_reading_for_the_data_advanced_callback(send, settings):
    settings.SIGFOX_PAYLOAD_CONFIG = FIRMWARE_CONFIG
    send(uplink(seqNumber=1, data=FIRMWARE_FRAME, temp=21))
    send(uplink(seqNumber=1, data=FIRMWARE_FRAME, lqi="GOOD", linkQuality=3, duplicates=DUPLICATES))
    assert Message.objects.count() == 1
    assert Reading.objects.count() == 10


def test_it_adds_the_new_values_of_a_later_copy_of_the_frame(send):
    send(uplink(seqNumber=1, temp=21))
    send(uplink(seqNumber=1, lqi="GOOD", hum=40))
    assert readings() == {"temp": 21.0, "hum": 40.0}
    assert Message.objects.get().lqi == "GOOD"
    assert not MessageConflict.objects.exists()


def test_it_fills_the_message_with_the_data_advanced_metadata(send):
    send(uplink(seqNumber=1, station="1A2B", rssi=-120, temp=21), "form")
    send(uplink(seqNumber=1, lqi="GOOD", linkQuality=3, operatorName="SIGFOX_France",
                countryCode=250, fixedLat=43.6, fixedLng=1.44, duplicates=DUPLICATES,
                computedLocation=LOCATION))
    message = Message.objects.get()
    assert (message.lqi, message.link_quality, message.operator_name, message.country_code) == (
        "GOOD", 3, "SIGFOX_France", "250",
    )
    assert (message.fixed_lat, message.fixed_lng) == (43.6, 1.44)
    assert (message.duplicates, message.computed_location) == (DUPLICATES, LOCATION)
    assert (message.station, message.rssi) == ("1A2B", -120.0)


def test_it_fills_metadata_into_a_message_stored_without_it(send):
    send(uplink(seqNumber=1, temp=21))
    send(uplink(seqNumber=1, station="1A2B", rssi=-120, snr=10, avgSnr=12, lat=43, lng=1,
                deviceTypeId="ABC"))
    message = Message.objects.get()
    assert (message.station, message.rssi, message.snr) == ("1A2B", -120.0, 10.0)
    assert message.avg_snr == 12.0
    assert (message.lat, message.lng) == (43.0, 1.0)
    assert message.device_type.sigfox_id == "ABC"


def test_it_keeps_the_first_body_raw_of_a_message(send_callback):
    first = uplink(seqNumber=1, temp=21)
    send_callback("/data/1", first)
    send_callback("/data/1", uplink(seqNumber=1, lqi="GOOD"))
    assert json.loads(Message.objects.get().body_raw) == first


def test_it_counts_the_device_seen_at_the_message_time_once(send):
    send(uplink(seqNumber=1, temp=21))
    send(uplink(seqNumber=1, lqi="GOOD"))
    device = Device.objects.get()
    assert (device.first_seen, device.last_seen) == (at(T0), at(T0))


# Sequence gaps


@pytest.fixture
def known_device():
    """A device added in the admin, not seen yet."""
    return Device.objects.create(sigfox_id="1A2B3C")


def gaps() -> list[tuple[int, int, int]]:
    """Losses only: (previous seqNumber, seqNumber, messages lost)."""
    ordered = SequenceGap.objects.filter(reset=False).order_by("time")
    return list(ordered.values_list("previous_seq_number", "seq_number", "missing"))


def resets() -> list[tuple[int, int]]:
    ordered = SequenceGap.objects.filter(reset=True).order_by("time")
    return list(ordered.values_list("previous_seq_number", "seq_number"))


def test_it_records_a_gap_in_sequence_numbers(send, known_device):
    send(uplink(seqNumber=5, time=T0))
    send(uplink(seqNumber=9, time=T0 + 600))
    assert gaps() == [(5, 9, 3)]
    gap = SequenceGap.objects.get()
    assert (gap.device, gap.message.seq_number, gap.time) == (known_device, 9, at(T0 + 600))


def test_it_records_a_gap_after_the_first_message_of_a_new_device(send):
    send(uplink(seqNumber=5, time=T0))
    send(uplink(seqNumber=9, time=T0 + 600))
    assert gaps() == [(5, 9, 3)]


def test_it_counts_across_the_wrap_of_the_sequence_number(send, known_device):
    send(uplink(seqNumber=4094, time=T0))
    send(uplink(seqNumber=1, time=T0 + 600))
    assert gaps() == [(4094, 1, 2)]


def test_it_records_no_gap_across_a_clean_wrap(send, known_device):
    send(uplink(seqNumber=4095, time=T0))
    send(uplink(seqNumber=0, time=T0 + 600))
    assert gaps() == []


def test_it_records_no_gap_between_consecutive_messages(send, known_device):
    for n in range(5):
        send(uplink(seqNumber=10 + n, time=T0 + 600 * n))
    assert gaps() == []


def test_it_measures_the_gap_of_an_older_message_arriving_late_from_its_neighbours(
    send, known_device
):
    send(uplink(seqNumber=5, time=T0))
    send(uplink(seqNumber=6, time=T0 + 600))
    send(uplink(seqNumber=2, time=T0 - 1800))
    assert gaps() == [(2, 5, 2)]


def test_it_records_no_gap_for_a_retry(send, known_device):
    send(uplink(seqNumber=5, time=T0))
    send(uplink(seqNumber=9, time=T0 + 600))
    send(uplink(seqNumber=9, time=T0 + 600))
    send(uplink(seqNumber=5, time=T0))
    assert gaps() == [(5, 9, 3)]


def test_it_records_no_gap_for_a_duplicate_or_data_advanced(send, known_device):
    send(uplink(seqNumber=5, time=T0))
    send(uplink(seqNumber=6, time=T0 + 600, station="1A2B"))
    send(uplink(seqNumber=6, time=T0 + 600, station="3C4D", duplicate=True))
    send(uplink(seqNumber=6, time=T0 + 600, lqi="GOOD"))
    assert gaps() == []


def test_it_records_a_reset_when_the_same_number_comes_back(send, known_device):
    # 4095 "missing" would be a counter reset, not 4095 lost messages.
    send(uplink(seqNumber=5, time=T0))
    send(uplink(seqNumber=5, time=T0 + 600))
    assert gaps() == []
    assert resets() == [(5, 5)]


def test_it_keeps_the_sequence_across_messages_without_one(send, known_device):
    send(uplink(seqNumber=5, time=T0))
    send(uplink(time=T0 + 300, temp=21))
    send(uplink(seqNumber=7, time=T0 + 600))
    assert gaps() == [(5, 7, 1)]


def test_it_keeps_sequences_of_devices_apart(send, known_device):
    Device.objects.create(sigfox_id="FFFF")
    send(uplink(seqNumber=5, time=T0))
    send(uplink(device="FFFF", seqNumber=100, time=T0 + 300))
    send(uplink(seqNumber=6, time=T0 + 600))
    assert gaps() == []
