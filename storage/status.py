"""What the data costs on disk and how far back it goes, for staff
(GET /status/storage/, storage/views.py).

`storage_status()` reads catalogues, statistics and the ends of time
indexes, never a table of readings, messages or rollups whole, so that it
answers in a few tens of milliseconds on a database of ten million readings
(bench/storage prints its time on the database it fills):

- sizes: on PostgreSQL pg_total_relation_size (heap, TOAST and indexes) of
  each table, summed over the partitions of a partitioned one, with the
  planner's row estimates (reltuples, or the statistics' live rows before a
  table's first ANALYZE); on SQLite the `dbstat` virtual table (a walk over
  every page, about a second per GB) up to SQLITE_DBSTAT_MAX_BYTES, and past
  it, or when SQLite was built without dbstat, the database's size alone;
  rows are counted up to SQLITE_COUNT_CAP per table.
- the partitions of readings_message and readings_reading (storage.partitions);
- the oldest and newest time of readings, messages, hourly and daily
  rollups: ORDER BY ... LIMIT 1 on their time indexes, both ends apart
  (SQLite walks a whole table for min() and max() in one query);
- the site's retention policy and the last runs of storage.retention.
"""

import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from django.apps import apps
from django.conf import settings
from django.db import OperationalError, connections
from django.db.models import Q

from readings import db
from readings.models import Device, DeviceType, Message, Reading, Rollup, RollupResolution
from readings.selectors.retention import Kept
from storage.models import RetentionRun
from storage.partitions import PARTITIONED_TABLES, Partition, partitions_list

RUNS_SHOWN = 10
# Rows counted per table on SQLite, which keeps no estimate: counting stops there.
SQLITE_COUNT_CAP = 10_000
# dbstat reads every page of the file: past this size only the file's size is given.
SQLITE_DBSTAT_MAX_BYTES = 256 * 1024 * 1024


@dataclass(frozen=True)
class TableSize:
    """One table of the project's apps.

    bytes: heap, TOAST and indexes, all partitions of a partitioned table
    (None when the database cannot tell one table from another);
    index_bytes: the indexes' part of it. rows: an estimate on PostgreSQL
    (the planner's reltuples, or before a table's first ANALYZE the
    statistics' live rows, which count committed rows only), a count on
    SQLite (rows_capped: there are more than that).
    """

    table: str
    model: str  # "readings.Reading"
    bytes: int | None
    index_bytes: int | None
    rows: int | None
    rows_capped: bool = False
    partitioned: bool = False


@dataclass(frozen=True)
class PartitionRow:
    """One partition as the page shows it: start None is MINVALUE (the
    legacy partition), end None MAXVALUE; rows_estimate None: never analysed."""

    table: str
    name: str
    kind: str  # "range", "legacy" (the rows from before partitioning) or "default"
    start: datetime | None
    end: datetime | None
    bytes: int
    rows_estimate: int | None

    @classmethod
    def of(cls, partition: Partition) -> "PartitionRow":
        kind = ("default" if partition.is_default
                else "legacy" if partition.name.endswith("_legacy") or partition.start is None
                else "range")
        return cls(partition.table, partition.name, kind, partition.start, partition.end,
                   partition.bytes,
                   partition.rows_estimate if partition.rows_estimate >= 0 else None)


@dataclass(frozen=True)
class DataSpan:
    """The oldest and newest time kept of one kind of row (None: no row)."""

    kind: str  # "readings", "messages", "hourly rollups", "daily rollups"
    table: str
    oldest: datetime | None
    newest: datetime | None


@dataclass(frozen=True)
class SitePolicy:
    """The site's retention settings in days (None: forever), how often the
    worker applies them, and how many devices and device types set their own."""

    raw_days: int | None
    rollup_days: int | None
    body_days: int | None
    interval_s: float
    partition_interval: str
    partitions_ahead: int
    devices_own: int
    device_types_own: int


@dataclass(frozen=True)
class RunRow:
    """One retention run and how long it took in seconds (None: not finished,
    still running or interrupted)."""

    run: RetentionRun

    @property
    def seconds(self) -> float | None:
        if self.run.finished_at is None:
            return None
        return (self.run.finished_at - self.run.started_at).total_seconds()

    @property
    def removed_anything(self) -> bool:
        run = self.run
        return bool(run.partitions_dropped or run.readings_deleted or run.messages_deleted
                    or run.bodies_cleared or run.rollups_deleted)


