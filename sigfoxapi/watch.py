"""The worker's backfill: find the spans where messages may have been missed,
and fetch them back through the Sigfox API on its own (manage.py runworker).

Three signals:
- a silence across a device type: two consecutive messages (in reception
  time) further apart than SIGFOX_BACKFILL_GAP_S and than 3 times the
  type's usual spacing, as when this server was down or answering 5xx for
  longer than the backend retries (about 7 minutes, CALLBACKS.md section 5);
- sequence gaps: a device's messages whose seqNumbers skip some
  (readings.services.sequences); a backfill that stores the missing ones
  splits or removes the gap, so they stop counting as lost. One device's
  gap is fetched for that device alone (one request, not its whole type's),
  unless it overlaps a silence of its type (after an outage every device
  has one): then with the type's;
- the API's callbacks-not-delivered list of each device type, read every
  NOT_DELIVERED_POLL_S: each item of ours is a callback the backend gave up on.
A silence or a sequence gap is fetched once its last message is SETTLE old:
until then the backend's retries may still deliver what it holds.

Each pass first records what it found as runs to do (BackfillRun with
`retry_after`), less what complete or pending runs hold already, in the same
transaction that moves the signals' watermarks: nothing found is lost to a
crash. It then runs the due ones, oldest span first, within the hour's
budget (SIGFOX_BACKFILL_CALLS_PER_HOUR, counted in ApiUsage with the polls).
A run an API error cut short resumes where it stopped (sigfoxapi.backfill).
"""

from __future__ import annotations

import itertools
import logging
import statistics
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q

from readings import db
from readings.models import Device, DeviceType, Message, SequenceGap
from sigfoxapi.backfill import backfill_run, epoch_ms, frame_of, replay_of
from sigfoxapi.client import CallBudgetExhausted, SigfoxAPI, SigfoxAPIError
from sigfoxapi.models import (
    ApiUsage,
    BackfillReason,
    BackfillRun,
    BackfillScope,
    Watermark,
)

log = logging.getLogger(__name__)

# Key of the PostgreSQL advisory lock held while a pass backfills ("SIGFOX.B").
LOCK_KEY = 0x5349_4746_4F58_2E42
NOT_DELIVERED_POLL_S = 600
# The backend gives a callback up about 7 minutes after the message (1 + 2 + 4
# minutes of retries): each poll reads back this far before its watermark.
NOT_DELIVERED_OVERLAP = timedelta(minutes=15)
# A silence or a sequence gap younger than this may still be filled by the
# backend's retries (the last one about 7 minutes after the message).
SETTLE = timedelta(minutes=10)
# Spans of one scope this close are fetched in one run.
MERGE_WITHIN = timedelta(minutes=10)
# Usual spacing: the median of this many of the type's latest intervals,
# within SPACING_WINDOW.
SPACING_SAMPLE = 200
SPACING_WINDOW = timedelta(days=30)
MAX_TIMES_PER_PASS = 50_000
MAX_GAPS_PER_PASS = 500
MAX_RUNS_PER_PASS = 50
# The client's retries within one pass: the worker's other steps wait on it.
WORKER_RETRIES = 2
ONE_SECOND = timedelta(seconds=1)


@dataclass
class Span:
    """A span of one scope (a device type's or a device's Sigfox id, as this
    server writes it) to fetch back."""

    scope: str
    sigfox_id: str
    since: datetime
    until: datetime
    reason: str


def backfill_pass(*, now: datetime) -> list[BackfillRun]:
    """Record the spans that may have lost messages, and run the due ones
    within the hour's API budget. Returns the runs made. Does nothing without
    an API login (SIGFOX_API_LOGIN) or with SIGFOX_BACKFILL_CALLS_PER_HOUR 0,
    nor while another worker's pass is at it (PostgreSQL advisory lock)."""
    if not settings.SIGFOX_API_LOGIN or settings.SIGFOX_BACKFILL_CALLS_PER_HOUR <= 0:
        return []
    with db.advisory_lock_held(LOCK_KEY) as held:
        return _backfill_pass(now=now) if held else []


