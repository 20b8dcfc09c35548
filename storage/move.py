"""Moving a SQLite installation to PostgreSQL (`manage.py movetopostgres`).

What is copied: every table of every installed app, one per concrete
managed model of `apps.get_models(include_auto_created=True)` (proxies and
swapped models share a table and are left out; many-to-many tables are
their own auto-created models). That is users, groups, permissions,
content types, sessions, API tokens, the admin's log, the login lockout
(axes), and all of readings, alerts and storage. `django_migrations` is the
target's own, written by migrate.

How:

- The target is migrated first, by the same code, so it has every table
  (in a subprocess whose default database is the target: see target_migrate).
  The source must be migrated to the same point (MoveError otherwise).
- Tables go parents before children (`tables_ordered`, a topological sort
  of the foreign keys), so that a row's parent is always in the target
  before it. Foreign keys on PostgreSQL are checked at commit.
- Rows go in batches ordered by primary key, primary keys kept, each batch
  one transaction on the target and one COPY. The source is read with plain
  SQL: text, numbers and JSON text go as they are; a SQLite datetime (naive
  UTC text) is sent with its "+00:00"; a boolean (0/1) PostgreSQL reads as
  such. A column of any other type goes through Django's converters
  (source to Python to target), so a future field type is still exact.
- Resuming: a batch either committed whole or not at all, so after an
  interruption each target table holds the source's rows up to some key.
  A run copies, per table, the source's rows with a key greater than the
  target's largest (a composite (id, time) key on the partitioned tables
  leaves no ON CONFLICT on id alone; this needs none). A table whose counts
  already agree is skipped.
- Content types and permissions: migrate fills both on the target with its
  own ids, which need not be the source's, and the source's admin log,
  group and user permissions point at the source's ids. While the target
  holds nothing else (no row in any other table: a fresh target, or one
  interrupted before the first other table got a row), the target's rows
  of these two tables are deleted and the source's copied, ids and all.
  Once anything else is there, they are treated like every other table.
- Refusal: when the target holds other rows, each table must be a prefix
  of the source's: as many rows as the source has up to the target's
  largest key, and the target's first and last row equal to the source's.
  Anything else is another installation's data (or rows changed here since
  the first run): MoveError, nothing written.
- Partitions: readings_message and readings_reading are partitioned by
  time on PostgreSQL. Before the first of them is copied, the monthly
  partitions covering the source's oldest to newest time are made
  (storage.partitions.partitions_ensure), so rows do not pile up in the
  default partition.
- Sequences: each table's sequence (or identity) is set to its largest id
  as soon as the table is copied (or found copied), before the next one:
  a resumed run's migrate may add a content type or permission, which must
  not take an id the source already used.
- Verification: source and target row counts of every table, at the end.

The source must not be written meanwhile: stop the server and the worker.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

import environ
from django.apps import apps
from django.conf import settings
from django.core.management.color import no_style
from django.db import DEFAULT_DB_ALIAS, connections, models, transaction
from django.db.migrations.executor import MigrationExecutor
from django.db.models import F, Max, Min
from django.db.models.functions import Collate
from django.utils import timezone

from storage.partitions import partitions_ensure

TARGET_ALIAS = "movetopostgres"
DEFAULT_BATCH_ROWS = 5000

# Tables that migrate fills on the target (post_migrate), replaced by the
# source's while the target holds nothing else. Permissions refer to content
# types, so they are deleted first.
MIGRATE_FILLED = ("auth.permission", "contenttypes.contenttype")
# Partitioned by their `time` column on PostgreSQL (readings/migrations/0014).
PARTITIONED_BY_TIME = ("readings.message", "readings.reading")

# Column types whose SQLite values PostgreSQL's COPY reads as they are.
_AS_STORED = {
    "AutoField", "BigAutoField", "SmallAutoField",
    "IntegerField", "BigIntegerField", "SmallIntegerField",
    "PositiveIntegerField", "PositiveBigIntegerField", "PositiveSmallIntegerField",
    "CharField", "TextField", "SlugField", "EmailField", "URLField", "FilePathField",
    "FileField", "ImageField", "GenericIPAddressField", "IPAddressField",
    "FloatField", "JSONField", "BooleanField", "DateField",
}


class MoveError(Exception):
    """The move cannot start or did not end well; the message says why and what to do."""


# --- Databases -------------------------------------------------------------------------


def url_redacted(url: str) -> str:
    """`url` without its password, for messages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return parts._replace(netloc=netloc).geturl()


