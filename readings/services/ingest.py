"""Storing uplink callbacks: one frame, one message, whatever the copies.

The reference implementation of ingest; readings.services.fastpath mirrors
its commonest case in SQL for PostgreSQL, proven equal by tests/readings/services/test_fastpath.py.
"""

import logging
import math
from dataclasses import dataclass, field
from datetime import datetime

from django.conf import settings
from django.db import transaction

from readings.services import fastpath
from readings.models import (
    Device,
    Downlink,
    Message,
    MessageConflict,
    Reading,
    Reception,
)
from readings.services.decoding import (
    Decoded,
    payload_config_for,
    payload_decode,
    quantity_scales,
    scaled,
)
from readings.services.devices import device_upsert, series_admit
from readings.services.events import (
    LocationSource,
    computed_location_fix,
    coordinates_in,
    is_coordinate_name,
    location_keep,
)
from readings.services.sequences import sequence_gaps_refresh

log = logging.getLogger(__name__)


# Message columns that a later copy of the frame (a duplicate, the BIDIR or
# UPLINK twin, DATA ADVANCED) may fill in when the stored copy lacks them.
MERGED_FIELDS = (
    "ack", "long_polling", "station", "rssi", "snr", "avg_snr", "lat", "lng",
    "lqi", "link_quality", "operator_name", "country_code", "fixed_lat", "fixed_lng",
    "duplicates", "computed_location",
)


@dataclass(frozen=True, slots=True, kw_only=True)
class UplinkCallback:
    """One uplink callback, validated: Sigfox variables in snake_case.

    `values` are the numbers the callback sent (finite floats, before any
    scale), `values_raw` the same as sent (integers exact), `text_values`
    the text fields, `field_errors` the fields left out and why.
    """

    device_id: str
    time: datetime
    sensor: str
    values: dict[str, float] = field(default_factory=dict)
    values_raw: dict[str, int | float | bool] = field(default_factory=dict)
    text_values: dict[str, str] = field(default_factory=dict)
    field_errors: dict[str, str] = field(default_factory=dict)
    seq_number: int | None = None
    data: str | None = None
    device_type_id: str | None = None
    ack: bool | None = None
    long_polling: bool | None = None
    duplicate: bool | None = None
    station: str | None = None
    rssi: float | None = None
    snr: float | None = None
    avg_snr: float | None = None
    lat: float | None = None
    lng: float | None = None
    lqi: str | None = None
    link_quality: int | None = None
    operator_name: str | None = None
    country_code: str | None = None
    fixed_lat: float | None = None
    fixed_lng: float | None = None
    duplicates: list | None = None
    computed_location: dict | None = None
    body_raw: str = ""
    content_type: str = ""
    # False for a frame read back after its downlink window closed (a message
    # fetched through the Sigfox API): its ack is kept, no downlink answered.
    answerable: bool = True


@dataclass(frozen=True, slots=True)
class IngestResult:
    created: bool
    # Hex to answer the device with (BIDIR), or "".
    downlink_data: str = ""
    # Which implementation stored it: "fast" (readings.services.fastpath) or "orm".
    path: str = "orm"


def message_ingest(*, uplink: UplinkCallback, now: datetime) -> IngestResult:
    """Store one uplink callback: a new frame, or a copy merged into the stored one.

    A frame is its device and time. A later copy (a retry, a duplicate from
    another base station, the BIDIR or UPLINK twin, DATA ADVANCED, a callback
    to another sensor path) fills in what the stored frame lacks and adds the
    readings it does not have yet; a value that disagrees with a stored one
    keeps the first and is recorded as a MessageConflict. On PostgreSQL a
    plain new uplink is stored by readings.services.fastpath, proven to write the same
    rows (tests/readings/services/test_fastpath.py). Each copy may place the
    device for the message (DeviceLocation, see _locations_keep).
    """
    if fastpath.applies(uplink):
        if fastpath.ingest(uplink, now=now, min_spacing_s=settings.SIGFOX_MIN_FRAME_SPACING_S):
            return IngestResult(created=True, path="fast")
        # A copy of a stored frame, or a new series: below.
    return _message_ingest_orm(uplink=uplink, now=now)


