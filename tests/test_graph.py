"""GET /graph: the chart page."""

import json
import re

import pytest

from readings.models import Reading

pytestmark = pytest.mark.django_db


def chart_data(response) -> dict:
    match = re.search(
        r'<script id="chart-data" type="application/json">(.*?)</script>', response.content.decode(), re.S
    )
    assert match, "the page embeds no chart data"
    return json.loads(match.group(1))


@pytest.fixture
def some_readings(post_json):
    for minute in range(5):
        post_json(json.dumps({"device": "1A2B3C", "time": 1700000000 + 600 * minute, "temp": 20 + minute}))
    post_json(json.dumps({"device": "BF1327", "time": 1700000000, "temp": -4, "hum": 55}), sensor="2")


def test_it_redirects_anonymous_users_to_log_in(client):
    response = client.get("/graph")
    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/?next=/graph")


def test_it_is_public_with_public_dashboard(client, settings):
    settings.PUBLIC_DASHBOARD = True
    assert client.get("/graph").status_code == 200


def test_it_shows_the_empty_state_with_a_curl_example(admin_client):
    response = admin_client.get("/graph")
    content = response.content.decode()
    assert response.status_code == 200
    assert "No readings yet" in content
    assert "curl -H 'Content-Type: application/json'" in content
    assert "http://testserver/data/1" in content
    assert 'id="chart-data"' not in content


def test_it_embeds_one_series_per_device_sensor_quantity(admin_client, some_readings):
    data = chart_data(admin_client.get("/graph"))
    keys = [(s["device"], s["sensor"], s["quantity"]) for s in data["series"]]
    assert keys == [("1A2B3C", "1", "temp"), ("BF1327", "2", "hum"), ("BF1327", "2", "temp")]
    first = data["series"][0]
    assert first["points"] == [[(1700000000 + 600 * m) * 1000, 20.0 + m] for m in range(5)]


def test_it_passes_the_site_time_zone_to_the_chart(admin_client, settings, some_readings):
    settings.TIME_ZONE = "Europe/Paris"
    assert chart_data(admin_client.get("/graph"))["timeZone"] == "Europe/Paris"


def test_it_shows_the_latest_points_by_default(admin_client, post_json):
    rows = [{"device": "1A2B3C", "time": 1700000000 + 600 * i, "temp": i} for i in range(250)]
    for row in rows:
        post_json(json.dumps(row))
    points = chart_data(admin_client.get("/graph"))["series"][0]["points"]
    assert len(points) >= 100
    assert points[-1] == [(1700000000 + 600 * 249) * 1000, 249.0]
    assert points == sorted(points)


def test_it_offers_a_device_picker_with_several_devices(admin_client, some_readings):
    content = admin_client.get("/graph").content.decode()
    assert '<select id="device" name="device">' in content
    assert '<option value="BF1327">' in content


def test_it_has_no_picker_with_one_device(admin_client, post_json):
    post_json('{"device":"1A2B3C","time":"1700000000","temp":21}')
    assert '<select id="device"' not in admin_client.get("/graph").content.decode()


def test_it_filters_by_the_picked_device(admin_client, some_readings):
    data = chart_data(admin_client.get("/graph?device=bf1327"))
    assert {s["device"] for s in data["series"]} == {"BF1327"}


def test_it_ignores_an_unknown_device(admin_client, some_readings):
    data = chart_data(admin_client.get("/graph?device=<script>"))
    assert len(data["series"]) == 3


def test_it_escapes_data_in_the_page(admin_client, post_json):
    post_json('{"device":"1A2B3C","time":"1700000000","</script><b>x":1}')
    content = admin_client.get("/graph").content.decode()
    assert "</script><b>x" not in content
    assert Reading.objects.get().quantity == "</script><b>x"


def test_it_loads_scripts_only_from_this_site(admin_client, some_readings):
    content = admin_client.get("/graph").content.decode()
    sources = re.findall(r'<(?:script|link)[^>]+(?:src|href)="([^"]+)"', content)
    assert sources and all(src.startswith("/static/") for src in sources)
    assert any("chart.umd" in src for src in sources)