def target_add(url: str, alias: str = TARGET_ALIAS) -> str:
    """Register the PostgreSQL database of `url` (postgres://user:password@host:port/name)
    as connection `alias`; returns the alias.

    Raises MoveError for a URL that is not PostgreSQL's or cannot be read.
    """
    try:
        with warnings.catch_warnings():  # an unknown scheme: refused below, in our words
            warnings.simplefilter("ignore")
            config = environ.Env.db_url_config(url)
    except Exception as exc:  # noqa: BLE001  (django-environ raises several kinds)
        raise MoveError(f"cannot read the database URL {url_redacted(url)!r}: {exc}") from None
    if config.get("ENGINE") != "django.db.backends.postgresql":
        raise MoveError(
            f"--to must name a PostgreSQL database (postgres://...), got {url_redacted(url)!r}")
    if not config.get("NAME"):
        raise MoveError(f"--to names no database: {url_redacted(url)!r}")
    config.setdefault("OPTIONS", {}).setdefault("connect_timeout", 10)
    # configure_settings fills in the defaults every connection needs; it insists
    # on a "default" entry, so the target goes in under that name.
    configured = connections.configure_settings({DEFAULT_DB_ALIAS: config})
    connections.settings[alias] = configured[DEFAULT_DB_ALIAS]
    try:
        connections[alias].ensure_connection()
    except Exception as exc:  # noqa: BLE001  (whatever psycopg says, the user needs it)
        raise MoveError(f"cannot connect to {url_redacted(url)}: {exc}") from None
    return alias


def source_check(using: str = DEFAULT_DB_ALIAS) -> None:
    """Raises MoveError unless `using` is SQLite with every migration applied."""
    connection = connections[using]
    if connection.vendor != "sqlite":
        raise MoveError(
            f"the source (DATABASE_URL) is {connection.vendor}, not SQLite: movetopostgres moves "
            "a SQLite installation; run it with DATABASE_URL=sqlite:///path/to/db.sqlite3 "
            "(or unset)"
        )
    executor = MigrationExecutor(connection)
    plan = executor.migration_plan(executor.loader.graph.leaf_nodes())
    if plan:
        names = ", ".join(f"{m.app_label}.{m.name}" for m, _backwards in plan[:5])
        raise MoveError(
            f"the SQLite database lacks {len(plan)} migration(s) ({names}): "
            "run `manage.py migrate` on it first, then move"
        )


def target_migrate(url: str, using: str) -> bool:
    """Apply the migrations the target (connection `using`, at `url`) lacks;
    returns whether there were any.

    migrate runs in a process of its own whose default database is the target:
    the project's data migrations (readings 0005, 0007, 0010) go through the
    default connection, which here is the SQLite source. Raises MoveError with
    migrate's last words when it fails.
    """
    executor = MigrationExecutor(connections[using])
    if not executor.migration_plan(executor.loader.graph.leaf_nodes()):
        return False
    env = {**os.environ, "DATABASE_URL": url}
    done = subprocess.run(
        [sys.executable, "-m", "django", "migrate", "--noinput", "--verbosity", "0"],
        cwd=settings.BASE_DIR, env=env, capture_output=True, text=True, check=False,
    )
    if done.returncode != 0:
        output = (done.stdout + done.stderr)[-3000:]
        raise MoveError(f"migrate failed on {url_redacted(url)}:\n{output}")
    return True


# --- Tables ----------------------------------------------------------------------------


def label(model: type[models.Model]) -> str:
    """"readings.reading": app label and model name, lower case."""
    return model._meta.label_lower


