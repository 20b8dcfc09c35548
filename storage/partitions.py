"""Time partitions of the tables that grow with traffic, on PostgreSQL.

readings_message and readings_reading are range-partitioned by `time` (UTC),
one partition per SIGFOX_PARTITION_INTERVAL ("day", "week" or "month"), with
the same boundaries in both tables, named `<table>_p<YYYYMMDD>` after their
start. Around them:

- `<table>_default`, the DEFAULT partition: no write ever fails for want of a
  partition. Rows land there when their range has none (a backfill older than
  the first partition, a device clock years ahead); `partitions_ensure` gives
  their range a partition and moves them into it, past ones included.
- `<table>_legacy`: a database made before partitioning keeps its rows in
  place as one partition from MINVALUE to the first month after the upgrade
  (readings migration 0014); retention deletes its rows in batches, and drops
  it whole once its range has expired.

Creating a partition never takes a lock that waits behind reads: the table
is made apart and ATTACHed, which takes SHARE UPDATE EXCLUSIVE on the parent.
Detaching one does take ACCESS EXCLUSIVE, queued behind any long chart
query and blocking callbacks while queued, so it runs with a short
lock_timeout and is retried (PartitionBusy when it never gets the lock).

Why by hand rather than pg_partman (packaged by Debian as
postgresql-15-partman): the extension must be installed on the server and
created by a superuser, which an installation on a managed or shared
PostgreSQL cannot always do, and it would only take over the creation of
partitions ahead (a few statements here): retention keeps per-device rows
when a partition goes, which pg_partman's retention cannot, and the default
partition's rows are moved here the same way. django-postgres-extra's
partitioning would force composite primary keys and take the models out of
the admin and of foreign keys. Nothing here needs more than PostgreSQL 12.

On SQLite every function here is a no-op: plain tables, retention by batches.
"""

import re
import time
from collections.abc import Collection
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db import OperationalError, connections, transaction

from readings import db

PARTITIONED_TABLES = ("readings_message", "readings_reading")
# Rows that belong to a message, deleted with the messages of a dropped
# partition (Django's CASCADE runs in Python; a dropped partition runs none).
MESSAGE_CHILDREN = ("readings_reception", "readings_sequencegap", "readings_messageconflict",
                    "readings_downlink")
INTERVALS = ("day", "week", "month")
LOCK_TIMEOUT_MS = 500
LOCK_NOT_AVAILABLE = "55P03"  # SQLSTATE of a lock_timeout
LOCK_RETRIES = 6


class PartitionBusy(Exception):
    """The parent table's lock could not be had within the retries (a long
    query held it); nothing was changed. The next pass tries again."""


@dataclass(frozen=True)
class Partition:
    """One partition of a partitioned table; start None is MINVALUE, end None MAXVALUE."""

    table: str
    name: str
    start: datetime | None
    end: datetime | None
    is_default: bool
    bytes: int  # table, indexes and TOAST
    rows_estimate: int  # the planner's estimate (-1: never analysed)


@dataclass(frozen=True)
class DroppedRange:
    """What partition_range_drop removed: partition names and row counts."""

    names: list[str]
    readings: int
    messages: int


def is_partitioned(table: str = PARTITIONED_TABLES[0], using: str = "default") -> bool:
    """True when `table` is a partitioned table (PostgreSQL after migration readings 0014)."""
    if not db.is_postgresql(using):
        return False
    with connections[using].cursor() as cursor:
        cursor.execute("SELECT relkind = 'p' FROM pg_class WHERE oid = to_regclass(%s)", [table])
        row = cursor.fetchone()
    return bool(row and row[0])


_BOUND = re.compile(r"FROM \((.+?)\) TO \((.+?)\)")


def _bound(text: str) -> datetime | None:
    text = text.strip()
    if text in ("MINVALUE", "MAXVALUE"):
        return None
    return datetime.fromisoformat(text.strip("'")).astimezone(UTC)


def partitions_list(table: str, using: str = "default") -> list[Partition]:
    """The partitions of `table` by start (the default one last); [] unless partitioned."""
    if not is_partitioned(table, using):
        return []
    with connections[using].cursor() as cursor:
        cursor.execute(
            """
            SELECT c.relname, pg_get_expr(c.relpartbound, c.oid), pg_total_relation_size(c.oid),
                   c.reltuples::bigint
            FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
            WHERE i.inhparent = %s::regclass
            """,
            [table],
        )
        rows = cursor.fetchall()
    found = []
    for name, bound, size, estimate in rows:
        if bound == "DEFAULT":
            found.append(Partition(table, name, None, None, True, size, estimate))
            continue
        match = _BOUND.search(bound)
        found.append(Partition(table, name, _bound(match[1]), _bound(match[2]), False, size, estimate))
    far = datetime.max.replace(tzinfo=UTC)
    return sorted(found, key=lambda p: (p.is_default, p.start or datetime.min.replace(tzinfo=UTC),
                                        p.end or far))


