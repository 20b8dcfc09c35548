"""Hourly and daily rollups of every series (readings.models.Rollup), kept
up to date by the worker's pass, never by ingest.

New readings are found by a watermark on Reading.id (RollupProgress), so a
callback pays nothing for the rollups; readings deleted or changed other
than by retention (an admin deletion, redecode) mark their hours dirty
first (rollups_invalidate, RollupDirty). rollups_refresh takes both, and
computes the hourly rollups of each hour touched again from its readings,
then the daily rollups of each day touched from its hourly ones, with the
same M4 aggregation the series charts use (readings.selectors.series.m4_sql).
"""

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.db import connection, transaction
from django.db.models import Count, QuerySet
from django.db.models.functions import TruncHour

from readings import db
from readings.models import Reading, Rollup, RollupDirty, RollupProgress, RollupResolution
from readings.selectors.retention import Kept, device_policies
from readings.selectors.series import m4_sql

# Readings (and dirty rows) taken per transaction: each transaction holds the
# progress row's lock and rewrites the rollups of what it took, a second or so.
CHUNK_READINGS = 20_000
# Hours or days per statement (5 parameters each).
KEYS_PER_STATEMENT = 2_000

HOUR = timedelta(seconds=RollupResolution.HOUR)
DAY = timedelta(seconds=RollupResolution.DAY)

# (device pk, sensor, quantity, start of the UTC hour or day)
Key = tuple[int, str, str, datetime]


@dataclass(frozen=True, slots=True)
class RollupRefresh:
    """What one rollups_refresh did."""

    readings: int  # new readings taken in (past the old watermark)
    hours: int  # hourly rollups computed again (one per series and hour)
    days: int  # daily rollups computed again
    caught_up: bool  # nothing left that this pass could take: no safe reading, no dirty hour


def rollups_refresh(*, now: datetime, max_readings: int = 200_000) -> RollupRefresh:
    """Bring the rollups up to date with the readings, at most `max_readings`
    readings and dirty hours per call (a worker pass stays short; an old
    database catches up over several passes).

    Takes the readings past the watermark that are safe to take (see
    _safe_reading_id) and the dirty hours, in transactions of CHUNK_READINGS:
    each computes again the hours they touch and their days, deletes the
    dirty rows it read and moves the watermark, together. Hours before the
    device's raw retention cutoff (their readings may be partly gone) and
    hours or days before its rollup retention cutoff are left as they are.
    `now` (aware) dates the pass and places the cutoffs.
    """
    with transaction.atomic():
        progress = _progress_locked()
        safe_id = _safe_reading_id(progress)
        progress.save()
    taken = work = hours = days = 0
    while work < max_readings:
        with transaction.atomic():
            _jit_off()
            progress = _progress_locked()
            budget = min(CHUNK_READINGS, max_readings - work)
            start_id = progress.reading_id
            end_id = _chunk_end(start_id, safe_id, budget)
            counted = _reading_hours(start_id, end_id)
            dirty = list(RollupDirty.objects.order_by("pk")
                         .values_list("pk", "device_id", "sensor", "quantity", "hour")[:budget])
            if end_id == start_id and not dirty:
                break
            keys = set(counted) | {(d, s, q, _floor(h, HOUR)) for _, d, s, q, h in dirty}
            done_hours, done_days = _recompute(keys, now=now)
            read = [row[0] for row in dirty]
            for start in range(0, len(read), KEYS_PER_STATEMENT):
                RollupDirty.objects.filter(pk__in=read[start:start + KEYS_PER_STATEMENT]).delete()
            progress.reading_id = end_id
            progress.save(update_fields=["reading_id"])
        taken += sum(counted.values())
        work += sum(counted.values()) + len(dirty)
        hours += done_hours
        days += done_days
    if db.is_postgresql():
        _candidate_note()  # once the last is all taken: the next pass takes what came since
    with transaction.atomic():
        progress = _progress_locked()
        progress.updated_at = now
        progress.save(update_fields=["updated_at"])
        caught_up = progress.reading_id >= safe_id and not RollupDirty.objects.exists()
    return RollupRefresh(readings=taken, hours=hours, days=days, caught_up=caught_up)


