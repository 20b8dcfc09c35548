"""Writes: storing callbacks and pruning old readings."""

import logging
import math
import operator
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import reduce

from django.conf import settings
from django.db import DatabaseError, IntegrityError, transaction
from django.db.models import Exists, F, OuterRef, Q
from django.utils import timezone

from readings import fastpath, payload, sigfox
from readings.models import (
    Acknowledge,
    Device,
    DeviceType,
    Downlink,
    DownlinkMode,
    InfoCode,
    Message,
    MessageConflict,
    Quantity,
    QuantitySetting,
    Reading,
    Reception,
    Rejection,
    SequenceGap,
    Series,
)

log = logging.getLogger(__name__)


# Message columns that a later copy of the frame (a duplicate, the BIDIR or
# UPLINK twin, DATA ADVANCED) may fill in when the stored copy lacks them.
MERGED_FIELDS = (
    "ack", "long_polling", "station", "rssi", "snr", "avg_snr", "lat", "lng",
    "lqi", "link_quality", "operator_name", "country_code", "fixed_lat", "fixed_lng",
    "duplicates", "computed_location",
)


@dataclass(frozen=True, slots=True, kw_only=True)
class Uplink:
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


@dataclass(frozen=True, slots=True)
class IngestResult:
    created: bool
    # Hex to answer the device with (BIDIR), or "".
    downlink_data: str = ""
    # Which implementation stored it: "fast" (readings.fastpath) or "orm".
    path: str = "orm"


def device_type_touch(*, sigfox_id: str, now: datetime) -> DeviceType | None:
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
        device_type = device_type_touch(sigfox_id=device_type_id, now=now)
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


def payload_config_for(device: Device) -> str:
    """The config that decodes this device's payloads: its own, its type's, or the site's."""
    if device.payload_config.strip():
        return device.payload_config
    if device.device_type is not None and device.device_type.payload_config.strip():
        return device.device_type.payload_config
    return settings.SIGFOX_PAYLOAD_CONFIG


@dataclass(frozen=True, slots=True)
class Decoded:
    """What a payload config made of a payload.

    `numbers`: numeric and boolean fields as floats (the readings, before any
    scale); `stored`: every field made JSON-safe (integers exact), for
    Message.decoded; `error`: why nothing could be decoded, or "".
    """

    numbers: dict[str, float]
    stored: dict | None
    error: str = ""


def payload_decode(*, config: str, data: str | None) -> Decoded:
    """Decode `data` (hex) with `config`; a refused config or payload is an error, never silence."""
    if not config.strip() or data is None:
        return Decoded({}, None)
    try:
        fields = payload.decode(config, data)
    except payload.PayloadError as exc:
        log.warning("payload %r not decoded with %r: %s", data, config, exc)
        return Decoded({}, None, f"not decoded: {exc}")
    numbers, stored = {}, {}
    for name, value in fields.items():
        if isinstance(value, float) and not math.isfinite(value):
            value = None  # JSON cannot hold it, and a reading must be finite
        elif isinstance(value, str):
            value = value.replace("\x00", "\ufffd")  # PostgreSQL's JSON cannot hold NUL
        stored[name] = value
        if isinstance(value, bool):
            numbers[name] = 1.0 if value else 0.0
        elif isinstance(value, int | float):
            numbers[name] = float(value)
    return Decoded(numbers, stored)


def quantity_scales(device: Device) -> dict[str, tuple[float, float]]:
    """{quantity: (scale, offset)} for the device: its own settings over its type's."""
    rows = QuantitySetting.objects.filter(
        Q(device_id=device.pk) | Q(device_type_id=device.device_type_id, device__isnull=True)
        if device.device_type_id else Q(device_id=device.pk)
    ).values_list("quantity", "scale", "offset", "device_id")
    scales: dict[str, tuple[float, float]] = {}
    for quantity, scale, offset, own in sorted(rows, key=lambda row: row[3] is not None):
        scales[quantity] = (scale, offset)
    return scales


def scaled(value: float, scale_offset: tuple[float, float] | None) -> float:
    """raw × scale + offset, the value a reading stores (readings.fastpath computes the same in SQL)."""
    if scale_offset is None:
        return value
    scale, offset = scale_offset
    return value * scale + offset