def slot_start(moment: datetime, interval: str) -> datetime:
    """Start (UTC) of the partition slot holding `moment`: its day, its ISO week (Monday), its month."""
    moment = moment.astimezone(UTC)
    day = moment.replace(hour=0, minute=0, second=0, microsecond=0)
    if interval == "day":
        return day
    if interval == "week":
        return day - timedelta(days=day.weekday())
    if interval == "month":
        return day.replace(day=1)
    raise ValueError(f"SIGFOX_PARTITION_INTERVAL must be one of {', '.join(INTERVALS)}, not {interval!r}")


def slot_end(start: datetime, interval: str) -> datetime:
    """End (excluded) of the slot that starts at `start`."""
    if interval == "day":
        return start + timedelta(days=1)
    if interval == "week":
        return start + timedelta(days=7)
    return (start.replace(day=28) + timedelta(days=4)).replace(day=1)


def _gaps(start: datetime, end: datetime, taken: list[Partition]) -> list[tuple[datetime, datetime]]:
    """[start, end) less the ranges of existing partitions."""
    pieces = [(start, end)]
    for p in taken:
        if p.is_default:
            continue
        low = p.start or datetime.min.replace(tzinfo=UTC)
        high = p.end or datetime.max.replace(tzinfo=UTC)
        pieces = [piece for a, b in pieces for piece in
                  ([(a, min(b, low))] if a < low else []) + ([(max(a, high), b)] if b > high else [])
                  if piece[0] < piece[1]]
    return pieces


def _lock_timeout(cursor, ms: int = LOCK_TIMEOUT_MS) -> None:
    cursor.execute(f"SET LOCAL lock_timeout = '{int(ms)}ms'")


def _retrying(work, *, using: str, retries: int = LOCK_RETRIES):
    """Run `work` (a function of a cursor, in one transaction with a short
    lock timeout) until it gets its locks; PartitionBusy after `retries`
    tries, 0.2 s apart and doubling (about 13 s in all by default)."""
    for attempt in range(retries):
        try:
            with transaction.atomic(using=using), connections[using].cursor() as cursor:
                _lock_timeout(cursor)
                return work(cursor)
        except OperationalError as exc:
            if getattr(exc.__cause__, "sqlstate", None) != LOCK_NOT_AVAILABLE:
                raise
            if attempt + 1 < retries:
                time.sleep(0.2 * 2 ** attempt)
    raise PartitionBusy("could not lock the partitioned tables; a long query holds them")


def _attach(cursor, table: str, name: str, start: datetime, end: datetime) -> int:
    """Make partition `name` of `table` for [start, end), moving into it the
    default partition's rows of that range; returns the rows moved."""
    cursor.execute(f'CREATE TABLE "{name}" (LIKE "{table}" INCLUDING DEFAULTS INCLUDING CONSTRAINTS)')
    cursor.execute(
        f'WITH moved AS (DELETE FROM "{table}_default" WHERE time >= %s AND time < %s RETURNING *) '
        f'INSERT INTO "{name}" SELECT * FROM moved',
        [start, end],
    )
    moved = cursor.rowcount
    cursor.execute(f'ALTER TABLE "{table}" ATTACH PARTITION "{name}" FOR VALUES FROM (%s) TO (%s)',
                   [start, end])
    return moved


def partitions_ensure(*, now: datetime, cover: tuple[datetime, datetime] | None = None,
                      using: str = "default") -> list[str]:
    """Create the partitions that are due and return their names:

    - every slot from the current one to SIGFOX_PARTITIONS_AHEAD slots ahead;
    - every slot of `cover` (since, until), e.g. before copying history in;
    - every slot up to the last one ahead that holds rows in the default
      partition, those rows moved in (rows further ahead stay in the default).

    Slots already covered, wholly or in part, keep their partitions; only the
    gaps are made. A no-op on SQLite. Raises PartitionBusy when a lock cannot be had.
    """
    if not is_partitioned(PARTITIONED_TABLES[0], using):
        return []
    interval = settings.SIGFOX_PARTITION_INTERVAL
    horizon = slot_start(now, interval)
    for _ in range(settings.SIGFOX_PARTITIONS_AHEAD):
        horizon = slot_end(horizon, interval)
    wanted = set()
    slot = slot_start(now, interval)
    while slot <= horizon:
        wanted.add(slot)
        slot = slot_end(slot, interval)
    if cover is not None:
        slot, last = slot_start(cover[0], interval), min(cover[1], slot_end(horizon, interval))
        while slot <= last:
            wanted.add(slot)
            slot = slot_end(slot, interval)
    with connections[using].cursor() as cursor:
        for table in PARTITIONED_TABLES:
            cursor.execute(
                f"SELECT DISTINCT date_trunc(%s, time AT TIME ZONE 'UTC') FROM \"{table}_default\" "
                f"WHERE time < %s",
                [interval, slot_end(horizon, interval)],
            )
            wanted.update(row[0].replace(tzinfo=UTC) for row in cursor.fetchall())
    created = []
    for table in PARTITIONED_TABLES:
        taken = partitions_list(table, using)
        for start in sorted(wanted):
            for a, b in _gaps(start, slot_end(start, interval), taken):
                name = f"{table}_p{a:%Y%m%d}"
                _retrying(lambda cursor, a=a, b=b, name=name: _attach(cursor, table, name, a, b),
                          using=using)
                created.append(name)
                taken = partitions_list(table, using)
    return created