def _backfill_pass(*, now: datetime) -> list[BackfillRun]:
    hour = now.replace(minute=0, second=0, microsecond=0)
    usage, _ = ApiUsage.objects.get_or_create(hour=hour)
    budget = max(0, settings.SIGFOX_BACKFILL_CALLS_PER_HOUR - usage.calls)
    api = SigfoxAPI.from_settings(max_calls=budget, retries=WORKER_RETRIES)
    start = now - timedelta(days=settings.SIGFOX_BACKFILL_LOOKBACK_DAYS)
    try:
        spans_found(api, start=start, now=now)
        runs = []
        due = (BackfillRun.objects.filter(complete=False, dry_run=False, retry_after__lte=now)
               .order_by("since")[:MAX_RUNS_PER_PASS])
        for run in due:
            if covered(run):
                run.complete, run.retry_after, run.resume_before = True, None, None
                run.error = "Read by another run."
                run.save(update_fields=["complete", "retry_after", "resume_before", "error"])
                continue
            if api.calls >= budget:
                break
            backfill_run(api=api, run=run, now=now)
            runs.append(run)
        return runs
    finally:
        ApiUsage.objects.filter(pk=usage.pk).update(calls=F("calls") + api.calls)


def spans_found(api: SigfoxAPI, *, start: datetime, now: datetime) -> list[BackfillRun]:
    """Look for each signal since its watermark and record the spans as runs
    to do, moving the watermarks in the same transaction. Returns the runs."""
    found: list[Span] = []
    marks: list[Watermark] = []
    for device_type in DeviceType.objects.order_by("pk"):
        spans, mark = arrival_gaps(device_type, start=start, now=now)
        found += spans
        marks += [mark] if mark else []
        try:
            spans, mark = not_delivered(api, device_type, start=start, now=now)
        except CallBudgetExhausted:
            continue
        except SigfoxAPIError as exc:
            log.warning("backfill: callbacks-not-delivered of device type %s: %s",
                        device_type.sigfox_id, exc)
            continue
        found += spans
        marks += [mark] if mark else []
    spans, mark = sequence_gaps(start=start, now=now)
    found += spans
    marks += [mark] if mark else []
    with transaction.atomic():
        for mark in marks:
            mark.save()
        return runs_to_do(found, now=now)


def arrival_gaps(device_type: DeviceType, *, start: datetime,
                 now: datetime) -> tuple[list[Span], Watermark | None]:
    """Silences in the type's callbacks since its watermark, up to SETTLE ago:
    spans between two consecutive messages further apart than the threshold
    (module docstring). Returns them and the watermark moved (not saved)."""
    mark = (Watermark.objects.filter(device_type=device_type, signal=BackfillReason.ARRIVAL_GAP)
            .first() or Watermark(device_type=device_type, signal=BackfillReason.ARRIVAL_GAP))
    callbacks = Message.objects.filter(device_type=device_type, recovered="")
    settled = now - SETTLE
    if mark.until is not None and mark.until >= start:
        new = callbacks.filter(time__gt=mark.until, time__lte=settled)
        times = [mark.until]
    else:
        new = callbacks.filter(time__gte=start, time__lte=settled)
        times = []
    times += new.order_by("time").values_list("time", flat=True)[:MAX_TIMES_PER_PASS]
    if len(times) < 2:
        if times and mark.until != times[-1]:
            mark.until, mark.checked_at = times[-1], now
            return [], mark
        return [], None
    recent = list(callbacks.filter(time__lte=times[-1], time__gte=times[-1] - SPACING_WINDOW)
                  .order_by("-time").values_list("time", flat=True)[:SPACING_SAMPLE + 1])
    spacings_s = [(a - b).total_seconds() for a, b in itertools.pairwise(recent)]
    usual_s = statistics.median(spacings_s) if spacings_s else 0.0
    threshold = timedelta(seconds=max(settings.SIGFOX_BACKFILL_GAP_S, 3 * usual_s))
    spans = [
        Span(BackfillScope.DEVICE_TYPE, device_type.sigfox_id, before + ONE_SECOND, after,
             BackfillReason.ARRIVAL_GAP)
        for before, after in itertools.pairwise(times) if after - before > threshold
    ]
    mark.until, mark.checked_at = times[-1], now
    return spans, mark


