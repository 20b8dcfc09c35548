"""Read filters at their bounds: every time, list, number and cursor parameter of
the read API answers a bad value with a 400 that names it (never a 500), and the
chart pages ignore a date they cannot use."""

import base64
from urllib.parse import quote

import pytest

from tests.helpers import minutes, store
from tests.helpers import chart_data

pytestmark = pytest.mark.django_db

INVALID = "Must be ISO 8601 (2026-01-31, 2026-01-31T12:00:00Z) or Unix epoch seconds."
OUT_OF_RANGE = "Out of range: must be between 0001-01-01T00:00:00Z and 9999-12-31T23:59:59Z."

# Every endpoint that takes since and until, with what else it needs.
TIME_FILTERED = [
    "/api/readings/?",
    "/api/messages/?",
    "/api/readings.csv?",
    "/api/series/?device=1A2B3C&quantity=temp&",
    "/api/devices/1A2B3C/link/?",
]


@pytest.fixture(autouse=True)
def device():
    return store("1A2B3C", minutes(3))


def get(client, url: str):
    response = client.get(url)
    if response.streaming:
        b"".join(response.streaming_content)  # a CSV that fails half-way fails here
    return response


def assert_refused(response, name: str, message: str):
    assert response.status_code == 400, (response.request["QUERY_STRING"], response.status_code)
    assert response.json() == {name: [message]}


@pytest.mark.parametrize("value", [
    "9999-12-31T23:59:59-01:00",  # year 10000 in UTC
    "0001-01-01T00:00:00+01:00",  # year 0 in UTC
    "999999999999",  # epoch seconds in year 33658
    "999999999999.999999",
])
def test_it_refuses_a_time_out_of_range(admin_client, value):
    for endpoint in TIME_FILTERED:
        assert_refused(get(admin_client, f"{endpoint}since={quote(value)}"), "since", OUT_OF_RANGE)
    assert_refused(get(admin_client, f"/api/readings/?until={quote(value)}"), "until", OUT_OF_RANGE)


def test_every_time_filter_refuses_epoch_seconds_in_exponent_form(admin_client):
    for endpoint in TIME_FILTERED:
        for value in ["1e20", "-1e20"]:
            assert_refused(get(admin_client, f"{endpoint}until={quote(value)}"), "until", INVALID)


@pytest.mark.parametrize("value", [
    "1e20", "-1e20", "-1", "+1700000000", "1700000000.1234567", "1E3", "nan", "inf",
    "١٧٠٠٠٠٠٠٠٠",  # Arabic-Indic digits, which float() and \d take
    " 1700000000", "2026-01-01 ", "2026-02-30", "2026-13-01", "2026-01-01T24:00:00Z",
    "2026-01-01T12:00:00+24:00", "0000-01-01", "+010000-01-01T00:00:00.000Z", "2026-W05-1",
    "2026-01-31T1200Z", "2026-01-31T12", "", "x" * 41,
])
def test_it_refuses_a_time_it_cannot_read(admin_client, value):
    assert_refused(get(admin_client, f"/api/readings/?since={quote(value)}"), "since", INVALID)


def test_it_refuses_the_first_day_when_the_site_zone_puts_it_before_year_one(admin_client,
                                                                             settings):
    settings.TIME_ZONE = "Europe/Paris"
    for endpoint in TIME_FILTERED:
        assert_refused(get(admin_client, f"{endpoint}since=0001-01-01"), "since", OUT_OF_RANGE)


@pytest.mark.parametrize("since,until", [
    ("0001-01-01T00:00:00Z", "9999-12-31T23:59:59.999999Z"),
    ("0", "99999999999.999999"),
    ("0001-01-01T00:00:00-01:00", "9999-12-31T23:59:59+01:00"),
    ("2026-01-01T00:00:00.000Z", "2026-01-01T01:00:00.000Z"),  # as the chart script writes them
])
def test_it_accepts_the_widest_range(admin_client, since, until):
    for endpoint in TIME_FILTERED:
        response = get(admin_client, f"{endpoint}since={quote(since)}&until={quote(until)}")
        assert response.status_code == 200, (endpoint, response.status_code)


