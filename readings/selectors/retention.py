"""Retention policy in force: how many days each device keeps its readings,
rollups and message bodies.

A device's own value wins, then its device type's, then the site's setting
(SIGFOX_RAW_RETENTION_DAYS, SIGFOX_ROLLUP_RETENTION_DAYS,
SIGFOX_BODY_RETENTION_DAYS). On a device or type, empty (None) inherits and 0
keeps forever; on the site, empty or 0 keeps forever. storage.retention
applies the policy; the rollups consult it (readings.services.rollups).
"""

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import Enum

from django.conf import settings
from django.db.models import Q
from django.db.models.functions import Coalesce

from readings.models import Device, DeviceType


class Kept(str, Enum):
    """What a policy keeps: the field of Device and DeviceType, and the site's setting."""

    RAW = "raw_retention_days"
    ROLLUP = "rollup_retention_days"
    BODY = "body_retention_days"

    @property
    def setting(self) -> str:
        return f"SIGFOX_{self.name}_RETENTION_DAYS"

    def site_days(self) -> int | None:
        """The site's days, None for forever."""
        return getattr(settings, self.setting) or None


@dataclass(frozen=True)
class Policy:
    """Days kept of one kind (None: forever) and since when, given now."""

    days: int | None

    def cutoff(self, now: datetime) -> datetime | None:
        """Rows before this time are past the policy; None: nothing ever is."""
        return None if self.days is None else now - timedelta(days=self.days)


def _effective(kept: Kept):
    """The expression of a device's effective days: 0 for forever, NULL for the site's."""
    return Coalesce(kept.value, f"device_type__{kept.value}")


def device_policies(kept: Kept, device_pks: Iterable[int] | None = None) -> dict[int, Policy]:
    """{device pk: Policy} for the given devices (every device when None)."""
    site = kept.site_days()
    rows = Device.objects.annotate(days=_effective(kept))
    if device_pks is not None:
        rows = rows.filter(pk__in=list(device_pks))
    return {pk: Policy(site if days is None else (days or None)) for pk, days in rows.values_list("pk", "days")}


def policy_groups(kept: Kept) -> dict[int | None, Q]:
    """{days (None: forever): filter of devices kept that long}, for rows that
    have a `device` relation: every device falls in exactly one group.

    Built from the few distinct values in use, so that a site of 100,000
    devices on the site's policy is one group, filtered by what it is not.
    """
    site = kept.site_days()
    own = f"device__{kept.value}"
    typed = f"device__device_type__{kept.value}"
    inherits_site = Q(**{f"{own}__isnull": True}) & (
        Q(device__device_type__isnull=True) | Q(**{f"{typed}__isnull": True}))
    groups: dict[int | None, Q] = {site: inherits_site}
    values = set(Device.objects.exclude(**{f"{kept.value}__isnull": True})
                 .values_list(kept.value, flat=True).distinct())
    values |= set(DeviceType.objects.exclude(**{f"{kept.value}__isnull": True})
                  .values_list(kept.value, flat=True).distinct())
    for value in values:
        days = value or None
        chosen = Q(**{own: value}) | (Q(**{f"{own}__isnull": True}) & Q(**{typed: value}))
        groups[days] = groups[days] | chosen if days in groups else chosen
    return groups