@transaction.atomic
def _message_ingest_orm(*, uplink: UplinkCallback, now: datetime) -> IngestResult:
    """Every kind of uplink, on every database, through the ORM."""
    device = device_upsert(
        sigfox_id=uplink.device_id, time=uplink.time, device_type_id=uplink.device_type_id, now=now
    )
    existing = Message.objects.filter(device=device, time=uplink.time).first()
    if existing is not None:
        return _message_merge(existing, uplink=uplink, device=device, now=now)

    downlink_data = device.downlink_pending() if uplink.ack and uplink.answerable else ""
    decoded = payload_decode(config=payload_config_for(device), data=uplink.data)
    field_errors = dict(uplink.field_errors)
    if uplink.device_type_id and getattr(device.device_type, "sigfox_id", None) != uplink.device_type_id:
        field_errors["deviceTypeId"] = (
            f"No new device type: the site has {settings.SIGFOX_MAX_DEVICE_TYPES} already "
            "(SIGFOX_MAX_DEVICE_TYPES).")
    if decoded.error:
        field_errors["data"] = decoded.error
    message = Message.objects.create(
        device=device,
        time=uplink.time,
        seq_number=uplink.seq_number,
        sensor=uplink.sensor,
        body_raw=uplink.body_raw,
        content_type=uplink.content_type,
        received_at=now,
        data=uplink.data or "",
        payload_fields=decoded.stored,
        values_raw={uplink.sensor: uplink.values_raw} if uplink.values_raw else None,
        text_values=uplink.text_values or None,
        field_errors=field_errors or None,
        downlink_data=downlink_data,
        device_type=device.device_type if uplink.device_type_id else None,
        **{name: getattr(uplink, name) for name in MERGED_FIELDS if getattr(uplink, name) is not None},
    )
    added = _readings_add(message, sent=uplink.values, raw=uplink.values_raw, sensor=uplink.sensor,
                          decoded=decoded.numbers, device=device, now=now, merging=False)
    if any((uplink.sensor, q) not in added for q in uplink.values_raw):
        # values_raw holds the raw values of the readings stored, for redecode to scale.
        kept = {q: v for q, v in uplink.values_raw.items() if (uplink.sensor, q) in added}
        message.values_raw = {uplink.sensor: kept} if kept else None
        Message.objects.filter(pk=message.pk).update(values_raw=message.values_raw)
    _reception_add(message, uplink, now)
    _locations_keep(message, uplink=uplink, decoded=decoded.numbers, device=device, now=now)
    if uplink.seq_number is not None:
        sequence_gaps_refresh(message=message)
    if downlink_data:
        Downlink.objects.create(
            device=device, message=message, data=downlink_data, mode=device.downlink_mode,
            answered_at=now,
        )
    return IngestResult(created=True, downlink_data=downlink_data)