def message_ingest(*, uplink: Uplink, now: datetime) -> IngestResult:
    """Store one uplink callback: a new frame, or a copy merged into the stored one.

    A frame is its device and time. A later copy (a retry, a duplicate from
    another base station, the BIDIR or UPLINK twin, DATA ADVANCED, a callback
    to another sensor path) fills in what the stored frame lacks and adds the
    readings it does not have yet; a value that disagrees with a stored one
    keeps the first and is recorded as a MessageConflict. On PostgreSQL a
    plain new uplink is stored by readings.fastpath, proven to write the same
    rows (tests/test_fastpath.py).
    """
    if fastpath.applies(uplink):
        if fastpath.ingest(uplink, now=now, min_spacing_s=settings.SIGFOX_MIN_FRAME_SPACING_S):
            return IngestResult(created=True, path="fast")
        # A copy of a stored frame, or a new series: below.
    return _message_ingest_orm(uplink=uplink, now=now)


@transaction.atomic
def _message_ingest_orm(*, uplink: Uplink, now: datetime) -> IngestResult:
    """Every kind of uplink, on every database, through the ORM."""
    device = device_upsert(
        sigfox_id=uplink.device_id, time=uplink.time, device_type_id=uplink.device_type_id, now=now
    )
    existing = Message.objects.filter(device=device, time=uplink.time).first()
    if existing is not None:
        return _message_merge(existing, uplink=uplink, device=device, now=now)

    downlink_data = device.downlink_pending() if uplink.ack else ""
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
        decoded=decoded.stored,
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
                               decoded=was_decoded))
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


_last_logged: dict[str, float] = {}


def log_limited(key: str, message: str, *args, every_s: float = 60.0) -> None:
    """A warning at most once every `every_s` seconds per key (per process), so
    that a flood cannot fill the disk with one line per request."""
    now_s = time.monotonic()
    if now_s - _last_logged.get(key, -every_s) < every_s:
        return
    if len(_last_logged) > 10_000:
        _last_logged.clear()
    _last_logged[key] = now_s
    log.warning(message, *args)


# The newest rejections kept; older ones are deleted as new ones come.
REJECTIONS_KEPT = 1000
REJECTION_WINDOW_S = 60.0
# Per process: (status, device or address) -> [start of its window, rejections suppressed].
_rejection_windows: dict[tuple[int, str], list] = {}
_rejections_written = 0


def rejection_record(
    *, status: int, reason: str, path: str, device_id: str = "", client_address: str = "",
    now: datetime,
) -> Rejection | None:
    """Record and log a refused callback, at most once a minute per device (or
    address) and status in each worker process; the rows recorded in between
    count the ones left out (`repeated`). Never raises: a database that cannot
    take the record leaves the log line only. Returns the row written, if any.
    """
    key = (status, device_id or client_address)
    now_s = time.monotonic()
    window = _rejection_windows.get(key)
    if window is not None and now_s - window[0] < REJECTION_WINDOW_S:
        window[1] += 1
        return None
    if len(_rejection_windows) > 10_000:
        _rejection_windows.clear()
    repeated = window[1] if window is not None else 0
    _rejection_windows[key] = [now_s, 0]
    log.warning("callback refused (%d) from %s%s: %s", status, client_address or "?",
                f", device {device_id}" if device_id else "", reason)
    global _rejections_written
    try:
        row = Rejection.objects.create(
            time=now, status=status, device_id=device_id[:8], reason=reason[:300], path=path[:200],
            client_address=client_address[:45], repeated=repeated,
        )
        _rejections_written += 1
        if _rejections_written % 50 == 1:
            Rejection.objects.filter(pk__lte=row.pk - REJECTIONS_KEPT).delete()
        return row
    except DatabaseError as exc:
        log.warning("rejection not recorded: %s", exc)
        return None


def _message_merge(message: Message, *, uplink: Uplink, device: Device, now: datetime) -> IngestResult:
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
        changes["decoded"] = decoded.stored
        if decoded.error:
            changes["field_errors"] = {**changes.get("field_errors", message.field_errors or {}),
                                       "data": decoded.error}
    downlink_data = message.downlink_data
    if uplink.ack and not message.ack and not downlink_data:
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
    if "seq_number" in changes:
        sequence_gaps_refresh(message=message)
    return IngestResult(created=False, downlink_data=downlink_data if uplink.ack else "")


