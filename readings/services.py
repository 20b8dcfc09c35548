"""Writes: storing callbacks and pruning old readings."""

import hashlib
import json
import logging
import math
import operator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import reduce

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Exists, OuterRef, Q

from readings import fastpath, payload
from readings.models import (
    Acknowledge,
    Device,
    DeviceType,
    Downlink,
    DownlinkMode,
    InfoCode,
    Message,
    Reading,
    Reception,
    SequenceGap,
)

log = logging.getLogger(__name__)


SEQ_MODULO = 4096  # sequence numbers are 12 bits on the radio

# Message columns the later DATA ADVANCED callback (or a duplicate) may fill in.
MERGED_FIELDS = (
    "ack", "long_polling", "station", "rssi", "snr", "avg_snr", "lat", "lng",
    "lqi", "link_quality", "operator_name", "country_code", "fixed_lat", "fixed_lng",
    "duplicates", "computed_location",
)


@dataclass(frozen=True, slots=True, kw_only=True)
class Uplink:
    """One uplink callback, validated: Sigfox variables in snake_case."""

    device_id: str
    time: datetime
    sensor: str
    values: dict[str, float] = field(default_factory=dict)
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


def dedup_key(
    *, seq_number: int | None, sensor: str, values: dict[str, float], data: str | None = None
) -> str:
    """What tells this message apart from others of the same device and time.

    With a sequence number, the backend's own identity; without one, the
    sensor, the raw payload and the values, so that a retried callback
    matches itself.
    """
    if seq_number is not None:
        return f"seq:{seq_number}"
    canonical = json.dumps([sensor, data or "", sorted(values.items())], separators=(",", ":"))
    return "val:" + hashlib.sha256(canonical.encode()).hexdigest()[:40]


def device_type_touch(*, sigfox_id: str, now: datetime) -> DeviceType:
    device_type = DeviceType.objects.filter(sigfox_id=sigfox_id).first()
    if device_type is None:
        try:
            with transaction.atomic():
                return DeviceType.objects.create(sigfox_id=sigfox_id, first_seen=now)
        except IntegrityError:
            device_type = DeviceType.objects.get(sigfox_id=sigfox_id)
    return device_type


@dataclass(slots=True)
class TouchedDevice:
    device: Device
    # Before this message: None for a device registered by it.
    previous_seen: datetime | None
    previous_seq: int | None


def device_touch(
    *, sigfox_id: str, time: datetime, device_type_id: str | None = None, now: datetime
) -> TouchedDevice:
    """The device with this id, registered if new, its first/last seen widened to `time`.

    The row stays locked until the transaction ends, so that messages of one
    device arriving at once see each other's sequence numbers in order.
    """
    devices = Device.objects.select_related("device_type").select_for_update(of=("self",))
    device = devices.filter(sigfox_id=sigfox_id).first()
    device_type = None
    if device_type_id and (device is None or getattr(device.device_type, "sigfox_id", None) != device_type_id):
        device_type = device_type_touch(sigfox_id=device_type_id, now=now)
    if device is None:
        try:
            with transaction.atomic():
                created = Device.objects.create(
                    sigfox_id=sigfox_id, first_seen=time, last_seen=time, device_type=device_type
                )
            return TouchedDevice(created, previous_seen=None, previous_seq=None)
        except IntegrityError:
            # Another request registered it in the meantime.
            device = devices.get(sigfox_id=sigfox_id)
    touched = TouchedDevice(device, previous_seen=device.last_seen, previous_seq=device.last_seq_number)
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
    return touched


def payload_config_for(device: Device) -> str:
    """The config that decodes this device's payloads: its own, its type's, or the site's."""
    if device.payload_config.strip():
        return device.payload_config
    if device.device_type is not None and device.device_type.payload_config.strip():
        return device.device_type.payload_config
    return settings.SIGFOX_PAYLOAD_CONFIG


def payload_decode(*, config: str, data: str) -> tuple[dict[str, float], dict | None]:
    """(numeric and boolean fields as floats, the whole decode made JSON-safe)."""
    if not config.strip() or data is None:
        return {}, None
    try:
        fields = payload.decode(config, data)
    except payload.PayloadError as exc:
        log.warning("payload %r not decoded with %r: %s", data, config, exc)
        return {}, None
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
    return numbers, stored


def _merge_into(message: Message, uplink: Uplink, device: Device) -> None:
    """Fill what a later callback of the same message knows and the first did not."""
    changes = {}
    if uplink.device_type_id and message.device_type_id is None:
        changes["device_type_id"] = message.device_type_id = device.device_type_id
    for name in MERGED_FIELDS:
        new = getattr(uplink, name)
        if new is None or new == "":
            continue
        if getattr(message, name) in (None, ""):
            changes[name] = new
            setattr(message, name, new)
    if changes:
        Message.objects.filter(pk=message.pk).update(**changes)


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


def message_ingest(*, uplink: Uplink, now: datetime) -> IngestResult:
    """Store one uplink and its readings, once.

    A repeat of a stored message (a retry, a duplicate from another base
    station, the later DATA ADVANCED callback) adds no reading: it only fills
    in metadata and records the extra reception, and gets the same answer.
    """
    if fastpath.applies(uplink):
        created = fastpath.ingest(uplink, key=_dedup_key_of(uplink), now=now)
        if created or not any(getattr(uplink, name) is not None for name in MERGED_FIELDS):
            return IngestResult(created=created)
        # A repeat that knows more than the stored message: merge it below.
    return _message_ingest_orm(uplink=uplink, now=now)


