"""Writes: storing callbacks and pruning old readings."""

import hashlib
import json
import operator
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import reduce

from django.db import IntegrityError, transaction
from django.db.models import Exists, OuterRef, Q

from readings.models import Device, Message, Reading


@dataclass(frozen=True, slots=True)
class IngestResult:
    message: Message
    created: bool


def dedup_key(*, seq_number: int | None, sensor: str, values: dict[str, float]) -> str:
    """What tells this message apart from others of the same device and time.

    With a sequence number, the backend's own identity; without one, the
    sensor and the values, so that a retried callback matches itself.
    """
    if seq_number is not None:
        return f"seq:{seq_number}"
    canonical = json.dumps([sensor, sorted(values.items())], separators=(",", ":"))
    return "val:" + hashlib.sha256(canonical.encode()).hexdigest()[:40]


def device_touch(*, sigfox_id: str, time: datetime) -> Device:
    """The device with this id, registered if new, its first/last seen widened to `time`."""
    device = Device.objects.filter(sigfox_id=sigfox_id).first()
    if device is None:
        try:
            with transaction.atomic():
                return Device.objects.create(sigfox_id=sigfox_id, first_seen=time, last_seen=time)
        except IntegrityError:
            # Another request registered it in the meantime.
            device = Device.objects.get(sigfox_id=sigfox_id)
    # A device added in the admin has not been seen yet: both are null.
    if device.last_seen is None or time > device.last_seen:
        Device.objects.filter(Q(last_seen__lt=time) | Q(last_seen=None), pk=device.pk).update(
            last_seen=time
        )
        device.last_seen = time
    if device.first_seen is None or time < device.first_seen:
        Device.objects.filter(Q(first_seen__gt=time) | Q(first_seen=None), pk=device.pk).update(
            first_seen=time
        )
        device.first_seen = time
    return device


@transaction.atomic
def message_ingest(
    *,
    device_id: str,
    time: datetime,
    sensor: str,
    values: dict[str, float],
    seq_number: int | None = None,
    body_raw: str = "",
    content_type: str = "",
    now: datetime,
) -> IngestResult:
    """Store one uplink and its readings, once: a repeat returns the stored message."""
    device = device_touch(sigfox_id=device_id, time=time)
    key = dedup_key(seq_number=seq_number, sensor=sensor, values=values)
    try:
        with transaction.atomic():
            message = Message.objects.create(
                device=device,
                time=time,
                seq_number=seq_number,
                sensor=sensor,
                body_raw=body_raw,
                content_type=content_type,
                received_at=now,
                dedup_key=key,
            )
    except IntegrityError:
        existing = Message.objects.get(device=device, time=time, dedup_key=key)
        return IngestResult(message=existing, created=False)
    Reading.objects.bulk_create(
        Reading(
            message=message,
            device=device,
            sensor=sensor,
            quantity=quantity,
            value=value,
            time=time,
        )
        for quantity, value in values.items()
    )
    return IngestResult(message=message, created=True)


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
