"""Values in their physical units (issue 9 item 11): QuantitySetting gives a
quantity its unit, label and scale; the name only guesses a unit when nothing is set."""

import csv
import io
import json
from pathlib import Path

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.authtoken.models import Token

from readings.selectors import units as selectors
from readings.models import Device, DeviceType, Message, QuantitySetting, Reading
from tests.helpers import minutes, store
from tests.helpers import chart_data

pytestmark = pytest.mark.django_db

SETTINGS = "/api/quantity-settings/"


@pytest.fixture
def sensor_type():
    return DeviceType.objects.create(sigfox_id="ABC1", name="Thermometer")


def typed(device_id: str, device_type: DeviceType, points=None, **kwargs) -> Device:
    device = store(device_id, points if points is not None else minutes(2), **kwargs)
    device.device_type = device_type
    device.save()
    return device


def token_client_of(client, user):
    token = Token.objects.create(user=user)

    class TokenClient:
        def __getattr__(self, name):
            method = getattr(client, name)
            return lambda *a, **kw: method(*a, HTTP_AUTHORIZATION=f"Token {token.key}", **kw)

    return TokenClient()


@pytest.fixture
def reader(client, django_user_model):
    """A logged-in user who is not staff, through a token."""
    return token_client_of(client, django_user_model.objects.create_user("script"))


@pytest.fixture
def staff(client, django_user_model):
    return token_client_of(client, django_user_model.objects.create_user("ops", is_staff=True))


def api_units(client, query="") -> dict[tuple[str, str], str]:
    results = client.get("/api/readings/" + query).json()["results"]
    return {(r["device"], r["quantity"]): r["unit"] for r in results}


# -- which unit ------------------------------------------------------------------------------


def test_a_type_setting_gives_the_unit_and_label(admin_client, sensor_type):
    QuantitySetting.objects.create(device_type=sensor_type, quantity="t", unit="K", label="Heat")
    device = typed("1A2B3C", sensor_type, quantity="t")
    assert selectors.quantity_display(device, "t") == selectors.QuantityDisplay("K", "Heat")
    assert api_units(admin_client) == {("1A2B3C", "t"): "K"}


def test_a_device_setting_overrides_its_type(admin_client, sensor_type):
    QuantitySetting.objects.create(device_type=sensor_type, quantity="temp", unit="°F", label="T")
    own = typed("1A2B3C", sensor_type)
    typed("BF1327", sensor_type)
    QuantitySetting.objects.create(device=own, quantity="temp", unit="K", label="")
    assert api_units(admin_client) == {("1A2B3C", "temp"): "K", ("BF1327", "temp"): "°F"}
    # The device's row replaces its type's whole: its empty label is no label.
    assert selectors.quantity_display(own, "temp") == selectors.QuantityDisplay("K", "")


def test_a_setting_without_a_unit_beats_the_guess_from_the_name(admin_client, sensor_type):
    QuantitySetting.objects.create(device_type=sensor_type, quantity="vbat", unit="")
    typed("1A2B3C", sensor_type, quantity="vbat")
    assert api_units(admin_client) == {("1A2B3C", "vbat"): ""}


def test_the_name_gives_the_unit_when_nothing_is_set(admin_client, sensor_type):
    QuantitySetting.objects.create(device_type=sensor_type, quantity="other", unit="x")
    typed("1A2B3C", sensor_type, quantity="vbat_mv")
    store("BF1327", minutes(1), quantity="temp")
    store("BF1327", minutes(1), quantity="nameless")
    assert api_units(admin_client) == {
        ("1A2B3C", "vbat_mv"): "mV", ("BF1327", "temp"): "°C", ("BF1327", "nameless"): ""}


def test_a_setting_of_one_type_is_not_another_types(admin_client, sensor_type):
    QuantitySetting.objects.create(device_type=sensor_type, quantity="temp", unit="K")
    other = DeviceType.objects.create(sigfox_id="DEF2")
    typed("1A2B3C", other)
    store("BF1327", minutes(1))
    assert api_units(admin_client) == {("1A2B3C", "temp"): "°C", ("BF1327", "temp"): "°C"}


