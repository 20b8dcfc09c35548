"""Retention: removing what the policy no longer keeps.

The policy (readings.selectors.retention) says per device how many days its
readings with their messages, its rollups and its messages' raw bodies are
kept. retention_apply removes what is past it, in this order:

1. Readings and messages. On PostgreSQL, where both tables are partitioned
   by time (storage.partitions), each partition whose whole range is past
   the site's policy is dropped (partition_range_drop): no dead rows, and a
   million readings gone in seconds. The rows of the devices kept longer
   are moved first into a fresh partition of the same range. Everything
   else past its device's policy (the legacy partition until its range has
   expired, the default partition, devices with a shorter policy, every row
   on SQLite) is deleted in batches, each its own short transaction.
2. Messages' raw bodies past the body policy, emptied (body_raw = "").
3. Rollups past the rollup policy, and never while the readings they
   summarise are kept: a rollup lives as long as the longer of the two.
4. Device events and locations past the raw policy.

Deleting readings never changes a rollup: rollups are computed from new
readings (RollupProgress) and from the RollupDirty log, which retention
does not write. And the policy removes no message whose readings the
rollups have not taken in yet (past RollupProgress.reading_id): after an
upgrade, the history stays until the worker has rolled it up.

`manage.py prunereadings` runs step 1 with its own rule instead of the
policy (older_than, keep_last, device_pks), and nothing else.

Batches are plain DELETE and UPDATE statements: no signals and no Django
collector, which reads every message of a batch into Python and sends
about 28 statements per batch (bench/README.md, bench/prune), several times
the 100 ms a batch may take while callbacks arrive. The children of a
message (readings, receptions, sequence gap, conflicts, downlink) go with
it here. A reading's time is its message's (ingest copies it; the
partitions rely on it too), so each statement names the batch's time range
and PostgreSQL reads only the partitions that hold it.
"""

import operator
import time as clock
from collections.abc import Callable, Collection, Iterable
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import reduce
from itertools import product

from django.conf import settings
from django.db import DatabaseError, connection, transaction
from django.db.models import Exists, OuterRef, Q, QuerySet, TextField
from django.db.models.functions import Cast

from readings import db
from readings.models import (
    Acknowledge,
    Device,
    DeviceEvent,
    DeviceLocation,
    Downlink,
    Message,
    MessageConflict,
    Reading,
    Reception,
    Rollup,
    RollupProgress,
    RollupResolution,
    SequenceGap,
)
from readings.selectors.retention import Kept, device_policies, policy_groups
from storage.models import RetentionRun
from storage.partitions import PartitionBusy, partition_range_drop, partitions_list

WORKER = "runworker"
PRUNE = "prunereadings"
SOURCES = ("device", "device type", "site")
# The most days a policy or prunereadings may name: a century, older than anything stored.
MAX_DAYS = 36_500

# Devices with a policy of their own (or their type's) walked one by one; past
# this many, each number of days is one filter walked by time.
DEVICES_APART = 1000

# Key of the PostgreSQL advisory lock held while retention runs ("SIGFOX.R").
LOCK_KEY = 0x5349_4746_4F58_2E52


class RetentionBusy(PartitionBusy):
    """Another retention run holds the lock (PostgreSQL): nothing was done.
    A PartitionBusy, so that the worker treats it alike: the next pass tries again."""


@dataclass
class RetentionResult:
    """What a run removed (dry_run: would remove): rows, partitions included."""

    partitions_dropped: list[str] = field(default_factory=list)
    readings: int = 0
    messages: int = 0
    bodies_cleared: int = 0
    rollups: int = 0
    events: int = 0
    locations: int = 0
    dry_run: bool = False

    def summary(self) -> str:
        """One line: "2 partitions dropped, 10 readings, 5 messages, ... deleted, 3 bodies cleared"."""
        would = "would be " if self.dry_run else ""
        return (
            f"{len(self.partitions_dropped)} partitions {would}dropped"
            + (f" ({', '.join(self.partitions_dropped)})" if self.partitions_dropped else "")
            + f", {self.readings} readings, {self.messages} messages, {self.rollups} rollups, "
            f"{self.events} events and {self.locations} locations {would}deleted, "
            f"{self.bodies_cleared} bodies {would}cleared"
        )


