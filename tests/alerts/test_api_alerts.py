"""Device health in the read API: state in /api/devices/, state changes, mute."""

from datetime import timedelta

import pytest
from django.utils import timezone

from alerts.evaluation import evaluate
from alerts.models import DeviceHealth
from readings.models import Device
from tests.alerts.test_worker import history

pytestmark = pytest.mark.django_db


def test_devices_carry_their_state(admin_client):
    last = history("1A2B3C")
    Device.objects.create(sigfox_id="ABC")
    assert {d["id"]: d["state"] for d in admin_client.get("/api/devices/").json()["results"]} == {
        "1A2B3C": "new", "ABC": "new"}
    evaluate(now=last + timedelta(seconds=2000))
    answer = admin_client.get("/api/devices/").json()["results"]
    assert {d["id"]: d["state"] for d in answer} == {"1A2B3C": "down", "ABC": "new"}
    assert admin_client.get("/api/devices/1a2b3c/").json()["state"] == "down"


def test_it_lists_a_devices_state_changes_newest_first(admin_client):
    last = history("1A2B3C")
    evaluate(now=last + timedelta(seconds=60))
    evaluate(now=last + timedelta(seconds=2000))
    answer = admin_client.get("/api/devices/1A2B3C/states/").json()
    assert [(c["from_state"], c["to_state"]) for c in answer["results"]] == [
        ("up", "down"), ("new", "up")]
    assert answer["results"][0]["time"] == "2026-03-01T02:03:20Z"
    assert admin_client.get("/api/devices/FFFF/states/").status_code == 404


def test_staff_mute_and_unmute_a_device(admin_client, client, django_user_model):
    history("1A2B3C")
    until = timezone.now() + timedelta(hours=2)
    response = admin_client.put("/api/devices/1A2B3C/mute/", {"until": until.isoformat()},
                                content_type="application/json")
    assert response.status_code == 200, response.content
    assert DeviceHealth.objects.get().muted_until == until
    assert admin_client.put("/api/devices/1A2B3C/mute/", {"until": "2001-01-01"},
                            content_type="application/json").json() == {
        "until": ["Must be in the future."]}
    assert admin_client.put("/api/devices/1A2B3C/mute/", {"until": "soon"},
                            content_type="application/json").status_code == 400
    assert admin_client.delete("/api/devices/1A2B3C/mute/").json()["muted_until"] is None
    assert DeviceHealth.objects.get().muted_until is None
    reader = django_user_model.objects.create_user("reader", password="x")
    client.force_login(reader)
    assert client.delete("/api/devices/1A2B3C/mute/").status_code == 403
    assert client.get("/api/devices/1A2B3C/states/").status_code == 200