def test_a_readings_page_loads_the_settings_once(admin_client, sensor_type):
    QuantitySetting.objects.create(device_type=sensor_type, quantity="temp", unit="K")
    for i in range(5):
        typed(f"{0xA0 + i:X}", sensor_type, minutes(20))
    with CaptureQueriesContext(connection) as queries:
        body = admin_client.get("/api/readings/?page_size=100").json()
    assert len(body["results"]) == 100
    assert {r["unit"] for r in body["results"]} == {"K"}
    assert sum("readings_quantitysetting" in q["sql"] for q in queries.captured_queries) == 1


def test_a_device_shows_its_latest_readings_in_their_units(admin_client, sensor_type):
    QuantitySetting.objects.create(device_type=sensor_type, quantity="temp", unit="K")
    typed("1A2B3C", sensor_type)
    readings = admin_client.get("/api/devices/1A2B3C/").json()["last_readings"]
    assert [(r["quantity"], r["unit"]) for r in readings] == [("temp", "K")]


def test_the_series_endpoint_says_the_unit_and_label(admin_client, sensor_type):
    QuantitySetting.objects.create(device_type=sensor_type, quantity="vbat", unit="V",
                                   label="Battery")
    typed("1A2B3C", sensor_type, quantity="vbat")
    body = admin_client.get("/api/series/?device=1A2B3C&quantity=vbat").json()
    assert (body["unit"], body["label"]) == ("V", "1A2B3C · Battery (V)")


# -- the chart pages ---------------------------------------------------------------------------


def test_the_chart_page_labels_series_from_their_settings(admin_client, sensor_type):
    QuantitySetting.objects.create(device_type=sensor_type, quantity="vbat", unit="V",
                                   label="Battery")
    typed("1A2B3C", sensor_type, quantity="vbat")
    store("BF1327", minutes(1), quantity="vbat")  # no setting: the name's guess
    store("BF1327", minutes(1), quantity="count")  # nothing to guess
    data = chart_data(admin_client.get("/graph"))
    shown = {(s["device"], s["quantity"]): (s["unit"], s["label"]) for s in data["series"]}
    assert shown == {
        ("1A2B3C", "vbat"): ("V", "1A2B3C · sensor 1 · Battery (V)"),
        ("BF1327", "count"): ("", "BF1327 · sensor 1 · count"),
        ("BF1327", "vbat"): ("V", "BF1327 · sensor 1 · vbat (V)"),
    }
    units = {(k["device"], k["quantity"]): k["unit"] for k in data["keys"]}
    assert units[("1A2B3C", "vbat")] == "V"


def test_the_chart_page_drops_a_unit_set_empty(admin_client, sensor_type):
    QuantitySetting.objects.create(device_type=sensor_type, quantity="vbat", label="Battery raw")
    typed("1A2B3C", sensor_type, quantity="vbat")
    series = chart_data(admin_client.get("/devices/1A2B3C"))["series"]
    assert [(s["unit"], s["label"]) for s in series] == [("", "1A2B3C · sensor 1 · Battery raw")]


def test_the_device_page_shows_latest_values_with_unit_and_label(admin_client, sensor_type):
    QuantitySetting.objects.create(device_type=sensor_type, quantity="vbat", unit="V",
                                   label="Battery")
    typed("1A2B3C", sensor_type, [(minutes(1)[0][0], 3.3)], quantity="vbat")
    content = admin_client.get("/devices/1A2B3C").content.decode()
    assert "<dt>Battery <span class=\"muted\">vbat, sensor 1</span></dt>" in content
    assert "<dd>3.300 V <span" in content


# -- the CSV export --------------------------------------------------------------------------


def download(client, query=""):
    response = client.get("/api/readings.csv" + query)
    assert response.status_code == 200
    return list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))


def test_the_csv_ends_each_row_with_the_unit(admin_client, sensor_type):
    QuantitySetting.objects.create(device_type=sensor_type, quantity="vbat", unit="V")
    typed("1A2B3C", sensor_type, minutes(1, values=lambda i: 3.3), quantity="vbat")
    store("BF1327", minutes(1), quantity="vbat_mv")
    store("BF1327", minutes(1), quantity="count")
    rows = download(admin_client)
    assert rows[0] == ["time", "device", "sensor", "quantity", "value", "unit"]
    assert sorted(tuple(row[1:]) for row in rows[1:]) == [
        ("1A2B3C", "1", "vbat", "3.3", "V"),
        ("BF1327", "1", "count", "0.0", ""),
        ("BF1327", "1", "vbat_mv", "0.0", "mV"),
    ]


