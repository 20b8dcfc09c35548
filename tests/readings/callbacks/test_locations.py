"""Where devices are: one DeviceLocation per message, from DATA ADVANCED
computedLocation (network), a GEOLOC callback (geoloc) or values named like
coordinates (payload), the most precise source winning (readings.services.events)."""

import struct
from datetime import UTC, datetime

import pytest
from django.conf import settings

from readings.models import Device, DeviceLocation, Message, QuantitySetting
from readings.serializers import UplinkSerializer
from readings.services import events
from readings.services.ingest import UplinkCallback, message_ingest

pytestmark = pytest.mark.django_db

T0 = 1700000000


def at(epoch_s: int) -> datetime:
    return datetime.fromtimestamp(epoch_s, tz=UTC)


def advanced(**variables) -> dict:
    """A DATA ADVANCED callback of 1A2B3C, with a located computedLocation."""
    return {"device": "1A2B3C", "time": T0, "data": "0102", "seqNumber": 42, "lqi": "GOOD",
            "computedLocation": {"lat": 43.6047, "lng": 1.4442, "radius": 1250, "source": 2,
                                 "status": 1}, **variables}


def geoloc(**variables) -> dict:
    return {"device": "1A2B3C", "time": T0, "lat": 43.61, "lng": 1.45, "radius": 3000,
            "geolocSource": "2", "seqNumber": 42, **variables}


def located() -> list[tuple]:
    return list(DeviceLocation.objects.order_by("time").values_list(
        "device__sigfox_id", "time", "lat", "lng", "radius_m", "source", "sigfox_source",
        "seq_number"))


# -- DATA ADVANCED computedLocation ---------------------------------------------------------

def test_it_keeps_a_computed_location_as_the_network_s(send_callback, callback_encoding):
    response = send_callback("/data/1", advanced(), callback_encoding)
    assert response.status_code == 204, response.content
    assert located() == [("1A2B3C", at(T0), 43.6047, 1.4442, 1250, "network", "2", 42)]
    assert Message.objects.get().computed_location["radius"] == 1250


@pytest.mark.parametrize("computed", [
    {"lat": 43.6, "lng": 1.4, "radius": 1000, "source": 2, "status": 0},
    {"status": 1, "source": 2},
    {"lat": None, "lng": None, "status": 0},
    {"lat": "43.6", "lng": 1.4, "status": 1},
    {"lat": 43.6, "lng": 1.4, "status": 20},
])
def test_it_keeps_no_location_unless_computed_location_located(send_callback, computed):
    response = send_callback("/data/1", advanced(computedLocation=computed))
    assert response.status_code == 204
    assert Message.objects.count() == 1
    assert located() == []


def test_it_keeps_a_computed_location_without_status_or_with_a_bad_radius(send_callback):
    # The Sigfox API's items carry no status (sigfoxapi hands status 1, but a
    # hand-made callback may not); a radius that is no length is left out.
    send_callback("/data/1", advanced(computedLocation={"lat": 43.6, "lng": 1.4, "radius": -3}))
    assert located() == [("1A2B3C", at(T0), 43.6, 1.4, None, "network", "", 42)]


def test_a_computed_location_in_a_later_copy_places_the_stored_message(send_callback):
    send_callback("/data/1", {"device": "1A2B3C", "time": T0, "temp": 20, "seqNumber": 42})
    assert located() == []
    send_callback("/data/1", advanced())  # DATA ADVANCED, ~30 s later
    assert Message.objects.count() == 1
    assert located() == [("1A2B3C", at(T0), 43.6047, 1.4442, 1250, "network", "2", 42)]


def test_a_retry_of_data_advanced_keeps_one_location(send_callback):
    send_callback("/data/1", advanced())
    send_callback("/data/1", advanced(computedLocation={"lat": 10.0, "lng": 10.0, "status": 1}))
    assert [row[2] for row in located()] == [43.6047]


# -- GEOLOC after DATA ADVANCED, and the other way round ---------------------------------------

def test_a_geoloc_after_data_advanced_does_not_duplicate_the_location(send_callback):
    send_callback("/data/1", advanced())
    response = send_callback("/sigfox/geoloc", geoloc())
    assert response.status_code == 204
    # One row per message; between the network's two estimates the first stays.
    assert located() == [("1A2B3C", at(T0), 43.6047, 1.4442, 1250, "network", "2", 42)]


def test_data_advanced_after_a_geoloc_keeps_the_geoloc(send_callback):
    send_callback("/sigfox/geoloc", geoloc())
    send_callback("/data/1", advanced())
    assert located() == [("1A2B3C", at(T0), 43.61, 1.45, 3000, "geoloc", "2", 42)]


def test_a_geoloc_of_another_message_is_another_point(send_callback):
    send_callback("/data/1", advanced())
    send_callback("/sigfox/geoloc", geoloc(time=T0 + 600, seqNumber=43))
    assert [(row[1], row[5]) for row in located()] == [
        (at(T0), "network"), (at(T0 + 600), "geoloc")]


# -- Coordinates among the values or in the payload ---------------------------------------------

@pytest.mark.parametrize("names", [("Lat", "Lng"), ("latitude", "longitude"), ("LAT", "lon"),
                                   ("Latitude", "Lon")])
def test_values_named_like_coordinates_are_the_device_s_fix(send_callback, names):
    body = {"device": "1A2B3C", "time": T0, "seqNumber": 7, names[0]: 48.8566, names[1]: 2.3522}
    assert send_callback("/data/1", body).status_code == 204
    assert located() == [("1A2B3C", at(T0), 48.8566, 2.3522, None, "payload", "", 7)]


