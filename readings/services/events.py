"""Storing what the Sigfox cloud says of a device besides its messages: ERROR
and EVENT callbacks (DeviceEvent); and where a device was for each message
(DeviceLocation), from a GEOLOC callback or, through
readings.services.ingest, from an uplink's computedLocation or coordinates.

SERVICE STATUS callbacks are messages of the device, stored by
readings.services.ingest.message_ingest (readings/views.py, StatusView).
"""

import hashlib
import json
import logging
import math
from collections.abc import Mapping
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


# -- Locations ---------------------------------------------------------------------------

LocationSource = DeviceLocation.Source

# Half the Earth's circumference at the equator: no radius is wider (the
# GEOLOC serializer's bound too, readings.other_callbacks.MAX_RADIUS_M, which
# this module cannot import: the serializers import the ingest service).
MAX_RADIUS_M = 20_037_509

# The more precise source wins for a message: a device's GPS fix is metres, the
# network's estimate (Sigfox Atlas) hundreds of metres to kilometres. Between
# equals, the first stored is kept (a retry, or GEOLOC after DATA ADVANCED).
SOURCE_RANK = {LocationSource.PAYLOAD: 2, LocationSource.NETWORK: 1, LocationSource.GEOLOC: 1}

# Names of values that hold coordinates, lower case: a device's own fix.
# The callback variables `lat` and `lng` are the base station's position
# (whole degrees, CALLBACKS.md section 2): the serializer takes them as such,
# so these names reach here only from a decoded payload or in another case
# (`Lat`, `LATITUDE`).
LATITUDE_NAMES = frozenset({"lat", "latitude"})
LONGITUDE_NAMES = frozenset({"lng", "lon", "longitude"})


def is_coordinate_name(name: str) -> bool:
    """True for a value named like a latitude or a longitude (any case)."""
    lowered = name.lower()
    return lowered in LATITUDE_NAMES or lowered in LONGITUDE_NAMES


def on_earth(lat: float, lng: float) -> bool:
    """Finite degrees within [-90, 90] and [-180, 180]."""
    return (math.isfinite(lat) and math.isfinite(lng)
            and -90 <= lat <= 90 and -180 <= lng <= 180)


def coordinates_in(values: Mapping[str, float]) -> tuple[float, float] | None:
    """(lat, lng) in degrees from values named like coordinates, or None.

    One latitude name and one longitude name must be there (several
    spellings of one must agree), on Earth, and not exactly (0, 0): a GPS
    without a fix reports zeros, and a device in the Gulf of Guinea at
    exactly 0°, 0° is less likely than that.
    """
    lats = {v for k, v in values.items() if k.lower() in LATITUDE_NAMES}
    lngs = {v for k, v in values.items() if k.lower() in LONGITUDE_NAMES}
    if len(lats) != 1 or len(lngs) != 1:
        return None
    lat, lng = float(lats.pop()), float(lngs.pop())
    if not on_earth(lat, lng) or (lat == 0 and lng == 0):
        return None
    return lat, lng


@dataclass(frozen=True, slots=True)
class NetworkFix:
    """Sigfox's estimate of a device's position for one message."""

    lat: float  # degrees
    lng: float  # degrees
    radius_m: int | None  # metres
    sigfox_source: str  # Sigfox's code of the estimate, as sent ("" if none)