def _reception_add(message: Message, uplink: Uplink, now: datetime) -> None:
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


def sequence_gaps_refresh(*, message: Message) -> None:
    """Work out the sequence records around a message that has a seqNumber.

    A gap is measured from the message just before in time to the one just
    after, so a late retry or a recovered message splits or removes the gap
    it falls into, and an arrival out of order is never a loss. A jump the
    device could not have made in the time between is a counter reset
    (readings.sigfox.is_counter_reset). readings.fastpath does the same in SQL.
    """
    with_seq = Message.objects.filter(device_id=message.device_id, seq_number__isnull=False)
    columns = ("pk", "time", "seq_number")
    before = with_seq.filter(time__lt=message.time).order_by("-time").values_list(*columns).first()
    after = with_seq.filter(time__gt=message.time).order_by("time").values_list(*columns).first()
    this = (message.pk, message.time, message.seq_number)
    if before is not None:
        _gap_record(message.device_id, before, this)
    else:
        SequenceGap.objects.filter(message_id=message.pk).delete()
    if after is not None:
        _gap_record(message.device_id, this, after)


def _gap_record(device_pk: int, before: tuple, after: tuple) -> None:
    """Record the gap (or reset) between two consecutive messages, or none."""
    jump = sigfox.sequence_jump(before[2], after[2])
    elapsed_s = (after[1] - before[1]) / timedelta(seconds=1)
    reset = sigfox.is_counter_reset(
        jump=jump, elapsed_s=elapsed_s, min_spacing_s=settings.SIGFOX_MIN_FRAME_SPACING_S
    )
    if not reset and jump == 1:
        SequenceGap.objects.filter(message_id=after[0]).delete()
        return
    SequenceGap.objects.update_or_create(
        message_id=after[0],
        defaults={"device_id": device_pk, "previous_seq_number": before[2],
                  "seq_number": after[2], "missing": 0 if reset else jump - 1,
                  "reset": reset, "time": after[1]},
    )


@dataclass(frozen=True, slots=True)
class AcknowledgeResult:
    acknowledge: Acknowledge
    created: bool


@transaction.atomic
def acknowledge_record(
    *,
    device_id: str,
    time: datetime,
    info_code: int,
    info_message: str | None = None,
    downlink_ack: bool | None = None,
    downlink_overusage: bool | None = None,
    body_raw: str = "",
    now: datetime,
) -> AcknowledgeResult:
    """Record a SERVICE ACKNOWLEDGE and settle the downlink it reports on.

    A "send once" downlink counts as delivered only when the device ACKED it.
    """
    device = Device.objects.filter(sigfox_id=device_id).first()
    if device is None:
        device = device_upsert(sigfox_id=device_id, time=time, now=now)
    downlink = None
    if info_code != InfoCode.PENDING:  # PENDING settles nothing: the outcome comes later
        downlink = (
            Downlink.objects.filter(device=device, acknowledged_at=None, message__time__lte=time)
            .order_by("-answered_at")
            .first()
        )
    try:
        with transaction.atomic():
            acknowledge = Acknowledge.objects.create(
                device=device,
                time=time,
                info_code=info_code,
                info_meaning=InfoCode(info_code).label if info_code in InfoCode.values else "UNKNOWN",
                info_message=info_message or "",
                downlink_ack=downlink_ack,
                downlink_overusage=downlink_overusage,
                downlink=downlink,
                body_raw=body_raw,
                received_at=now,
            )
    except IntegrityError:
        existing = Acknowledge.objects.get(device=device, time=time, info_code=info_code)
        return AcknowledgeResult(acknowledge=existing, created=False)
    if downlink is not None:
        delivered = info_code == InfoCode.ACKED
        Downlink.objects.filter(pk=downlink.pk).update(
            acknowledged_at=time, info_code=info_code, delivered=delivered
        )
        if (
            delivered
            and downlink.mode == DownlinkMode.ONCE
            and device.downlink_data.lower() == downlink.data
        ):
            Device.objects.filter(pk=device.pk, downlink_data__iexact=downlink.data).update(
                downlink_delivered_at=time
            )
    return AcknowledgeResult(acknowledge=acknowledge, created=True)


