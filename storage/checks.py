"""Settings of the storage app that a typo would break only later, in the worker."""

from django.conf import settings
from django.core.checks import Error, register

from storage.partitions import INTERVALS


@register()
def storage_settings_check(app_configs, **kwargs):
    errors = []
    if settings.SIGFOX_PARTITION_INTERVAL not in INTERVALS:
        errors.append(Error(
            f"SIGFOX_PARTITION_INTERVAL is {settings.SIGFOX_PARTITION_INTERVAL!r}",
            hint=f"Use one of: {', '.join(INTERVALS)}.", id="storage.E001"))
    if not 0 <= settings.SIGFOX_PARTITIONS_AHEAD <= 120:
        errors.append(Error(
            f"SIGFOX_PARTITIONS_AHEAD is {settings.SIGFOX_PARTITIONS_AHEAD}",
            hint="Use 0 to 120 partitions.", id="storage.E002"))
    for name in ("SIGFOX_RAW_RETENTION_DAYS", "SIGFOX_ROLLUP_RETENTION_DAYS", "SIGFOX_BODY_RETENTION_DAYS"):
        days = getattr(settings, name)
        if days is not None and days < 0:
            errors.append(Error(f"{name} is {days}", hint="Days to keep: a positive number, "
                                "or 0 (or empty) to keep forever.", id="storage.E003"))
    return errors
