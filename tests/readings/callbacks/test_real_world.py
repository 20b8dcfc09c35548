"""The real-world callbacks and configs of the field-correctness issue, over HTTP:
each gives the right value, once."""

import json

import pytest

from readings.models import Device, Downlink, Message, MessageConflict, Reading, SequenceGap

pytestmark = pytest.mark.django_db

T0 = 1_700_000_000


def post(client, body: dict, sensor: str = "1", content_type: str = "application/json"):
    response = client.post(f"/data/{sensor}", json.dumps(body), content_type=content_type)
    assert response.status_code in (200, 204), response.content
    return response


def readings(**filters) -> dict[str, float]:
    return dict(Reading.objects.filter(**filters).values_list("quantity", "value"))


@pytest.mark.parametrize(
    "config, data, expected",
    [
        ("mode::uint:4:big-endian:7 batt::uint:4:big-endian:3 temp:1:int:8", "a51b",
         {"mode": 10.0, "batt": 5.0, "temp": 27.0}),
        ("x:1:uint:8:big-endian:5", "0025b2", {"x": 150.0}),
        ("x:0:uint:10:big-endian:7", "ffc0", {"x": 1023.0}),
        ("f:0:float:32:big-endian:7", "41b40000", {"f": 22.5}),
    ],
)
def test_it_decodes_the_configs_people_use_as_the_backend_does(client, config, data, expected):
    Device.objects.create(sigfox_id="1A2B3C", payload_config=config)
    post(client, {"device": "1A2B3C", "time": T0, "data": data})
    assert readings() == expected


def test_it_merges_data_advanced_with_a_seq_number_into_the_uplink_sent_without(client):
    post(client, {"device": "1A2B3C", "time": T0, "temp": 21})
    post(client, {"device": "1A2B3C", "time": T0, "seqNumber": 12, "temp": 21, "lqi": "GOOD",
                  "linkQuality": 3})
    message = Message.objects.get()
    assert (message.seq_number, message.lqi, message.link_quality) == (12, "GOOD", 3)
    assert Reading.objects.count() == 1


def test_it_merges_copies_through_other_encodings_and_sensor_paths(client):
    post(client, {"device": "1A2B3C", "time": T0, "seqNumber": 3, "temp": 21})
    client.post("/data/1", f"device=1A2B3C&time={T0}&seqNumber=3&temp=21",
                content_type="application/x-www-form-urlencoded")
    client.get(f"/data/2?device=1a2b3c&time={T0}&hum=40")
    message = Message.objects.get()
    assert set(message.readings.values_list("sensor", "quantity", "value")) == {
        ("1", "temp", 21.0), ("2", "hum", 40.0)}
    # Sensor belongs to readings: the frame matches a filter on either.
    for sensor in ("1", "2"):
        assert client.get(f"/api/messages/?sensor={sensor}").status_code in (200, 401, 403)
    assert not MessageConflict.objects.exists()


def test_it_answers_the_bidir_copy_that_asks_after_the_uplink_copy(client):
    Device.objects.create(sigfox_id="BF1327", downlink_data="0102030405060708")
    post(client, {"device": "BF1327", "time": T0, "seqNumber": 4, "data": "01"})
    response = post(client, {"device": "BF1327", "time": T0, "seqNumber": 4, "data": "01",
                             "ack": True})
    assert response.status_code == 200
    assert response.json() == {"BF1327": {"downlinkData": "0102030405060708"}}
    assert Downlink.objects.get().message == Message.objects.get()


def test_it_records_a_counter_reset_apart_from_losses(client):
    for seq, time in [(20, T0), (21, T0 + 600), (0, T0 + 600 + 3600), (4, T0 + 600 + 4200)]:
        post(client, {"device": "1A2B3C", "time": time, "seqNumber": seq, "temp": 1})
    rows = SequenceGap.objects.order_by("time").values_list("seq_number", "missing", "reset")
    assert list(rows) == [(0, 0, True), (4, 3, False)]


def test_it_shrinks_a_gap_when_a_late_retry_arrives(client):
    post(client, {"device": "1A2B3C", "time": T0, "seqNumber": 5})
    post(client, {"device": "1A2B3C", "time": T0 + 2400, "seqNumber": 9})
    assert list(SequenceGap.objects.values_list("missing", flat=True)) == [3]
    post(client, {"device": "1A2B3C", "time": T0 + 1200, "seqNumber": 7})
    assert sorted(SequenceGap.objects.values_list("missing", flat=True)) == [1, 1]
    post(client, {"device": "1A2B3C", "time": T0 + 600, "seqNumber": 6})
    post(client, {"device": "1A2B3C", "time": T0 + 1800, "seqNumber": 8})
    assert not SequenceGap.objects.exists()


def test_it_reaches_a_device_made_in_the_admin_under_its_padded_id(client, admin_client):
    Device.objects.create(sigfox_id="4E2F1A", name="On the label: 004e2f1a")
    post(client, {"device": "4E2F1A", "time": T0, "temp": 1})
    post(client, {"device": "004e2f1a", "time": T0 + 600, "temp": 2})
    assert Device.objects.get().messages.count() == 2
    assert admin_client.get("/api/devices/004e2f1a/").json()["id"] == "4E2F1A"
    assert admin_client.get("/api/readings/?device=004E2F1A").json()["results"]
    assert admin_client.get("/devices/004e2f1a").status_code == 200


