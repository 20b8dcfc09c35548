from django.core.management.base import BaseCommand

from readings.management.options import device_id, existing_device
from readings.services.maintenance import messages_redecode
from readings.times import time_argument


class Command(BaseCommand):
    help = (
        "Decode stored raw payloads again with the payload configs in force now (the "
        "device's, else its type's, else SIGFOX_PAYLOAD_CONFIG). Readings decoded before are "
        "replaced; values the callback sent itself are kept."
    )

    def add_arguments(self, parser):
        parser.add_argument("--device", metavar="ID", type=device_id,
                            help="Only this device (its Sigfox id).")
        parser.add_argument(
            "--since", metavar="TIME", type=time_argument,
            help="Only messages from this time on: a date, an ISO 8601 time (without an offset, "
            "in the site's TIME_ZONE) or Unix epoch seconds.",
        )
        parser.add_argument(
            "--dry-run", action="store_true", help="Count the messages that would change; change nothing."
        )

    def handle(self, *args, device, since, dry_run, **options):
        device_id = existing_device(device) if device is not None else None

        def progress(seen: int) -> None:
            if options["verbosity"] > 1:
                self.stderr.write(f"  {seen} messages checked")

        result = messages_redecode(
            device_id=device_id, since=since, dry_run=dry_run, on_batch=progress
        )
        if dry_run:
            self.stdout.write(
                f"Would re-decode {result.changed} of {result.messages} messages with raw data."
            )
        else:
            self.stdout.write(
                f"Re-decoded {result.changed} of {result.messages} messages with raw data: "
                f"{result.readings_deleted} readings replaced by {result.readings_created}."
            )
