"""manage.py runworker: the background loop of the site.

Each pass learns rhythms and updates device states (alerts.evaluation),
sends the notifications that are due (alerts.notify), then keeps the
storage (storage.maintenance): partitions ahead, rollups up to date,
retention when due. Nothing lives in
memory between passes: a restart loses nothing, and several workers may run
at once on PostgreSQL (rows are claimed with SKIP LOCKED). On SQLite one
worker is enough; its passes commit in short transactions.
"""

import argparse
import logging
import signal
import time

from django.conf import settings
from django.core.management.base import BaseCommand
from django.db import DatabaseError, close_old_connections
from django.utils import timezone

from alerts.evaluation import evaluate
from alerts.notify import notifications_send
from readings.times import iso_utc
from sigfoxapi.watch import backfill_pass
from storage.maintenance import storage_pass

log = logging.getLogger(__name__)


def seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {text!r}") from None
    if not 0.1 <= value <= 86_400:
        raise argparse.ArgumentTypeError(f"expected 0.1 to 86400 seconds, got {value:g}")
    return value


class Command(BaseCommand):
    help = ("Run the background loop: learn device rhythms, update device states, send alert "
            "notifications, keep partitions, rollups and retention. --once does one pass (for cron).")

    def add_arguments(self, parser):
        parser.add_argument("--once", action="store_true", help="Do one pass and exit.")
        parser.add_argument("--interval", type=seconds, default=None, metavar="SECONDS",
                            help="Seconds between passes (default: SIGFOX_WORKER_INTERVAL_S, 30).")

    def handle(self, *args, once, interval, **options):
        interval = interval or settings.SIGFOX_WORKER_INTERVAL_S
        stopping = []
        if not once:
            for signum in (signal.SIGTERM, signal.SIGINT):
                signal.signal(signum, lambda *_: stopping.append(True))
            self.stdout.write(f"worker: a pass every {interval:g} s (Ctrl-C stops)")
        while True:
            started = time.monotonic()
            try:
                self.one_pass(verbose=once or options["verbosity"] > 1)
            except DatabaseError as exc:
                if once:
                    raise
                self.stderr.write(f"worker: pass failed, trying again next time: {exc}")
            finally:
                close_old_connections()
            if once or stopping:
                return
            while not stopping and time.monotonic() - started < interval:
                time.sleep(0.2)
            if stopping:
                return

    def one_pass(self, *, verbose: bool) -> None:
        now = timezone.now()
        result = evaluate(now=now)
        sent, failed = notifications_send(now=timezone.now())
        stored = storage_pass(now=timezone.now())
        try:
            runs = backfill_pass(now=timezone.now())
        except DatabaseError:
            raise
        except Exception:
            # The Sigfox API's answers are input: whatever one does, the
            # worker's other steps (alerts) go on; the next pass tries again.
            log.exception("worker: the backfill step failed")
            runs = []
        opened = len(result.rules.opened) if result.rules else 0
        closed = len(result.rules.closed) if result.rules else 0
        if verbose or result.changes or opened or closed or sent or failed:
            changes = ", ".join(f"{c.device.sigfox_id} {c.from_state}→{c.to_state}"
                                for c in result.changes[:10])
            more = f" (+{len(result.changes) - 10})" if len(result.changes) > 10 else ""
            self.stdout.write(
                f"worker {now:%Y-%m-%d %H:%M:%S}: {result.devices_learned} devices learned, "
                f"{len(result.changes)} changes{': ' + changes + more if changes else ''}, "
                f"{opened} rule breaches opened, {closed} closed, "
                f"{sent} notifications sent, {failed} failed")
        if (verbose or stored.partitions_created or stored.retention is not None or stored.failures
                or not stored.rollups_caught_up):
            self.stdout.write(f"worker {now:%Y-%m-%d %H:%M:%S}: storage: {stored.summary()}")
        for run in runs:
            self.stdout.write(
                f"worker {now:%Y-%m-%d %H:%M:%S}: backfill {run.sigfox_id} "
                f"{iso_utc(run.since)}..{iso_utc(run.until)} ({run.get_reason_display()}): "
                f"fetched {run.fetched}, stored {run.stored}, already {run.already}, "
                f"failed {run.failed}, {run.api_calls} API requests"
                + ("" if run.complete else f"; stopped: {run.error.splitlines()[0]}"))