def partition_range_drop(start: datetime | None, end: datetime, *,
                         keep_device_pks: Collection[int] = (), using: str = "default",
                         retries: int = LOCK_RETRIES) -> DroppedRange:
    """Drop the partitions of [start, end) (start None: the legacy partition
    from MINVALUE) of both tables, with the receptions, sequence gaps,
    conflicts and downlinks of their messages.

    The rows of `keep_device_pks` (devices whose retention is longer) are
    moved first into a fresh partition of the same range, which takes the
    dropped one's name: what goes, goes whole, with no dead rows left behind.
    Raises PartitionBusy when the parents' locks cannot be had; nothing changes then.
    """
    keep = sorted(set(keep_device_pks))
    found = {t: [p for p in partitions_list(t, using) if not p.is_default and p.start == start
                 and p.end == end] for t in PARTITIONED_TABLES}
    if not all(found.values()):
        return DroppedRange([], 0, 0)
    counts = {}

    def drop(cursor):
        names = {table: found[table][0].name for table in PARTITIONED_TABLES}
        kept_filter = "WHERE device_id <> ALL(%s)" if keep else ""
        kept_params = [keep] if keep else []
        # Everything slow happens before the parents are locked: no writes into
        # the range meanwhile (SHARE on the partitions only), rows counted,
        # children deleted, kept rows copied.
        for table in reversed(PARTITIONED_TABLES):
            cursor.execute(f'LOCK TABLE "{names[table]}" IN SHARE MODE')
        for table in PARTITIONED_TABLES:
            cursor.execute(f'SELECT count(*) FROM "{names[table]}" {kept_filter}', kept_params)
            counts[table] = cursor.fetchone()[0]
        # An acknowledge outlives the downlink it answered (SET_NULL), which goes
        # with its message: its link is emptied first, as Django's would be.
        cursor.execute(
            f'UPDATE readings_acknowledge SET downlink_id = NULL WHERE downlink_id IN '
            f'(SELECT d.id FROM readings_downlink d WHERE d.message_id IN '
            f'(SELECT id FROM "{names["readings_message"]}" {kept_filter}))', kept_params)
        for child in MESSAGE_CHILDREN:
            cursor.execute(f'DELETE FROM "{child}" WHERE message_id IN '
                           f'(SELECT id FROM "{names["readings_message"]}" {kept_filter})', kept_params)
        if keep:
            for table in PARTITIONED_TABLES:
                cursor.execute(f'CREATE TABLE "{names[table]}_kept" '
                               f'(LIKE "{table}" INCLUDING DEFAULTS INCLUDING CONSTRAINTS)')
                cursor.execute(f'INSERT INTO "{names[table]}_kept" SELECT * FROM "{names[table]}" '
                               f'WHERE device_id = ANY(%s)', [keep])
        # Then the brief part under the parents' ACCESS EXCLUSIVE locks. DETACH
        # also locks the tables the partitions' foreign keys lead to, and a
        # callback locks its device before its message: taken in the other
        # order, the two would wait for each other. The devices first, then.
        cursor.execute("LOCK TABLE readings_device, readings_devicetype IN SHARE ROW EXCLUSIVE MODE")
        cursor.execute("LOCK TABLE readings_message, readings_reading IN ACCESS EXCLUSIVE MODE")
        bounds = "FROM (MINVALUE) TO (%s)" if start is None else "FROM (%s) TO (%s)"
        for table in reversed(PARTITIONED_TABLES):  # readings, then their messages
            name = names[table]
            cursor.execute(f'ALTER TABLE "{table}" DETACH PARTITION "{name}"')
            if keep:
                cursor.execute(f'ALTER TABLE "{table}" ATTACH PARTITION "{name}_kept" FOR VALUES {bounds}',
                               [end] if start is None else [start, end])
            cursor.execute(f'DROP TABLE "{name}"')
            if keep:
                cursor.execute(f'ALTER TABLE "{name}_kept" RENAME TO "{name}"')
        return [names[table] for table in reversed(PARTITIONED_TABLES)]

    names = _retrying(drop, using=using, retries=retries)
    return DroppedRange(names, counts.get("readings_reading", 0), counts.get("readings_message", 0))
