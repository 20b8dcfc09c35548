"""/devices/<id>: the last known location, and what every callback kind of
CALLBACKS.md section 7 said (STATUS readings, ERROR and EVENT callbacks,
GEOLOC locations, downlinks and their ACKNOWLEDGE)."""

import re
from datetime import UTC, datetime

import pytest

from readings.models import Device, DeviceLocation

pytestmark = pytest.mark.django_db

T0 = 1700000000
URL = "/devices/1A2B3C"


def page(client) -> str:
    response = client.get(URL)
    assert response.status_code == 200
    return response.content.decode()


def section(html: str, element_id: str) -> str:
    """The text of the element with this id, tags removed, spaces squeezed."""
    match = re.search(rf'<(\w+)[^>]* id="{element_id}"[^>]*>(.*?)</\1>', html, re.DOTALL)
    assert match, f"no #{element_id}"
    return " ".join(re.sub(r"<[^>]+>", " ", match.group(2)).split())


def advanced(**variables) -> dict:
    return {"device": "1A2B3C", "time": T0, "seqNumber": 42, "temp": 20,
            "computedLocation": {"lat": 43.6047, "lng": 1.4442, "radius": 1250, "source": 2,
                                 "status": 1}, **variables}


def test_it_shows_the_last_location_and_its_radius(admin_client, send_callback):
    send_callback("/data/1", advanced(time=T0 - 600, computedLocation={
        "lat": 10.0, "lng": 10.0, "radius": 5, "status": 1}))
    send_callback("/data/1", advanced())
    html = page(admin_client)
    assert section(html, "location-coordinates") == "43.6047, 1.4442"
    assert section(html, "location-radius") == "1250 m"
    assert section(html, "location-source") == "network (Sigfox source 2)"
    assert "seqNumber 42" in section(html, "location-time")
    assert ('href="https://www.openstreetmap.org/?mlat=43.604700&amp;mlon=1.444200'
            '#map=14/43.604700/1.444200"') in html


def test_it_shows_a_payload_fix_without_a_radius(admin_client, send_callback):
    send_callback("/data/1", {"device": "1A2B3C", "time": T0, "latitude": -33.8688,
                              "longitude": 151.2093})
    html = page(admin_client)
    assert section(html, "location-coordinates") == "-33.8688, 151.2093"
    assert section(html, "location-radius") == "– (the device's own fix)"
    assert section(html, "location-source") == "payload"


def test_it_shows_a_geoloc_location(admin_client, send_callback):
    send_callback("/sigfox/geoloc", {"device": "1A2B3C", "time": T0, "lat": 48.85, "lng": 2.35,
                                     "radius": 30000, "geolocSource": "1"})
    html = page(admin_client)
    assert section(html, "location-radius") == "30000 m"
    assert section(html, "location-source") == "geoloc (Sigfox source 1)"
    assert "#map=8/48.850000/2.350000" in html


def test_it_shows_no_location_section_without_one(admin_client, send_callback):
    send_callback("/data/1", {"device": "1A2B3C", "time": T0, "temp": 20})
    assert 'id="location"' not in page(admin_client)


def test_it_loads_no_script_or_style_from_another_host(admin_client, send_callback):
    send_callback("/data/1", advanced())
    html = page(admin_client)
    assert not re.search(r'<script[^>]+src="(https?:)?//', html)
    assert not re.search(r'<link[^>]+href="(https?:)?//', html)
    assert not re.search(r'<img[^>]+src="(https?:)?//', html)


def test_it_links_the_track(admin_client, send_callback):
    send_callback("/data/1", advanced())
    html = page(admin_client)
    assert section(html, "location-track") == "Track (JSON)"
    assert 'href="/api/devices/1A2B3C/locations/"' in html
    assert html.count("location-osm") == 1


# -- Every callback kind shown ---------------------------------------------------------------

def test_it_shows_status_readings_of_the_module(admin_client, send_callback):
    send_callback("/sigfox/status", {"device": "1A2B3C", "time": T0, "temp": 21.5, "batt": 3.3})
    text = " ".join(re.sub(r"<[^>]+>", " ", page(admin_client)).split())
    assert "battery_v sensor status 3.300 V" in text
    assert "module_temp_c sensor status 21.500 °C" in text


def test_it_shows_error_and_event_callbacks(admin_client, send_callback):
    send_callback("/sigfox/error", {"device": "1A2B3C", "time": T0, "severity": "ERROR",
                                    "info": "No message received since 2023-11-13 22:13:20"})
    send_callback("/sigfox/event", {
        "time": T0 + 60, "severity": "WARN", "eventType": "OFF_CONTRACT", "sourceType": "DEVICE",
        "sourceId": "1A2B3C", "deviceShortCause": "Token expired"})
    text = section(page(admin_client), "events")
    assert "EVENT OFF_CONTRACT WARN Token expired" in text
    assert "ERROR ERROR No message received since 2023-11-13 22:13:20" in text
    assert text.index("OFF_CONTRACT") < text.index("No message")  # newest first


def test_it_says_when_no_event_came(admin_client, send_callback):
    send_callback("/data/1", {"device": "1A2B3C", "time": T0, "temp": 20})
    html = page(admin_client)
    assert section(html, "events") == "No ERROR or EVENT callback about it."
    assert section(html, "downlinks") == "No downlink answered to it."


def test_it_shows_downlinks_and_their_acknowledge(admin_client, send_callback):
    Device.objects.create(sigfox_id="1A2B3C", downlink_data="cafe000000000001")
    send_callback("/data/1", {"device": "1A2B3C", "time": T0, "ack": True, "temp": 20})
    assert "no ACKNOWLEDGE yet" in section(page(admin_client), "downlinks")
    send_callback("/sigfox/acknowledge", {"device": "1A2B3C", "time": T0 + 30, "infoCode": 0,
                                          "infoMessage": "Acked", "downlinkAck": True})
    html = page(admin_client)
    assert section(html, "downlinks").startswith("Answered Data Outcome")
    assert "cafe000000000001 ACKED" in section(html, "downlinks")
    assert "ACKED (0) Acked cafe000000000001" in section(html, "acknowledges")
    assert "cafe" in section(html, "downlink-pending")


def test_the_location_is_the_latest_message_s(admin_client):
    device = Device.objects.create(sigfox_id="1A2B3C")
    for minutes, lat in ((0, 1.0), (20, 3.0), (10, 2.0)):
        DeviceLocation.objects.create(
            device=device, time=datetime.fromtimestamp(T0 + 60 * minutes, tz=UTC), lat=lat,
            lng=1.0, source="network", received_at=datetime.fromtimestamp(T0, tz=UTC))
    assert section(page(admin_client), "location-coordinates") == "3, 1"