@dataclass(frozen=True)
class StorageStatus:
    """Everything the status page shows.

    database_bytes: the whole database (PostgreSQL: pg_database_size, which
    includes the catalogues and Django's own tables; SQLite: pages in use
    times page size). per_table False: sizes per table are unknown (SQLite
    without dbstat, or too large for it) and `sizes_note` says why.
    rows_count_cap: on SQLite, rows are counted up to it (None on PostgreSQL).
    runs: the last RUNS_SHOWN retention runs, newest first. took_ms: time to
    gather all this.
    """

    vendor: str
    database_bytes: int
    per_table: bool
    sizes_note: str
    rows_count_cap: int | None
    tables: list[TableSize]
    partitions: list[PartitionRow]
    spans: list[DataSpan]
    policy: SitePolicy
    runs: list[RunRow]
    took_ms: float

    @property
    def last_run(self) -> RunRow | None:
        return self.runs[0] if self.runs else None

    @property
    def tables_bytes(self) -> int | None:
        """Sum of the project's tables (None when not known per table)."""
        return sum(t.bytes or 0 for t in self.tables) if self.per_table else None


def project_tables() -> dict[str, str]:
    """{db_table: "app_label.Model"} of every concrete model (many-to-many
    tables included) of the apps that live in this repository, by table name."""
    base = Path(settings.BASE_DIR).resolve()
    found = {}
    for config in apps.get_app_configs():
        # Django's, DRF's and axes' apps live elsewhere (a virtualenv may sit in BASE_DIR).
        if Path(config.path).resolve().parent != base:
            continue
        for model in config.get_models(include_auto_created=True):
            meta = model._meta
            if meta.proxy or not meta.managed:
                continue
            found[meta.db_table] = f"{meta.app_label}.{model.__name__}"
    return dict(sorted(found.items()))


def _postgres_sizes(tables: dict[str, str], using: str) -> tuple[int, list[TableSize]]:
    with connections[using].cursor() as cursor:
        # A partitioned table's size is its leaves'; pg_partition_tree lists
        # no row for a plain table, which is its own leaf.
        cursor.execute(
            """
            SELECT t.name, c.relkind = 'p',
                   sum(pg_total_relation_size(leaf.oid))::bigint,
                   sum(pg_indexes_size(leaf.oid))::bigint,
                   sum(CASE WHEN leaf.reltuples >= 0 THEN leaf.reltuples::bigint
                            ELSE pg_stat_get_live_tuples(leaf.oid) END)::bigint
            FROM unnest(%s::text[]) AS t(name)
            JOIN pg_class c ON c.oid = to_regclass(quote_ident(t.name))
            CROSS JOIN LATERAL (
                SELECT tree.relid FROM pg_partition_tree(c.oid) AS tree WHERE tree.isleaf
                UNION ALL SELECT c.oid WHERE c.relkind <> 'p'
            ) AS leaves(oid)
            JOIN pg_class leaf ON leaf.oid = leaves.oid
            GROUP BY t.name, c.relkind
            """,
            [list(tables)],
        )
        rows = {row[0]: row[1:] for row in cursor.fetchall()}
        cursor.execute("SELECT pg_database_size(current_database())")
        database_bytes = cursor.fetchone()[0]
    sizes = []
    for table, model in tables.items():
        if table not in rows:  # a migration not applied yet
            continue
        partitioned, total, indexes, estimate = rows[table]
        sizes.append(TableSize(table, model, total, indexes, estimate, partitioned=partitioned))
    return database_bytes, sizes