@dataclass(frozen=True)
class Effective:
    """A device's policy of one kind: days kept (None: forever), and which
    level set it: "device", "device type" or "site"."""

    days: int | None
    source: str


def policy_explained(device: Device) -> dict[Kept, Effective]:
    """{kind: Effective} of one device (its device_type loaded or loadable),
    by the rule of readings.selectors.retention: its own value, else its
    type's, else the site's; 0 is forever."""
    explained = {}
    for kept in Kept:
        own = getattr(device, kept.value)
        typed = getattr(device.device_type, kept.value) if device.device_type_id else None
        if own is not None:
            explained[kept] = Effective(own or None, "device")
        elif typed is not None:
            explained[kept] = Effective(typed or None, "device type")
        else:
            explained[kept] = Effective(kept.site_days(), "site")
    return explained


def retention_due(now: datetime) -> bool:
    """True when no policy run (the worker's, not prunereadings') started in
    the SIGFOX_RETENTION_INTERVAL_S seconds before `now`. A run records
    itself when it starts, so a run in progress makes the next one wait."""
    last = (RetentionRun.objects.exclude(trigger=PRUNE).order_by("-started_at")
            .values_list("started_at", flat=True).first())
    return last is None or (now - last).total_seconds() >= settings.SIGFOX_RETENTION_INTERVAL_S


def retention_apply(
    *,
    now: datetime,
    trigger: str = WORKER,
    older_than: timedelta | None = None,
    keep_last: int | None = None,
    device_pks: Collection[int] | None = None,
    dry_run: bool = False,
    batch_size: int = 2000,
    on_batch: Callable[[int], None] | None = None,
) -> RetentionResult:
    """Remove what is past retention as of `now`; return what was removed.

    Without older_than and keep_last, the policy of the site, device types
    and devices, for readings, messages, bodies, rollups, events and
    locations (no message whose readings the rollups have yet to take
    in). With either (prunereadings), only readings and messages, by
    that rule for every device: a reading goes when it is older than
    older_than and, with keep_last, not among the keep_last newest of its
    series (device, sensor, quantity); a message goes when its readings
    are gone (every message of a partition dropped whole goes). device_pks
    restricts either to those devices (and drops no partition).

    batch_size: rows per transaction (readings with older_than or
    keep_last, messages otherwise); on_batch(readings removed so far) after
    each batch and partition. dry_run counts and changes nothing, records
    nothing. Otherwise the run is recorded as a RetentionRun (error text
    included when it fails, the exception then raised again).

    Raises RetentionBusy when another run holds the lock (PostgreSQL),
    PartitionBusy when a partition's lock cannot be had.
    """
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    if keep_last is not None and keep_last < 1:
        raise ValueError("keep_last must be at least 1")
    result = RetentionResult(dry_run=dry_run)
    with _one_at_a_time():
        run = None if dry_run else RetentionRun.objects.create(started_at=now, trigger=trigger)
        started = clock.monotonic()
        pass_ = _Pass(result=result, now=now, device_pks=device_pks, dry_run=dry_run,
                      batch_size=batch_size, on_batch=on_batch)
        try:
            if older_than is None and keep_last is None:
                pass_.policy_apply()
            else:
                pass_.prune(older_than=older_than, keep_last=keep_last)
        except BaseException as exc:
            if run is not None:
                try:
                    _record(run, result, started, error=f"{type(exc).__name__}: {exc}")
                except DatabaseError:
                    pass  # the database is gone too: the run's own error says more
            raise
        if run is not None:
            _record(run, result, started)
    return result


def _record(run: RetentionRun, result: RetentionResult, started: float, error: str = "") -> None:
    """The run's row brought up to date; its end is its start (`now`) plus the time taken."""
    run.finished_at = run.started_at + timedelta(seconds=clock.monotonic() - started)
    run.partitions_dropped = result.partitions_dropped
    run.readings_deleted = result.readings
    run.messages_deleted = result.messages
    run.bodies_cleared = result.bodies_cleared
    run.rollups_deleted = result.rollups
    run.error = error
    run.save()


