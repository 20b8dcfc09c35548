"""DOWNLINK ACKNOWLEDGE callbacks: what became of a downlink the server answered."""

import logging
from dataclasses import dataclass
from datetime import datetime

from django.db import IntegrityError, transaction

from readings.models import (
    Acknowledge,
    Device,
    Downlink,
    DownlinkMode,
    InfoCode,
)
from readings.services.devices import device_upsert

log = logging.getLogger(__name__)


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
