"""The admin pages for devices, messages and readings."""

import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from readings.models import Device, Message, Reading
from tests.conftest import TUTORIAL_BODY

pytestmark = pytest.mark.django_db


@pytest.fixture
def message(post_json):
    post_json(TUTORIAL_BODY)
    return Message.objects.get()


@pytest.mark.parametrize("model", ["device", "message", "reading"])
def test_it_lists_each_model(admin_client, message, model):
    response = admin_client.get(f"/admin/readings/{model}/")
    assert response.status_code == 200
    assert "1A2B3C" in response.content.decode()


@pytest.mark.parametrize("model", ["device", "message", "reading"])
def test_it_searches_by_device_id(admin_client, message, post_json, model):
    post_json('{"device":"BF1327","time":"1700000000","temp":3}')
    content = admin_client.get(f"/admin/readings/{model}/?q=bf13").content.decode()
    assert "BF1327" in content
    assert "1A2B3C" not in content


@pytest.mark.parametrize("model", ["message", "reading"])
def test_it_drills_down_the_date_hierarchy(admin_client, message, model):
    for query in ["", "?time__year=2023", "?time__year=2023&time__month=11",
                  "?time__year=2023&time__month=11&time__day=14"]:
        response = admin_client.get(f"/admin/readings/{model}/{query}")
        assert response.status_code == 200, query
        assert "1A2B3C" in response.content.decode(), query


def test_it_spans_years_in_the_date_hierarchy(admin_client, post_json):
    post_json('{"device":"1A2B3C","time":"1300000000","temp":1}')
    post_json(TUTORIAL_BODY)
    content = admin_client.get("/admin/readings/reading/").content.decode()
    assert "?time__year=2011" in content and "?time__year=2023" in content


@pytest.mark.parametrize("model", ["message", "reading"])
def test_it_never_counts_the_whole_table(admin_client, message, model):
    with CaptureQueriesContext(connection) as queries:
        admin_client.get(f"/admin/readings/{model}/")
    counts = [q["sql"] for q in queries if "COUNT(" in q["sql"].upper()]
    # The only count is the capped one: a COUNT over a LIMITed subquery.
    assert counts and all("LIMIT" in sql.upper() for sql in counts), counts


def test_it_shows_a_message_with_its_readings(admin_client, message):
    content = admin_client.get(f"/admin/readings/message/{message.pk}/change/").content.decode()
    assert "temp" in content and "21.0" in content
    assert "&quot;device&quot;:&quot;1A2B3C&quot;" in content


def device_form(**fields) -> dict:
    return {
        "name": "", "device_type": "", "payload_config": "", "downlink_data": "",
        "downlink_mode": "once", "downlinks-TOTAL_FORMS": "0", "downlinks-INITIAL_FORMS": "0",
        "quantity_settings-TOTAL_FORMS": "0", "quantity_settings-INITIAL_FORMS": "0",
        **fields,
    }


def test_it_renames_a_device(admin_client, message):
    device = Device.objects.get()
    response = admin_client.post(
        f"/admin/readings/device/{device.pk}/change/", device_form(name="Kitchen")
    )
    assert response.status_code == 302
    device.refresh_from_db()
    assert device.name == "Kitchen"


def test_it_keeps_anonymous_users_out(client, message):
    response = client.get("/admin/readings/reading/")
    assert response.status_code == 302
    assert Reading.objects.count() == 1


def test_it_adds_a_device_before_it_is_seen(admin_client, post_json):
    response = admin_client.post("/admin/readings/device/add/", device_form(sigfox_id=" bf1327 ", name="Garage"))
    assert response.status_code == 302
    device = Device.objects.get()
    assert (device.sigfox_id, device.first_seen) == ("BF1327", None)
    post_json('{"device":"BF1327","time":"1700000000","temp":3}')
    device.refresh_from_db()
    assert device.first_seen == device.last_seen is not None
    assert Device.objects.count() == 1


def test_it_rejects_a_bad_device_id_in_the_admin(admin_client):
    response = admin_client.post("/admin/readings/device/add/", device_form(sigfox_id="XYZ"))
    assert response.status_code == 200
    assert "Up to 8 hexadecimal characters." in response.content.decode()
    assert not Device.objects.exists()


