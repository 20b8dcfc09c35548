"""manage.py movetopostgres: copy this SQLite installation into a PostgreSQL database.

The copy itself is storage.move (what is copied, in which order, how a run
resumes, when it refuses); this command checks the options, asks before it
starts, migrates the target and shows the progress.
"""

from __future__ import annotations

import time

from django.core.management.base import BaseCommand, CommandError
from django.db import DEFAULT_DB_ALIAS, connections

from readings.management.options import whole_number
from storage import move
from storage.move import MoveError, Progress

# Seconds between two progress lines when the output is not a terminal (a log).
LOG_INTERVAL_S = 10.0
# Seconds between two updates of the line in place on a terminal.
TTY_INTERVAL_S = 0.2


class Command(BaseCommand):
    help = (
        "Copy every table of this SQLite installation (devices, messages, readings, rollups, "
        "configs, users, alerts...) into a PostgreSQL database, in batches, keeping every id. "
        "Run it again after an interruption: it goes on where it stopped. Stop the server and "
        "the worker first."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--to", required=True, metavar="URL",
            help="The PostgreSQL database: postgres://user:password@host:port/name. "
                 "An empty one (createdb), or one an earlier run of this command began to fill.",
        )
        parser.add_argument(
            "--batch-size", type=whole_number(), default=move.DEFAULT_BATCH_ROWS, metavar="ROWS",
            help=f"Rows per transaction (default {move.DEFAULT_BATCH_ROWS}).",
        )
        parser.add_argument(
            "--noinput", "--no-input", action="store_false", dest="interactive",
            help="Do not ask for confirmation.",
        )

    def handle(self, *args, to, batch_size, interactive, **options):
        source = connections[DEFAULT_DB_ALIAS]
        try:
            move.source_check(DEFAULT_DB_ALIAS)
            target = move.target_add(to)
        except MoveError as exc:
            raise CommandError(str(exc)) from None
        source_name = source.settings_dict["NAME"]
        target_name = move.url_redacted(to)
        if interactive:
            try:
                answer = input(
                    f"Copy every table of {source_name} into {target_name}?\n"
                    "Stop the server and the worker first. Type 'yes' to go on: "
                )
            except EOFError:
                answer = ""
            if answer.strip().lower() != "yes":
                raise CommandError("nothing copied (answer 'yes', or give --no-input)")
        self.stdout.write(f"Migrating {target_name}...")
        try:
            if not move.target_migrate(to, target):
                self.stdout.write("  no migration to apply.")
        except MoveError as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(f"Copying {source_name} into {target_name}, {batch_size:,} rows a batch:")
        width = max(len(move.label(m)) for m in move.tables_ordered())
        line = ProgressLine(self.stdout, width=width)
        try:
            result = move.move(target=target, batch_rows=batch_size, report=line.show,
                               say=self.stdout.write)
        except MoveError as exc:
            line.end()
            raise CommandError(str(exc)) from None
        except KeyboardInterrupt:
            line.end()
            raise CommandError(
                "interrupted: run the same command again to go on where it stopped") from None
        finally:
            connections[target].close()
        if result.partitions:
            names = sorted(result.partitions)
            self.stdout.write(f"Partitions made: {len(names)} ({names[0]} ... {names[-1]})")
        rate = result.copied_rows / result.elapsed_s if result.elapsed_s > 0 else 0.0
        self.stdout.write(self.style.SUCCESS(
            f"Done in {result.elapsed_s:,.1f} s ({result.copied_rows:,} rows copied by this run, "
            f"{rate:,.0f} rows/s). Counts verified: {result.tables} tables, "
            f"{result.source_rows:,} rows, the same in both databases."
        ))
        self.stdout.write(
            "Next: set DATABASE_URL to the PostgreSQL database (in .env or the environment), "
            "start the server and the worker (manage.py runworker), and keep the SQLite file "
            "as a backup."
        )


class ProgressLine:
    """One line per table, rewritten in place on a terminal:
    `readings.reading  1,200,000 / 3,400,000   35%   52,000 rows/s`.
    Off a terminal, a line every LOG_INTERVAL_S, and each table's last."""

    def __init__(self, out, *, width: int):
        self.out = out
        self.width = width
        self.tty = out.isatty()
        self.shown_at = 0.0
        self.open = False
        self.table = ""

    def text(self, p: Progress) -> str:
        percent = 100 * p.done_rows // p.total_rows if p.total_rows else 100
        text = f"{p.label:<{self.width}}  {p.done_rows:>12,} / {p.total_rows:<12,} {percent:>3}%"
        if p.skipped:
            return text + "  already copied"
        if p.rows_per_s:
            text += f"  {p.rows_per_s:>9,.0f} rows/s"
        return text

    def show(self, p: Progress) -> None:
        now = time.monotonic()
        if p.label != self.table:
            # A log gets its first line of a table after LOG_INTERVAL_S; a terminal at once.
            self.table, self.shown_at = p.label, (0.0 if self.tty else now)
        if p.final:
            self.out.write(("\r\033[K" if self.open else "") + self.text(p))
            self.out.flush()
            self.open = False
            return
        interval_s = TTY_INTERVAL_S if self.tty else LOG_INTERVAL_S
        if now - self.shown_at < interval_s:
            return
        self.shown_at = now
        if self.tty:
            self.out.write("\r\033[K" + self.text(p), ending="")
            self.open = True
        else:
            self.out.write(self.text(p))
        self.out.flush()

    def end(self) -> None:
        if self.open:
            self.out.write("")
            self.open = False
