"""Rejections are visible to the operator, and bounded."""

import json

import pytest

from readings.services import rejections as services
from readings.models import Device, Message, Rejection

pytestmark = pytest.mark.django_db

T0 = 1_700_000_000


@pytest.fixture(autouse=True)
def _fresh_windows():
    services._rejection_windows.clear()
    yield
    services._rejection_windows.clear()


def test_it_records_a_refused_callback_with_its_reason_and_device(client, caplog):
    response = client.post("/data/1", '{"device":"1A2B3C","time":"soon"}', content_type="application/json")
    assert response.status_code == 400
    rejection = Rejection.objects.get()
    assert (rejection.status, rejection.device_id, rejection.path) == (400, "1A2B3C", "/data/1")
    assert "time" in rejection.reason
    assert "callback refused (400)" in caplog.text and "device 1A2B3C" in caplog.text
    assert not Device.objects.exists()


@pytest.mark.parametrize("status", [401, 403])
def test_it_records_refusals_before_the_body_is_read(client, settings, status):
    if status == 401:
        settings.SIGFOX_CALLBACK_TOKEN = "secret"
    else:
        settings.SIGFOX_CALLBACK_NETWORKS = ["185.110.96.0/22"]
    response = client.get(f"/data/1?device=004e2f1a&time={T0}&temp=1")
    assert response.status_code == status
    assert Rejection.objects.get().device_id == "4E2F1A"


def test_it_records_a_flood_once_a_minute_and_counts_the_rest(client):
    for _ in range(50):
        client.post("/data/1", "not json", content_type="application/json")
    rejection = Rejection.objects.get()
    assert rejection.status == 400
    services._rejection_windows[(400, rejection.client_address)][0] -= 61
    client.post("/data/1", "not json", content_type="application/json")
    assert Rejection.objects.order_by("-time").first().repeated == 49


def test_it_keeps_only_the_newest_rejections(client, monkeypatch):
    monkeypatch.setattr(services, "REJECTIONS_KEPT", 10)
    monkeypatch.setattr(services, "REJECTION_WINDOW_S", 0.0)
    monkeypatch.setattr(services, "_rejections_written", 0)
    for n in range(120):
        client.post("/data/1", json.dumps({"device": f"{n + 1:X}", "time": "x"}),
                    content_type="application/json")
    assert Rejection.objects.count() <= 10 + 50


def test_it_shows_recent_rejections_on_the_device_page_and_in_the_admin(client, admin_client):
    client.post("/data/1", json.dumps({"device": "1A2B3C", "time": T0, "temp": 21}),
                content_type="application/json")
    client.post("/data/1", '{"device":"1A2B3C","time":"later"}', content_type="application/json")
    page = admin_client.get("/devices/1A2B3C").content.decode()
    assert 'id="rejections"' in page and "Must be a whole number" in page
    listing = admin_client.get("/admin/readings/rejection/").content.decode()
    assert "1A2B3C" in listing
    assert Message.objects.count() == 1
