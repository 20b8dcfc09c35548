"""The worker's backfill: find the spans where messages may have been missed,
and fetch them back through the Sigfox API on its own (manage.py runworker).

Three signals, each per device type:
- a silence across the device type: two consecutive messages (in reception
  time) further apart than SIGFOX_BACKFILL_GAP_S and than 3 times the
  type's usual spacing, as when this server was down or answering 5xx for
  longer than the backend retries (about 7 minutes, CALLBACKS.md section 5);
  once SETTLE old, when the retries can no longer fill it;
- sequence gaps: a device's messages whose seqNumbers skip some
  (readings.services.sequences), once SETTLE old; a backfill that stores the
  missing ones splits or removes the gap, so they stop counting as lost;
- the API's callbacks-not-delivered list, read every NOT_DELIVERED_POLL_S:
  each item is a callback the backend gave up on.
Devices whose type is not known (their callbacks carry no deviceTypeId) are
backfilled one by one, on sequence gaps only.

Each span becomes a BackfillRun (sigfoxapi.backfill) unless a complete run
covered it already; a run an API error cut short is tried again on a later
pass. The API requests of the runs started in the last hour are held to
SIGFOX_BACKFILL_CALLS_PER_HOUR; the polls of callbacks-not-delivered, one
request per device type every NOT_DELIVERED_POLL_S (more only past 100
items), come on top.
"""

from __future__ import annotations

import itertools
import logging
import statistics
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Q, Sum

from readings import db
from readings.models import Device, DeviceType, Message, SequenceGap
from sigfoxapi.backfill import backfill, callback_time, epoch_ms
from sigfoxapi.client import CallBudgetExhausted, SigfoxAPI, SigfoxAPIError
from sigfoxapi.models import BackfillReason, BackfillRun, Watermark

log = logging.getLogger(__name__)

# Key of the PostgreSQL advisory lock held while a pass backfills ("SIGFOX.B").
LOCK_KEY = 0x5349_4746_4F58_2E42
NOT_DELIVERED_POLL_S = 600
# The backend gives a callback up about 7 minutes after the message (1 + 2 + 4
# minutes of retries): each poll reads back this far before its watermark.
NOT_DELIVERED_OVERLAP = timedelta(minutes=15)
# A silence or a sequence gap younger than this may still be filled by the
# backend's retries (the last one about 7 minutes after the message): it is
# fetched once it is this old, not before. A callback given up is final.
SETTLE = timedelta(minutes=10)
# Spans of one scope closer than this are fetched in one run.
MERGE_WITHIN = timedelta(hours=1)
# Usual spacing: the median of this many of the type's latest intervals.
SPACING_SAMPLE = 200
MAX_GAPS_PER_PASS = 500
ONE_SECOND = timedelta(seconds=1)


@dataclass
class Span:
    """A span of one scope (a device type's or a device's Sigfox id) to fetch back."""

    scope: str  # "device_type" or "device"
    sigfox_id: str
    since: datetime
    until: datetime
    reason: str
    not_delivered: list[dict] = field(default_factory=list)


def backfill_pass(*, now: datetime) -> list[BackfillRun]:
    """Find the spans that may have lost messages and backfill them, within the
    hour's API budget. Returns the runs made. Does nothing without an API
    login (SIGFOX_API_LOGIN) or with SIGFOX_BACKFILL_CALLS_PER_HOUR 0, nor
    while another worker's pass is at it (PostgreSQL advisory lock)."""
    if not settings.SIGFOX_API_LOGIN or settings.SIGFOX_BACKFILL_CALLS_PER_HOUR <= 0:
        return []
    with db.advisory_lock_held(LOCK_KEY) as held:
        return _backfill_pass(now=now) if held else []


def _backfill_pass(*, now: datetime) -> list[BackfillRun]:
    spent = (BackfillRun.objects.filter(started_at__gt=now - timedelta(hours=1), dry_run=False)
             .aggregate(calls=Sum("api_calls"))["calls"] or 0)
    budget = settings.SIGFOX_BACKFILL_CALLS_PER_HOUR - spent
    if budget <= 0:
        return []
    api = SigfoxAPI.from_settings(max_calls=budget)
    start = now - timedelta(days=settings.SIGFOX_BACKFILL_LOOKBACK_DAYS)
    spans: list[Span] = []
    for device_type in DeviceType.objects.order_by("pk"):
        spans += arrival_gaps(device_type, start=start, now=now)
        try:
            spans += not_delivered(api, device_type, start=start, now=now)
        except CallBudgetExhausted:
            break
        except SigfoxAPIError as exc:
            log.warning("backfill: callbacks-not-delivered of device type %s: %s",
                        device_type.sigfox_id, exc)
    spans += sequence_gaps(start=start, settled=now - SETTLE)
    spans += unfinished(start=start)
    runs = []
    for span in merged(spans):
        if covered(span):
            continue
        if api.calls >= budget:
            # Recorded unfinished, so that a later pass takes it up.
            runs.append(BackfillRun.objects.create(
                sigfox_id=span.sigfox_id, since=span.since, until=span.until, reason=span.reason,
                started_at=now, finished_at=now, complete=False,
                error="Postponed: SIGFOX_BACKFILL_CALLS_PER_HOUR requests spent this hour.",
                **_scope_rows(span)))
            continue
        run, _ = backfill(api=api, since=span.since, until=span.until, reason=span.reason,
                          not_delivered=span.not_delivered or None, now=now,
                          **{span.scope: span.sigfox_id})
        runs.append(run)
    return runs


