"""Raw payloads to values: the config in force for a device, the decoded fields,
and the quantity scales applied to what a reading stores."""

import logging
import math
from dataclasses import dataclass

from django.conf import settings
from django.db.models import Q

from readings import payload
from readings.models import (
    Device,
    QuantitySetting,
)

log = logging.getLogger(__name__)


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
    Message.payload_fields; `error`: why nothing could be decoded, or "".
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
    """raw × scale + offset, the value a reading stores (readings.services.fastpath computes the same in SQL)."""
    if scale_offset is None:
        return value
    scale, offset = scale_offset
    return value * scale + offset