@dataclass(frozen=True, slots=True)
class PruneResult:
    readings: int
    messages: int


def _prune_condition(
    *, device_id: int, sensor: str, quantities: list[str], cutoff: datetime | None, keep_last: int | None
) -> Q | None:
    """The readings of one device/sensor to delete, as one filter (None: nothing to delete).

    A reading goes when it is older than the cutoff and, with keep_last, is
    not among the keep_last newest of its series: both options only protect.
    """
    per_quantity = []
    for quantity in quantities:
        condition = Q(quantity=quantity)
        if cutoff is not None:
            condition &= Q(time__lt=cutoff)
        if keep_last is not None:
            newest = (
                Reading.objects.filter(device_id=device_id, sensor=sensor, quantity=quantity)
                .order_by("-time", "-pk")
                .values_list("time", "pk")[keep_last - 1 : keep_last]
            )
            boundary = newest.first()
            if boundary is None:
                continue  # the series holds no more than keep_last readings
            time, pk = boundary
            condition &= Q(time__lt=time) | Q(time=time, pk__lt=pk)
        per_quantity.append(condition)
    if not per_quantity:
        return None
    return Q(device_id=device_id, sensor=sensor) & reduce(operator.or_, per_quantity)


def readings_prune(
    *,
    older_than: timedelta | None = None,
    keep_last: int | None = None,
    device_id: str | None = None,
    dry_run: bool = False,
    now: datetime,
    batch_size: int = 2000,
    on_batch=None,
) -> PruneResult:
    """Delete old readings (and the messages they leave empty), a batch per transaction.

    Each batch is its own short transaction so that callbacks arriving during
    a large prune wait at most for one batch.
    """
    if older_than is None and keep_last is None:
        raise ValueError("give older_than, keep_last or both")
    cutoff = now - older_than if older_than is not None else None
    groups: dict[tuple[int, str], list[str]] = {}
    keys = Reading.objects.order_by().values_list("device_id", "sensor", "quantity").distinct()
    if device_id is not None:
        keys = keys.filter(device__sigfox_id=device_id)
    for device_pk, sensor, quantity in keys:
        groups.setdefault((device_pk, sensor), []).append(quantity)

    total_readings = total_messages = 0
    for (device_pk, sensor), quantities in sorted(groups.items()):
        condition = _prune_condition(
            device_id=device_pk, sensor=sensor, quantities=quantities, cutoff=cutoff, keep_last=keep_last
        )
        if condition is None:
            continue
        doomed = Reading.objects.filter(condition)
        if dry_run:
            total_readings += doomed.count()
            survivors = Reading.objects.filter(message=OuterRef("pk")).exclude(condition)
            total_messages += (
                Message.objects.filter(pk__in=doomed.values("message_id"))
                .exclude(Exists(survivors))
                .count()
            )
            continue
        while True:
            with transaction.atomic():
                batch = list(doomed.order_by().values_list("pk", "message_id")[:batch_size])
                if not batch:
                    break
                Reading.objects.filter(pk__in=[pk for pk, _ in batch]).delete()
                emptied = Message.objects.filter(
                    pk__in={message_pk for _, message_pk in batch}
                ).exclude(Exists(Reading.objects.filter(message=OuterRef("pk"))))
                messages_deleted = emptied.delete()[1].get(Message._meta.label, 0)
            total_readings += len(batch)
            total_messages += messages_deleted
            if on_batch is not None:
                on_batch(total_readings)
    return PruneResult(readings=total_readings, messages=total_messages)


@dataclass(frozen=True, slots=True)
class RedecodeResult:
    messages: int
    changed: int
    readings_deleted: int
    readings_created: int


