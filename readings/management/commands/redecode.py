from datetime import UTC, datetime

from django.core.management.base import BaseCommand, CommandError

from readings.management.options import existing_device_id
from readings.services.maintenance import messages_redecode


def parse_since(text: str) -> datetime:
    try:
        since = datetime.fromisoformat(text)
    except ValueError:
        raise CommandError(f"--since {text!r} is not a date (YYYY-MM-DD or an ISO 8601 time)") from None
    # A date or time without a zone is taken as UTC, like every stored time.
    return since if since.tzinfo else since.replace(tzinfo=UTC)


class Command(BaseCommand):
    help = (
        "Decode stored raw payloads again with the payload configs in force now (the "
        "device's, else its type's, else SIGFOX_PAYLOAD_CONFIG). Readings decoded before are "
        "replaced; values the callback sent itself are kept."
    )

    def add_arguments(self, parser):
        parser.add_argument("--device", metavar="ID", help="Only this device (its Sigfox id).")
        parser.add_argument(
            "--since", metavar="DATE", help="Only messages received from this date or time on (UTC)."
        )
        parser.add_argument(
            "--dry-run", action="store_true", help="Count the messages that would change; change nothing."
        )

    def handle(self, *args, device, since, dry_run, **options):
        device_id = existing_device_id(device) if device is not None else None
        since_time = parse_since(since) if since is not None else None

        def progress(seen: int) -> None:
            if options["verbosity"] > 1:
                self.stderr.write(f"  {seen} messages checked")

        result = messages_redecode(
            device_id=device_id, since=since_time, dry_run=dry_run, on_batch=progress
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
