"""Storing what the Sigfox cloud says of a device besides its messages: ERROR
and EVENT callbacks (DeviceEvent), GEOLOC callbacks (DeviceLocation).

SERVICE STATUS callbacks are messages of the device, stored by
readings.services.ingest.message_ingest (readings/views.py, StatusView).
"""

import hashlib
import json
import logging
from dataclasses import dataclass
from datetime import datetime

from django.db import IntegrityError, transaction

from readings.models import Device, DeviceEvent, DeviceLocation, EventKind

log = logging.getLogger(__name__)


def device_register(*, sigfox_id: str) -> Device:
    """The device with this id, registered if new.

    Unlike services.devices.device_upsert, its first and last seen are left
    as they are: they are the times of its messages, and an ERROR saying "no
    message received since ..." is no message (a device registered here has
    not been seen yet, as one added in the admin).
    """
    device = Device.objects.filter(sigfox_id=sigfox_id).first()
    if device is not None:
        return device
    try:
        with transaction.atomic():
            return Device.objects.create(sigfox_id=sigfox_id)
    except IntegrityError:
        # Another request registered it in the meantime.
        return Device.objects.get(sigfox_id=sigfox_id)


def event_fingerprint(*, kind: str, device_id: str | None, source: str, time: datetime,
                      event_type: str, severity: str, info: str) -> str:
    """What makes two callbacks the same event, as a digest: a retry of the
    callback, or the same callback sent to the server twice in other encodings."""
    identity = [kind, device_id or "", "" if device_id else source, int(time.timestamp()),
                event_type, severity, info]
    return hashlib.sha256(json.dumps(identity).encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class EventResult:
    event: DeviceEvent
    created: bool


@transaction.atomic
def event_record(
    *,
    kind: str,
    device_id: str | None,
    time: datetime,
    severity: str | None = None,
    info: str | None = None,
    event_type: str | None = None,
    source: str = "",
    variables: dict | None = None,
    field_errors: dict | None = None,
    body_raw: str = "",
    content_type: str = "",
    now: datetime,
) -> EventResult:
    """Record an ERROR or EVENT callback once, however often it comes; the device
    it names is registered if new. An EVENT may name no device (device_id None)."""
    if kind not in EventKind.values:
        raise ValueError(f"unknown event kind {kind!r}")
    severity, event_type, info = severity or "", event_type or "", info or ""
    fingerprint = event_fingerprint(kind=kind, device_id=device_id, source=source, time=time,
                                    event_type=event_type, severity=severity, info=info)
    existing = DeviceEvent.objects.filter(fingerprint=fingerprint).first()
    if existing is not None:
        return EventResult(event=existing, created=False)
    device = device_register(sigfox_id=device_id) if device_id is not None else None
    try:
        with transaction.atomic():
            event = DeviceEvent.objects.create(
                device=device, time=time, kind=kind, event_type=event_type, severity=severity,
                info=info, variables=variables or None, field_errors=field_errors or None,
                body_raw=body_raw, content_type=content_type, fingerprint=fingerprint,
                received_at=now,
            )
    except IntegrityError:
        # The same callback, stored by another request in the meantime.
        existing = DeviceEvent.objects.filter(fingerprint=fingerprint).first()
        if existing is None:
            raise
        return EventResult(event=existing, created=False)
    log.info("%s %s %s of %s at %s: %s", kind, event_type or "-", severity or "-",
             device_id or source or "-", time.isoformat(), info[:200])
    return EventResult(event=event, created=True)


@dataclass(frozen=True, slots=True)
class LocationResult:
    location: DeviceLocation
    created: bool


@transaction.atomic
def location_record(
    *,
    device_id: str,
    time: datetime,
    lat: float,
    lng: float,
    radius_m: int | None = None,
    source: str | None = None,
    seq_number: int | None = None,
    field_errors: dict | None = None,
    body_raw: str = "",
    content_type: str = "",
    now: datetime,
) -> LocationResult:
    """Record where the network placed the device for its message at `time`:
    once per message, the first callback's location kept (a retry is the same)."""
    device = device_register(sigfox_id=device_id)
    existing = DeviceLocation.objects.filter(device=device, time=time).first()
    if existing is not None:
        return LocationResult(location=existing, created=False)
    try:
        with transaction.atomic():
            location = DeviceLocation.objects.create(
                device=device, time=time, lat=lat, lng=lng, radius_m=radius_m, source=source or "",
                seq_number=seq_number, field_errors=field_errors or None, body_raw=body_raw,
                content_type=content_type, received_at=now,
            )
    except IntegrityError:
        existing = DeviceLocation.objects.filter(device=device, time=time).first()
        if existing is None:
            raise
        return LocationResult(location=existing, created=False)
    return LocationResult(location=location, created=True)
