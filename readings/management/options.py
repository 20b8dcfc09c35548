"""Arguments that several management commands take."""

from django.core.management.base import CommandError

from readings import sigfox
from readings.models import Device


def existing_device_id(text: str) -> str:
    """The --device option: the Sigfox id of a device that exists, in its one
    spelling (upper case, no leading zeros: 004e2f1a is 4E2F1A)."""
    try:
        device_id = sigfox.normalize_device_id(text)
    except ValueError:
        raise CommandError(f"--device {text!r} is not a Sigfox id (up to 8 hex characters)") from None
    if not Device.objects.filter(sigfox_id=device_id).exists():
        raise CommandError(f"no device {device_id}")
    return device_id