def _dedup_key_of(uplink: Uplink) -> str:
    return dedup_key(
        seq_number=uplink.seq_number, sensor=uplink.sensor, values=uplink.values, data=uplink.data
    )


@transaction.atomic
def _message_ingest_orm(*, uplink: Uplink, now: datetime) -> IngestResult:
    """Every kind of uplink, on every database, through the ORM."""
    touched = device_touch(
        sigfox_id=uplink.device_id, time=uplink.time, device_type_id=uplink.device_type_id, now=now
    )
    device = touched.device
    key = _dedup_key_of(uplink)
    existing = Message.objects.filter(device=device, time=uplink.time, dedup_key=key).first()
    if existing is not None:
        _merge_into(existing, uplink, device)
        _reception_add(existing, uplink, now)
        return IngestResult(created=False, downlink_data=existing.downlink_data)

    downlink_data = device.downlink_pending() if uplink.ack else ""
    decoded_values, decoded = payload_decode(config=payload_config_for(device), data=uplink.data)
    # The device row is locked, so no other request can insert this message
    # now: a unique violation here would be a bug, not a duplicate.
    message = Message.objects.create(
        device=device,
        time=uplink.time,
        seq_number=uplink.seq_number,
        sensor=uplink.sensor,
        body_raw=uplink.body_raw,
        content_type=uplink.content_type,
        received_at=now,
        dedup_key=key,
        data=uplink.data or "",
        decoded=decoded,
        downlink_data=downlink_data,
        device_type=device.device_type if uplink.device_type_id else None,
        **{name: getattr(uplink, name) for name in MERGED_FIELDS if getattr(uplink, name) is not None},
    )
    # Values the callback sent itself win over the same names decoded here.
    readings = [
        Reading(message=message, device=device, sensor=uplink.sensor, quantity=quantity,
                value=value, time=uplink.time, decoded=False)
        for quantity, value in uplink.values.items()
    ]
    readings += [
        Reading(message=message, device=device, sensor=uplink.sensor, quantity=quantity,
                value=value, time=uplink.time, decoded=True)
        for quantity, value in decoded_values.items()
        if quantity not in uplink.values
    ]
    Reading.objects.bulk_create(readings)
    _reception_add(message, uplink, now)

    previous_seen, previous_seq = touched.previous_seen, touched.previous_seq
    if uplink.seq_number is not None and (previous_seen is None or uplink.time > previous_seen):
        Device.objects.filter(pk=device.pk).update(last_seq_number=uplink.seq_number)
        missing = lost_between(previous_seq, uplink.seq_number)
        if missing:
            SequenceGap.objects.create(
                device=device, message=message, previous_seq_number=previous_seq,
                seq_number=uplink.seq_number, missing=missing, time=uplink.time,
            )
    if downlink_data:
        Downlink.objects.create(
            device=device, message=message, data=downlink_data, mode=device.downlink_mode,
            answered_at=now,
        )
    return IngestResult(created=True, downlink_data=downlink_data)


def lost_between(previous_seq: int | None, seq: int) -> int:
    """How many messages were lost between two sequence numbers (they wrap at 4096)."""
    if previous_seq is None:
        return 0
    missing = (seq - previous_seq - 1) % SEQ_MODULO
    # SEQ_MODULO - 1 would mean the same number again: a reset, not a loss.
    return missing if missing < SEQ_MODULO - 1 else 0


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
        device = device_touch(sigfox_id=device_id, time=time, now=now).device
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
    """Decode stored raw payloads again with the configs in force now.

    Readings decoded here before are replaced; values the callback sent
    itself are never touched. One transaction per batch of messages.
    """
    messages = Message.objects.exclude(data="").select_related("device__device_type").order_by("pk")
    if device_id is not None:
        messages = messages.filter(device__sigfox_id=device_id)
    if since is not None:
        messages = messages.filter(time__gte=since)
    seen = changed = deleted = created = 0
    last_pk = 0
    while True:
        with transaction.atomic():
            batch = list(messages.filter(pk__gt=last_pk)[:batch_size])
            if not batch:
                break
            last_pk = batch[-1].pk
            sent = _sent_quantities([message.pk for message in batch])
            for message in batch:
                seen += 1
                values, stored = payload_decode(config=payload_config_for(message.device), data=message.data)
                values = {q: v for q, v in values.items() if q not in sent.get(message.pk, ())}
                current = dict(
                    Reading.objects.filter(message=message, decoded=True).values_list("quantity", "value")
                )
                if current == values and message.decoded == stored:
                    continue
                changed += 1
                if dry_run:
                    continue
                deleted += Reading.objects.filter(message=message, decoded=True).delete()[0]
                Reading.objects.bulk_create(
                    Reading(message=message, device_id=message.device_id, sensor=message.sensor,
                            quantity=quantity, value=value, time=message.time, decoded=True)
                    for quantity, value in values.items()
                )
                created += len(values)
                Message.objects.filter(pk=message.pk).update(decoded=stored)
        if on_batch is not None:
            on_batch(seen)
    return RedecodeResult(messages=seen, changed=changed, readings_deleted=deleted, readings_created=created)


def _sent_quantities(message_pks: list[int]) -> dict[int, set[str]]:
    """The quantities each message's callback sent itself (never replaced by decoding)."""
    sent: dict[int, set[str]] = {}
    rows = Reading.objects.filter(message_id__in=message_pks, decoded=False).values_list("message_id", "quantity")
    for message_pk, quantity in rows:
        sent.setdefault(message_pk, set()).add(quantity)
    return sent