def tables_ordered() -> list[type[models.Model]]:
    """One model per table of every installed app, parents before children.

    Raises MoveError naming the models of a foreign-key cycle (none today).
    """
    candidates = [
        m for m in apps.get_models(include_auto_created=True)
        if m._meta.managed and not m._meta.proxy and not m._meta.swapped
    ]
    by_table: dict[str, type[models.Model]] = {}
    for model in candidates:
        by_table.setdefault(model._meta.db_table, model)
    chosen = list(by_table.values())
    present = set(chosen)
    parents = {
        model: {
            f.related_model._meta.concrete_model
            for f in model._meta.concrete_fields
            if f.is_relation and f.related_model is not None
            and f.related_model._meta.concrete_model is not model
            and f.related_model._meta.concrete_model in present
        }
        for model in chosen
    }
    # Content types and permissions first: the replacement of migrate's rows
    # relies on nothing else being copied before them.
    remaining = sorted(chosen, key=lambda m: label(m) not in MIGRATE_FILLED)
    ordered: list[type[models.Model]] = []
    done: set[type[models.Model]] = set()
    while remaining:
        ready = next((m for m in remaining if parents[m] <= done), None)
        if ready is None:
            names = ", ".join(label(m) for m in remaining)
            raise MoveError(
                "the foreign keys of these models form a cycle, which this move cannot order: "
                + names)
        ordered.append(ready)
        done.add(ready)
        remaining.remove(ready)
    return ordered


def _pk_is_text(model: type[models.Model]) -> bool:
    pk = model._meta.pk
    target = pk.target_field if pk.is_relation else pk
    return target.get_internal_type() in {
        "CharField", "TextField", "SlugField", "EmailField", "URLField"}


def target_pk_bound(model: type[models.Model], using: str, bound: type[Max | Min]):
    """The target table's largest (Max) or smallest (Min) primary key, None when it is empty.

    Text keys (sessions, API tokens) are compared byte by byte (collation "C"),
    as SQLite compares them, so that "greater than" means the same on both sides.
    """
    key = Collate(F("pk"), "C") if _pk_is_text(model) else F("pk")
    return model._base_manager.using(using).aggregate(m=bound(key))["m"]


def _row(model: type[models.Model], using: str, pk) -> dict[str, Any] | None:
    names = [f.attname for f in model._meta.concrete_fields]
    return model._base_manager.using(using).filter(pk=pk).values(*names).first()


@dataclass
class TablePlan:
    """One table's state before the copy: rows in each database and where to resume.

    after_pk: copy the source's rows with a greater key; None copies them all.
    """

    model: type[models.Model]
    source_rows: int
    target_rows: int
    after_pk: Any = None

    @property
    def label(self) -> str:
        return label(self.model)


def plan_make(models_ordered: list[type[models.Model]], *, source: str, target: str
              ) -> list[TablePlan]:
    """Each table's plan; on a target that holds nothing copied yet, migrate's
    content types and permissions are deleted first (see the module's docstring).

    Raises MoveError, before any write, when a target table is not a prefix
    of the source's.
    """
    fresh = all(
        not m._base_manager.using(target).exists()
        for m in models_ordered if label(m) not in MIGRATE_FILLED
    )
    if fresh:
        by_label = {label(m): m for m in models_ordered}
        with transaction.atomic(using=target), connections[target].cursor() as cursor:
            for name in MIGRATE_FILLED:
                table = connections[target].ops.quote_name(by_label[name]._meta.db_table)
                cursor.execute(f"DELETE FROM {table}")

    plans, foreign = [], []
    for model in models_ordered:
        plan = TablePlan(
            model=model,
            source_rows=model._base_manager.using(source).count(),
            target_rows=model._base_manager.using(target).count(),
        )
        if plan.target_rows:
            plan.after_pk = target_pk_bound(model, target, Max)
            first_pk = target_pk_bound(model, target, Min)
            source_up_to = model._base_manager.using(source).filter(pk__lte=plan.after_pk).count()
            if source_up_to != plan.target_rows:
                foreign.append(f"{plan.label}: {plan.target_rows:,} rows in the target, "
                               f"{source_up_to:,} in the source up to the same key")
            elif any(_row(model, target, pk) != _row(model, source, pk)
                     for pk in (first_pk, plan.after_pk)):
                foreign.append(f"{plan.label}: rows differ from the source's with the same key")
        plans.append(plan)
    if foreign:
        raise MoveError(
            "the target already holds data that is not a copy of this SQLite database "
            "(another installation's, or rows changed here since an earlier move began):\n  "
            + "\n  ".join(foreign)
            + "\nMove into an empty database: drop and create it again (createdb), "
            "then run this again."
        )
    return plans