def test_it_keeps_a_text_field_and_drops_a_non_finite_one(client):
    body = f'{{"device":"1A2B3C","time":{T0},"str":"ABCDEF","temp":NaN,"hum":"Infinity","v":3}}'
    response = client.post("/data/1", body, content_type="application/json")
    assert response.status_code == 204
    message = Message.objects.get()
    assert message.text_values == {"str": "ABCDEF"}
    assert set(message.field_errors) == {"temp", "hum"}
    assert readings() == {"v": 3.0}
    assert "NaN" in message.body_raw


def test_it_keeps_a_64_bit_integer_exactly(client, admin_client):
    Device.objects.create(sigfox_id="1A2B3C", payload_config="big::uint:64")
    post(client, {"device": "1A2B3C", "time": T0, "data": "ffffffffffffffff",
                  "counter": 18446744073709551615, "small": "9007199254740993"})
    message = admin_client.get("/api/messages/").json()["results"][0]
    assert message["exact_values"] == {
        "counter": "18446744073709551615", "small": "9007199254740993",
        "big": "18446744073709551615"}
    assert readings()["counter"] == float(2**64)
    csv = b"".join(admin_client.get("/api/readings.csv").streaming_content).decode()
    assert "18446744073709551615" in csv


def test_it_leaves_out_a_value_its_scale_would_make_infinite(client, admin_client):
    from readings.models import QuantitySetting

    device = Device.objects.create(sigfox_id="E1")
    QuantitySetting.objects.create(device=device, quantity="cnt", scale=10)
    post(client, {"device": "E1", "time": T0, "cnt": 1e308, "ok": 1})
    message = Message.objects.get()
    assert "cnt" in message.field_errors
    assert readings() == {"ok": 1.0}
    assert admin_client.get("/api/readings/").status_code == 200


def test_it_refuses_a_scale_or_offset_past_its_bounds(admin_client):
    Device.objects.create(sigfox_id="E1")
    for field, value in [("scale", 1e308), ("scale", -2e6), ("offset", 1e13)]:
        response = admin_client.post("/api/quantity-settings/", {"device": "E1", "quantity": "cnt",
                                                                 field: value}, content_type="application/json")
        assert response.status_code == 400, (field, value)
        assert field in response.json()


def test_it_keeps_only_what_it_stored_as_raw_values(client, settings):
    settings.SIGFOX_MAX_SERIES_PER_DEVICE = 1
    post(client, {"device": "1A2B3C", "time": T0, "temp": 21, "hum": 40})
    assert Message.objects.get().values_raw == {"1": {"temp": 21}}
    post(client, {"device": "1A2B3C", "time": T0, "temp": 29})
    assert Message.objects.get().values_raw == {"1": {"temp": 21}}
    assert readings() == {"temp": 21.0}


def test_it_records_a_conflict_of_exact_integers_and_of_text(client):
    post(client, {"device": "FF01", "time": T0, "big": 18446744073709551615, "str": "ABC"})
    post(client, {"device": "FF01", "time": T0, "big": 18446744073709551614, "str": "ABD"})
    post(client, {"device": "FF01", "time": T0, "str": 7})
    conflicts = set(MessageConflict.objects.values_list("variable", "kept_value", "other_value"))
    assert conflicts == {("big", "18446744073709551615", "18446744073709551614"),
                         ("str", "ABC", "ABD"), ("str", "ABC", "7.0")}
    message = Message.objects.get()
    assert message.text_values == {"str": "ABC"}
    assert set(readings()) == {"big"}


def test_it_keeps_the_frame_of_a_json_integer_too_long_for_python(client):
    body = f'{{"device":"DD01","time":{T0},"temp":{"9" * 5000},"hum":40}}'
    for content_type in ("application/json", "application/x-www-form-urlencoded"):
        response = client.post("/data/1", body, content_type=content_type)
        assert response.status_code == 204
    message = Message.objects.get()
    assert "temp" in message.field_errors
    assert readings() == {"hum": 40.0}


def test_it_remembers_that_a_copy_asked_for_a_downlink(client):
    Device.objects.create(sigfox_id="BF1327", downlink_data="0102030405060708")
    post(client, {"device": "BF1327", "time": T0, "ack": False})
    response = post(client, {"device": "BF1327", "time": T0, "ack": True})
    assert response.status_code == 200
    assert Message.objects.get().ack is True
    assert Downlink.objects.count() == 1


def test_it_finds_the_messages_of_a_padded_id_in_the_admin(client, admin_client):
    post(client, {"device": "1A2B3C", "time": T0, "big": 18446744073709551615})
    for url in ("/admin/readings/message/", "/admin/readings/reading/"):
        content = admin_client.get(f"{url}?q=001a2b").content.decode()
        assert "1A2B3C" in content, url
    reading = Reading.objects.get()
    page = admin_client.get(f"/admin/readings/reading/{reading.pk}/change/").content.decode()
    assert "18446744073709551615" in page
