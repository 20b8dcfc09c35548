"""The read API: /api/devices/, /api/messages/, /api/readings/, permissions, schema."""

import json
from datetime import UTC, datetime, timedelta

import pytest
from django.core.management import call_command
from rest_framework.authtoken.models import Token

from readings.models import Device, Message, Reading, SequenceGap
from tests.helpers import T0, minutes, store

pytestmark = pytest.mark.django_db

@pytest.fixture
def token_client(client, django_user_model):
    user = django_user_model.objects.create_user("script", password="not-used-here")
    token = Token.objects.create(user=user)

    class TokenClient:
        key = token.key

        def __getattr__(self, name):
            method = getattr(client, name)
            return lambda *a, **kw: method(*a, HTTP_AUTHORIZATION=f"Token {token.key}", **kw)

    return TokenClient()


@pytest.fixture
def fleet():
    store("1A2B3C", minutes(5, values=lambda i: 20.0 + i))
    store("1A2B3C", minutes(5, values=lambda i: 3300.0 - i), quantity="vbat_mv")
    store("BF1327", minutes(3, values=lambda i: 50.0 + i), sensor="2", quantity="hum")


# -- permissions ---------------------------------------------------------------------

ENDPOINTS = [
    "/api/devices/",
    "/api/devices/1A2B3C/",
    "/api/devices/1A2B3C/link/",
    "/api/messages/",
    "/api/readings/",
    "/api/readings.csv",
    "/api/series/?device=1A2B3C&quantity=temp",
]


@pytest.mark.parametrize("url", ENDPOINTS)
def test_it_turns_anonymous_users_away(client, fleet, url):
    response = client.get(url)
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Token"
    assert response.json() == {"detail": "Authentication credentials were not provided."}


@pytest.mark.parametrize("url", ENDPOINTS)
def test_it_is_public_with_public_dashboard(client, settings, fleet, url):
    settings.PUBLIC_DASHBOARD = True
    assert client.get(url).status_code == 200


@pytest.mark.parametrize("url", ENDPOINTS)
def test_it_accepts_a_token(token_client, fleet, url):
    assert token_client.get(url).status_code == 200


@pytest.mark.parametrize("url", ENDPOINTS)
def test_it_accepts_a_session(admin_client, fleet, url):
    assert admin_client.get(url).status_code == 200


def test_it_refuses_a_wrong_token(client, fleet):
    response = client.get("/api/devices/", HTTP_AUTHORIZATION="Token " + "0" * 40)
    assert response.status_code == 401
    assert response.json() == {"detail": "Invalid token."}


@pytest.mark.parametrize("method", ["post", "put", "patch", "delete"])
@pytest.mark.parametrize("url", ENDPOINTS)
def test_it_is_read_only(token_client, fleet, stored, method, url):
    before = stored()
    response = getattr(token_client, method)(url, "{}", content_type="application/json")
    assert response.status_code == 405
    assert stored() == before


def test_it_does_not_let_public_dashboard_write(client, settings, fleet):
    settings.PUBLIC_DASHBOARD = True
    assert client.delete("/api/devices/1A2B3C/").status_code == 401
    assert Device.objects.filter(sigfox_id="1A2B3C").exists()


# -- devices ---------------------------------------------------------------------------


def test_it_lists_devices_with_last_seen(admin_client, fleet):
    body = admin_client.get("/api/devices/").json()
    assert [d["id"] for d in body["results"]] == ["1A2B3C", "BF1327"]
    first = body["results"][0]
    assert first["last_seen"] == "2026-01-01T00:04:00Z"
    assert first["first_seen"] == "2026-01-01T00:00:00Z"
    assert first["url"] == "http://testserver/api/devices/1A2B3C/"
    assert body["next"] is None