def test_it_stores_a_padded_id_typed_in_the_admin_as_callbacks_send_it(admin_client, client):
    response = admin_client.post("/admin/readings/device/add/", device_form(sigfox_id="004e2f1a"))
    assert response.status_code == 302
    assert Device.objects.get().sigfox_id == "4E2F1A"
    client.post("/data/1", '{"device":"4E2F1A","time":"1700000000","temp":21}',
                content_type="application/json")
    client.post("/data/1", '{"device":"004e2f1a","time":"1700000600","temp":22}',
                content_type="application/json")
    assert Device.objects.get().messages.count() == 2


def test_it_validates_a_payload_config_on_save(admin_client, message):
    device = Device.objects.get()
    response = admin_client.post(
        f"/admin/readings/device/{device.pk}/change/", device_form(payload_config="temp::int:99")
    )
    assert response.status_code == 200
    assert "length must be 1 to 64 bits, got 99" in response.content.decode()
    device.refresh_from_db()
    assert device.payload_config == ""


def test_it_saves_a_valid_payload_config(admin_client, message):
    device = Device.objects.get()
    response = admin_client.post(
        f"/admin/readings/device/{device.pk}/change/", device_form(payload_config="temp::int:8")
    )
    assert response.status_code == 302
    device.refresh_from_db()
    assert device.payload_config == "temp::int:8"


def test_it_validates_a_device_type_config(admin_client):
    from readings.models import DeviceType

    response = admin_client.post("/admin/readings/devicetype/add/",
                                 {"sigfox_id": "5f3a", "name": "", "payload_config": "x::bool:9"})
    assert response.status_code == 200
    assert "x::bool:9" in response.content.decode()
    assert not DeviceType.objects.exists()


@pytest.mark.parametrize("data, ok", [("0101038400000000", True), ("01010384", False), ("zz01038400000000", False)])
def test_it_checks_downlink_data(admin_client, message, data, ok):
    device = Device.objects.get()
    response = admin_client.post(
        f"/admin/readings/device/{device.pk}/change/", device_form(downlink_data=data)
    )
    assert response.status_code == (302 if ok else 200)
    device.refresh_from_db()
    assert device.downlink_data == (data if ok else "")


def test_it_resets_delivery_when_downlink_data_changes(admin_client, message):
    from django.utils import timezone

    device = Device.objects.get()
    Device.objects.filter(pk=device.pk).update(downlink_data="0101038400000000",
                                               downlink_delivered_at=timezone.now())
    admin_client.post(f"/admin/readings/device/{device.pk}/change/",
                      device_form(downlink_data="0100025800000000"))
    device.refresh_from_db()
    assert (device.downlink_data, device.downlink_delivered_at) == ("0100025800000000", None)
    assert device.downlink_pending() == "0100025800000000"


def test_it_points_downlink_help_to_the_firmware_layout(admin_client, message):
    device = Device.objects.get()
    content = admin_client.get(f"/admin/readings/device/{device.pk}/change/").content.decode()
    assert "firmware/README.md" in content and "Downlink layout" in content


@pytest.mark.parametrize("model", ["devicetype", "downlink", "acknowledge", "sequencegap"])
def test_it_lists_the_protocol_models(admin_client, message, model):
    assert admin_client.get(f"/admin/readings/{model}/").status_code == 200


def test_it_finds_a_device_by_the_start_of_its_id_padded_or_not(admin_client):
    Device.objects.create(sigfox_id="4E2F1A", name="Kitchen")
    Device.objects.create(sigfox_id="BF1327", name="Garden 4E")
    for term, found in [("4e2f", {"4E2F1A"}), ("004E2F", {"4E2F1A"}), ("garden", {"BF1327"}),
                        ("4E", {"4E2F1A", "BF1327"})]:
        content = admin_client.get(f"/admin/readings/device/?q={term}").content.decode()
        assert {d for d in ("4E2F1A", "BF1327") if f">{d}<" in content} == found, term