@contextmanager
def _one_at_a_time():
    """Hold a session advisory lock on PostgreSQL (several workers may run):
    RetentionBusy when another run has it. SQLite runs one worker."""
    with db.advisory_lock_held(LOCK_KEY) as held:
        if not held:
            raise RetentionBusy("another retention run is in progress")
        yield


# -- one run ---------------------------------------------------------------------------------


Span = tuple[datetime | None, datetime | None]  # [start, end) of time; None: unbounded


@dataclass
class _Dropped:
    """A partition range dropped (or, on a dry run, that would be) and the devices it kept."""

    start: datetime | None
    end: datetime
    kept: frozenset[int]


@dataclass
class _Pass:
    result: RetentionResult
    now: datetime
    device_pks: Collection[int] | None
    dry_run: bool
    batch_size: int
    on_batch: Callable[[int], None] | None
    # The policy removes no reading the rollups have not taken in (its id
    # past RollupProgress.reading_id): a history just upgraded keeps its
    # readings until the rollups have read them. None: no such bound (prunereadings).
    taken_in: int | None = None
    # Partition ranges that hold nothing past retention any more (dropped,
    # or left with kept rows only): the batches skip them.
    handled: list[Span] = field(default_factory=list)
    dropped: list[_Dropped] = field(default_factory=list)

    def progress(self) -> None:
        if self.on_batch is not None:
            self.on_batch(self.result.readings)

    def scoped(self, rows: QuerySet) -> QuerySet:
        return rows if self.device_pks is None else rows.filter(device_id__in=list(self.device_pks))

    def taken(self, rows: QuerySet, message: str = "pk") -> QuerySet:
        """Messages (or readings, message="message_id") whose every reading
        the rollups have taken in: one look-up per message by the unique
        (message, sensor, quantity, time) index."""
        if self.taken_in is None:
            return rows
        untaken = Reading.objects.filter(message=OuterRef(message), time=OuterRef("time"), pk__gt=self.taken_in)
        return rows.exclude(Exists(untaken))

    # -- the policy ------------------------------------------------------------------------

    def policy_apply(self) -> None:
        self.taken_in = RollupProgress.objects.filter(pk=1).values_list("reading_id", flat=True).first() or 0
        site_days = Kept.RAW.site_days()
        if site_days is not None and self.device_pks is None:
            longer = _longer_kept(self.now)
            self.partitions_drop(cutoff=self.now - timedelta(days=site_days),
                                 kept=lambda _start, end: {pk for pk, c in longer.items() if c is None or c < end})
        raw = _walks(Kept.RAW)
        for days, group in raw:
            cutoff = self.now - timedelta(days=days)
            messages = self.taken(self.scoped(Message.objects.filter(group, time__lt=cutoff)))
            if self.dry_run:
                readings = self.taken(self.scoped(Reading.objects.filter(group, time__lt=cutoff)), "message_id")
                self.result.readings += self.outside_dropped(readings).count()
                self.result.messages += self.outside_dropped(messages).count()
                continue
            # The site's devices and those kept shorter lost every row of the
            # partitions dropped; those kept longer keep rows there, some of
            # them already past their own cutoff.
            spans = self.unhandled() if site_days is not None and days <= site_days else [(None, None)]
            for span in spans:
                self.walk(_within(messages, span), self.messages_delete)

        past_raw = reduce(operator.or_, [group & Q(time__lt=self.now - timedelta(days=days))
                                         for days, group in raw], Q(pk__in=[]))
        for days, group in _walks(Kept.BODY):
            bodies = self.scoped(Message.objects.filter(group, time__lt=self.now - timedelta(days=days))
                                 .exclude(body_raw=""))
            if self.dry_run:
                self.result.bodies_cleared += self.outside_dropped(bodies).exclude(past_raw).count()
                continue
            self.walk(bodies, self.bodies_clear)

        for days, group in _walks(Kept.ROLLUP, Kept.RAW):
            cutoff = self.now - timedelta(days=days)
            for resolution in RollupResolution:
                # A rollup goes once its whole hour or day is past the cutoff.
                rollups = self.scoped(Rollup.objects.filter(
                    group, resolution_s=resolution, start__lte=cutoff - timedelta(seconds=resolution)))
                self.result.rollups += self.delete_rows(rollups, "start")

        for days, group in raw:
            cutoff = self.now - timedelta(days=days)
            self.result.events += self.delete_rows(self.scoped(DeviceEvent.objects.filter(group, time__lt=cutoff)))
            self.result.locations += self.delete_rows(
                self.scoped(DeviceLocation.objects.filter(group, time__lt=cutoff)))

    # -- prunereadings' rule ------------------------------------------------------------------

    def prune(self, *, older_than: timedelta | None, keep_last: int | None) -> None:
        cutoff = self.now - older_than if older_than is not None else None
        boundaries = _keep_last_boundaries(keep_last, self.device_pks) if keep_last is not None else {}
        if self.device_pks is None:
            reach = _reach(boundaries)
            self.partitions_drop(
                cutoff=cutoff if cutoff is not None else self.now,
                kept=lambda _start, end: {pk for pk, at in reach.items() if at is None or at < end},
            )

        if keep_last is None:
            if self.dry_run:
                self.count_pruned(Q(time__lt=cutoff))
                return
            readings = self.scoped(Reading.objects.filter(time__lt=cutoff))
            for span in self.unhandled():
                self.walk(_within(readings, span), self.readings_delete, extra=("message_id",))
            return

        by_sensor: dict[tuple[int, str], dict[str, tuple[datetime, int] | None]] = {}
        for (device_pk, sensor, quantity), boundary in sorted(boundaries.items()):
            by_sensor.setdefault((device_pk, sensor), {})[quantity] = boundary
        for (device_pk, sensor), quantities in by_sensor.items():
            condition = _prune_condition(device_pk=device_pk, sensor=sensor, boundaries=quantities,
                                         cutoff=cutoff)
            if condition is None:
                continue
            if self.dry_run:
                self.count_pruned(condition)
                continue
            self.walk(Reading.objects.filter(condition), self.readings_delete, extra=("message_id",))

    def count_pruned(self, condition: Q) -> None:
        """Dry run: the readings of `condition` (within the device scope) that
        would go besides the partitions, and the messages they would empty."""
        doomed = self.outside_dropped(self.scoped(Reading.objects.filter(condition)))
        self.result.readings += doomed.count()
        emptied = Message.objects.filter(Exists(doomed.filter(message=OuterRef("pk")))).exclude(
            Exists(Reading.objects.filter(message=OuterRef("pk")).exclude(condition)))
        self.result.messages += emptied.count()

    # -- whole partitions --------------------------------------------------------------------

    def partitions_drop(self, *, cutoff: datetime, kept: Callable[[datetime | None, datetime], set[int]]) -> None:
        """Drop each partition range that ends by `cutoff`, moving the rows
        of kept(start, end) first. A range left holding kept rows only is
        not dropped again (that would move every kept row each run), nor is
        an empty one (a drop with kept devices makes a fresh partition)."""
        messages = {(p.start, p.end): p.name for p in partitions_list(Message._meta.db_table)}
        for partition in partitions_list(Reading._meta.db_table):
            if partition.is_default or partition.end is None or partition.end > cutoff:
                continue
            start, end = partition.start, partition.end
            keep = frozenset(kept(start, end))
            if keep and not _holds_other_devices(start, end, keep):
                self.handled.append((start, end))
                continue
            if self.taken_in is not None and Reading.objects.filter(
                    _span(start, end), pk__gt=self.taken_in).exists():
                continue  # the rollups have yet to read it: its taken rows go in batches
            if self.dry_run:
                self.dropped.append(_Dropped(start, end, keep))
                inside = _span(start, end) & ~Q(device_id__in=keep)
                self.result.readings += Reading.objects.filter(inside).count()
                self.result.messages += Message.objects.filter(inside).count()
                self.result.partitions_dropped += [partition.name, messages.get((start, end), "")]
                continue
            gone = partition_range_drop(start, end, keep_device_pks=keep)
            self.handled.append((start, end))
            self.result.partitions_dropped += gone.names
            self.result.readings += gone.readings
            self.result.messages += gone.messages
            self.progress()

    def unhandled(self) -> list[Span]:
        """The spans of time outside the handled partition ranges, oldest first:
        each is walked apart, so that PostgreSQL prunes the ranges in between."""
        spans: list[Span] = []
        low: datetime | None = None
        for start, end in sorted(self.handled, key=lambda span: (span[0] is not None, span[0] or span[1])):
            if start is not None and (low is None or low < start):
                spans.append((low, start))
            low = end if low is None or end > low else low
        spans.append((low, None))
        return spans

    def outside_dropped(self, rows: QuerySet) -> QuerySet:
        """Dry run: rows less those that the partitions dropped would take."""
        for gone in self.dropped:
            rows = rows.exclude(_span(gone.start, gone.end) & ~Q(device_id__in=gone.kept))
        return rows

    # -- batches ----------------------------------------------------------------------------

    def walk(self, rows: QuerySet, each: Callable[["_Batch"], None], time_field="time",
             extra: tuple[str, ...] = ()) -> None:
        """Hand `each` the rows in batches, oldest first (time, then pk), one
        transaction per batch. The next batch starts after the last row of
        this one: rows that `each` leaves are read once. Times come as text
        and only the first and last are parsed (2,000 parsed times cost more
        than the batch's statements)."""
        after: tuple[datetime, int] | None = None
        while True:
            with transaction.atomic():
                page = rows
                if after is not None:
                    at, pk = after
                    page = rows.filter(Q(**{f"{time_field}__gte": at})
                                       & (Q(**{f"{time_field}__gt": at}) | Q(pk__gt=pk)))
                found = list(page.order_by(time_field, "pk").annotate(at_text=Cast(time_field, TextField()))
                             .values_list("pk", "at_text", *extra)[: self.batch_size])
                if not found:
                    return
                batch = _Batch(pks=[row[0] for row in found], low=_parsed(found[0][1]),
                               high=_parsed(found[-1][1]), extra=[row[2:] for row in found])
                each(batch)
            after = batch.high, batch.pks[-1]
            self.progress()

    def delete_rows(self, rows: QuerySet, time_field="time") -> int:
        """Delete rows of a table without children, in batches; the count (dry run: would)."""
        if self.dry_run:
            return rows.count()
        deleted = 0

        def delete(batch: _Batch):
            nonlocal deleted
            ids, params = _among("id", batch.pks)
            deleted += _execute(f"DELETE FROM {_table(rows.model)} WHERE {ids}", params)

        self.walk(rows, delete, time_field)
        return deleted

    def messages_delete(self, batch: "_Batch") -> None:
        readings, messages = _messages_delete(batch.pks, batch.low, batch.high)
        self.result.readings += readings
        self.result.messages += messages

    def readings_delete(self, batch: "_Batch") -> None:
        """Delete these readings (extra: their message pk), then their messages left without any."""
        low, high = batch.low, batch.high
        ids, params = _among("id", batch.pks)
        self.result.readings += _execute(
            f"DELETE FROM {_table(Reading)} WHERE {ids} AND time BETWEEN %s AND %s", params + _times(low, high))
        ids, params = _among("m.id", sorted({message_pk for (message_pk,) in batch.extra}))
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT m.id FROM {_table(Message)} m WHERE {ids} AND m.time BETWEEN %s AND %s "
                f"AND NOT EXISTS (SELECT 1 FROM {_table(Reading)} r WHERE r.message_id = m.id AND r.time = m.time)",
                params + _times(low, high))
            emptied = [pk for (pk,) in cursor.fetchall()]
        if emptied:
            self.result.messages += _messages_delete(emptied, low, high)[1]

    def bodies_clear(self, batch: "_Batch") -> None:
        ids, params = _among("id", batch.pks)
        self.result.bodies_cleared += _execute(
            f"UPDATE {_table(Message)} SET body_raw = '' WHERE {ids} AND time BETWEEN %s AND %s",
            params + _times(batch.low, batch.high))


