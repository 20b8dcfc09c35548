"""GET /graph and /devices/<id>: the chart pages (drawn by dashboard/static/dashboard/js/ from the read API)."""

import json
import re
import time

import pytest

from readings.models import Reading
from tests.helpers import chart_data

pytestmark = pytest.mark.django_db


def series_keys(data: dict) -> list[tuple[str, str, str]]:
    return [(s["device"], s["sensor"], s["quantity"]) for s in data["series"]]


@pytest.fixture
def some_readings(post_json):
    for minute in range(5):
        post_json(json.dumps({"device": "1A2B3C", "time": 1700000000 + 600 * minute, "temp": 20 + minute}))
    post_json(json.dumps({"device": "BF1327", "time": 1700000000, "temp": -4, "hum": 55}), sensor="2")


def test_it_redirects_anonymous_users_to_log_in(client):
    response = client.get("/graph")
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/?next=/graph")


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
    assert series_keys(data) == [("1A2B3C", "1", "temp"), ("BF1327", "2", "hum"), ("BF1327", "2", "temp")]
    assert [s["label"] for s in data["series"]] == [
        "1A2B3C · sensor 1 · temp (°C)", "BF1327 · sensor 2 · hum (%)", "BF1327 · sensor 2 · temp (°C)"]
    assert [s["unit"] for s in data["series"]] == ["°C", "%", "°C"]


def test_it_points_the_chart_at_the_api_not_at_embedded_readings(admin_client, some_readings):
    data = chart_data(admin_client.get("/graph"))
    assert data["urls"] == {"series": "/api/series/", "readings": "/api/readings/",
                            "csv": "/api/readings.csv", "link": None}
    assert "points" not in data["series"][0]


def test_it_passes_the_site_time_zone_to_the_chart(admin_client, settings, some_readings):
    settings.TIME_ZONE = "Europe/Paris"
    assert chart_data(admin_client.get("/graph"))["timeZone"] == "Europe/Paris"


def test_it_offers_device_checkboxes_with_several_devices(admin_client, some_readings):
    content = admin_client.get("/graph").content.decode()
    assert '<input type="checkbox" id="device-BF1327" name="device" value="BF1327" checked>' in content
    assert '<label for="device-BF1327">BF1327</label>' in content
    assert 'href="/devices/BF1327"' in content


def test_it_offers_quantity_checkboxes(admin_client, some_readings):
    content = admin_client.get("/graph?quantity=hum").content.decode()
    assert 'name="quantity" value="hum" checked>' in content
    assert 'name="quantity" value="temp">' in content


def test_it_has_no_device_picker_with_one_device(admin_client, post_json):
    post_json('{"device":"1A2B3C","time":"1700000000","temp":21}')
    content = admin_client.get("/graph").content.decode()
    assert 'name="device"' not in content
    assert '<select id="range" name="range">' in content


def test_it_filters_by_the_picked_device(admin_client, some_readings):
    data = chart_data(admin_client.get("/graph?device=bf1327"))
    assert {s["device"] for s in data["series"]} == {"BF1327"}


def test_it_draws_the_picked_devices_and_quantities(admin_client, some_readings):
    data = chart_data(admin_client.get("/graph?device=1A2B3C&device=BF1327&quantity=temp"))
    assert series_keys(data) == [("1A2B3C", "1", "temp"), ("BF1327", "2", "temp")]
    # Every series stays available, for the pickers to change without a reload.
    assert len(data["keys"]) == 3


def test_it_ignores_an_unknown_device(admin_client, some_readings):
    data = chart_data(admin_client.get("/graph?device=<script>"))
    assert len(data["series"]) == 3


def test_it_limits_the_number_of_lines(admin_client, post_json):
    values = {f"q{i:02}": i for i in range(30)}
    post_json(json.dumps({"device": "1A2B3C", "time": "1700000000", **values}))
    response = admin_client.get("/graph")
    assert len(chart_data(response)["series"]) == 24
    assert "6 more match" in response.content.decode()


def test_it_shows_the_last_day_when_devices_sent_lately(admin_client, post_json):
    post_json(json.dumps({"device": "1A2B3C", "time": str(int(time.time()) - 600), "temp": 21}))
    data = chart_data(admin_client.get("/graph"))
    assert data["range"] == "day"


def test_it_shows_everything_when_devices_are_silent(admin_client, some_readings):
    content = admin_client.get("/graph").content.decode()
    assert chart_data_from(content)["range"] == "all"
    assert '<option value="all" selected>' in content


def chart_data_from(content: str) -> dict:
    return json.loads(re.search(r'id="chart-data" type="application/json">(.*?)</script>', content, re.S)[1])


def test_it_keeps_a_range_from_the_address(admin_client, some_readings):
    data = chart_data(admin_client.get("/graph?range=custom&from=2023-11-14&to=2023-11-15"))
    assert (data["range"], data["from"], data["to"]) == ("custom", "2023-11-14", "2023-11-15")
    data = chart_data(admin_client.get("/graph?range=week"))
    assert data["range"] == "week"