@pytest.fixture
def twelve_readings(post_json):
    for n in range(6):
        post_json(f'{{"device":"1A2B3C","time":"{1700000000 + 600 * n}","temp":{n},"hum":40}}')


@pytest.fixture
def short_pages(monkeypatch):
    """Pages of 2 rows that stop at 4: page 3 and on are past the bound."""
    from readings import admin as readings_admin

    monkeypatch.setattr(readings_admin, "COUNT_CAP", 4)
    for admin_class in (readings_admin.ReadingAdmin, readings_admin.MessageAdmin):
        monkeypatch.setattr(admin_class, "list_per_page", 2)


@pytest.mark.parametrize("model", ["message", "reading"])
def test_it_shows_the_last_page_listed_for_a_page_past_it(
    admin_client, twelve_readings, short_pages, model
):
    if connection.vendor == "postgresql":
        # The unfiltered list pages by the planner's estimate: 12 rows, 6 pages unbounded.
        with connection.cursor() as cursor:
            cursor.execute(f"ANALYZE readings_{model}")
    with CaptureQueriesContext(connection) as queries:
        response = admin_client.get(f"/admin/readings/{model}/?p=6")
    assert response.status_code == 200
    content = response.content.decode()
    assert "Page 6 is past the last page listed (2, 4 rows): this is that page." in content
    assert 'class="this-page">2</span>' in content and "?p=3" not in content
    offsets = [int(n) for q in queries for n in re.findall(r"OFFSET (\d+)", q["sql"])]
    assert offsets == [2]


def test_it_turns_away_a_page_past_the_rows(admin_client, twelve_readings, monkeypatch):
    from readings.admin import ReadingAdmin

    monkeypatch.setattr(ReadingAdmin, "list_per_page", 2)
    assert admin_client.get("/admin/readings/reading/?p=6").status_code == 200
    response = admin_client.get("/admin/readings/reading/?p=7")
    assert response.status_code == 302
    assert response["Location"].endswith("?e=1")


@pytest.mark.parametrize("model, columns", [
    ("reading", ["device", "sensor", "quantity", "value_shown"]),
    ("message", ["device", "sensor", "seq_number", "data", "rssi", "snr", "received_at"]),
])
def test_it_sorts_big_lists_by_time_only(admin_client, twelve_readings, model, columns):
    content = admin_client.get(f"/admin/readings/{model}/").content.decode()
    assert 'class="sortable column-time' in content
    assert not [c for c in columns if f"sortable column-{c}" in content]
    # A sort asked for by hand is not obeyed either: the list keeps its order.
    with CaptureQueriesContext(connection) as queries:
        response = admin_client.get(f"/admin/readings/{model}/?o={len(columns) + 1}")
    assert response.status_code == 200
    listing = [q["sql"] for q in queries if f"readings_{model}\".\"id\", " in q["sql"]]
    assert listing and all(f'ORDER BY "readings_{model}"."time" DESC' in sql for sql in listing)


def test_it_takes_filter_choices_from_the_registries(admin_client, twelve_readings, post_json):
    post_json('{"device":"BF1327","time":"1700000000","vbat":3.3}', sensor="2")
    with CaptureQueriesContext(connection) as queries:
        content = admin_client.get("/admin/readings/reading/").content.decode()
    distinct = [q["sql"] for q in queries if "DISTINCT" in q["sql"]]
    assert not [sql for sql in distinct if "readings_reading" in sql]
    for choice in ["?quantity=hum", "?quantity=temp", "?quantity=vbat", "?sensor=1", "?sensor=2"]:
        assert f'href="{choice}"' in content, choice
    content = admin_client.get("/admin/readings/reading/?quantity=vbat").content.decode()
    assert "BF1327" in content and "1A2B3C" not in content


@pytest.mark.parametrize("model", ["message", "reading"])
def test_it_offers_no_facet_counts_on_big_lists(admin_client, twelve_readings, model):
    with CaptureQueriesContext(connection) as queries:
        content = admin_client.get(f"/admin/readings/{model}/?_facets=1").content.decode()
    assert "Show counts" not in content
    assert not [q["sql"] for q in queries if "FILTER (WHERE" in q["sql"].upper()]

