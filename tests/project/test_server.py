"""The project served as `make run` serves it: gunicorn, whitenoise, real HTTP."""

import json

from tests.conftest import TUTORIAL_BODY
from tests.helpers import request


def test_it_stores_the_tutorial_callback_over_http(server):
    status, _, body = request(f"{server.url}/data/1", TUTORIAL_BODY)
    assert (status, body) == (204, b"")
    readings = server.query("SELECT d.sigfox_id, r.sensor, r.quantity, r.value FROM readings_reading r "
                            "JOIN readings_device d ON d.id = r.device_id")
    assert ("1A2B3C", "1", "temp", 21.0) in readings


def test_it_answers_bad_input_over_http_with_json(server):
    before = server.query("SELECT COUNT(*) FROM readings_message")
    status, headers, body = request(f"{server.url}/data/1", '{"device":"1A2B3C","time":"x","temp":1}')
    assert status == 400
    assert headers["Content-Type"] == "application/json"
    assert "time" in json.loads(body)
    assert server.query("SELECT COUNT(*) FROM readings_message") == before


def test_it_serves_chart_js_through_whitenoise(server):
    status, headers, body = request(f"{server.url}/graph")
    assert status == 200
    page = body.decode()
    start = page.index("/static/vendor/chart.js/")
    script_url = page[start : page.index('"', start)]
    assert ".umd.min." in script_url and script_url.count(".") >= 3  # hashed by the manifest
    status, headers, body = request(server.url + script_url)
    assert status == 200
    assert "max-age=315360000" in headers.get("Cache-Control", "")
    assert b"Chart" in body


def test_it_reports_health_over_http(server):
    status, _, body = request(f"{server.url}/healthz")
    assert (status, json.loads(body)) == (200, {"status": "ok", "database": "ok"})