@pytest.mark.parametrize("url,name", [
    ("/api/readings/?device=1A2B3C,", "device"),
    ("/api/readings/?device=1A2B3C,%20BF1327", "device"),
    ("/api/readings/?device=", "device"),
    ("/api/readings/?sensor=1,,2", "sensor"),
    ("/api/readings/?quantity=temp%00", "quantity"),
    ("/api/messages/?sensor=%201", "sensor"),
    ("/api/readings.csv?quantity=" + ",".join(["q"] * 101), "quantity"),
])
def test_it_refuses_a_malformed_list(admin_client, url, name):
    response = get(admin_client, url)
    assert response.status_code == 400
    assert list(response.json()) == [name]


def test_it_refuses_points_that_are_no_whole_number_in_range(admin_client):
    for value in ["9", "2001", "100.0", " 100", "١٠٠", "1e2", "", "-0"]:
        for endpoint in ["/api/series/?device=1A2B3C&quantity=temp&", "/api/devices/1A2B3C/link/?"]:
            response = get(admin_client, f"{endpoint}points={quote(value)}")
            assert response.status_code == 400, (endpoint, value)
            assert list(response.json()) == ["points"]


@pytest.mark.parametrize("url", ["/api/series/?device=%201A2B3C&quantity=temp",
                                 "/api/series/?device=1A2B3C&quantity=",
                                 "/api/series/?device=1A2B3C&quantity=temp&sensor=1%20",
                                 "/api/quantity-settings/?device=%201A2B3C",
                                 "/api/quantity-settings/?device_type=ABC%0A"])
def test_it_refuses_an_id_or_name_with_spaces_or_blank(admin_client, url):
    assert get(admin_client, url).status_code == 400


def test_it_refuses_a_page_size_it_cannot_read(admin_client):
    endpoints = ["/api/readings/", "/api/messages/", "/api/devices/", "/api/quantity-settings/"]
    for endpoint, value in zip(endpoints * 2, ["0", "-1", "abc", "1.5", " 5", "٥", "", "1e3"]):
        response = get(admin_client, f"{endpoint}?page_size={quote(value)}")
        assert response.status_code == 400, (endpoint, value)
        assert response.json() == {
            "page_size": ["Must be a whole number from 1 (more than 1000 gives 1000)."]}


def forged_cursor(position: str) -> str:
    return quote(base64.b64encode(f"o=0&r=0&p={position}".encode()).decode())


@pytest.mark.parametrize("endpoint,position", [
    ("/api/readings/", "garbage"),
    ("/api/readings/", "0001-01-01 00:00:00+05:00"),  # year 0 in UTC
    ("/api/messages/", "2026-02-30 00:00:00+00:00"),
    ("/api/quantity-settings/", "one"),
    ("/api/devices/", "1A2B3C%00"),
])
def test_it_answers_a_forged_cursor_with_404(admin_client, endpoint, position):
    response = get(admin_client, f"{endpoint}?cursor={forged_cursor(position)}")
    assert response.status_code == 404
    assert response.json() == {"detail": "Invalid cursor"}


def test_it_follows_a_cursor_it_made(admin_client):
    first = admin_client.get("/api/readings/?page_size=2").json()
    second = admin_client.get(first["next"]).json()
    assert len(second["results"]) == 1


@pytest.mark.parametrize("date_from,date_to,shown", [
    ("2026-02-30", "2026-13-01", ("", "")),
    ("0001-01-01", "9999-12-31", ("", "")),  # before year 1 in Paris; no day after the last
    ("0001-01-02", "9999-12-30", ("0001-01-02", "9999-12-30")),
    ("2026-01-05", "2026-01-01", ("2026-01-05", "")),  # ends before it starts
    ("٢٠٢٦-01-01", "2026-01-01x", ("", "")),
])
def test_the_pages_ignore_a_date_they_cannot_use(admin_client, settings, date_from, date_to, shown):
    settings.TIME_ZONE = "Europe/Paris"
    for page in ["/graph", "/devices/1A2B3C"]:
        response = admin_client.get(page, {"range": "custom", "from": date_from, "to": date_to})
        assert response.status_code == 200
        data = chart_data(response)
        assert (data["from"], data["to"]) == shown