def messages_redecode(
    *,
    device_id: str | None = None,
    since: datetime | None = None,
    dry_run: bool = False,
    batch_size: int = 500,
    on_batch=None,
) -> RedecodeResult:
    """Decode stored raw payloads again, and scale stored values again, with
    the configs and quantity settings in force now.

    Readings decoded here before are replaced; values the callback sent
    itself keep their place and get the scale in force now applied to the
    raw value kept with their message. One transaction per batch of
    messages. Run over everything (no `since`), it clears the notices that
    an upgrade of the payload grammar left on configs.
    """
    messages = (
        Message.objects.filter(~Q(data="") | Q(values_raw__isnull=False))
        .select_related("device__device_type").order_by("pk")
    )
    if device_id is not None:
        messages = messages.filter(device__sigfox_id=device_id)
    if since is not None:
        messages = messages.filter(time__gte=since)
    seen = changed = deleted = created = 0
    last_pk = 0
    scales_of: dict[int, dict[str, tuple[float, float]]] = {}
    while True:
        with transaction.atomic():
            batch = list(messages.filter(pk__gt=last_pk)[:batch_size])
            if not batch:
                break
            last_pk = batch[-1].pk
            current = _readings_of([message.pk for message in batch])
            for message in batch:
                seen += 1
                if message.device_id not in scales_of:
                    scales_of[message.device_id] = quantity_scales(message.device)
                scales = scales_of[message.device_id]
                readings = current.get(message.pk, {})
                sent_here = {q for (s, q), (_, _, was_decoded) in readings.items()
                             if s == message.sensor and not was_decoded}
                decoded = payload_decode(config=payload_config_for(message.device), data=message.data or None)
                wanted = {q: scaled(v, scales.get(q)) for q, v in decoded.numbers.items() if q not in sent_here}
                have = {q: value for (s, q), (_, value, was_decoded) in readings.items() if was_decoded}
                rescaled = {}
                for sensor, raws in (message.values_raw or {}).items():
                    for quantity, raw in raws.items():
                        kept = readings.get((sensor, quantity))
                        value = scaled(float(raw), scales.get(quantity))
                        if kept is not None and not kept[2] and kept[1] != value:
                            rescaled[kept[0]] = value
                errors = dict(message.field_errors or {})
                errors.pop("data", None)
                if decoded.error:
                    errors["data"] = decoded.error
                if (have == wanted and message.decoded == decoded.stored and not rescaled
                        and errors == (message.field_errors or {})):
                    continue
                changed += 1
                if dry_run:
                    continue
                if have != wanted:
                    admitted, _ = series_admit(
                        device=message.device, keys=[(message.sensor, q) for q in wanted], now=timezone.now()
                    )
                    wanted = {q: v for q, v in wanted.items() if (message.sensor, q) in admitted}
                    deleted += Reading.objects.filter(message=message, decoded=True).delete()[0]
                    Reading.objects.bulk_create(
                        Reading(message=message, device_id=message.device_id, sensor=message.sensor,
                                quantity=quantity, value=value, time=message.time, decoded=True)
                        for quantity, value in wanted.items()
                    )
                    created += len(wanted)
                for pk, value in rescaled.items():
                    Reading.objects.filter(pk=pk).update(value=value)
                Message.objects.filter(pk=message.pk).update(
                    decoded=decoded.stored, field_errors=errors or None
                )
        if on_batch is not None:
            on_batch(seen)
    if not dry_run and since is None:
        devices = Device.objects.all() if device_id is None else Device.objects.filter(sigfox_id=device_id)
        devices.exclude(payload_config_notice="").update(payload_config_notice="")
        if device_id is None:
            DeviceType.objects.exclude(payload_config_notice="").update(payload_config_notice="")
    return RedecodeResult(messages=seen, changed=changed, readings_deleted=deleted, readings_created=created)


def _readings_of(message_pks: list[int]) -> dict[int, dict[tuple[str, str], tuple[int, float, bool]]]:
    """{message pk: {(sensor, quantity): (reading pk, value, decoded)}}."""
    found: dict[int, dict] = {}
    rows = Reading.objects.filter(message_id__in=message_pks).values_list(
        "message_id", "sensor", "quantity", "pk", "value", "decoded"
    )
    for message_pk, sensor, quantity, pk, value, was_decoded in rows:
        found.setdefault(message_pk, {})[(sensor, quantity)] = (pk, value, was_decoded)
    return found