@dataclass(frozen=True)
class _Batch:
    """Rows of one batch: their pks, oldest first, the times of the first
    and last, and the `extra` columns asked for, row by row."""

    pks: list[int]
    low: datetime
    high: datetime
    extra: list[tuple]


def _parsed(text: str) -> datetime:
    """A time as the database writes it as text: PostgreSQL with its offset
    ("2026-11-22 23:50:00+00"), SQLite in UTC without one."""
    moment = datetime.fromisoformat(text)
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _messages_delete(pks: list[int], low: datetime, high: datetime) -> tuple[int, int]:
    """Delete messages (their times from low to high) with their readings,
    receptions, sequence gaps, conflicts and downlinks (an acknowledge of a
    downlink keeps its row, no longer linked); (readings, messages) deleted."""
    times = _times(low, high)
    of_messages, params = _among("message_id", pks)
    readings = _execute(f"DELETE FROM {_table(Reading)} WHERE {of_messages} AND time BETWEEN %s AND %s",
                        params + times)
    for child in (Reception, SequenceGap, MessageConflict):
        _execute(f"DELETE FROM {_table(child)} WHERE {of_messages}", params)
    _execute(f"UPDATE {_table(Acknowledge)} SET downlink_id = NULL "
             f"WHERE downlink_id IN (SELECT id FROM {_table(Downlink)} WHERE {of_messages})", params)
    _execute(f"DELETE FROM {_table(Downlink)} WHERE {of_messages}", params)
    ids, params = _among("id", pks)
    messages = _execute(f"DELETE FROM {_table(Message)} WHERE {ids} AND time BETWEEN %s AND %s",
                        params + times)
    return readings, messages