def test_the_csv_writes_large_integers_exactly(admin_client, post_json):
    big = 2**60 + 1  # a float holds 2**60
    response = post_json(json.dumps({"device": "1A2B3C", "time": 1700000000, "big": big,
                                     "temp": 21}))
    assert response.status_code in (200, 204), response.content
    message = Message.objects.get()
    assert message.values_raw == {"1": {"big": big, "temp": 21}}
    assert Reading.objects.get(quantity="big").value == float(big)
    rows = {row[3]: row[4] for row in download(admin_client)[1:]}
    assert rows == {"big": str(big), "temp": "21.0"}


def test_the_csv_writes_a_scaled_large_value_as_its_float(admin_client, sensor_type):
    big = 2**60 + 1
    device = typed("1A2B3C", sensor_type, [(minutes(1)[0][0], float(big) * 2)], quantity="big")
    Message.objects.filter(device=device).update(values_raw={"1": {"big": big}})
    rows = download(admin_client)
    assert rows[1][4] == repr(float(big) * 2)


def test_the_csv_takes_large_integers_decoded_from_the_payload(admin_client):
    big = -(2**62) - 3
    device = store("1A2B3C", [(minutes(1)[0][0], float(big))], quantity="n")
    Message.objects.filter(device=device).update(payload_fields={"n": big})
    assert download(admin_client)[1][4] == str(big)


# -- the settings API -------------------------------------------------------------------------


def test_anyone_who_may_read_may_list_settings(reader, sensor_type):
    device = store("1A2B3C", minutes(1))
    QuantitySetting.objects.create(device_type=sensor_type, quantity="vbat", unit="V", scale=0.001)
    QuantitySetting.objects.create(device=device, quantity="temp", unit="K", label="T",
                                   offset=273.15)
    body = reader.get(SETTINGS).json()
    assert [{k: v for k, v in s.items() if k != "id"} for s in body["results"]] == [
        {"device": None, "device_type": "ABC1", "quantity": "vbat", "unit": "V", "label": "",
         "scale": 0.001, "offset": 0.0},
        {"device": "1A2B3C", "device_type": None, "quantity": "temp", "unit": "K", "label": "T",
         "scale": 1.0, "offset": 273.15},
    ]
    def quantities(query):
        return [s["quantity"] for s in reader.get(SETTINGS + query).json()["results"]]

    assert quantities("?device=1a2b3c") == ["temp"]
    assert quantities("?device_type=abc1") == ["vbat"]
    assert reader.get(SETTINGS + "?device=FFFF").json()["results"] == []
    one = body["results"][0]["id"]
    assert reader.get(f"{SETTINGS}{one}/").json()["quantity"] == "vbat"


def test_settings_are_closed_to_anonymous_users_and_public_with_public_dashboard(
        client, settings, sensor_type):
    QuantitySetting.objects.create(device_type=sensor_type, quantity="vbat", unit="V")
    assert client.get(SETTINGS).status_code == 401
    settings.PUBLIC_DASHBOARD = True
    assert client.get(SETTINGS).status_code == 200
    response = client.post(SETTINGS, {"device_type": "ABC1", "quantity": "temp"},
                           content_type="application/json")
    assert response.status_code == 401
    assert QuantitySetting.objects.count() == 1


def test_a_user_who_is_not_staff_may_not_write_settings(reader, sensor_type):
    setting = QuantitySetting.objects.create(device_type=sensor_type, quantity="vbat", unit="V")
    body = json.dumps({"device_type": "ABC1", "quantity": "temp", "unit": "K"})
    assert reader.post(SETTINGS, body, content_type="application/json").status_code == 403
    url = f"{SETTINGS}{setting.pk}/"
    assert reader.put(url, body, content_type="application/json").status_code == 403
    assert reader.patch(url, '{"unit": "mV"}', content_type="application/json").status_code == 403
    assert reader.delete(url).status_code == 403
    assert list(QuantitySetting.objects.values_list("quantity", "unit")) == [("vbat", "V")]


