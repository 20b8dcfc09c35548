"""Keeping the data in shape: decoding stored payloads again (pruning is
storage.retention's)."""

import logging
from dataclasses import dataclass
from datetime import datetime

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from readings.models import (
    Device,
    DeviceType,
    Message,
    Reading,
)
from readings.services.decoding import payload_config_for, payload_decode, quantity_scales, scaled
from readings.services.devices import series_admit
from readings.services.rollups import rollups_invalidate

log = logging.getLogger(__name__)


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
    an upgrade of the payload grammar left on configs. The rollups of the
    hours whose readings are replaced or rescaled are marked to be computed
    again (readings.services.rollups).
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
            touched = []  # (device pk, sensor, quantity, time) of readings replaced or rescaled
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
                if (have == wanted and message.payload_fields == decoded.stored and not rescaled
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
                    touched.extend((message.device_id, s, q, message.time)
                                   for (s, q), (_, _, was_decoded) in readings.items() if was_decoded)
                    deleted += Reading.objects.filter(message=message, from_payload=True).delete()[0]
                    Reading.objects.bulk_create(
                        Reading(message=message, device_id=message.device_id, sensor=message.sensor,
                                quantity=quantity, value=value, time=message.time, from_payload=True)
                        for quantity, value in wanted.items()
                    )
                    created += len(wanted)
                if rescaled:
                    touched.extend((message.device_id, s, q, message.time)
                                   for (s, q), (pk, _, _) in readings.items() if pk in rescaled)
                for pk, value in rescaled.items():
                    Reading.objects.filter(pk=pk).update(value=value)
                Message.objects.filter(pk=message.pk).update(
                    payload_fields=decoded.stored, field_errors=errors or None
                )
            rollups_invalidate(touched)
        if on_batch is not None:
            on_batch(seen)
    if not dry_run and since is None:
        devices = Device.objects.all() if device_id is None else Device.objects.filter(sigfox_id=device_id)
        devices.exclude(payload_config_notice="").update(payload_config_notice="")
        if device_id is None:
            DeviceType.objects.exclude(payload_config_notice="").update(payload_config_notice="")
    return RedecodeResult(messages=seen, changed=changed, readings_deleted=deleted, readings_created=created)


def _readings_of(message_pks: list[int]) -> dict[int, dict[tuple[str, str], tuple[int, float, bool]]]:
    """{message pk: {(sensor, quantity): (reading pk, value, from_payload)}}."""
    found: dict[int, dict] = {}
    rows = Reading.objects.filter(message_id__in=message_pks).values_list(
        "message_id", "sensor", "quantity", "pk", "value", "from_payload"
    )
    for message_pk, sensor, quantity, pk, value, was_decoded in rows:
        found.setdefault(message_pk, {})[(sensor, quantity)] = (pk, value, was_decoded)
    return found