def _among(column: str, values: list[int]) -> tuple[str, list]:
    """SQL of `column` among `values`, and its parameters. On PostgreSQL one
    array, written as text: a list of 2,000 placeholders costs some 20 ms of
    planning per statement, and psycopg's quoting of a list of ints 10 ms.
    Placeholders on SQLite, which has no arrays."""
    if db.is_postgresql():
        return f"{column} = ANY(%s::bigint[])", ["{" + ",".join(str(int(v)) for v in values) + "}"]
    return f"{column} IN ({', '.join(['%s'] * len(values))})", list(values)


def _times(low: datetime, high: datetime) -> list:
    """The parameters of `time BETWEEN %s AND %s`, as the database compares them
    (SQLite keeps times as text)."""
    return [connection.ops.adapt_datetimefield_value(low), connection.ops.adapt_datetimefield_value(high)]


def _execute(sql: str, params: list) -> int:
    """Run one statement; the rows it changed."""
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.rowcount


def _table(model) -> str:
    return connection.ops.quote_name(model._meta.db_table)


# -- policies -------------------------------------------------------------------------------


def _longest(days: Iterable[int | None]) -> int | None:
    """The longest of several policies' days (None: forever)."""
    days = list(days)
    return None if None in days else max(days)


def _walks(*kinds: Kept) -> list[tuple[int, Q]]:
    """[(days, filter of rows by their `device`)] that together cover every
    device kept a number of days (forever keeps all), the longest first.
    Of several kinds, the longest of their days (a rollup outlives the
    readings it summarises: ROLLUP with RAW).

    The site's devices are one filter, walked by time. The others (a
    device's own value or its type's) are walked device by device, by the
    (device, time) indexes, when there are at most DEVICES_APART of them:
    a few devices kept 30 days on a site that keeps everything then cost
    their own rows, not a read of the whole table by time every run.
    """
    site = _longest(kind.site_days() for kind in kinds)
    groups: dict[int | None, Q] = {}
    for combination in product(*(policy_groups(kind).items() for kind in kinds)):
        days = _longest(d for d, _ in combination)
        both = reduce(operator.and_, [group for _, group in combination])
        groups[days] = groups[days] | both if days in groups else both
    own = _own_days(kinds)
    if own is None:  # too many to walk apart
        walks = [(days, group) for days, group in groups.items() if days is not None]
    else:
        walks = [(site, groups[site])] if site is not None and site in groups else []
        walks += [(days, Q(device_id=pk)) for pk, days in own.items() if days is not None and days != site]
    return sorted(walks, key=lambda walk: -walk[0])


