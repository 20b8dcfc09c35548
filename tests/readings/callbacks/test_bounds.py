"""Names cannot explode: new series are bounded per device and quantity names per site."""

import json

import pytest

from readings.models import Device, Message, Quantity, Reading, Series

pytestmark = pytest.mark.django_db

T0 = 1_700_000_000


def post(client, body: dict, sensor: str = "1"):
    response = client.post(f"/data/{sensor}", json.dumps(body), content_type="application/json")
    assert response.status_code == 204, response.content
    return response


def test_it_stores_a_callback_past_the_series_bound_without_new_series(client, settings, caplog):
    from readings.services import rejections as services

    # The log line is limited to one a minute per device; another test's device may share the pk.
    services._last_logged.clear()
    settings.SIGFOX_MAX_SERIES_PER_DEVICE = 5
    post(client, {"device": "1A2B3C", "time": T0, **{f"n{i:03}": i for i in range(3)}})
    flood = {"device": "1A2B3C", "time": T0 + 600, **{f"n{i:03}": i for i in range(198)}}
    post(client, flood)
    device = Device.objects.get()
    assert Series.objects.filter(device=device).count() == 5
    message = Message.objects.get(time__gt=Message.objects.order_by("time").first().time)
    assert json.loads(message.body_raw) == flood
    assert Reading.objects.filter(message=message).count() == 5
    assert len(message.field_errors) == 193
    assert "SIGFOX_MAX_SERIES_PER_DEVICE" in message.field_errors["n197"]
    assert device.series_refused == 193
    assert "past the series bounds" in caplog.text


def test_it_counts_new_sensor_paths_as_new_series(client, settings):
    settings.SIGFOX_MAX_SERIES_PER_DEVICE = 3
    for n in range(10):
        post(client, {"device": "1A2B3C", "time": T0 + 600 * n, "temp": 21}, sensor=f"s{n}")
    assert Series.objects.count() == 3
    assert Device.objects.get().series_refused == 7
    assert Message.objects.count() == 10


def test_it_bounds_the_quantity_names_of_the_site(client, settings):
    settings.SIGFOX_MAX_QUANTITIES = 4
    for n in range(10):
        post(client, {"device": f"{0xA0 + n:X}", "time": T0, f"name{n}": 1, "temp": 2})
    assert Quantity.objects.count() == 4
    # Known names keep working for every device.
    assert Reading.objects.filter(quantity="temp").count() == 10


def test_it_keeps_taking_readings_of_known_series_past_the_bound(client, settings):
    settings.SIGFOX_MAX_SERIES_PER_DEVICE = 2
    post(client, {"device": "1A2B3C", "time": T0, "a": 1, "b": 2, "c": 3})
    post(client, {"device": "1A2B3C", "time": T0 + 600, "a": 4, "b": 5, "c": 6})
    assert sorted(Reading.objects.values_list("quantity", "value")) == [
        ("a", 1.0), ("a", 4.0), ("b", 2.0), ("b", 5.0)]


def test_it_shows_the_refusals_on_the_device_page_and_in_the_admin(client, admin_client, settings):
    settings.SIGFOX_MAX_SERIES_PER_DEVICE = 1
    post(client, {"device": "1A2B3C", "time": T0, "a": 1, "b": 2})
    page = admin_client.get("/devices/1A2B3C").content.decode()
    assert 'id="series-refused"' in page and "1 reading not stored" in page
    device = Device.objects.get()
    admin_page = admin_client.get(f"/admin/readings/device/{device.pk}/change/").content.decode()
    assert "Series refused" in admin_page


@pytest.mark.parametrize(
    "field, value",
    [("lat", 95), ("lng", -181), ("fixedLat", "-90.5"), ("fixedLng", 400),
     ("computedLocation", {"lat": 91, "lng": 2, "radius": 1000}),
     ("computedLocation", {"lat": 48, "lng": "east"})],
)
def test_it_drops_coordinates_off_the_earth_and_keeps_the_frame(client, field, value):
    post(client, {"device": "1A2B3C", "time": T0, "temp": 21, field: value})
    message = Message.objects.get()
    assert field in message.field_errors
    assert (message.lat, message.lng, message.computed_location) == (None, None, None)
    assert Reading.objects.get().value == 21.0


def test_it_keeps_coordinates_on_the_earth(client):
    post(client, {"device": "1A2B3C", "time": T0, "lat": -90, "lng": 180,
                  "computedLocation": {"lat": 48.8, "lng": 2.3, "radius": 500}})
    message = Message.objects.get()
    assert (message.lat, message.lng, message.computed_location["radius"]) == (-90, 180, 500)
    assert not message.field_errors


def test_it_bounds_the_device_types_registered_from_callbacks(client, settings):
    from readings.models import DeviceType

    settings.SIGFOX_MAX_DEVICE_TYPES = 3
    for n in range(6):
        post(client, {"device": f"{0xB0 + n:X}", "time": T0, "deviceTypeId": f"{0xC0 + n:X}"})
    assert DeviceType.objects.count() == 3
    refused = Message.objects.get(device__sigfox_id="B5")
    assert "SIGFOX_MAX_DEVICE_TYPES" in refused.field_errors["deviceTypeId"]
    assert Device.objects.get(sigfox_id="B5").device_type is None


def test_it_keeps_the_device_form_small_with_thousands_of_types(admin_client):
    from django.utils import timezone

    from readings.models import DeviceType

    DeviceType.objects.bulk_create(
        DeviceType(sigfox_id=f"{n:X}", first_seen=timezone.now()) for n in range(1, 3001))
    device = Device.objects.create(sigfox_id="1A2B3C")
    page = admin_client.get(f"/admin/readings/device/{device.pk}/change/")
    assert page.status_code == 200
    assert len(page.content) < 100_000
    listing = admin_client.get("/admin/readings/device/")
    assert listing.status_code == 200 and len(listing.content) < 100_000