# --- Copy ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Progress:
    """Where one table's copy stands: rows in the target of `total`, and the
    speed of this run in rows per second. `skipped`: nothing was left to copy."""

    label: str
    done_rows: int
    total_rows: int
    rows_per_s: float
    final: bool
    skipped: bool = False


def _column_reader(field: models.Field, source: str, target: str) -> tuple[str, Callable | None]:
    """The SQLite expression that selects `field`, and the function that makes
    its value one for the target's COPY (None: the value goes as it is)."""
    src = connections[source]
    column = src.ops.quote_name(field.column)
    kind = (field.target_field if field.is_relation else field).get_internal_type()
    if kind == "DateTimeField":
        # Django keeps SQLite datetimes as naive UTC text; || keeps NULL NULL.
        return f"{column} || '+00:00'", None
    if kind in _AS_STORED:
        return column, None
    return column, _converter(field, source, target)


def _converter(field: models.Field, source: str, target: str) -> Callable:
    """A column's SQLite value to the target's, through Django: what a query
    of the source returns (its converters), saved as the target would save it."""
    src, tgt = connections[source], connections[target]
    expression = field.get_col(field.model._meta.db_table)
    converters = src.ops.get_db_converters(expression) + expression.get_db_converters(src)

    def convert(value):
        for converter in converters:
            value = converter(value, expression, src)
        return field.get_db_prep_save(value, connection=tgt)

    return convert


def _batches(model: type[models.Model], *, source: str, target: str, after_pk, batch_rows: int
             ) -> Iterator[list[list]]:
    """The source's rows with a key greater than `after_pk`, `batch_rows` at a
    time in key order, each a list of values in concrete-field order for COPY."""
    fields = model._meta.concrete_fields
    readers = [_column_reader(f, source, target) for f in fields]
    converts = [(i, convert) for i, (_sql, convert) in enumerate(readers) if convert is not None]
    pk_index = fields.index(model._meta.pk)
    src = connections[source]
    qn = src.ops.quote_name
    select = f"SELECT {', '.join(sql for sql, _ in readers)} FROM {qn(model._meta.db_table)}"
    order = f" ORDER BY {qn(model._meta.pk.column)} LIMIT %s"
    last = after_pk
    while True:
        with src.cursor() as cursor:
            if last is None:
                cursor.execute(select + order, [batch_rows])
            else:
                after = f" WHERE {qn(model._meta.pk.column)} > %s"
                cursor.execute(select + after + order, [last, batch_rows])
            rows = cursor.fetchall()
        if not rows:
            return
        last = rows[-1][pk_index]
        if converts:
            rows = [list(row) for row in rows]
            for row in rows:
                for i, convert in converts:
                    row[i] = convert(row[i])
        yield rows


def table_copy(plan: TablePlan, *, source: str, target: str, batch_rows: int,
               report: Callable[[Progress], None]) -> int:
    """Copy the source's rows past `plan.after_pk` into the target, one
    transaction per batch; `report` hears after each batch and at the end.
    Returns the rows copied by this call.
    """
    model = plan.model
    tgt = connections[target]
    qn = tgt.ops.quote_name
    columns = ", ".join(qn(f.column) for f in model._meta.concrete_fields)
    copy_sql = f"COPY {qn(model._meta.db_table)} ({columns}) FROM STDIN"
    started = time.monotonic()
    copied = 0
    if plan.target_rows == plan.source_rows:
        report(Progress(plan.label, plan.target_rows, plan.source_rows, 0.0, final=True,
                        skipped=plan.target_rows > 0))
        return 0
    batches = _batches(model, source=source, target=target, after_pk=plan.after_pk,
                       batch_rows=batch_rows)
    for rows in batches:
        with transaction.atomic(using=target), tgt.cursor() as cursor:
            # A crash of PostgreSQL may lose the last batches committed so; the
            # next run finds them missing and copies them again.
            cursor.execute("SET LOCAL synchronous_commit = off")
            with cursor.cursor.copy(copy_sql) as copy:
                for row in rows:
                    copy.write_row(row)
        copied += len(rows)
        elapsed_s = time.monotonic() - started
        report(Progress(plan.label, plan.target_rows + copied, plan.source_rows,
                        copied / elapsed_s if elapsed_s > 0 else 0.0, final=False))
    elapsed_s = time.monotonic() - started
    report(Progress(plan.label, plan.target_rows + copied, plan.source_rows,
                    copied / elapsed_s if elapsed_s > 0 else 0.0, final=True))
    return copied