def _readings_add(
    message: Message, *, sent: dict[str, float], raw: dict, sensor: str,
    decoded: dict[str, float], device: Device, now: datetime, merging: bool,
) -> set[tuple[str, str]]:
    """Add the readings a copy of the frame carries that the frame does not have yet.

    Values the callback sent itself win over the same names decoded here.
    Decoded readings are kept under the message's own sensor (redecode
    replaces them there). A reading already stored with another value (or,
    for integers past 2^53, another exact value as sent), or a name the frame
    holds as text, keeps what is stored, and the disagreement is recorded. A
    value that its scale makes infinite, or past the series bounds, makes no
    reading and is named in the message's field_errors. Returns the
    (sensor, quantity) of the readings added.
    """
    scales = quantity_scales(device)
    wanted: dict[tuple[str, str], tuple[float, bool]] = {}
    for quantity, value in decoded.items():
        if not (sensor == message.sensor and quantity in sent):
            wanted[(message.sensor, quantity)] = (scaled(value, scales.get(quantity)), True)
    for quantity, value in sent.items():
        wanted[(sensor, quantity)] = (scaled(value, scales.get(quantity)), False)
    errors = {}
    for key, (value, _) in list(wanted.items()):
        if not math.isfinite(value):
            errors[key[1]] = "Value × scale + offset is not a finite number: no reading."
            del wanted[key]
    if wanted:
        admitted, refused = series_admit(device=device, keys=list(wanted), now=now)
        wanted = {key: value for key, value in wanted.items() if key in admitted}
        errors.update({q: reason for (_, q), reason in refused.items()})
    if errors:
        message.field_errors = {**(message.field_errors or {}), **errors}
        Message.objects.filter(pk=message.pk).update(field_errors=message.field_errors)
    if not wanted:
        return set()
    stored = {
        (s, q): v for s, q, v in
        Reading.objects.filter(message=message).values_list("sensor", "quantity", "value")
    } if merging else {}
    stored_raw = (message.values_raw or {}).get(sensor, {}) if merging else {}
    texts = (message.text_values or {}) if merging else {}
    new = []
    for (reading_sensor, quantity), (value, was_decoded) in wanted.items():
        kept = stored.get((reading_sensor, quantity))
        if kept is None and quantity in texts:
            _conflict(message, device, quantity, reading_sensor, texts[quantity], value, now)
        elif kept is None:
            new.append(Reading(message=message, device=device, sensor=reading_sensor,
                               quantity=quantity, value=value, time=message.time,
                               from_payload=was_decoded))
        elif kept != value:
            _conflict(message, device, quantity, reading_sensor, kept, value, now)
        elif (not was_decoded and quantity in stored_raw and quantity in raw
              and stored_raw[quantity] != raw[quantity]):
            # Equal as floats, not as sent: integers past 2^53.
            _conflict(message, device, quantity, reading_sensor, stored_raw[quantity],
                      raw[quantity], now)
    Reading.objects.bulk_create(new)
    return {(r.sensor, r.quantity) for r in new}


def _conflict(message: Message, device: Device, variable: str, sensor: str, kept, other,
              now: datetime) -> None:
    """Record that a copy of the frame disagreed with it (the stored value is kept)."""
    kept_text, other_text = (v if isinstance(v, str) else repr(v) for v in (kept, other))
    MessageConflict.objects.create(
        message=message, variable=variable, sensor=sensor, kept_value=kept_text[:64],
        other_value=other_text[:64], received_at=now,
    )
    log.warning("frame of %s at %s: %s (sensor %s) came again as %s; kept %s",
                device.sigfox_id, message.time.isoformat(), variable, sensor or "-",
                other_text[:64], kept_text[:64])