def test_staff_create_change_and_delete_settings(staff, sensor_type):
    store("1A2B3C", minutes(1))
    response = staff.post(SETTINGS, {"device_type": "abc1", "quantity": "vbat", "unit": "V",
                                     "scale": 0.001}, content_type="application/json")
    assert response.status_code == 201, response.content
    created = response.json()
    assert {k: v for k, v in created.items() if k != "id"} == {
        "device": None, "device_type": "ABC1", "quantity": "vbat", "unit": "V", "label": "",
        "scale": 0.001, "offset": 0.0}
    url = f"{SETTINGS}{created['id']}/"
    response = staff.patch(url, {"label": "Battery"}, content_type="application/json")
    assert response.status_code == 200
    assert response.json()["label"] == "Battery"
    # Moved from the type to one device (given padded, lower case).
    response = staff.put(url, {"device": "001a2b3c", "device_type": None, "quantity": "vbat",
                               "unit": "mV"}, content_type="application/json")
    assert response.status_code == 200, response.content
    setting = QuantitySetting.objects.get()
    # PUT keeps what it does not name (the scale), as DRF does.
    assert (setting.device.sigfox_id, setting.device_type, setting.unit, setting.scale) == (
        "1A2B3C", None, "mV", 0.001)
    assert staff.delete(url).status_code == 204
    assert not QuantitySetting.objects.exists()


def test_an_admin_session_writes_settings_too(admin_client, sensor_type):
    response = admin_client.post(SETTINGS, {"device_type": "ABC1", "quantity": "temp"},
                                 content_type="application/json")
    assert response.status_code == 201


@pytest.mark.parametrize(("body", "errors"), [
    ({"quantity": "vbat"}, {"non_field_errors": ["Set exactly one of device and device_type."]}),
    ({"device": "1A2B3C", "device_type": "ABC1", "quantity": "vbat"},
     {"non_field_errors": ["Set exactly one of device and device_type."]}),
    ({"device_type": "ABC1", "quantity": "temp"},
     {"quantity": ["Device type ABC1 already has a setting for 'temp'."]}),
    ({"device": "1a2b3c", "quantity": "temp"},
     {"quantity": ["Device 1A2B3C already has a setting for 'temp'."]}),
    ({"device": "FFFF", "quantity": "vbat"}, {"device": ["No device sigfox_id=FFFF."]}),
    ({"device": "not hex", "quantity": "vbat"}, {"device": ["Must be 1 to 8 hexadecimal digits."]}),
    ({"device": 12, "quantity": "vbat"}, {"device": ["Must be 1 to 8 hexadecimal digits."]}),
    ({"device_type": "FFFF", "quantity": "vbat"},
     {"device_type": ["No device type sigfox_id=FFFF."]}),
    ({"device_type": "ABC1"}, {"quantity": ["This field is required."]}),
    ({"device_type": "ABC1", "quantity": ""}, {"quantity": ["This field may not be blank."]}),
    ({"device_type": "ABC1", "quantity": "x" * 65},
     {"quantity": ["Ensure this field has no more than 64 characters."]}),
    ({"device_type": "ABC1", "quantity": "vbat", "unit": "u" * 17},
     {"unit": ["Ensure this field has no more than 16 characters."]}),
    ({"device_type": "ABC1", "quantity": "vbat", "scale": "lots"},
     {"scale": ["A valid number is required."]}),
    ({"device_type": "ABC1", "quantity": "vbat", "offset": "nan"},
     {"offset": ["A valid number is required."]}),
    ({"device_type": "ABC1", "quantity": "vbat", "scale": "1e999"},
     {"scale": ["A valid number is required."]}),
])
def test_a_bad_setting_is_refused_with_the_reason(staff, sensor_type, body, errors):
    device = store("1A2B3C", minutes(1))
    QuantitySetting.objects.create(device_type=sensor_type, quantity="temp")
    QuantitySetting.objects.create(device=device, quantity="temp")
    response = staff.post(SETTINGS, body, content_type="application/json")
    assert response.status_code == 400
    assert response.json() == errors
    assert QuantitySetting.objects.count() == 2