def _sqlite_sizes(tables: dict[str, str], using: str) -> tuple[int, bool, str, list[TableSize]]:
    connection = connections[using]
    with connection.cursor() as cursor:
        cursor.execute("PRAGMA page_count")
        pages = cursor.fetchone()[0]
        cursor.execute("PRAGMA page_size")
        database_bytes = pages * cursor.fetchone()[0]
        existing = set(connection.introspection.table_names(cursor))
        per_table, note = False, ""
        table_bytes: dict[str, int] = {}
        index_bytes: dict[str, int] = {}
        if database_bytes > SQLITE_DBSTAT_MAX_BYTES:
            note = (f"The database is over {SQLITE_DBSTAT_MAX_BYTES // 2 ** 20} MiB: sizes per table "
                    "would mean reading the whole file, so only its size is given.")
        else:
            try:
                cursor.execute("SELECT name, tbl_name, type FROM sqlite_schema")
                owner = {name: (table, kind) for name, table, kind in cursor.fetchall()}
                cursor.execute("SELECT name, pgsize FROM dbstat WHERE aggregate = TRUE")
                for name, size in cursor.fetchall():
                    table, kind = owner.get(name, (name, "table"))
                    table_bytes[table] = table_bytes.get(table, 0) + size
                    if kind == "index":
                        index_bytes[table] = index_bytes.get(table, 0) + size
                per_table = True
            except OperationalError as exc:  # no such table: dbstat
                note = (f"This SQLite has no dbstat table ({exc}): only the database's size "
                        "is known, not each table's.")
        sizes = []
        for table, model in tables.items():
            if table not in existing:
                continue
            cursor.execute(f'SELECT count(*) FROM (SELECT 1 FROM "{table}" '
                           f'LIMIT {SQLITE_COUNT_CAP + 1})')
            rows = cursor.fetchone()[0]
            sizes.append(TableSize(
                table, model,
                table_bytes.get(table, 0) if per_table else None,
                index_bytes.get(table, 0) if per_table else None,
                min(rows, SQLITE_COUNT_CAP), rows_capped=rows > SQLITE_COUNT_CAP,
            ))
    return database_bytes, per_table, note, sizes


def _end(rows, field: str, *, newest: bool) -> datetime | None:
    return rows.order_by(f"-{field}" if newest else field).values_list(field, flat=True).first()


def data_spans(using: str = "default") -> list[DataSpan]:
    """Oldest and newest times of readings, messages and rollups, one index end each."""
    rollups = Rollup.objects.using(using)
    kinds = [
        ("readings", Reading.objects.using(using), "time"),
        ("messages", Message.objects.using(using), "time"),
        ("hourly rollups", rollups.filter(resolution_s=RollupResolution.HOUR), "start"),
        ("daily rollups", rollups.filter(resolution_s=RollupResolution.DAY), "start"),
    ]
    return [DataSpan(kind, rows.model._meta.db_table, _end(rows, field, newest=False),
                     _end(rows, field, newest=True))
            for kind, rows, field in kinds]


def site_policy(using: str = "default") -> SitePolicy:
    """The site's retention settings and how many devices and types override
    them (a scan of the devices table: some 20 ms per 100,000 devices)."""
    own = Q()
    for kept in Kept:
        own |= Q(**{f"{kept.value}__isnull": False})
    return SitePolicy(
        raw_days=Kept.RAW.site_days(),
        rollup_days=Kept.ROLLUP.site_days(),
        body_days=Kept.BODY.site_days(),
        interval_s=settings.SIGFOX_RETENTION_INTERVAL_S,
        partition_interval=settings.SIGFOX_PARTITION_INTERVAL,
        partitions_ahead=settings.SIGFOX_PARTITIONS_AHEAD,
        devices_own=Device.objects.using(using).filter(own).count(),
        device_types_own=DeviceType.objects.using(using).filter(own).count(),
    )


def storage_status(using: str = "default") -> StorageStatus:
    """Sizes, partitions, the span of data kept, the retention policy and its
    last runs, of database `using`. Reads no table of readings, messages or
    rollups whole (module docstring)."""
    started = time.perf_counter()
    connection = connections[using]
    postgresql = db.is_postgresql(using)
    tables = project_tables()
    if postgresql:
        database_bytes, sizes = _postgres_sizes(tables, using)
        per_table, note = True, ""
    else:
        database_bytes, per_table, note, sizes = _sqlite_sizes(tables, using)
    partitions = [PartitionRow.of(p) for table in PARTITIONED_TABLES
                  for p in partitions_list(table, using)]
    runs = RetentionRun.objects.using(using).order_by("-started_at")[:RUNS_SHOWN]
    return StorageStatus(
        vendor=connection.vendor,
        database_bytes=database_bytes,
        per_table=per_table,
        sizes_note=note,
        rows_count_cap=None if postgresql else SQLITE_COUNT_CAP,
        tables=sorted(sizes, key=lambda t: (-(t.bytes or 0), -(t.rows or 0), t.table)),
        partitions=partitions,
        spans=data_spans(using),
        policy=site_policy(using),
        runs=[RunRow(run) for run in runs],
        took_ms=(time.perf_counter() - started) * 1000,
    )