def _scope_rows(span: Span) -> dict:
    if span.scope == "device_type":
        return {"device_type": DeviceType.objects.filter(sigfox_id=span.sigfox_id).first()}
    return {"device": Device.objects.filter(sigfox_id=span.sigfox_id).first()}


def arrival_gaps(device_type: DeviceType, *, start: datetime, now: datetime) -> list[Span]:
    """Silences in the type's callbacks since the last look: spans between two
    consecutive messages further apart than the threshold (module docstring),
    up to SETTLE ago. Moves the type's watermark to its newest message then."""
    mark = Watermark.objects.filter(device_type=device_type,
                                    signal=BackfillReason.ARRIVAL_GAP).first()
    callbacks = Message.objects.filter(device_type=device_type, recovered="")
    since = max(start, mark.until) if mark else start
    times = list(callbacks.filter(time__gte=since, time__lte=now - SETTLE).order_by("time")
                 .values_list("time", flat=True)[:50_000])
    if not times:
        return []
    recent = list(callbacks.filter(time__lte=times[-1]).order_by("-time")
                  .values_list("time", flat=True)[:SPACING_SAMPLE + 1])
    spacings_s = [(a - b).total_seconds() for a, b in itertools.pairwise(recent)]
    usual_s = statistics.median(spacings_s) if spacings_s else 0.0
    threshold = timedelta(seconds=max(settings.SIGFOX_BACKFILL_GAP_S, 3 * usual_s))
    spans = [
        Span("device_type", device_type.sigfox_id, before + ONE_SECOND, after,
             BackfillReason.ARRIVAL_GAP)
        for before, after in itertools.pairwise(times) if after - before > threshold
    ]
    Watermark.objects.update_or_create(
        device_type=device_type, signal=BackfillReason.ARRIVAL_GAP,
        defaults={"until": times[-1], "checked_at": now})
    return spans


def not_delivered(api: SigfoxAPI, device_type: DeviceType, *, start: datetime,
                  now: datetime) -> list[Span]:
    """The callbacks the backend gave up on since the last poll (every
    NOT_DELIVERED_POLL_S), as one span holding them."""
    mark = Watermark.objects.filter(device_type=device_type,
                                    signal=BackfillReason.NOT_DELIVERED).first()
    if mark and (now - mark.checked_at).total_seconds() < NOT_DELIVERED_POLL_S:
        return []
    since = max(start, mark.until - NOT_DELIVERED_OVERLAP) if mark else start
    items = [item for item in api.callbacks_not_delivered(
        device_type=device_type.sigfox_id.lower(), since_ms=epoch_ms(since),
        before_ms=epoch_ms(now))
        if isinstance(item, dict) and isinstance(item.get("time"), int)]
    Watermark.objects.update_or_create(
        device_type=device_type, signal=BackfillReason.NOT_DELIVERED,
        defaults={"until": now, "checked_at": now})
    if not items:
        return []
    times = [callback_time(item["time"]) for item in items]
    return [Span("device_type", device_type.sigfox_id, min(times), max(times) + ONE_SECOND,
                 BackfillReason.NOT_DELIVERED, items)]


def sequence_gaps(*, start: datetime, settled: datetime) -> list[Span]:
    """Messages lost between two of a device's messages, the later one from
    `start` to `settled`: the span between them, on the device's type (or the
    device when its type is unknown)."""
    spans = []
    gaps = (SequenceGap.objects.filter(missing__gt=0, reset=False, time__gte=start,
                                       time__lte=settled)
            .select_related("device__device_type").order_by("-time")[:MAX_GAPS_PER_PASS])
    for gap in gaps:
        before = (Message.objects.filter(device_id=gap.device_id, seq_number__isnull=False,
                                         time__lt=gap.time)
                  .order_by("-time").values_list("time", flat=True).first())
        if before is None:
            continue
        device_type = gap.device.device_type
        scope = ("device_type", device_type.sigfox_id) if device_type else (
            "device", gap.device.sigfox_id)
        spans.append(Span(*scope, before + ONE_SECOND, gap.time, BackfillReason.SEQUENCE_GAP))
    return spans


def unfinished(*, start: datetime) -> list[Span]:
    """The spans of the worker's runs that an API error cut short."""
    runs = (BackfillRun.objects.filter(complete=False, dry_run=False, since__gte=start)
            .exclude(reason=BackfillReason.MANUAL).order_by("-started_at")[:100])
    return [Span("device_type" if run.device_type_id or not run.device_id else "device",
                 run.sigfox_id, run.since, run.until, run.reason) for run in runs]


def merged(spans: list[Span]) -> list[Span]:
    """Spans of one scope that overlap or lie within MERGE_WITHIN of each other, as one."""
    out: list[Span] = []
    for span in sorted(spans, key=lambda s: (s.scope, s.sigfox_id, s.since)):
        last = out[-1] if out else None
        if (last is not None and (last.scope, last.sigfox_id) == (span.scope, span.sigfox_id)
                and span.since <= last.until + MERGE_WITHIN):
            last.until = max(last.until, span.until)
            last.not_delivered += span.not_delivered
            if span.reason == BackfillReason.NOT_DELIVERED:
                last.reason = span.reason
        else:
            out.append(Span(span.scope, span.sigfox_id, span.since, span.until, span.reason,
                            list(span.not_delivered)))
    return out


def covered(span: Span) -> bool:
    """A complete run (by hand or by the worker) of the same scope, or of the
    device's type, read the whole span already."""
    scopes = Q(sigfox_id=span.sigfox_id)
    if span.scope == "device":
        scopes |= Q(device_type__devices__sigfox_id=span.sigfox_id)
    return BackfillRun.objects.filter(
        scopes, complete=True, dry_run=False, since__lte=span.since, until__gte=span.until,
    ).exists()