def not_delivered(api: SigfoxAPI, device_type: DeviceType, *, start: datetime,
                  now: datetime) -> tuple[list[Span], Watermark | None]:
    """The callbacks of ours the backend gave up on since the last poll (every
    NOT_DELIVERED_POLL_S, failed polls included), as one span per item's
    device. Returns them and the watermark moved (not saved)."""
    mark = (Watermark.objects.filter(device_type=device_type, signal=BackfillReason.NOT_DELIVERED)
            .first() or Watermark(device_type=device_type, signal=BackfillReason.NOT_DELIVERED))
    if mark.pk and (now - mark.checked_at).total_seconds() < NOT_DELIVERED_POLL_S:
        return [], None
    # Checked now even if the poll fails, so that a failing API is asked once
    # per NOT_DELIVERED_POLL_S, not on every pass.
    mark.checked_at = now
    mark.save()
    since = max(start, mark.until - NOT_DELIVERED_OVERLAP) if mark.until else start
    spans = []
    for item in api.callbacks_not_delivered(device_type=device_type.sigfox_id.lower(),
                                            since_ms=epoch_ms(since), before_ms=epoch_ms(now)):
        try:
            device, time = frame_of(item, now=now)
        except ValueError:
            continue
        if replay_of(item) is None:
            continue  # not a callback of ours the backfill could replay
        spans.append(Span(BackfillScope.DEVICE, device, time, time + ONE_SECOND,
                          BackfillReason.NOT_DELIVERED))
    mark.until = now
    return spans, mark


def sequence_gaps(*, start: datetime, now: datetime) -> tuple[list[Span], Watermark | None]:
    """Messages lost between two of a device's messages, for the gaps recorded
    since the last look (by id) whose later message is SETTLE old; one span per
    gap, on the device. Returns them and the watermark moved (not saved): up to
    the first gap not settled yet, so that it is looked at again."""
    mark = (Watermark.objects.filter(device_type=None, signal=BackfillReason.SEQUENCE_GAP).first()
            or Watermark(signal=BackfillReason.SEQUENCE_GAP))
    gaps = list(SequenceGap.objects.filter(pk__gt=mark.last_id or 0).order_by("pk")
                .select_related("device")[:MAX_GAPS_PER_PASS])
    if not gaps:
        return [], None
    settled = now - SETTLE
    spans = []
    last_id = mark.last_id
    for gap in gaps:
        if gap.time > settled:
            break
        last_id = gap.pk
        if gap.missing == 0 or gap.reset or gap.time < start:
            continue
        before = (Message.objects.filter(device_id=gap.device_id, seq_number__isnull=False,
                                         time__lt=gap.time)
                  .order_by("-time").values_list("time", flat=True).first())
        if before is not None:
            spans.append(Span(BackfillScope.DEVICE, gap.device.sigfox_id, before + ONE_SECOND,
                              gap.time, BackfillReason.SEQUENCE_GAP))
    if last_id == mark.last_id:
        return spans, None
    mark.last_id, mark.checked_at = last_id, now
    return spans, mark


def runs_to_do(spans: list[Span], *, now: datetime) -> list[BackfillRun]:
    """Record spans as runs due now, less the parts that complete or pending
    runs hold already, spans of one scope within MERGE_WITHIN merged."""
    spans = _onto_types(spans)
    runs = []
    # Device types first: a device's span then counts what its type's holds.
    for scope in (BackfillScope.DEVICE_TYPE, BackfillScope.DEVICE):
        runs += _runs_create(
            [piece for span in spans if span.scope == scope for piece in _uncovered(span)],
            now=now)
    return runs