def test_it_shows_a_device_with_its_last_readings(admin_client, fleet):
    body = admin_client.get("/api/devices/1a2b3c/").json()
    assert body["id"] == "1A2B3C"
    assert body["last_seen"] == "2026-01-01T00:04:00Z"
    assert body["last_readings"] == [
        {"time": "2026-01-01T00:04:00Z", "sensor": "1", "quantity": "temp", "value": 24.0,
         "unit": "°C"},
        {"time": "2026-01-01T00:04:00Z", "sensor": "1", "quantity": "vbat_mv", "value": 3296.0,
         "unit": "mV"},
    ]


def test_it_answers_404_for_an_unknown_device(admin_client, fleet):
    response = admin_client.get("/api/devices/ABCDEF/")
    assert response.status_code == 404
    assert response.json() == {"detail": "No such device."}


def test_it_pages_devices_with_a_cursor(admin_client):
    for i in range(5):
        store(f"A{i}", minutes(1))
    page = admin_client.get("/api/devices/?page_size=2").json()
    ids = [d["id"] for d in page["results"]]
    while page["next"]:
        page = admin_client.get(page["next"]).json()
        ids += [d["id"] for d in page["results"]]
    assert ids == ["A0", "A1", "A2", "A3", "A4"]


# -- readings ------------------------------------------------------------------------


def readings(client, query=""):
    response = client.get("/api/readings/" + query)
    assert response.status_code == 200, response.content
    return response.json()


def test_it_lists_readings_newest_first(admin_client, fleet):
    body = readings(admin_client, "?device=1A2B3C&quantity=temp")
    assert [r["value"] for r in body["results"]] == [24.0, 23.0, 22.0, 21.0, 20.0]
    first = body["results"][0]
    assert first["time"] == "2026-01-01T00:04:00Z"
    assert (first["device"], first["sensor"], first["quantity"]) == ("1A2B3C", "1", "temp")


def test_it_filters_readings_by_device(admin_client, fleet):
    body = readings(admin_client, "?device=bf1327")
    assert {r["device"] for r in body["results"]} == {"BF1327"}
    assert len(body["results"]) == 3


def test_it_filters_readings_by_several_devices(admin_client, fleet):
    body = readings(admin_client, "?device=1A2B3C,BF1327&quantity=temp,hum")
    assert {(r["device"], r["quantity"]) for r in body["results"]} == {
        ("1A2B3C", "temp"), ("BF1327", "hum")}


def test_it_filters_readings_by_sensor(admin_client, fleet):
    body = readings(admin_client, "?sensor=2")
    assert {r["sensor"] for r in body["results"]} == {"2"}


def test_it_filters_readings_by_quantity(admin_client, fleet):
    body = readings(admin_client, "?quantity=vbat_mv")
    assert {r["quantity"] for r in body["results"]} == {"vbat_mv"}
    assert len(body["results"]) == 5


def test_it_filters_readings_by_iso_range(admin_client, fleet):
    body = readings(admin_client, "?quantity=temp&since=2026-01-01T00:01:00Z&until=2026-01-01T00:03:00Z")
    assert [r["value"] for r in body["results"]] == [22.0, 21.0]


def test_it_filters_readings_by_epoch_range(admin_client, fleet):
    since = int((T0 + timedelta(minutes=3)).timestamp())
    body = readings(admin_client, f"?quantity=temp&since={since}")
    assert [r["value"] for r in body["results"]] == [24.0, 23.0]


def test_it_reads_an_offset_whose_plus_became_a_space(admin_client, fleet):
    # "+01:00" typed into a URL without encoding arrives as " 01:00".
    body = readings(admin_client, "?quantity=temp&since=2026-01-01T01:03:00+01:00")
    assert [r["value"] for r in body["results"]] == [24.0, 23.0]


def test_it_reads_a_date_in_the_site_time_zone(admin_client, settings):
    settings.TIME_ZONE = "Europe/Paris"
    store("1A2B3C", [(datetime(2025, 12, 31, 22, 59, tzinfo=UTC), 1.0),
                     (datetime(2025, 12, 31, 23, 0, tzinfo=UTC), 2.0)])
    body = readings(admin_client, "?since=2026-01-01")
    assert [r["value"] for r in body["results"]] == [2.0]


