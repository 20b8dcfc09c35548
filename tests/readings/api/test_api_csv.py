"""GET /api/readings.csv: readings of a range as CSV, streamed."""

import csv
import io
import json
from datetime import UTC, datetime, timedelta

import pytest

from readings.models import Device, QuantitySetting
from tests.helpers import T0, minutes, store

pytestmark = pytest.mark.django_db


def download(client, query="", **extra):
    response = client.get("/api/readings.csv" + query, **extra)
    assert response.status_code == 200, response.content
    return response, list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))


def test_it_streams_a_csv_with_a_header_row(admin_client):
    store("1A2B3C", minutes(3, values=lambda i: 20.5 + i))
    response, rows = download(admin_client)
    assert response.streaming
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"].startswith('attachment; filename="readings-')
    assert rows == [
        ["time", "device", "sensor", "quantity", "value", "unit"],
        ["2026-01-01T00:00:00Z", "1A2B3C", "1", "temp", "20.5", "°C"],
        ["2026-01-01T00:01:00Z", "1A2B3C", "1", "temp", "21.5", "°C"],
        ["2026-01-01T00:02:00Z", "1A2B3C", "1", "temp", "22.5", "°C"],
    ]


def test_it_sends_only_the_header_when_nothing_matches(admin_client):
    _, rows = download(admin_client, "?device=ABCDEF")
    assert rows == [["time", "device", "sensor", "quantity", "value", "unit"]]


def test_it_writes_times_in_utc_whatever_the_site_zone(admin_client, settings):
    settings.TIME_ZONE = "Europe/Paris"
    store("1A2B3C", [(datetime(2026, 7, 1, 12, 0, 0, 500_000, tzinfo=UTC), 1.0)])
    _, rows = download(admin_client)
    assert rows[1][0] == "2026-07-01T12:00:00.500000Z"


def test_it_exports_the_range_asked(admin_client):
    store("1A2B3C", minutes(10))
    store("BF1327", minutes(10), quantity="hum")
    since = int((T0 + timedelta(minutes=4)).timestamp())
    _, rows = download(admin_client, f"?device=1A2B3C&quantity=temp&since={since}&until=2026-01-01T00:06:00Z")
    assert [row[0] for row in rows[1:]] == ["2026-01-01T00:04:00Z", "2026-01-01T00:05:00Z"]
    assert {row[1] for row in rows[1:]} == {"1A2B3C"}


def test_it_exports_several_series_oldest_first(admin_client):
    store("1A2B3C", minutes(3))
    store("BF1327", minutes(3, start=T0 + timedelta(seconds=30)), sensor="2", quantity="hum")
    _, rows = download(admin_client, "?device=1A2B3C,BF1327")
    assert [row[1] for row in rows[1:]] == ["1A2B3C", "BF1327"] * 3


def test_it_quotes_odd_names(admin_client, post_json):
    post_json('{"device":"1A2B3C","time":"1700000000","a,\\"b":1}')
    _, rows = download(admin_client)
    assert rows[1][3] == 'a,"b'


def test_it_streams_row_by_row(admin_client):
    store("1A2B3C", minutes(5000))
    response = admin_client.get("/api/readings.csv")
    chunks = iter(response.streaming_content)
    assert next(chunks) == b"time,device,sensor,quantity,value,unit\r\n"
    assert next(chunks) == "2026-01-01T00:00:00Z,1A2B3C,1,temp,0.0,°C\r\n".encode()
    assert sum(1 for _ in chunks) == 4999


def test_it_rejects_bad_filters_as_json(admin_client):
    response = admin_client.get("/api/readings.csv?until=soon", HTTP_ACCEPT="text/csv")
    assert response.status_code == 400
    assert response.json() == {
        "until": ["Must be ISO 8601 (2026-01-31, 2026-01-31T12:00:00Z) or Unix epoch seconds."]}


def test_it_answers_whatever_the_accept_header(admin_client):
    store("1A2B3C", minutes(1))
    response, rows = download(admin_client, HTTP_ACCEPT="text/csv")
    assert len(rows) == 2


def test_it_needs_a_login(client):
    assert client.get("/api/readings.csv").status_code == 401


# -- formulas (CSV injection) ---------------------------------------------------------------


def test_it_writes_names_that_start_like_formulas_as_text(admin_client, post_json):
    body = {"device": "1A2B3C", "time": "1700000000", "=HYPERLINK(\"http://x\")": 1,
            "+1": 2, "-2+3": 3, "@SUM(A1)": 4, "\tx": 5, "\r=y": 6, "a=b": 7, "temp": 8}
    post_json(json.dumps(body))
    _, rows = download(admin_client)
    assert sorted(row[3] for row in rows[1:]) == sorted([
        "'=HYPERLINK(\"http://x\")", "'+1", "'-2+3", "'@SUM(A1)", "'\tx", "'\r=y", "a=b", "temp"])


def test_it_keeps_negative_values_numbers(admin_client, post_json):
    post_json('{"device":"1A2B3C","time":"1700000000","-3":-3.5,"temp":-40}')
    _, rows = download(admin_client)
    assert {(row[3], row[4]) for row in rows[1:]} == {("'-3", "-3.5"), ("temp", "-40.0")}


def test_it_writes_sensors_and_units_that_start_like_formulas_as_text(admin_client, post_json):
    post_json('{"device":"1A2B3C","time":"1700000000","vbat":3300}', sensor="-1")
    QuantitySetting.objects.create(device=Device.objects.get(sigfox_id="1A2B3C"), quantity="vbat",
                                   unit="=1+2")
    _, rows = download(admin_client)
    assert rows[1][1:] == ["1A2B3C", "'-1", "vbat", "3300.0", "'=1+2"]


def test_it_quotes_the_escaped_cell_as_a_whole(admin_client, post_json):
    post_json(json.dumps({"device": "1A2B3C", "time": "1700000000", "=1,\"2\"": 1}))
    response = admin_client.get("/api/readings.csv")
    line = b"".join(response.streaming_content).decode().splitlines()[1]
    assert line.endswith(',"\'=1,""2""",1.0,')