def rollups_invalidate(
    readings: QuerySet[Reading] | Iterable[tuple[int, str, str, datetime]],
) -> int:
    """Mark for rollups_refresh the hours that hold the given readings:
    a queryset of them, or (device pk, sensor, quantity, time) each.

    Call it in the transaction that deletes or changes them (before, for a
    queryset, while the readings are there to read). New readings need no
    call: the watermark finds them. Returns the number of hours marked.
    """
    if isinstance(readings, QuerySet):
        keys = set(readings.order_by().annotate(hour=TruncHour("time", tzinfo=UTC))
                   .values_list("device_id", "sensor", "quantity", "hour").distinct())
    else:
        keys = {(device_pk, sensor, quantity, _floor(time, HOUR))
                for device_pk, sensor, quantity, time in readings}
    RollupDirty.objects.bulk_create(
        [RollupDirty(device_id=d, sensor=s, quantity=q, hour=h) for d, s, q, h in keys],
        batch_size=KEYS_PER_STATEMENT)
    return len(keys)


def _jit_off() -> None:
    """PostgreSQL: no JIT compilation in this transaction. The planner cannot
    tell how few readings an hour holds, prices the statements of a chunk at
    millions of rows, and compiles them for seconds to run them in milliseconds."""
    if db.is_postgresql():
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL jit = off")


def _progress_locked() -> RollupProgress:
    """The one progress row, locked to this transaction: refreshes run one at a time."""
    RollupProgress.objects.get_or_create(pk=1)
    return RollupProgress.objects.select_for_update().get(pk=1)


def _newest_reading_id() -> int:
    return Reading.objects.order_by("-pk").values_list("pk", flat=True).first() or 0


def _candidate_note() -> None:
    """PostgreSQL: when the candidate is all taken (or there is none), note a
    new one: the newest committed reading id, and a transaction id given
    after reading it (see _safe_reading_id)."""
    with transaction.atomic():
        newest = _newest_reading_id()
        xid = db.transaction_id()  # given now, after the read: above every transaction running then
        progress = _progress_locked()
        if progress.candidate_xmax is None or progress.reading_id >= progress.candidate_id:
            progress.candidate_id, progress.candidate_xmax = newest, xid
            progress.save(update_fields=["candidate_id", "candidate_xmax"])


def _safe_reading_id(progress: RollupProgress) -> int:
    """The highest reading id below which no reading can be committed any
    more: the watermark may move up to it.

    Ids are given out before commit, so the highest committed id is not safe
    by itself: a transaction still running may commit a lower one.

    SQLite writes one transaction at a time, and a reader sees only what has
    been committed, below every id the writer may still commit: the newest
    committed id is safe at once.

    PostgreSQL: a pass notes a candidate (_candidate_note), the newest
    committed reading id and then a fresh transaction id, higher than that of
    every transaction running at the read. A later pass takes the readings up
    to the candidate once none of those is running any more
    (db.oldest_transaction_id). What that misses: a transaction gets its
    transaction id at its first write, and an INSERT of a reading takes the
    reading id from the sequence just before, in the same statement (nextval
    itself takes a transaction id only one time in 32). One caught between
    the two as the candidate is read is not waited for, and its reading, of a
    lower id than the candidate, is missed if it is still uncommitted when a
    later pass takes the candidate. The candidate being at least one pass old
    (a worker interval, 30 s by default) is what makes that safe: the
    statement and its transaction end well within it (ingest commits in
    milliseconds, redecode's batches of 500 messages in under a second).
    """
    if not db.is_postgresql():
        progress.candidate_id = _newest_reading_id()
        return progress.candidate_id
    if progress.candidate_xmax is None or progress.reading_id >= progress.candidate_id:
        return progress.reading_id  # nothing noted yet, or all of it taken
    oldest = db.oldest_transaction_id()
    if oldest is None or oldest >= progress.candidate_xmax:
        return progress.candidate_id
    return progress.reading_id  # a transaction running when the candidate was noted still runs