def _own_days(kinds: Iterable[Kept]) -> dict[int, int | None] | None:
    """{device pk: days (the longest of `kinds`)} of the devices whose own or
    type's value of one of `kinds` is set; None when they are more than DEVICES_APART."""
    kinds = list(kinds)
    condition = reduce(operator.or_, [Q(**{f"{kind.value}__isnull": False})
                                      | Q(**{f"device_type__{kind.value}__isnull": False}) for kind in kinds])
    pks = list(Device.objects.filter(condition).order_by("pk").values_list("pk", flat=True)[:DEVICES_APART + 1])
    if len(pks) > DEVICES_APART:
        return None
    policies = [device_policies(kind, pks) for kind in kinds]
    return {pk: _longest(policy[pk].days for policy in policies) for pk in pks}


def _reach(boundaries: dict[tuple[int, str, str], tuple[datetime, int] | None]) -> dict[int, datetime | None]:
    """{device pk: the oldest time its keep-last window reaches (None: all of
    its past, a series holds no more than keep_last)}."""
    reach: dict[int, datetime | None] = {}
    for (device_pk, _sensor, _quantity), boundary in boundaries.items():
        at = None if boundary is None else boundary[0]
        if device_pk not in reach:
            reach[device_pk] = at
        elif reach[device_pk] is not None:
            reach[device_pk] = None if at is None else min(at, reach[device_pk])
    return reach


