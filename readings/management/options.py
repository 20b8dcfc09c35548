"""Arguments that several management commands take."""

from django.core.management.base import CommandError

from readings.models import Device
from readings.serializers import HEX_ID


def existing_device_id(text: str) -> str:
    """The --device option: a Sigfox id, upper-cased, of a device that exists."""
    device_id = text.strip().upper()
    if not HEX_ID.fullmatch(device_id) or len(device_id) > 8:
        raise CommandError(f"--device {text!r} is not a Sigfox id (up to 8 hex characters)")
    if not Device.objects.filter(sigfox_id=device_id).exists():
        raise CommandError(f"no device {device_id}")
    return device_id