def _onto_types(spans: list[Span]) -> list[Span]:
    """A device's span that overlaps one of its type's (found now, or held by
    a run), as a span of the type: after an outage every device has a
    sequence gap reaching a little past the type's silence on each side, and
    those edges are then read in a few runs of the type instead of two runs
    of each device."""
    typed = [span for span in spans if span.scope == BackfillScope.DEVICE_TYPE]
    device_ids = {span.sigfox_id for span in spans if span.scope == BackfillScope.DEVICE}
    types = dict(Device.objects.filter(sigfox_id__in=device_ids, device_type__isnull=False)
                 .values_list("sigfox_id", "device_type__sigfox_id"))
    out = []
    for span in spans:
        type_id = types.get(span.sigfox_id) if span.scope == BackfillScope.DEVICE else None
        if type_id is not None and (
                any(t.sigfox_id == type_id and t.since < span.until and span.since < t.until
                    for t in typed)
                or _holding(BackfillScope.DEVICE_TYPE, type_id)
                .filter(since__lt=span.until, until__gt=span.since).exists()):
            span = Span(BackfillScope.DEVICE_TYPE, type_id, span.since, span.until, span.reason)
        out.append(span)
    return out


def _runs_create(pieces: list[Span], *, now: datetime) -> list[BackfillRun]:
    runs = []
    for span in _merged(pieces):
        run = BackfillRun.of(span.scope, span.sigfox_id, since=span.since, until=span.until,
                             reason=span.reason, started_at=now, retry_after=now)
        run.save()
        runs.append(run)
    return runs


def _holding(scope: str, sigfox_id: str):
    """Runs whose span counts as read or being read for this scope: complete,
    or still to be run; a device's also its type's."""
    holds = Q(scope=scope, sigfox_id=sigfox_id)
    if scope == BackfillScope.DEVICE:
        holds |= Q(scope=BackfillScope.DEVICE_TYPE, device_type__devices__sigfox_id=sigfox_id)
    return BackfillRun.objects.filter(holds, dry_run=False).filter(
        Q(complete=True) | Q(retry_after__isnull=False))


def _uncovered(span: Span) -> list[Span]:
    """The parts of `span` that no complete or pending run holds."""
    held = (_holding(span.scope, span.sigfox_id)
            .filter(since__lt=span.until, until__gt=span.since)
            .order_by("since").values_list("since", "until"))
    pieces, at = [], span.since
    for since, until in held:
        if since > at:
            pieces.append(Span(span.scope, span.sigfox_id, at, min(since, span.until), span.reason))
        at = max(at, until)
        if at >= span.until:
            break
    if at < span.until:
        pieces.append(Span(span.scope, span.sigfox_id, at, span.until, span.reason))
    return pieces


def _merged(spans: list[Span]) -> list[Span]:
    """Spans of one scope that overlap or lie within MERGE_WITHIN of each other, as one."""
    out: list[Span] = []
    for span in sorted(spans, key=lambda s: (s.scope, s.sigfox_id, s.since)):
        last = out[-1] if out else None
        if (last is not None and (last.scope, last.sigfox_id) == (span.scope, span.sigfox_id)
                and span.since <= last.until + MERGE_WITHIN):
            last.until = max(last.until, span.until)
            if span.reason == BackfillReason.NOT_DELIVERED:
                last.reason = span.reason
        else:
            out.append(Span(span.scope, span.sigfox_id, span.since, span.until, span.reason))
    return out


def covered(run: BackfillRun) -> bool:
    """Another complete run (by hand or by the worker) of the same scope, or
    of the device's type, read what is left of this run's span already."""
    return (_holding(run.scope, run.sigfox_id).filter(complete=True)
            .exclude(pk=run.pk)
            .filter(since__lte=run.since, until__gte=run.resume_before or run.until).exists())
