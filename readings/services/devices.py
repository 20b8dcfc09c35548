"""Registering what callbacks name: devices, device types and series, within
the site's bounds (SIGFOX_MAX_DEVICE_TYPES, SIGFOX_MAX_SERIES_PER_DEVICE,
SIGFOX_MAX_QUANTITIES)."""

import logging
from datetime import datetime

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F

from readings.models import (
    Device,
    DeviceType,
    Quantity,
    Series,
)
from readings.services.rejections import log_limited

log = logging.getLogger(__name__)


def device_type_upsert(*, sigfox_id: str, now: datetime) -> DeviceType | None:
    """The device type with this id, registered if new; None when it is new and the
    site has SIGFOX_MAX_DEVICE_TYPES types already (types come from callbacks)."""
    device_type = DeviceType.objects.filter(sigfox_id=sigfox_id).first()
    if device_type is None:
        if DeviceType.objects.count() >= settings.SIGFOX_MAX_DEVICE_TYPES:
            log_limited("device-types", "device type %s not registered: the site has %d already "
                        "(SIGFOX_MAX_DEVICE_TYPES)", sigfox_id, settings.SIGFOX_MAX_DEVICE_TYPES)
            return None
        try:
            with transaction.atomic():
                return DeviceType.objects.create(sigfox_id=sigfox_id, first_seen=now)
        except IntegrityError:
            device_type = DeviceType.objects.get(sigfox_id=sigfox_id)
    return device_type


def device_upsert(
    *, sigfox_id: str, time: datetime, device_type_id: str | None = None, now: datetime
) -> Device:
    """The device with this id, registered if new, its first/last seen widened to `time`.

    The row stays locked until the transaction ends, so that the messages of
    one device are stored one after the other: each sees its neighbours in
    time when it works out sequence gaps.
    """
    devices = Device.objects.select_related("device_type").select_for_update(of=("self",))
    device = devices.filter(sigfox_id=sigfox_id).first()
    device_type = None
    if device_type_id and (device is None or getattr(device.device_type, "sigfox_id", None) != device_type_id):
        device_type = device_type_upsert(sigfox_id=device_type_id, now=now)
    if device is None:
        try:
            with transaction.atomic():
                return Device.objects.create(
                    sigfox_id=sigfox_id, first_seen=time, last_seen=time, device_type=device_type
                )
        except IntegrityError:
            # Another request registered it in the meantime.
            device = devices.get(sigfox_id=sigfox_id)
    changes = {}
    # A device added in the admin has not been seen yet: both are null.
    if device.last_seen is None or time > device.last_seen:
        changes["last_seen"] = device.last_seen = time
    if device.first_seen is None or time < device.first_seen:
        changes["first_seen"] = device.first_seen = time
    if device_type is not None and device.device_type_id != device_type.pk:
        changes["device_type"] = device.device_type = device_type
    if changes:
        Device.objects.filter(pk=device.pk).update(**changes)
    return device


def series_admit(
    *, device: Device, keys: list[tuple[str, str]], now: datetime
) -> tuple[set[tuple[str, str]], dict[tuple[str, str], str]]:
    """Which (sensor, quantity) series of the device may take readings: (admitted, {refused: why}).

    A series already registered is admitted; a new one is registered while
    the device has fewer than SIGFOX_MAX_SERIES_PER_DEVICE series and its
    quantity name is known or the site has fewer than SIGFOX_MAX_QUANTITIES
    names, in the order given. Refusals are counted on the device and
    logged (at most once a minute per device). The device row must be
    locked by the caller (services.device_upsert), so that two callbacks of
    one device cannot both take its last free series; two devices can both
    take the site's last quantity name, so that bound is approximate.
    """
    keys = list(dict.fromkeys(keys))
    known = set(
        Series.objects.filter(device=device, quantity__in={q for _, q in keys})
        .values_list("sensor", "quantity")
    )
    missing = [key for key in keys if key not in known]
    if not missing:
        return set(keys), {}
    admitted = {key for key in keys if key in known}
    refused: dict[tuple[str, str], str] = {}
    series_count = Series.objects.filter(device=device).count()
    names = set(Quantity.objects.filter(name__in={q for _, q in missing}).values_list("name", flat=True))
    names_count = None
    new_series, new_names = [], []
    max_series, max_names = settings.SIGFOX_MAX_SERIES_PER_DEVICE, settings.SIGFOX_MAX_QUANTITIES
    for sensor, quantity in missing:
        if series_count >= max_series:
            refused[(sensor, quantity)] = (
                f"No new series: the device has {max_series} already (SIGFOX_MAX_SERIES_PER_DEVICE).")
            continue
        if quantity not in names:
            if names_count is None:
                names_count = Quantity.objects.count()
            if names_count >= max_names:
                refused[(sensor, quantity)] = (
                    f"No new quantity name: the site has {max_names} already (SIGFOX_MAX_QUANTITIES).")
                continue
            names.add(quantity)
            names_count += 1
            new_names.append(Quantity(name=quantity, created_at=now))
        new_series.append(Series(device=device, sensor=sensor, quantity=quantity, created_at=now))
        series_count += 1
        admitted.add((sensor, quantity))
    Quantity.objects.bulk_create(new_names, ignore_conflicts=True)
    Series.objects.bulk_create(new_series, ignore_conflicts=True)
    if refused:
        Device.objects.filter(pk=device.pk).update(
            series_refused=F("series_refused") + len(refused), series_refused_at=now
        )
        log_limited(
            f"series-refused:{device.pk}",
            "device %s: %d reading(s) not stored, past the series bounds: %s",
            device.sigfox_id, len(refused), "; ".join(sorted(set(refused.values()))),
        )
    return admitted, refused