def test_a_change_into_a_duplicate_is_refused(staff, sensor_type):
    QuantitySetting.objects.create(device_type=sensor_type, quantity="temp")
    other = QuantitySetting.objects.create(device_type=sensor_type, quantity="hum")
    response = staff.patch(f"{SETTINGS}{other.pk}/", {"quantity": "temp"},
                           content_type="application/json")
    assert response.status_code == 400
    assert response.json() == {"quantity": ["Device type ABC1 already has a setting for 'temp'."]}
    # The same quantity as before is no duplicate of itself.
    response = staff.patch(f"{SETTINGS}{other.pk}/", {"quantity": "hum", "unit": "%"},
                           content_type="application/json")
    assert response.status_code == 200


def test_a_device_and_its_type_may_both_set_a_quantity(staff, sensor_type):
    typed("1A2B3C", sensor_type)
    QuantitySetting.objects.create(device_type=sensor_type, quantity="temp", unit="K")
    response = staff.post(SETTINGS, {"device": "1A2B3C", "quantity": "temp", "unit": "°F"},
                          content_type="application/json")
    assert response.status_code == 201


def test_a_setting_saved_twice_at_once_is_refused_not_a_server_error(staff, sensor_type,
                                                                     monkeypatch):
    # The check in validate() passed for both requests; the database refuses the second.
    from readings.api.serializers import QuantitySettingSerializer

    QuantitySetting.objects.create(device_type=sensor_type, quantity="temp")
    monkeypatch.setattr(QuantitySettingSerializer, "validate", lambda self, attrs: attrs)
    response = staff.post(SETTINGS, {"device_type": "ABC1", "quantity": "temp"},
                          content_type="application/json")
    assert response.status_code == 400
    assert response.json() == {"quantity": [
        "This device or device type already has a setting for this quantity."]}


def test_a_bad_settings_filter_is_refused(reader):
    response = reader.get(SETTINGS + "?device=not-hex")
    assert response.status_code == 400
    assert "device" in response.json()


def test_the_settings_api_is_in_the_schema(client):
    paths = json.loads(client.get("/api/schema/?format=json").content)["paths"]
    assert set(paths[SETTINGS]) == {"get", "post"}
    assert set(paths[SETTINGS + "{id}/"]) == {"get", "put", "patch", "delete"}
    assert {p["name"] for p in paths[SETTINGS]["get"]["parameters"]} >= {"device", "device_type"}


# -- end to end ---------------------------------------------------------------------------------


def test_a_callback_is_stored_scaled_and_shown_in_its_unit(admin_client, post_json, sensor_type):
    QuantitySetting.objects.create(device_type=sensor_type, quantity="vbat", scale=0.001, unit="V")
    Device.objects.create(sigfox_id="1A2B3C", device_type=sensor_type)
    response = post_json('{"device":"1A2B3C","time":1700000000,"vbat":3300}', sensor="1")
    assert response.status_code == 204, response.content
    reading = Reading.objects.get(quantity="vbat")
    assert reading.value == pytest.approx(3.3)
    assert reading.message.values_raw == {"1": {"vbat": 3300}}
    [listed] = admin_client.get("/api/readings/?quantity=vbat").json()["results"]
    assert listed["value"] == pytest.approx(3.3)
    assert listed["unit"] == "V"


def test_the_readme_lists_the_names_whose_unit_is_guessed():
    readme = (Path(__file__).resolve().parents[3] / "README.md").read_text()

    def rows(mapping, prefix=""):
        by_unit: dict[str, list[str]] = {}
        for name, unit in mapping.items():
            by_unit.setdefault(unit, []).append(f"`{prefix}{name}`")
        return [f"| {unit} | {', '.join(names)} |" for unit, names in by_unit.items()]

    for row in rows(selectors.UNITS) + rows(selectors.UNIT_SUFFIXES, "_"):
        assert row in readme.splitlines(), row
    assert selectors.quantity_unit("vbat_mv") == "mV"
