"""A device's retention policy in the API (/api/devices/<id>/retention/) and
the admin; the admin's record of retention runs."""

from datetime import UTC, datetime

import pytest

from readings.models import Device, DeviceType
from storage.api import RetentionSerializer
from storage.retention import retention_apply

pytestmark = pytest.mark.django_db

URL = "/api/devices/1A2B3C/retention/"


@pytest.fixture
def device(settings):
    settings.SIGFOX_RAW_RETENTION_DAYS = 365
    settings.SIGFOX_ROLLUP_RETENTION_DAYS = None
    settings.SIGFOX_BODY_RETENTION_DAYS = 30
    kind = DeviceType.objects.create(sigfox_id="ABC1", rollup_retention_days=3650)
    return Device.objects.create(sigfox_id="1A2B3C", device_type=kind, body_retention_days=0)


def test_it_shows_own_and_effective_values_with_their_source(admin_client, device):
    answer = admin_client.get("/api/devices/001a2b3c/retention/").json()
    assert answer == {
        "device": "1A2B3C",
        "raw_retention_days": None,
        "rollup_retention_days": None,
        "body_retention_days": 0,
        "effective": {
            "raw_retention_days": {"days": 365, "source": "site"},
            "rollup_retention_days": {"days": 3650, "source": "device type"},
            "body_retention_days": {"days": None, "source": "device"},
        },
    }


def test_a_device_without_a_type_inherits_the_site_forever(admin_client, settings):
    settings.SIGFOX_RAW_RETENTION_DAYS = None
    Device.objects.create(sigfox_id="1A2B3C")
    effective = admin_client.get(URL).json()["effective"]
    assert effective["raw_retention_days"] == {"days": None, "source": "site"}


def test_staff_set_all_three_with_put_and_some_with_patch(admin_client, device):
    response = admin_client.put(URL, {"raw_retention_days": 30, "rollup_retention_days": None,
                                      "body_retention_days": 7}, content_type="application/json")
    assert response.status_code == 200, response.content
    assert response.json()["effective"]["raw_retention_days"] == {"days": 30, "source": "device"}
    device.refresh_from_db()
    assert (device.raw_retention_days, device.rollup_retention_days, device.body_retention_days) == (30, None, 7)

    response = admin_client.patch(URL, {"raw_retention_days": None}, content_type="application/json")
    assert response.json()["effective"]["raw_retention_days"] == {"days": 365, "source": "site"}
    device.refresh_from_db()
    assert (device.raw_retention_days, device.body_retention_days) == (None, 7)


def test_a_write_changes_the_retention_columns_only(admin_client, device):
    # Another write (a callback's last_seen) lands meanwhile: the old value must not come back.
    stale = Device.objects.get(pk=device.pk)
    Device.objects.filter(pk=device.pk).update(name="cellar")
    serializer = RetentionSerializer(stale, data={"raw_retention_days": 5}, partial=True)
    assert serializer.is_valid()
    serializer.save()
    assert Device.objects.get(pk=device.pk).name == "cellar"


@pytest.mark.parametrize("body, field", [
    ({"raw_retention_days": -1}, "raw_retention_days"),
    ({"raw_retention_days": "a year"}, "raw_retention_days"),
    ({"body_retention_days": 36_501}, "body_retention_days"),
    ({"rollup_retention_days": 1.5}, "rollup_retention_days"),
])
def test_it_refuses_bad_days(admin_client, device, body, field):
    response = admin_client.patch(URL, body, content_type="application/json")
    assert response.status_code == 400
    assert list(response.json()) == [field]


def test_put_wants_all_three(admin_client, device):
    response = admin_client.put(URL, {"raw_retention_days": 30}, content_type="application/json")
    assert response.status_code == 400
    assert set(response.json()) == {"rollup_retention_days", "body_retention_days"}


def test_readers_read_and_only_staff_write(client, django_user_model, device):
    assert client.get(URL).status_code in (401, 403)
    client.force_login(django_user_model.objects.create_user("reader", password="x"))
    assert client.get(URL).status_code == 200
    assert client.patch(URL, {"raw_retention_days": 1}, content_type="application/json").status_code == 403
    device.refresh_from_db()
    assert device.raw_retention_days is None


def test_an_unknown_device_is_404(admin_client, device):
    assert admin_client.get("/api/devices/FFFF/retention/").status_code == 404
    assert admin_client.patch("/api/devices/FFFF/retention/", {"raw_retention_days": 1},
                              content_type="application/json").status_code == 404


def test_the_schema_describes_it(client):
    schema = client.get("/api/schema/?format=json").json()
    operations = schema["paths"]["/api/devices/{sigfox_id}/retention/"]
    assert set(operations) == {"get", "put", "patch"}
    assert "source" in str(schema["components"]["schemas"])


# -- the admin ---------------------------------------------------------------------------------


def test_staff_set_a_device_types_retention_in_the_admin(admin_client, device):
    kind = device.device_type
    page = admin_client.get(f"/admin/readings/devicetype/{kind.pk}/change/").content.decode()
    assert "Retention" in page and 'name="raw_retention_days"' in page
    response = admin_client.post(f"/admin/readings/devicetype/{kind.pk}/change/", {
        "name": "", "payload_config": "", "raw_retention_days": "90", "rollup_retention_days": "",
        "body_retention_days": "0",
        "quantity_settings-TOTAL_FORMS": "0", "quantity_settings-INITIAL_FORMS": "0"})
    assert response.status_code == 302, response.content.decode()[:2000]
    kind.refresh_from_db()
    assert (kind.raw_retention_days, kind.rollup_retention_days, kind.body_retention_days) == (90, None, 0)


def test_a_devices_change_page_has_its_retention(admin_client, device):
    page = admin_client.get(f"/admin/readings/device/{device.pk}/change/").content.decode()
    assert "Retention" in page
    assert all(f'name="{name}"' in page for name in (
        "raw_retention_days", "rollup_retention_days", "body_retention_days"))


def test_retention_runs_are_listed_read_only(admin_client):
    retention_apply(now=datetime(2026, 12, 3, tzinfo=UTC))
    page = admin_client.get("/admin/storage/retentionrun/")
    assert page.status_code == 200 and "runworker" in page.content.decode()
    assert admin_client.get("/admin/storage/retentionrun/add/").status_code == 403
