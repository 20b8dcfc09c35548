"""Option types that several management commands take, for argparse's type=:
a bad value is reported as "argument --older-than: expected a whole number,
got 'x'", naming the option. Times are readings.times.time_argument.
"""

import argparse
import re
from collections.abc import Callable

from django.core.management.base import CommandError

from readings import sigfox
from readings.models import Device


def whole_number(*, minimum: int = 1) -> Callable[[str], int]:
    """A type= for a whole number of at least `minimum`."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"expected a number of at least {minimum}, got {value}")
        return value

    parse.__name__ = "whole number"  # argparse's fallback message names the type
    return parse


def device_id(text: str) -> str:
    """A type= for a Sigfox id, in its one spelling (upper case, no leading
    zeros: 004e2f1a is 4E2F1A)."""
    try:
        return sigfox.normalize_device_id(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a Sigfox id (up to 8 hex characters)"
        ) from None


def device_type_id(text: str) -> str:
    """A type= for a Sigfox device type id (up to 24 hex characters), in lower
    case as the Sigfox API writes it."""
    if not re.fullmatch(sigfox.DEVICE_TYPE_ID_PATTERN, text):
        raise argparse.ArgumentTypeError(
            f"must be a Sigfox device type id (1 to {sigfox.DEVICE_TYPE_ID_MAX_CHARS} hex "
            f"characters), got {text!r}")
    return text.lower()


def sensor_name(text: str) -> str:
    """A type= for the <sensor> of a callback URL, /data/<sensor>."""
    if not re.fullmatch(sigfox.SENSOR_PATTERN, text):
        raise argparse.ArgumentTypeError(
            f"must be 1 to {sigfox.SENSOR_MAX_CHARS} letters, digits, _ . or -, got {text!r}")
    return text


def existing_device(device_id: str) -> str:
    """The id, when a device has it; else CommandError (a database look-up,
    so it runs in handle(), not while parsing)."""
    if not Device.objects.filter(sigfox_id=device_id).exists():
        raise CommandError(f"no device {device_id}")
    return device_id