def test_it_ignores_a_malformed_date(admin_client, some_readings):
    data = chart_data(admin_client.get("/graph?range=custom&from=<b>&to=2023-11-15"))
    assert (data["from"], data["to"]) == ("", "2023-11-15")


def test_it_escapes_data_in_the_page(admin_client, post_json):
    post_json('{"device":"1A2B3C","time":"1700000000","</script><b>x":1}')
    content = admin_client.get("/graph").content.decode()
    assert "</script><b>x" not in content
    assert Reading.objects.get().quantity == "</script><b>x"
    assert chart_data_from(content)["series"][0]["quantity"] == "</script><b>x"


def test_it_loads_scripts_only_from_this_site(admin_client, some_readings):
    content = admin_client.get("/graph").content.decode()
    sources = re.findall(r'<(?:script|link)[^>]+(?:src|href)="([^"]+)"', content)
    assert sources and all(src.startswith("/static/") for src in sources)
    names = " ".join(sources)
    for library in ("chart.umd", "luxon", "chartjs-adapter-luxon", "hammer", "chartjs-plugin-zoom"):
        assert library in names


def test_it_polls_every_five_seconds_unless_told(admin_client, some_readings):
    assert chart_data(admin_client.get("/graph"))["pollMs"] == 5000
    assert chart_data(admin_client.get("/graph?poll_ms=1"))["pollMs"] == 500


def test_it_gives_the_chart_the_servers_bounds_and_presets(admin_client, some_readings):
    data = chart_data(admin_client.get("/graph?points=5"))
    assert data["ranges"]["day"] == 86_400_000 and data["ranges"]["all"] is None
    assert data["points"] == {"min": 10, "max": 2000, "default": 1000, "fixed": 10}
    assert data["pollPageSize"] == 1000 and data["maxSeries"] == 24


def test_it_links_the_csv_of_what_is_shown(admin_client, some_readings):
    content = admin_client.get("/graph").content.decode()
    assert 'id="csv-link"' in content and 'href="/api/readings.csv"' in content


def test_it_has_labelled_controls(admin_client, some_readings):
    content = admin_client.get("/graph").content.decode()
    for control in ("range", "from", "to"):
        assert f'<label for="{control}">' in content
    assert 'role="status"' in content


# -- the device page ------------------------------------------------------------------------


def test_it_shows_a_device_page(admin_client, post_json):
    post_json(json.dumps({"device": "1A2B3C", "time": "1700000000", "seqNumber": 1, "rssi": -120,
                          "snr": 9.5, "temp": 21, "vbat_mv": 3300}))
    response = admin_client.get("/devices/1a2b3c")
    content = response.content.decode()
    assert response.status_code == 200
    assert "<h1>Device 1A2B3C" in content
    data = chart_data(response)
    assert series_keys(data) == [("1A2B3C", "1", "temp"), ("1A2B3C", "1", "vbat_mv")]
    assert data["urls"]["link"] == "/api/devices/1A2B3C/link/"
    assert 'id="link-chart"' in content
    assert 'name="device"' not in content
    assert "3300" in content  # the latest value of vbat_mv


def test_it_shows_a_device_page_in_the_site_time_zone(admin_client, settings, post_json):
    settings.TIME_ZONE = "Europe/Paris"
    post_json('{"device":"1A2B3C","time":"1700000000","temp":21}')
    assert "2023-11-14 23:13:20" in admin_client.get("/devices/1A2B3C").content.decode()


def test_it_answers_404_for_an_unknown_device_page(admin_client):
    assert admin_client.get("/devices/ABCDEF").status_code == 404


def test_it_asks_to_log_in_for_a_device_page(client, post_json):
    post_json('{"device":"1A2B3C","time":"1700000000","temp":21}')
    response = client.get("/devices/1A2B3C")
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/?next=/devices/1A2B3C")


def test_it_lists_a_page_of_devices_and_finds_the_others(admin_client, post_json, settings):
    from dashboard import selectors

    for n in range(selectors.PICKER_DEVICES + 5):
        post_json(json.dumps({"device": f"{0x100 + n:X}", "time": "1700000000", "temp": n}))
    content = admin_client.get("/graph").content.decode()
    assert content.count('name="device"') == selectors.PICKER_DEVICES
    assert 'id="more-devices"' in content
    # The last devices are not listed, but a search finds them, padded or not.
    found = admin_client.get("/graph?q=0000133").content.decode()
    assert 'value="133"' in found and content.count('value="133"') == 0
    assert 'id="more-devices"' not in found


def test_it_builds_the_page_from_the_chosen_devices_only(admin_client, post_json,
                                                         django_assert_max_num_queries):
    for n in range(30):
        post_json(json.dumps({"device": f"{0x200 + n:X}", "time": "1700000000",
                              **{f"q{i}": i for i in range(20)}}))
    with django_assert_max_num_queries(12):
        response = admin_client.get("/graph?device=200")
    data = chart_data(response)
    assert {key["device"] for key in data["keys"]} == {"200"}