def _message_merge(message: Message, *, uplink: UplinkCallback, device: Device, now: datetime) -> IngestResult:
    """Merge a later copy of a stored frame into it (see message_ingest)."""
    changes: dict = {}
    if uplink.seq_number is not None:
        if message.seq_number is None:
            changes["seq_number"] = uplink.seq_number
        elif message.seq_number != uplink.seq_number:
            MessageConflict.objects.create(
                message=message, variable="seqNumber", kept_value=str(message.seq_number),
                other_value=str(uplink.seq_number), received_at=now,
            )
            log.warning("frame of %s at %s came again with seqNumber %s; kept %s",
                        device.sigfox_id, message.time.isoformat(), uplink.seq_number,
                        message.seq_number)
    if uplink.device_type_id and message.device_type_id is None:
        changes["device_type_id"] = device.device_type_id
    for name in MERGED_FIELDS:
        new = getattr(uplink, name)
        if new is not None and new != "" and getattr(message, name) in (None, ""):
            changes[name] = new
    if uplink.ack and message.ack is False:
        changes["ack"] = True  # one copy asked for a downlink: the device waited
    current_errors = message.field_errors or {}
    if any(key not in current_errors for key in uplink.field_errors):
        changes["field_errors"] = {**uplink.field_errors, **current_errors}
    texts = dict(message.text_values or {})
    numbers = set(Reading.objects.filter(message=message).values_list("quantity", flat=True))
    for name, text in uplink.text_values.items():
        if name in texts:
            if texts[name] != text:
                _conflict(message, device, name, "", texts[name], text, now)
        elif name in numbers:
            _conflict(message, device, name, "", "a reading", text, now)
        else:
            texts[name] = text
    if texts != (message.text_values or {}):
        changes["text_values"] = texts
    decoded = Decoded({}, None)
    if uplink.data and not message.data:
        changes["data"] = uplink.data
        decoded = payload_decode(config=payload_config_for(device), data=uplink.data)
        changes["payload_fields"] = decoded.stored
        if decoded.error:
            changes["field_errors"] = {**changes.get("field_errors", message.field_errors or {}),
                                       "data": decoded.error}
    downlink_data = message.downlink_data
    if uplink.ack and uplink.answerable and not message.ack and not downlink_data:
        # The BIDIR copy asks after a copy that did not ask (UPLINK, DATA
        # ADVANCED) was stored: answer it now, as if it had come first. A
        # copy that asked before was answered then, and the same answer stands.
        downlink_data = device.downlink_pending()
        if downlink_data:
            changes["downlink_data"] = downlink_data
            Downlink.objects.create(device=device, message=message, data=downlink_data,
                                    mode=device.downlink_mode, answered_at=now)
    for name, value in changes.items():
        setattr(message, name, value)
    if changes:
        Message.objects.filter(pk=message.pk).update(**changes)
    added = _readings_add(message, sent=uplink.values, raw=uplink.values_raw, sensor=uplink.sensor,
                          decoded=decoded.numbers, device=device, now=now, merging=True)
    raw_added = {q: v for q, v in uplink.values_raw.items() if (uplink.sensor, q) in added}
    if raw_added:
        # values_raw holds the raw values of the readings stored, for redecode to scale.
        raw_current = message.values_raw or {}
        values_raw = {**raw_current, uplink.sensor: {**raw_current.get(uplink.sensor, {}), **raw_added}}
        Message.objects.filter(pk=message.pk).update(values_raw=values_raw)
    _reception_add(message, uplink, now)
    _locations_keep(message, uplink=uplink, decoded=decoded.numbers, device=device, now=now)
    if "seq_number" in changes:
        sequence_gaps_refresh(message=message)
    return IngestResult(created=False, downlink_data=downlink_data if uplink.ack else "")


def _locations_keep(message: Message, *, uplink: UplinkCallback, decoded: dict[str, float],
                    device: Device, now: datetime) -> None:
    """Keep where the device was for this message, from what this copy says
    (readings.services.events.location_keep decides between sources):

    - DATA ADVANCED `{computedLocation}` (or the Sigfox API's, which
      sigfoxapi hands in the same variable): the network's estimate, with
      its radius, when its status says located;
    - a pair of values named like coordinates among the numbers decoded
      from the payload now and those the callback sent (which win, as for
      readings), each after its quantity scale: the device's own fix.
    """
    fix = computed_location_fix(uplink.computed_location)
    if fix is not None:
        location_keep(device=device, time=message.time, lat=fix.lat, lng=fix.lng,
                      radius_m=fix.radius_m, source=LocationSource.NETWORK,
                      sigfox_source=fix.sigfox_source, seq_number=message.seq_number, now=now)
    numbers = {**decoded, **uplink.values}
    if any(is_coordinate_name(name) for name in numbers):
        scales = quantity_scales(device)
        pair = coordinates_in({name: scaled(value, scales.get(name))
                               for name, value in numbers.items() if is_coordinate_name(name)})
        if pair is not None:
            location_keep(device=device, time=message.time, lat=pair[0], lng=pair[1],
                          source=LocationSource.PAYLOAD, seq_number=message.seq_number, now=now)


def _reception_add(message: Message, uplink: UplinkCallback, now: datetime) -> None:
    if uplink.station:
        Reception.objects.bulk_create(
            [
                Reception(
                    message=message,
                    station=uplink.station,
                    rssi=uplink.rssi,
                    snr=uplink.snr,
                    duplicate=bool(uplink.duplicate),
                    received_at=now,
                )
            ],
            ignore_conflicts=True,
        )
