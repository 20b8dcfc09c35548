"""GET /api/devices/<id>/locations/: a device's track, newest first, a page at a time."""

from datetime import UTC, datetime, timedelta

import pytest
from django.core.management import call_command
from rest_framework.authtoken.models import Token

from readings.models import Device, DeviceLocation

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 1, 31, 12, 0, tzinfo=UTC)
URL = "/api/devices/1A2B3C/locations/"


@pytest.fixture
def track():
    """1A2B3C placed at T0, T0 + 10 min, T0 + 20 min; BF1327 once."""
    device = Device.objects.create(sigfox_id="1A2B3C")
    points = [("network", 1250, 43.6), ("payload", None, 43.61), ("geoloc", 3000, 43.62)]
    for i, (source, radius_m, lat) in enumerate(points):
        DeviceLocation.objects.create(
            device=device, time=T0 + timedelta(minutes=10 * i), lat=lat, lng=1.44,
            radius_m=radius_m, source=source, sigfox_source="" if source == "payload" else "2",
            seq_number=40 + i, received_at=T0,
        )
    other = Device.objects.create(sigfox_id="BF1327")
    DeviceLocation.objects.create(device=other, time=T0, lat=1, lng=2, source="network",
                                  received_at=T0)


def test_it_answers_the_track_newest_first(admin_client, track):
    response = admin_client.get(URL)
    assert response.status_code == 200
    body = response.json()
    assert body["next"] is None and body["previous"] is None
    assert body["results"] == [
        {"time": "2026-01-31T12:20:00Z", "lat": 43.62, "lng": 1.44, "radius_m": 3000,
         "source": "geoloc", "sigfox_source": "2", "seq_number": 42},
        {"time": "2026-01-31T12:10:00Z", "lat": 43.61, "lng": 1.44, "radius_m": None,
         "source": "payload", "sigfox_source": "", "seq_number": 41},
        {"time": "2026-01-31T12:00:00Z", "lat": 43.6, "lng": 1.44, "radius_m": 1250,
         "source": "network", "sigfox_source": "2", "seq_number": 40},
    ]


def test_it_takes_a_range_since_included_until_excluded(admin_client, track):
    response = admin_client.get(URL, {"since": "2026-01-31T12:10:00Z",
                                      "until": "2026-01-31T12:20:00Z"})
    assert [r["time"] for r in response.json()["results"]] == ["2026-01-31T12:10:00Z"]
    epoch = int((T0 + timedelta(minutes=10)).timestamp())
    response = admin_client.get(URL, {"since": str(epoch)})
    assert [r["seq_number"] for r in response.json()["results"]] == [42, 41]


def test_it_pages_with_cursors(admin_client, track):
    first = admin_client.get(URL, {"page_size": "2"}).json()
    assert [r["seq_number"] for r in first["results"]] == [42, 41]
    second = admin_client.get(first["next"]).json()
    assert [r["seq_number"] for r in second["results"]] == [40]


def test_it_finds_the_device_in_any_case(admin_client, track):
    assert len(admin_client.get("/api/devices/1a2b3c/locations/").json()["results"]) == 3


@pytest.mark.parametrize("params, errors", [
    ({"since": "yesterday"}, {"since": [
        "Must be ISO 8601 (2026-01-31, 2026-01-31T12:00:00Z) or Unix epoch seconds."]}),
    ({"since": "2026-02-01", "until": "2026-01-01"}, {"until": ["Must be later than since."]}),
    ({"page_size": "0"}, {"page_size": [
        "Must be a whole number from 1 (more than 1000 gives 1000)."]}),
])
def test_it_refuses_bad_parameters(admin_client, track, params, errors):
    response = admin_client.get(URL, params)
    assert response.status_code == 400
    assert response.json() == errors


def test_it_answers_404_for_an_unknown_device_or_cursor(admin_client, track):
    response = admin_client.get("/api/devices/ABCDEF/locations/")
    assert (response.status_code, response.json()) == (404, {"detail": "No such device."})
    # Forged positions: "p=not-a-time", "p=%00".
    assert admin_client.get(URL, {"cursor": "cD1ub3QtYS10aW1l"}).status_code == 404
    assert admin_client.get(URL, {"cursor": "cD0lMDA="}).status_code == 404


def test_it_answers_an_empty_track(admin_client):
    Device.objects.create(sigfox_id="1A2B3C")
    assert admin_client.get(URL).json()["results"] == []


def test_it_turns_anonymous_users_away(client, track):
    response = client.get(URL)
    assert response.status_code == 401
    assert response.json() == {"detail": "Authentication credentials were not provided."}


def test_it_answers_a_token(client, track, django_user_model):
    user = django_user_model.objects.create_user("script", password="not-used-here")
    token = Token.objects.create(user=user)
    response = client.get(URL, HTTP_AUTHORIZATION=f"Token {token.key}")
    assert response.status_code == 200


def test_it_is_public_with_public_dashboard(client, settings, track):
    settings.PUBLIC_DASHBOARD = True
    assert client.get(URL).status_code == 200


def test_it_is_read_only(admin_client, track):
    assert admin_client.post(URL).status_code == 405
    assert admin_client.delete(URL).status_code == 405


def test_it_is_in_the_schema(admin_client, tmp_path):
    schema = admin_client.get("/api/schema/?format=json").json()
    operation = schema["paths"]["/api/devices/{sigfox_id}/locations/"]["get"]
    assert {p["name"] for p in operation["parameters"]} == {
        "sigfox_id", "since", "until", "cursor", "page_size"}
    assert set(operation["responses"]) == {"200", "400", "401", "404"}
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(tmp_path / "s.yaml"))