def test_the_callback_s_lat_and_lng_are_the_base_station_s(send_callback):
    # {lat} and {lng} are the base station's position (CALLBACKS.md section 2).
    send_callback("/data/1", {"device": "1A2B3C", "time": T0, "lat": 43, "lng": 1, "temp": 20})
    assert (Message.objects.get().lat, located()) == (43, [])


@pytest.mark.parametrize("pair", [
    {"latitude": 91, "longitude": 2},      # off the Earth
    {"latitude": 45, "longitude": -181},
    {"latitude": 0, "longitude": 0},       # a GPS without a fix
    {"latitude": 45},                      # half a pair
    {"latitude": 45, "Lat": 46, "lon": 2},  # two latitudes that disagree
    {"latitude": "north", "longitude": 2},  # text
])
def test_no_fix_from_values_that_are_no_position(send_callback, pair):
    assert send_callback("/data/1", {"device": "1A2B3C", "time": T0, **pair}).status_code == 204
    assert Message.objects.count() == 1
    assert located() == []


def test_a_decoded_payload_fix_after_its_scale(send_callback):
    device = Device.objects.create(sigfox_id="1A2B3C", payload_config="lat::int:32 lng::int:32")
    for quantity in ("lat", "lng"):
        QuantitySetting.objects.create(device=device, quantity=quantity, scale=1e-7, unit="°")
    data = struct.pack(">ii", 436_047_000, -14_442_000).hex()
    response = send_callback("/data/1", {"device": "1A2B3C", "time": T0, "data": data})
    assert response.status_code == 204
    [(_, _, lat, lng, radius, source, _, _)] = located()
    assert (round(lat, 7), round(lng, 7), radius, source) == (43.6047, -1.4442, None, "payload")


def test_a_payload_fix_wins_over_the_network_s_estimate(send_callback):
    # DATA ADVANCED carries the payload too: the device's GPS is the more precise.
    Device.objects.create(sigfox_id="1A2B3C", payload_config="lat::float:32 lng::float:32")
    data = struct.pack(">ff", 43.5, 1.25).hex()
    send_callback("/data/1", advanced(data=data))
    assert located() == [("1A2B3C", at(T0), 43.5, 1.25, None, "payload", "", 42)]


def test_a_payload_fix_arriving_after_the_estimates_replaces_them(send_callback):
    send_callback("/sigfox/geoloc", geoloc())
    send_callback("/data/1", advanced())
    send_callback("/data/1", {"device": "1A2B3C", "time": T0, "latitude": 43.5, "longitude": 1.25})
    assert located() == [("1A2B3C", at(T0), 43.5, 1.25, None, "payload", "", 42)]
    location = DeviceLocation.objects.get()
    assert (location.body_raw, location.field_errors) == ("", None)
    # And the network's later word does not take it back.
    send_callback("/sigfox/geoloc", geoloc(lat=1.0))
    assert located()[0][5] == "payload"


def test_a_status_callback_s_station_position_is_no_location(send_callback):
    body = {"device": "1A2B3C", "time": T0, "temp": 21.5, "batt": 3.3, "lat": 43, "lng": 1}
    assert send_callback("/sigfox/status", body).status_code == 204
    assert located() == []


# -- The rules, without a request -------------------------------------------------------------

def test_coordinates_in_reads_one_pair():
    assert events.coordinates_in({"Lat": 1.5, "LNG": 2.5, "temp": 3}) == (1.5, 2.5)
    assert events.coordinates_in({"lat": 1.5, "latitude": 1.5, "lon": 2.5}) == (1.5, 2.5)
    assert events.coordinates_in({"lat": float("nan"), "lon": 2.5}) is None
    assert events.coordinates_in({"long": 2.5, "lat": 1.5}) is None  # "long" is not a name we read


def test_computed_location_fix_reads_sigfox_s_object():
    fix = events.computed_location_fix(
        {"lat": 1, "lng": 2, "radius": 99.6, "source": 6, "status": "1"})
    assert fix == events.NetworkFix(lat=1.0, lng=2.0, radius_m=100, sigfox_source="6")
    assert events.computed_location_fix(None) is None
    assert events.computed_location_fix([1, 2]) is None
    assert events.computed_location_fix({"lat": True, "lng": 2}) is None


# -- The fast path leaves them to the ORM path -------------------------------------------------

@pytest.mark.skipif(
    settings.DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql",
    reason="the fast path runs on PostgreSQL only",
)
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("extra", [
    {"computedLocation": {"lat": 43.6, "lng": 1.4, "radius": 900, "source": 2, "status": 1}},
    {"Latitude": 43.6, "Longitude": 1.4},
])
def test_an_uplink_that_may_place_the_device_takes_the_orm_path(extra):
    now = datetime(2026, 11, 29, tzinfo=UTC)

    def uplink(time_s: int, **variables) -> UplinkCallback:
        body = {"device": "1A", "time": time_s, "temp": 20, **variables}
        serializer = UplinkSerializer(data=body, context={"now": now})
        serializer.is_valid(raise_exception=True)
        return UplinkCallback(**serializer.validated_data, sensor="1")

    # The first registers the series (coordinates too); the second, plain, is
    # the fast path's; the third has every series registered, and is not.
    assert message_ingest(uplink=uplink(T0, **extra), now=now).path == "orm"
    assert message_ingest(uplink=uplink(T0 + 600), now=now).path == "fast"
    assert message_ingest(uplink=uplink(T0 + 1800, **extra), now=now).path == "orm"
    assert DeviceLocation.objects.filter(time=at(T0 + 1800)).count() == 1