def computed_location_fix(value) -> NetworkFix | None:
    """The estimate in a DATA ADVANCED `{computedLocation}` object
    `{"lat", "lng", "radius" (m), "source", "status"}`, or None.

    Status 1 means located; any other status (0: not located) says there
    is no position, and so does an object without numbers for lat and lng.
    An object without a status (the Sigfox API's items have none) counts by
    its coordinates. A radius that is not a number of metres from 0 to half
    the Earth's circumference is left out, the position kept.
    """
    if not isinstance(value, dict):
        return None
    status = value.get("status")
    if status is not None and str(status).strip() != "1":
        return None
    lat, lng = value.get("lat"), value.get("lng")
    if not all(isinstance(c, int | float) and not isinstance(c, bool) for c in (lat, lng)):
        return None
    if not on_earth(float(lat), float(lng)):
        return None
    radius = value.get("radius")
    radius_m = None
    if isinstance(radius, int | float) and not isinstance(radius, bool) and math.isfinite(radius) \
            and 0 <= radius <= MAX_RADIUS_M:
        radius_m = round(radius)
    source = value.get("source")
    sigfox_source = "" if source is None or isinstance(source, dict | list) else str(source)[:32]
    return NetworkFix(lat=float(lat), lng=float(lng), radius_m=radius_m,
                      sigfox_source=sigfox_source)


@dataclass(frozen=True, slots=True)
class LocationResult:
    location: DeviceLocation
    # A new row for the message.
    created: bool
    # A row of a less precise source replaced by this one.
    replaced: bool = False


def location_keep(
    *,
    device: Device,
    time: datetime,
    lat: float,
    lng: float,
    source: str,
    radius_m: int | None = None,
    sigfox_source: str = "",
    seq_number: int | None = None,
    field_errors: dict | None = None,
    body_raw: str = "",
    content_type: str = "",
    now: datetime,
) -> LocationResult:
    """Keep where `device` was for its message at `time` (degrees, metres):
    a new row, or in place of the message's row from a less precise source
    (SOURCE_RANK); a row of an equal or more precise source stays as it is
    (its seqNumber filled in if it had none). Call inside a transaction."""
    rank = SOURCE_RANK[source]
    existing = DeviceLocation.objects.filter(device=device, time=time).first()
    if existing is None:
        try:
            with transaction.atomic():
                location = DeviceLocation.objects.create(
                    device=device, time=time, lat=lat, lng=lng, radius_m=radius_m, source=source,
                    sigfox_source=sigfox_source, seq_number=seq_number,
                    field_errors=field_errors or None, body_raw=body_raw,
                    content_type=content_type, received_at=now,
                )
            return LocationResult(location=location, created=True)
        except IntegrityError:
            # Another request placed the message in the meantime.
            existing = DeviceLocation.objects.filter(device=device, time=time).first()
            if existing is None:
                raise
    if SOURCE_RANK.get(existing.source, 0) < rank:
        # Conditional, so that of two concurrent sources the more precise stays.
        weaker = [s for s in [*SOURCE_RANK, ""] if SOURCE_RANK.get(s, 0) < rank]
        replaced = DeviceLocation.objects.filter(pk=existing.pk, source__in=weaker).update(
            lat=lat, lng=lng, radius_m=radius_m, source=source, sigfox_source=sigfox_source,
            seq_number=seq_number if seq_number is not None else existing.seq_number,
            field_errors=field_errors or None, body_raw=body_raw, content_type=content_type,
            received_at=now,
        )
        existing.refresh_from_db()
        return LocationResult(location=existing, created=False, replaced=bool(replaced))
    if existing.seq_number is None and seq_number is not None:
        DeviceLocation.objects.filter(pk=existing.pk, seq_number=None).update(seq_number=seq_number)
        existing.seq_number = seq_number
    return LocationResult(location=existing, created=False)


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
    """Record a GEOLOC callback: where the network placed the device for its
    message at `time` (degrees; `radius_m` metres; `source` the callback's
    {geolocSource}, kept as `sigfox_source`). The device is registered if new.
    Once per message: a retry, or a GEOLOC after the message's DATA ADVANCED
    computedLocation or payload fix, leaves the row as it is (location_keep)."""
    device = device_register(sigfox_id=device_id)
    return location_keep(
        device=device, time=time, lat=lat, lng=lng, radius_m=radius_m,
        source=LocationSource.GEOLOC, sigfox_source=source or "", seq_number=seq_number,
        field_errors=field_errors, body_raw=body_raw, content_type=content_type, now=now,
    )