def _longer_kept(now: datetime) -> dict[int, datetime | None]:
    """{device pk: its raw cutoff (None: forever)} of the devices whose own or
    type's raw policy is set, the only ones that can keep longer than the site."""
    candidates = Device.objects.filter(
        Q(raw_retention_days__isnull=False) | Q(device_type__raw_retention_days__isnull=False)
    ).values_list("pk", flat=True)
    return {pk: policy.cutoff(now) for pk, policy in device_policies(Kept.RAW, candidates).items()}


def _holds_other_devices(start: datetime | None, end: datetime, keep: frozenset[int]) -> bool:
    """Whether a device not in `keep` has messages in [start, end). Steps
    through the range's devices in order by the (device, time) index: at
    most len(keep) + 1 look-ups, never a read of the range."""
    inside = _within(Message.objects.all(), (start, end)).order_by("device_id")
    device_pk = inside.values_list("device_id", flat=True).first()
    while device_pk is not None and device_pk in keep:
        device_pk = inside.filter(device_id__gt=device_pk).values_list("device_id", flat=True).first()
    return device_pk is not None


def _span(start: datetime | None, end: datetime | None) -> Q:
    """Times in [start, end); None: unbounded."""
    inside = Q()
    if start is not None:
        inside &= Q(time__gte=start)
    if end is not None:
        inside &= Q(time__lt=end)
    return inside


def _within(rows: QuerySet, span: Span) -> QuerySet:
    return rows.filter(_span(*span))


# -- prunereadings' keep-last window -----------------------------------------------------------


def _keep_last_boundaries(
    keep_last: int, device_pks: Collection[int] | None,
) -> dict[tuple[int, str, str], tuple[datetime, int] | None]:
    """{(device pk, sensor, quantity): (time, pk) of the keep_last-th newest
    reading of the series, None when it holds no more than keep_last}."""
    keys = Reading.objects.order_by().values_list("device_id", "sensor", "quantity").distinct()
    if device_pks is not None:
        keys = keys.filter(device_id__in=list(device_pks))
    boundaries = {}
    for device_pk, sensor, quantity in keys:
        boundaries[(device_pk, sensor, quantity)] = (
            Reading.objects.filter(device_id=device_pk, sensor=sensor, quantity=quantity)
            .order_by("-time", "-pk").values_list("time", "pk")[keep_last - 1: keep_last].first()
        )
    return boundaries


def _prune_condition(
    *, device_pk: int, sensor: str, boundaries: dict[str, tuple[datetime, int] | None],
    cutoff: datetime | None,
) -> Q | None:
    """The readings of one device and sensor to delete, as one filter (None:
    nothing to delete): older than the cutoff and, per quantity, older than
    its boundary (both only protect)."""
    per_quantity = []
    for quantity, boundary in boundaries.items():
        if boundary is None:
            continue  # the series holds no more than keep_last readings
        at, pk = boundary
        condition = Q(quantity=quantity) & (Q(time__lt=at) | Q(time=at, pk__lt=pk))
        if cutoff is not None:
            condition &= Q(time__lt=cutoff)
        per_quantity.append(condition)
    if not per_quantity:
        return None
    return Q(device_id=device_pk, sensor=sensor) & reduce(operator.or_, per_quantity)
