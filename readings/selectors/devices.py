"""Devices: lists, look-ups by Sigfox id (in any spelling), their newest readings."""

from collections.abc import Iterable, Sequence
from datetime import datetime

from django.db.models import Max, Q, QuerySet

from readings import sigfox
from readings.models import Device, Reading
from readings.selectors.series import SeriesKey, series_keys


def device_list() -> QuerySet[Device]:
    return Device.objects.select_related("device_type", "health").order_by("sigfox_id")


def device_get(*, sigfox_id: str) -> Device | None:
    try:
        sigfox_id = sigfox.normalize_device_id(sigfox_id)
    except ValueError:
        return None
    return device_list().filter(sigfox_id=sigfox_id).first()


def normalized(sigfox_id: str) -> str:
    """The id's one spelling, or the text itself when it is no id (it then matches nothing)."""
    try:
        return sigfox.normalize_device_id(sigfox_id)
    except ValueError:
        return sigfox_id


def device_pks(*, sigfox_ids: Iterable[str]) -> list[int]:
    """Primary keys of the devices with these Sigfox ids (unknown ids are left out)."""
    wanted = {normalized(s) for s in sigfox_ids}
    return list(Device.objects.filter(sigfox_id__in=wanted).values_list("pk", flat=True))


def device_latest_readings(*, device: Device, keys: Sequence["SeriesKey"] | None = None
                           ) -> list[Reading]:
    """The newest reading of each series of the device, one index probe per series."""
    latest = []
    for key in series_keys(device_pks=[device.pk]) if keys is None else keys:
        reading = (
            Reading.objects.filter(device=device, sensor=key.sensor, quantity=key.quantity)
            .order_by("-time")
            .first()
        )
        if reading is not None:
            latest.append(reading)
    return latest


def devices_last_seen(*, sigfox_ids: Iterable[str] | None = None) -> datetime | None:
    devices = Device.objects.all()
    if sigfox_ids is not None:
        devices = devices.filter(sigfox_id__in=list(sigfox_ids))
    return devices.aggregate(last=Max("last_seen"))["last"]


# -- series keys ---------------------------------------------------------------

# Walks the (device, sensor, quantity, time) index from one series to the next

def device_search(text: str) -> QuerySet[Device]:
    """Devices whose id starts with `text` (in any spelling) or whose name contains it."""
    devices = device_list()
    text = text.strip()[:100]
    if not text:
        return devices
    condition = Q(name__icontains=text)
    if (prefix := sigfox.device_id_prefix(text)) is not None:
        condition |= Q(sigfox_id__startswith=prefix)
    return devices.filter(condition)

