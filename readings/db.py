"""What differs between the databases the project runs on, in one place, and
the time-bucket arithmetic that the series and radio statistics share.

PostgreSQL is the production database; SQLite serves a first try and the
quick test tier. Every `connection.vendor` test of the project lives here.
"""

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime

from django.db import DatabaseError, connections


def is_postgresql(using: str = "default") -> bool:
    return connections[using].vendor == "postgresql"


@contextmanager
def advisory_lock_held(key: int, using: str = "default") -> Iterator[bool]:
    """Try a session advisory lock on PostgreSQL (several workers may run at
    once) and yield whether this session holds it; released at the end.
    SQLite runs one worker: always True there."""
    if not is_postgresql(using):
        yield True
        return
    with connections[using].cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s)", [key])
        held = cursor.fetchone()[0]
    try:
        yield held
    finally:
        if held:
            try:
                with connections[using].cursor() as cursor:
                    cursor.execute("SELECT pg_advisory_unlock(%s)", [key])
            except DatabaseError:
                pass  # a lost connection took the lock with it


def epoch_s_sql(column: str) -> str:
    """SQL for the float Unix epoch seconds of a datetime column."""
    if is_postgresql():
        # date_part is float8; EXTRACT is numeric since PostgreSQL 14, and slower.
        return f"date_part('epoch', {column})"
    # SQLite keeps datetimes as text in UTC, "2026-01-31 12:00:00[.ffffff]": whole
    # seconds from strftime, exact (julianday's float would blur bucket edges),
    # plus the fraction after the 19th character.
    # strftime is given the whole seconds only: it rounds the fraction to the
    # millisecond, and "...59.9995" would count a second twice.
    return (f"(CAST(strftime('%%s', substr({column}, 1, 19)) AS REAL)"
            f" + CAST(substr({column}, 20) AS REAL))")


def estimated_rows(table: str, using: str = "default") -> int | None:
    """The planner's row estimate of a table (free, roughly right), or None where
    the database keeps none (SQLite)."""
    if not is_postgresql(using):
        return None
    with connections[using].cursor() as cursor:
        cursor.execute("SELECT reltuples::bigint FROM pg_class WHERE oid = %s::regclass", [table])
        row = cursor.fetchone()
    return row[0] if row else None


def ms(epoch_s: float) -> int:
    """Epoch seconds as whole epoch milliseconds, as the API and the charts use them."""
    return int(round(epoch_s * 1000))


@dataclass(frozen=True)
class TimeBuckets:
    """[since, until) cut into `count` buckets of equal time, numbered from 0.

    A row's bucket is floor((epoch - start) * count / span), clamped to the
    last bucket; the same arithmetic gives each bucket's edges.
    """

    since: datetime
    until: datetime
    count: int

    @property
    def start_s(self) -> float:
        return self.since.timestamp()

    @property
    def span_s(self) -> float:
        return (self.until - self.since).total_seconds()

    def edges_ms(self, index: int) -> tuple[int, int]:
        """Start and end (excluded) of bucket `index`, epoch milliseconds."""
        start_s, span_s = self.start_s, self.span_s
        return (ms(start_s + span_s * index / self.count),
                ms(start_s + span_s * (index + 1) / self.count))

    def index_sql(self, epoch: str) -> tuple[str, list]:
        """SQL for the bucket index of an epoch-seconds expression, and its parameters."""
        params = [self.start_s, self.count, self.span_s, self.count - 1]
        if is_postgresql():
            return f"LEAST(FLOOR(({epoch} - %s) * %s / %s)::integer, %s)", params
        # epoch >= start, so truncation is the floor.
        return f"MIN(CAST(({epoch} - %s) * %s / %s AS INTEGER), %s)", params

    def aggregate(self, template: str, rows, columns: str) -> tuple[str, list]:
        """`template` (SQL with {bucket} and {timed}) over `rows` (a queryset whose
        first column is the time): {timed} is a subquery of `e` (epoch seconds)
        and `columns`, {bucket} the bucket index of `e`."""
        rows_sql, rows_params = rows.query.sql_with_params()
        bucket, bucket_params = self.index_sql("e")
        epoch = epoch_s_sql('"time"')
        timed = f"SELECT {epoch} AS e, {columns} FROM ({rows_sql}) AS series_rows"
        return template.format(bucket=bucket, timed=timed), [*bucket_params, *rows_params]


