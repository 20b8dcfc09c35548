"""The alerts admin: lists, the mute action, the channel test button."""

from datetime import UTC, datetime

import pytest
from django.contrib.messages import get_messages

from alerts.evaluation import evaluate
from alerts.models import Channel, DeviceHealth, Notification, StateChange
from readings.models import Device
from tests.alerts.test_worker import Receiver, history

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("model", ["devicehealth", "devicetypehealth", "statechange",
                                   "notification", "channel"])
def test_it_lists_each_model(admin_client, model):
    history("1A2B3C")
    evaluate(now=datetime(2026, 3, 2, tzinfo=UTC))
    response = admin_client.get(f"/admin/alerts/{model}/?q=1a2b")
    assert response.status_code == 200


def test_it_mutes_and_unmutes_from_the_list(admin_client):
    history("1A2B3C")
    evaluate(now=datetime(2026, 3, 1, 2, tzinfo=UTC))
    pk = Device.objects.get().pk
    admin_client.post("/admin/alerts/devicehealth/", {"action": "mute_for_a_day",
                                                       "_selected_action": [pk]})
    assert DeviceHealth.objects.get().muted_until is not None
    admin_client.post("/admin/alerts/devicehealth/", {"action": "unmute", "_selected_action": [pk]})
    assert DeviceHealth.objects.get().muted_until is None


def said(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


def test_the_test_button_sends_to_the_channel(admin_client):
    receiver = Receiver()
    try:
        channel = Channel.objects.create(name="ops", url=receiver.url)
        response = admin_client.post("/admin/alerts/channel/", {
            "action": "send_a_test", "_selected_action": [channel.pk]})
        assert said(response) == ["ops: sent."]
        assert receiver.bodies[0]["title"] == "sigfoxsite: a test notification"
        broken = Channel.objects.create(name="broken", url="nothing://at/all")
        response = admin_client.post("/admin/alerts/channel/", {
            "action": "send_a_test", "_selected_action": [broken.pk]})
        assert said(response)[-1] == "broken: not sent: not an Apprise URL this server can use"
    finally:
        receiver.shutdown()
        receiver.server_close()


def test_it_shows_a_failed_send_and_its_error(admin_client, settings):
    history("1A2B3C")
    device = Device.objects.get()
    change = StateChange.objects.create(device=device, time=datetime(2026, 3, 2, tzinfo=UTC),
                                        from_state="up", to_state="down", reason="silent")
    Notification.objects.create(change=change, url="json://127.0.0.1:9/x", kind="alert",
                                status="failed", attempts=2, error="connection refused",
                                next_attempt_at=datetime(2026, 3, 2, tzinfo=UTC))
    content = admin_client.get("/admin/alerts/notification/").content.decode()
    assert "connection refused" in content
    content = admin_client.get(f"/admin/alerts/statechange/{change.pk}/change/").content.decode()
    assert "connection refused" in content