def test_it_rejects_a_bad_time(admin_client, fleet):
    response = admin_client.get("/api/readings/?since=yesterday")
    assert response.status_code == 400
    assert response.json() == {
        "since": ["Must be ISO 8601 (2026-01-31, 2026-01-31T12:00:00Z) or Unix epoch seconds."]}


def test_it_rejects_a_range_that_ends_before_it_starts(admin_client, fleet):
    response = admin_client.get("/api/readings/?since=2026-01-02&until=2026-01-01")
    assert response.status_code == 400
    assert response.json() == {"until": ["Must be later than since."]}


def test_it_rejects_a_bad_device_filter(admin_client, fleet):
    response = admin_client.get("/api/readings/?device=not-hex")
    assert response.status_code == 400
    assert response.json() == {
        "device": ["Must be one name or several separated by commas (no spaces)."]}


def test_it_answers_an_unknown_device_with_no_readings(admin_client, fleet):
    assert readings(admin_client, "?device=ABCDEF")["results"] == []


def test_it_pages_readings_with_a_cursor_without_losing_any(admin_client):
    # Two readings per message share a time: the cursor must not skip or repeat them.
    store("1A2B3C", minutes(25, values=lambda i: float(i)))
    store("1A2B3C", minutes(25, values=lambda i: 100.0 + i), quantity="hum")
    page = readings(admin_client, "?page_size=7")
    seen = [r["id"] for r in page["results"]]
    pages = 1
    while page["next"]:
        assert page["next"].startswith("http://testserver/api/readings/?cursor=")
        page = admin_client.get(page["next"]).json()
        seen += [r["id"] for r in page["results"]]
        pages += 1
    assert pages == 8
    assert sorted(seen) == sorted(Reading.objects.values_list("id", flat=True))
    assert len(set(seen)) == 50


def test_it_keeps_filters_across_pages(admin_client, fleet):
    page = readings(admin_client, "?quantity=temp&page_size=2")
    values = [r["value"] for r in page["results"]]
    while page["next"]:
        page = admin_client.get(page["next"]).json()
        values += [r["value"] for r in page["results"]]
    assert values == [24.0, 23.0, 22.0, 21.0, 20.0]


def test_it_caps_the_page_size(admin_client):
    store("1A2B3C", minutes(1005))
    assert len(readings(admin_client, "?page_size=5000")["results"]) == 1000


# -- messages --------------------------------------------------------------------------


def test_it_lists_messages_with_link_quality(admin_client):
    store("1A2B3C", minutes(3), rssi=-120.5, snr=12.25, first_seq=7)
    body = admin_client.get("/api/messages/?device=1A2B3C").json()
    assert [m["seq_number"] for m in body["results"]] == [9, 8, 7]
    first = body["results"][0]
    assert (first["rssi"], first["snr"], first["time"]) == (-120.5, 12.25, "2026-01-01T00:02:00Z")
    assert "body_raw" not in first


def test_it_filters_messages_by_range_and_sensor(admin_client, fleet):
    body = admin_client.get("/api/messages/?sensor=2&until=2026-01-01T00:01:00Z").json()
    assert [(m["device"], m["sensor"], m["time"]) for m in body["results"]] == [
        ("BF1327", "2", "2026-01-01T00:00:00Z")]


def test_it_lists_the_messages_of_the_tutorial_callback(admin_client, post_json):
    post_json('{"device":"1A2B3C","time":"1700000000","temp":21}')
    body = admin_client.get("/api/messages/").json()
    assert [(m["device"], m["time"]) for m in body["results"]] == [("1A2B3C", "2023-11-14T22:13:20Z")]


# -- link quality --------------------------------------------------------------------------