def update_rows(table: str, key: str, columns: list[tuple[str, str]], rows: list[tuple],
                *, batch: int = 1000) -> None:
    """UPDATE many rows to their own values in a few statements: each row is
    (key, *values) for `columns`, (name, PostgreSQL type) pairs; Django's
    bulk_update builds a CASE per field and row, which costs seconds at 5,000 rows.
    """
    cast = is_postgresql()
    placeholders = "(" + ", ".join(
        ["%s"] + [f"%s::{pg_type}" if cast else "%s" for _, pg_type in columns]) + ")"
    sets = ", ".join(f"{name} = v.column{i + 2}" for i, (name, _) in enumerate(columns))
    connection = connections["default"]
    if not cast:  # SQLite: datetimes as Django writes them, so that they compare as text
        times = [i + 1 for i, (_, pg_type) in enumerate(columns) if pg_type == "timestamptz"]
        adapt = connection.ops.adapt_datetimefield_value
        rows = [tuple(adapt(v) if i in times else v for i, v in enumerate(row)) for row in rows]
    with connection.cursor() as cursor:
        for start in range(0, len(rows), batch):
            chunk = rows[start:start + batch]
            values = ", ".join([placeholders] * len(chunk))
            cursor.execute(
                f"UPDATE {table} SET {sets} FROM (VALUES {values}) AS v "
                f"WHERE {table}.{key} = v.column1",
                [value for row in chunk for value in row])


def transaction_id() -> int | None:
    """PostgreSQL: the caller's transaction id (64 bits, as a bigint), given
    now if it has none yet: then higher than that of every transaction that
    had one before. None elsewhere.

    Not the snapshot's xmax: that is one past the newest transaction to have
    ended, and a transaction running with a higher id is in no snapshot's list.
    """
    if not is_postgresql():
        return None
    with connections["default"].cursor() as cursor:
        cursor.execute("SELECT pg_current_xact_id()::text::bigint")
        return cursor.fetchone()[0]


# pg_stat_activity shows 32-bit transaction ids: each is widened to 64 bits as
# the one nearest the snapshot's xmax (a running transaction is within 2^31 of it).
_OLDEST_TRANSACTION_SQL = """
SELECT MIN(r.ref + ((a.backend_xid::text::bigint - r.ref %% 4294967296 + 6442450944) %% 4294967296)
           - 2147483648)
FROM pg_stat_activity a, (SELECT pg_snapshot_xmax(pg_current_snapshot())::text::bigint AS ref) r
WHERE a.datname = current_database() AND a.pid <> pg_backend_pid() AND a.backend_xid IS NOT NULL
"""


def oldest_transaction_id() -> int | None:
    """PostgreSQL: the lowest transaction id (64 bits) of a transaction running
    in another session connected to this database, None when none holds one
    (or elsewhere than PostgreSQL). Left out: the caller's own (the rows it
    wrote are visible to it) and other databases' sessions (they cannot write
    here, and a long one must not hold this one back). Prepared transactions
    are not seen: the project prepares none."""
    if not is_postgresql():
        return None
    with connections["default"].cursor() as cursor:
        # pg_stat_activity keeps what it read until the transaction ends: read afresh.
        cursor.execute("SELECT pg_stat_clear_snapshot()")
        cursor.execute(_OLDEST_TRANSACTION_SQL, [])
        return cursor.fetchone()[0]


def last_id(table: str) -> int:
    """The highest id a table's primary key has given out (committed or not,
    perhaps rolled back), 0 before the first: an upper bound of its ids read
    from the sequence alone, however many rows or partitions the table has."""
    with connections["default"].cursor() as cursor:
        if is_postgresql():
            cursor.execute("SELECT pg_sequence_last_value(pg_get_serial_sequence(%s, 'id')::regclass)",
                           [table])
        else:  # AUTOINCREMENT keys keep their high-water mark in sqlite_sequence
            cursor.execute("SELECT seq FROM sqlite_sequence WHERE name = %s", [table])
        row = cursor.fetchone()
    return (row[0] if row else None) or 0
