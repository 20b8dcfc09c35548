import json
import math

from django.core.management.base import BaseCommand, CommandError

from readings import payload


class Command(BaseCommand):
    help = (
        "Decode a hex payload with a Sigfox custom payload config and print the fields as a "
        "JSON object. Try a config here before setting it on the Sigfox backend or a device. "
        "Warns on stderr about integer fields that can exceed 2**53, which JavaScript and most "
        "JSON readers round; their values are printed exactly."
    )

    def add_arguments(self, parser):
        parser.add_argument("config", help='The config, quoted: "temp::int:8 vbat::uint:16:little-endian"')
        parser.add_argument("hex", help="The payload as hex, as in the callback's {data}: 15e40c")

    def handle(self, *args, config, hex, **options):
        try:
            fields = payload.decode(config, hex)
        except payload.ConfigError as exc:
            raise CommandError(f"bad config: {exc}") from None
        except payload.DataError as exc:
            raise CommandError(f"bad payload: {exc}") from None
        # On stderr so that stdout stays one JSON object a script can read.
        for name in payload.wide_fields(config):
            self.stderr.write(
                f"warning: {name} can exceed 2**53: JavaScript and most JSON readers round such "
                f"values; it is printed exactly here.",
                style_func=self.style.WARNING,
            )
        # json.dumps writes Python ints in full, so wide values stay exact.
        printable = {
            name: None if isinstance(value, float) and not math.isfinite(value) else value
            for name, value in fields.items()
        }
        self.stdout.write(json.dumps(printable))
