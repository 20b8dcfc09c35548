"""Sequence records: messages lost between two frames of a device, and counter
resets, worked out from each frame's neighbours in time (readings.sigfox)."""

import logging
from datetime import timedelta

from django.conf import settings

from readings import sigfox
from readings.models import (
    Message,
    SequenceGap,
)

log = logging.getLogger(__name__)


def sequence_gaps_refresh(*, message: Message) -> None:
    """Work out the sequence records around a message that has a seqNumber.

    A gap is measured from the message just before in time to the one just
    after, so a late retry or a recovered message splits or removes the gap
    it falls into, and an arrival out of order is never a loss. A jump the
    device could not have made in the time between is a counter reset
    (readings.sigfox.is_counter_reset). readings.services.fastpath does the same in SQL.
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