def _chunk_end(start_id: int, safe_id: int, budget: int) -> int:
    """The id that ends the next chunk: at most `budget` readings past start_id, up to safe_id."""
    if safe_id <= start_id:
        return start_id
    nth = (Reading.objects.filter(pk__gt=start_id, pk__lte=safe_id).order_by("pk")
           .values_list("pk", flat=True)[budget - 1:budget].first())
    return safe_id if nth is None else nth


def _reading_hours(start_id: int, end_id: int) -> dict[Key, int]:
    """{(device pk, sensor, quantity, hour): readings} of the readings whose
    ids are in (start_id, end_id]."""
    if end_id <= start_id:
        return {}
    rows = (Reading.objects.filter(pk__gt=start_id, pk__lte=end_id).order_by()
            .annotate(hour=TruncHour("time", tzinfo=UTC))
            .values_list("device_id", "sensor", "quantity", "hour").annotate(n=Count("pk")))
    return {(d, s, q, h): n for d, s, q, h, n in rows}


def _floor(time: datetime, step: timedelta) -> datetime:
    """The start of the UTC hour or day holding `time` (aware)."""
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    return epoch + (time - epoch) // step * step


def _recompute(keys: set[Key], *, now: datetime) -> tuple[int, int]:
    """Compute again the hourly rollups of `keys` (hours) and the daily
    rollups of their days, but those the retention policy leaves as they
    are. Returns (hours, days) computed."""
    devices = {key[0] for key in keys}
    raw = device_policies(Kept.RAW, devices)
    kept = device_policies(Kept.ROLLUP, devices)

    def after(policies, device_pk: int, start: datetime) -> bool:
        cutoff = policies[device_pk].cutoff(now)
        return cutoff is None or start >= cutoff

    kept_keys = [key for key in keys if key[0] in raw and after(kept, key[0], key[3])]
    # An hour past the raw retention may have lost readings already: its rollup
    # stays as it is. One that has none yet (a history rolled up for the first
    # time, after an upgrade) still has all its readings: retention deletes
    # none that the rollups have not taken in.
    old = [key for key in kept_keys if not after(raw, key[0], key[3])]
    rolled = _hours_rolled_up(old) if old else set()
    hours = sorted(key for key in kept_keys if after(raw, key[0], key[3]) or key not in rolled)
    days = sorted({(d, s, q, _floor(h, DAY)) for d, s, q, h in hours})
    days = [key for key in days if after(kept, key[0], key[3])]
    for start in range(0, len(hours), KEYS_PER_STATEMENT):
        _rebuild(hours[start:start + KEYS_PER_STATEMENT], RollupResolution.HOUR)
    for start in range(0, len(days), KEYS_PER_STATEMENT):
        _rebuild(days[start:start + KEYS_PER_STATEMENT], RollupResolution.DAY)
    return len(hours), len(days)


def _hours_rolled_up(keys: list[Key]) -> set[Key]:
    """Those of `keys` (hours) that have an hourly rollup."""
    found: set[Key] = set()
    for device_pk in {key[0] for key in keys}:
        starts = [key[3] for key in keys if key[0] == device_pk]
        found.update(Rollup.objects.filter(
            device_id=device_pk, resolution_s=RollupResolution.HOUR,
            start__gte=min(starts), start__lte=max(starts),
        ).values_list("device_id", "sensor", "quantity", "start"))
    return found


# The key's rows of a table (as `r`): on PostgreSQL a LATERAL subquery, kept
# one by OFFSET 0, so that each key is one probe of the series index; as a
# plain join the planner hashes the keys by series and compares every reading
# of a series with every hour of it. SQLite joins by probing anyway.
_ROWS_OF_KEY = {
    True: "keys k CROSS JOIN LATERAL "
          "(SELECT {columns} FROM {table} r WHERE {condition} OFFSET 0) AS r",
    False: "keys k JOIN {table} r ON {condition}",
}