def test_it_aggregates_link_quality_per_bucket(admin_client):
    device = store("1A2B3C", minutes(100), rssi=lambda i: -100.0 - i, snr=lambda i: float(i % 10))
    message = Message.objects.get(device=device, time=T0 + timedelta(minutes=55))
    SequenceGap.objects.create(device=device, message=message, previous_seq_number=1,
                               seq_number=5, missing=3, time=message.time)
    body = admin_client.get(
        "/api/devices/1A2B3C/link/?since=2026-01-01T00:00:00Z&until=2026-01-01T01:40:00Z&points=10"
    ).json()
    buckets = body["buckets"]
    assert len(buckets) == 10
    assert [b["messages"] for b in buckets] == [10] * 10
    assert buckets[0]["start"] == int(T0.timestamp() * 1000)
    assert (buckets[0]["rssi_max"], buckets[0]["rssi_avg"], buckets[0]["rssi_min"]) == (-100.0, -104.5, -109.0)
    assert (buckets[9]["snr_min"], buckets[9]["snr_max"]) == (0.0, 9.0)
    assert [b["lost"] for b in buckets] == [0, 0, 0, 0, 0, 3, 0, 0, 0, 0]


def test_it_gives_link_quality_over_the_whole_history_by_default(admin_client):
    store("1A2B3C", minutes(30), rssi=-110.0, snr=8.0)
    body = admin_client.get("/api/devices/1A2B3C/link/").json()
    assert body["since"] == "2026-01-01T00:00:00Z"
    assert sum(b["messages"] for b in body["buckets"]) == 30


def test_it_bounds_the_link_quality_buckets(admin_client, fleet):
    response = admin_client.get("/api/devices/1A2B3C/link/?points=5000")
    assert response.status_code == 400
    assert response.json() == {"points": ["Ensure this value is less than or equal to 2000."]}


# -- schema ------------------------------------------------------------------------------------


@pytest.fixture
def schema(client):
    response = client.get("/api/schema/?format=json")
    assert response.status_code == 200
    return json.loads(response.content)


def test_it_publishes_an_openapi_schema_of_every_endpoint(schema):
    assert set(schema["paths"]) >= {
        "/api/devices/", "/api/devices/{sigfox_id}/", "/api/devices/{sigfox_id}/link/",
        "/api/messages/", "/api/readings/", "/api/readings.csv", "/api/series/",
        "/data/{sensor}", "/sigfox/acknowledge",
    }


def test_it_describes_every_parameter(schema):
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            for parameter in operation.get("parameters", []):
                assert parameter.get("description"), (path, method, parameter["name"])


def test_it_describes_the_series_parameters(schema):
    parameters = {p["name"]: p for p in schema["paths"]["/api/series/"]["get"]["parameters"]}
    assert set(parameters) == {"device", "sensor", "quantity", "since", "until", "points"}
    assert parameters["device"]["required"] is True
    assert "epoch seconds" in parameters["since"]["description"]


def test_it_describes_the_callbacks(schema):
    uplink = schema["paths"]["/data/{sensor}"]
    assert set(uplink) == {"get", "post", "put"}
    names = {p["name"] for p in uplink["post"]["parameters"]}
    assert names == {"sensor", "token"}
    assert "application/json" in uplink["post"]["requestBody"]["content"]
    assert {"204", "400", "401"} <= set(uplink["post"]["responses"])
    assert {"device", "time"} <= {p["name"] for p in uplink["get"]["parameters"]}
    assert "post" in schema["paths"]["/sigfox/acknowledge"]


def test_it_documents_token_authentication(schema):
    assert "tokenAuth" in schema["components"]["securitySchemes"]


def test_it_generates_the_schema_without_warnings(tmp_path):
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(tmp_path / "schema.yaml"))
    assert (tmp_path / "schema.yaml").stat().st_size > 5000


def test_it_serves_the_api_docs_from_this_site(client):
    content = client.get("/api/docs/").content.decode()
    assert "/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle" in content
    assert "cdn" not in content.lower()


def test_it_lets_admins_make_tokens_in_the_admin(admin_client):
    assert admin_client.get("/admin/authtoken/tokenproxy/add/").status_code == 200
