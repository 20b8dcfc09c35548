from datetime import timedelta

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from readings.management.options import device_id, existing_device, whole_number
from readings.models import Device
from storage.partitions import PartitionBusy
from storage.retention import MAX_DAYS, PRUNE, retention_apply


class Command(BaseCommand):
    help = (
        "Delete old readings, and the messages left with none. Give --older-than, "
        "--keep-last or both: with both, a reading goes only when it is older than "
        "DAYS and not among the N newest of its series. On PostgreSQL a partition "
        "whose whole range goes is dropped, every message in it included. The "
        "retention policy (SIGFOX_*_RETENTION_DAYS, per device type and device) does "
        "not apply to this run; the worker applies it."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--older-than", metavar="DAYS", type=whole_number(),
            help="Delete readings taken more than DAYS days ago.",
        )
        parser.add_argument(
            "--keep-last", metavar="N", type=whole_number(),
            help="Keep only the N newest readings of each device/sensor/quantity.",
        )
        parser.add_argument(
            "--device", metavar="ID", type=device_id,
            help="Only prune this device (its Sigfox id); drops no partition.",
        )
        parser.add_argument(
            "--dry-run", action="store_true", help="Count what would be deleted; delete nothing."
        )
        parser.add_argument(
            "--batch-size", type=whole_number(), default=2000,
            help="Readings deleted per transaction (default 2000).",
        )

    def handle(self, *args, older_than, keep_last, device, dry_run, batch_size, **options):
        if older_than is None and keep_last is None:
            raise CommandError("give --older-than DAYS, --keep-last N, or both")
        days, keep = older_than, keep_last
        if days is not None and days > MAX_DAYS:
            raise CommandError(f"--older-than {days} is more than a century; nothing could be that old")
        device_id = existing_device(device) if device is not None else None

        verbosity = options["verbosity"]

        def progress(deleted: int) -> None:
            if verbosity > 1:
                self.stderr.write(f"  {deleted} readings deleted so far")

        try:
            result = retention_apply(
                now=timezone.now(),
                trigger=PRUNE,
                older_than=timedelta(days=days) if days is not None else None,
                keep_last=keep,
                device_pks=None if device_id is None else [Device.objects.get(sigfox_id=device_id).pk],
                dry_run=dry_run,
                batch_size=batch_size,
                on_batch=progress,
            )
        except PartitionBusy as exc:  # another run, or a long query holding the tables
            raise CommandError(f"{exc}; nothing more was done, try again later") from None
        scope = []
        if days is not None:
            scope.append(f"older than {days} days")
        if keep is not None:
            scope.append(f"beyond the {keep} newest per series")
        if device_id:
            scope.append(f"device {device_id}")
        verb = "Would delete" if dry_run else "Deleted"
        dropped = ""
        if result.partitions_dropped:
            dropped = (f"; {'would drop' if dry_run else 'dropped'} partitions: "
                       f"{', '.join(result.partitions_dropped)}")
        self.stdout.write(
            f"{verb} {result.readings} readings and {result.messages} messages "
            f"({', '.join(scope)}){dropped}."
        )
