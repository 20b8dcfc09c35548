"""Points in time as people and scripts write them: one parser for the read
API's parameters and the commands' options, and the one way times are written.

A time is Unix epoch seconds ("1700000000", "1700000000.5") or ISO 8601 (a
date, "2026-01-31", or a date and time, "2026-01-31T12:00:00Z"). A date or
time without an offset is in the site's TIME_ZONE, as Django REST framework's
DateTimeField reads one. Pure but for that setting.
"""

import argparse
import re
from datetime import UTC, datetime, time, timedelta

from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime

MAX_CHARS = 40
# ASCII-only patterns and no trimming: Python's \d and float() also take "٣"
# and " 12", which no client means and the API's schema cannot say.
EPOCH = re.compile(r"[0-9]{1,12}(?:\.[0-9]{1,6})?")
ISO_TIME = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}"
    r"(?:[T ][0-9]{2}:[0-9]{2}(?::[0-9]{2}(?:[.,][0-9]{1,6})?)?"
    r"(?:Z|[+-][0-9]{2}(?::?[0-9]{2})?)?)?"
)
# A "+01:00" offset typed into a URL arrives as " 01:00".
SPACED_OFFSET = re.compile(
    r"(T[0-9]{2}:[0-9]{2}(?::[0-9]{2}(?:\.[0-9]+)?)?) ([0-9]{2}(?::?[0-9]{2})?)$"
)
EPOCH_START = datetime(1970, 1, 1, tzinfo=UTC)

INVALID = "must be ISO 8601 (2026-01-31, 2026-01-31T12:00:00Z) or Unix epoch seconds"
OUT_OF_RANGE = "out of range: must be between 0001-01-01T00:00:00Z and 9999-12-31T23:59:59Z"


class TimeOutOfRange(ValueError):
    """A well-formed time that no datetime holds (year 0 in UTC, epoch past year 9999)."""


def parse_time(text: str) -> datetime:
    """The aware UTC datetime `text` names.

    Raises TimeOutOfRange for a time past the calendar's ends, ValueError (with
    INVALID as its message) for anything else that is not a time.
    """
    if not isinstance(text, str) or len(text) > MAX_CHARS:
        raise ValueError(INVALID)
    if EPOCH.fullmatch(text):
        try:
            return EPOCH_START + timedelta(seconds=float(text))
        except OverflowError:
            raise TimeOutOfRange(OUT_OF_RANGE) from None
    text = SPACED_OFFSET.sub(r"\1+\2", text)
    if not ISO_TIME.fullmatch(text):
        raise ValueError(INVALID)
    try:
        moment = parse_datetime(text)
        if moment is None and (day := parse_date(text)) is not None:
            moment = datetime.combine(day, time())
    except ValueError:  # February 30th, hour 25, an offset of a day or more
        raise ValueError(INVALID) from None
    if moment is None:
        raise ValueError(INVALID)
    try:
        if timezone.is_naive(moment):
            moment = timezone.make_aware(moment, timezone.get_default_timezone())
        # 0001-01-01T00:00+01:00 is still year 0 in UTC, which no datetime holds.
        return moment.astimezone(UTC)
    except OverflowError:
        raise TimeOutOfRange(OUT_OF_RANGE) from None


def time_argument(text: str) -> datetime:
    """parse_time for argparse's type=: its error names the option ("argument --since: ...")."""
    try:
        return parse_time(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{text!r} {exc}") from None


def iso_utc(moment: datetime) -> str:
    """2026-01-31T12:00:00Z (with microseconds only when there are some)."""
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def time_pattern() -> str:
    """The valid forms of a time as one regular expression, for the API's schema.

    Stricter than what parse_time takes (it names real calendar days only, so
    that every string it matches is accepted): a generator drawing from it
    never draws 2026-02-30.
    """
    year = r"(?!0000)[0-9]{4}"
    month_day = (r"(?:(?:0[13578]|1[02])-(?:0[1-9]|[12][0-9]|3[01])"
                 r"|(?:0[469]|11)-(?:0[1-9]|[12][0-9]|30)"
                 r"|02-(?:0[1-9]|1[0-9]|2[0-8]))")
    leap_day = (r"(?:[0-9]{2}(?:0[48]|[2468][048]|[13579][26])"
                r"|(?:0[48]|[2468][048]|[13579][26])00)-02-29")
    clock = r"(?:[01][0-9]|2[0-3]):[0-5][0-9](?::[0-5][0-9](?:\.[0-9]{1,6})?)?"
    offset = r"(?:Z|[+-](?:[01][0-9]|2[0-3])(?::?[0-5][0-9])?)"
    iso = rf"(?:{year}-{month_day}|{leap_day})(?:T{clock}{offset}?)?"
    # Epoch seconds up to 11 digits (year 5138): all within range.
    return rf"^(?:[0-9]{{1,11}}(?:\.[0-9]{{1,6}})?|{iso})$"


TIME_PATTERN = time_pattern()
