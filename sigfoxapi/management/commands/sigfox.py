"""manage.py sigfox: the Sigfox REST API, from the command line.

    manage.py sigfox backfill --device-type ID --since 2026-12-01T10:00 [--until ...] [--dry-run]
    manage.py sigfox backfill --device ID --since ...
    manage.py sigfox setup --device-type ID --url https://your-server [--downlink] [--dry-run]
    manage.py sigfox callbacks --device-type ID

The API user is SIGFOX_API_LOGIN and SIGFOX_API_PASSWORD; SIGFOX_API_URL the base.
"""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from readings.management.options import device_id, device_type_id
from readings.times import iso_utc, time_argument
from sigfoxapi import setup as setup_actions
from sigfoxapi.backfill import Progress, backfill
from sigfoxapi.client import SigfoxAPI

BAR_WIDTH = 30


class Command(BaseCommand):
    help = ("The Sigfox REST API: fetch back the messages the callbacks missed (backfill), set "
            "this server's callbacks up on a device type (setup), list them (callbacks).")

    def add_arguments(self, parser):
        actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
        fill = actions.add_parser(
            "backfill", help="Fetch a span's messages through the API and store those missing.",
            description="Fetch the messages of a span through the Sigfox API and store each one "
                        "the callbacks did not, through the same idempotent ingest as a callback. "
                        "A message already stored is left alone.")
        scope = fill.add_mutually_exclusive_group(required=True)
        scope.add_argument("--device-type", metavar="ID", type=device_type_id,
                           help="Sigfox id of the device type (24 hex characters).")
        scope.add_argument("--device", metavar="ID", type=device_id, help="Sigfox id of one device.")
        fill.add_argument("--since", required=True, type=time_argument, metavar="TIME",
                          help="Start of the span (included): ISO 8601 or Unix epoch seconds.")
        fill.add_argument("--until", type=time_argument, metavar="TIME",
                          help="End of the span (excluded; default now).")
        fill.add_argument("--dry-run", action="store_true",
                          help="Fetch and count, store nothing.")
        fill.add_argument("--progress", action="store_true",
                          help="Draw the progress bar on stderr even when it is not a terminal.")
        setup_actions.add_arguments(actions)

    def handle(self, *args, **options):
        if options["action"] != "backfill":
            setup_actions.handle(self, options)
            return
        now = timezone.now()
        since, until = options["since"], options["until"] or now
        if since >= until:
            raise CommandError(f"--since {iso_utc(since)} is not before --until {iso_utc(until)}.")
        try:
            api = SigfoxAPI.from_settings()
        except ImproperlyConfigured as exc:
            raise CommandError(str(exc)) from None
        scope = options["device_type"] or options["device"]
        what = "device type" if options["device_type"] else "device"
        self.stdout.write(f"Fetching the messages of {what} {scope} from {iso_utc(since)} to "
                          f"{iso_utc(until)} through {settings.SIGFOX_API_URL}"
                          + (" (dry run: nothing is stored)" if options["dry_run"] else "") + ".")
        draw = options["progress"] or self.stderr.isatty()
        run, outcome = backfill(
            api=api, since=since, until=until, device_type=options["device_type"] or "",
            device=options["device"] or "", dry_run=options["dry_run"], now=now,
            on_progress=self._bar if draw else None,
        )
        stored = "would be stored" if options["dry_run"] else "stored new"
        self.stdout.write(
            f"Fetched {run.fetched}: {run.stored} {stored}"
            + (f" ({run.replayed} replayed from failed callbacks)" if run.replayed else "")
            + f", {run.already} already stored, {run.failed} refused; {run.api_calls} API requests."
        )
        for error in outcome.errors[:20]:
            self.stderr.write(f"  {error}")
        if outcome.api_error:
            raise CommandError(f"The backfill stopped early: {outcome.api_error}")

    def _bar(self, progress: Progress) -> None:
        """A progress bar on stderr, redrawn every 100 messages and at the end."""
        ended = progress.done
        if progress.fetched % 100 and not ended:
            return
        done = round(progress.fraction * BAR_WIDTH)
        oldest = iso_utc(progress.oldest) if progress.oldest else "-"
        # Plain text: Django styles stderr as errors.
        self.stderr.write(f"\r[{'#' * done}{'.' * (BAR_WIDTH - done)}] {progress.fraction:6.1%} "
                          f"{progress.fetched} messages, back to {oldest}",
                          style_func=str, ending="\n" if ended else "")
        self.stderr.flush()