_SAME_SERIES = "r.device_id = k.device_id AND r.sensor = k.sensor AND r.quantity = k.quantity"

# An hour's unit rows: its readings, each a unit row of one (the epoch as the
# series query computes it, db.epoch_s_sql, so that rollups and readings agree).
_HOUR_UNITS = """
SELECT device_id, sensor, quantity, "start", 1 AS n, value AS s, e AS fe, value AS fv,
       e AS mine, value AS minv, e AS maxe, value AS maxv, e AS le, value AS lv
FROM (
    SELECT k.device_id, k.sensor, k.quantity, k."start", r.value, {epoch} AS e FROM {rows}
) AS timed
"""

# A day's unit rows: its hourly rollups.
_DAY_UNITS = """
SELECT k.device_id, k.sensor, k.quantity, k."start", r."count" AS n, r."sum" AS s,
       r.first_epoch_s AS fe, r."first" AS fv, r.min_epoch_s AS mine, r."min" AS minv,
       r.max_epoch_s AS maxe, r."max" AS maxv, r.last_epoch_s AS le, r."last" AS lv
FROM {rows}
"""

_ROLLUP_COLUMNS = ['"count"', '"sum"', "first_epoch_s", '"first"', "min_epoch_s", '"min"',
                   "max_epoch_s", '"max"', "last_epoch_s", '"last"']
_GROUPS = ["device_id", "sensor", "quantity", '"start"']
_INSERTED = ", ".join([*_GROUPS, *_ROLLUP_COLUMNS, "resolution_s"])


def _rows_of_keys(table: str, condition: str, columns: str) -> str:
    """SQL (FROM clause) of each key `k` with the rows `r` of `table` of its
    series that `condition` picks."""
    return _ROWS_OF_KEY[db.is_postgresql()].format(
        table=table, condition=f"{_SAME_SERIES} AND {condition}", columns=columns)


def _rebuild(keys: Sequence[Key], resolution_s: int) -> None:
    """Delete the rollups of `keys` at resolution_s and insert them anew:
    hours from the readings, days from the hourly rollups. Two statements,
    the keys a VALUES list."""
    step = timedelta(seconds=resolution_s)
    if db.is_postgresql():
        row = "(%s::bigint, %s::text, %s::text, %s::timestamptz, %s::timestamptz)"
    else:
        row = "(%s, %s, %s, %s, %s)"
    adapt = connection.ops.adapt_datetimefield_value
    keys_sql = (f'WITH keys(device_id, sensor, quantity, "start", until) AS '
                f'(VALUES {", ".join([row] * len(keys))})')
    keys_params = [value for d, s, q, start in keys
                   for value in (d, s, q, adapt(start), adapt(start + step))]
    doomed = _rows_of_keys("readings_rollup", 'r.resolution_s = %s AND r."start" = k."start"',
                           "r.id")
    if resolution_s == RollupResolution.HOUR:
        rows = _rows_of_keys("readings_reading", 'r."time" >= k."start" AND r."time" < k.until',
                             'r.value, r."time"')
        units = _HOUR_UNITS.format(epoch=db.epoch_s_sql('r."time"'), rows=rows)
        units_params = []
    else:
        hours = 'r.resolution_s = %s AND r."start" >= k."start" AND r."start" < k.until'
        rows = _rows_of_keys("readings_rollup", hours,
                             ", ".join(f"r.{column}" for column in _ROLLUP_COLUMNS))
        units, units_params = _DAY_UNITS.format(rows=rows), [RollupResolution.HOUR]
    with connection.cursor() as cursor:
        cursor.execute(
            f"{keys_sql} DELETE FROM readings_rollup WHERE id IN (SELECT r.id FROM {doomed})",
            [*keys_params, resolution_s])
        cursor.execute(f"{keys_sql} INSERT INTO readings_rollup ({_INSERTED}) "
                       f"SELECT m4.*, %s FROM ({m4_sql(units, _GROUPS)}) AS m4",
                       [*keys_params, resolution_s, *units_params])