def time_span(models_ordered: list[type[models.Model]], using: str
              ) -> tuple[datetime, datetime] | None:
    """The oldest and newest `time` of the tables partitioned by time, None when they are empty."""
    lows, highs = [], []
    for model in models_ordered:
        if label(model) in PARTITIONED_BY_TIME:
            span = model._base_manager.using(using).aggregate(low=Min("time"), high=Max("time"))
            if span["low"] is not None:
                lows.append(span["low"])
                highs.append(span["high"])
    return (min(lows), max(highs)) if lows else None


def partitions_make(span: tuple[datetime, datetime] | None, using: str) -> list[str]:
    """The partitions that hold rows from span[0] to span[1]; returns the new partitions' names."""
    return partitions_ensure(now=timezone.now(), cover=span, using=using)


def sequence_reset(model: type[models.Model], using: str) -> None:
    """Set the table's id sequence (or identity) to its largest id, as sqlsequencereset does."""
    connection = connections[using]
    statements = connection.ops.sequence_reset_sql(no_style(), [model])
    if statements:
        with connection.cursor() as cursor:
            for sql in statements:
                cursor.execute(sql)


def counts_compare(models_ordered: list[type[models.Model]], *, source: str, target: str
                   ) -> tuple[int, list[str]]:
    """Rows in every table of the source, and a line per table whose target count differs."""
    total, mismatches = 0, []
    for model in models_ordered:
        in_source = model._base_manager.using(source).count()
        in_target = model._base_manager.using(target).count()
        total += in_source
        if in_source != in_target:
            mismatches.append(
                f"{label(model)}: {in_source:,} rows in the source, {in_target:,} in the target")
    return total, mismatches


@dataclass(frozen=True)
class MoveResult:
    tables: int
    source_rows: int
    copied_rows: int
    elapsed_s: float
    partitions: list[str]


def move(*, target: str, source: str = DEFAULT_DB_ALIAS, batch_rows: int = DEFAULT_BATCH_ROWS,
         report: Callable[[Progress], None] = lambda progress: None,
         say: Callable[[str], None] = lambda text: None) -> MoveResult:
    """Copy every table of `source` (SQLite, migrated) into `target` (PostgreSQL,
    migrated by the caller), resuming where an earlier run stopped, then check
    the counts.

    Raises MoveError: a target holding other data (nothing written), or
    counts that differ at the end.
    """
    started = time.monotonic()
    ordered = tables_ordered()
    plans = plan_make(ordered, source=source, target=target)
    resumed = [p for p in plans if p.target_rows and label(p.model) not in MIGRATE_FILLED]
    if resumed:
        say(f"Resuming: {len(resumed)} tables already hold rows copied by an earlier run.")
    copied, partitions, span_done = 0, [], False
    for plan in plans:
        if plan.label in PARTITIONED_BY_TIME and not span_done:
            partitions = partitions_make(time_span(ordered, source), target)
            span_done = True
        copied += table_copy(plan, source=source, target=target, batch_rows=batch_rows,
                             report=report)
        sequence_reset(plan.model, target)
    total, mismatches = counts_compare(ordered, source=source, target=target)
    if mismatches:
        raise MoveError("the counts differ after the copy:\n  " + "\n  ".join(mismatches))
    return MoveResult(tables=len(ordered), source_rows=total, copied_rows=copied,
                      elapsed_s=time.monotonic() - started, partitions=partitions)
