"""What the fleet overview and a device's health show: a page of devices in
the order that needs attention first, and one device's state, rhythm, alert
history and the thresholds in force.

Every read here is bounded by the page: a page of PAGE_SIZE devices costs
the same few queries whether the site has ten devices or 100,000 (the count
stops at COUNT_CAP, the pages at MAX_PAGES).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime

from django.conf import settings
from django.db.models import Case, F, IntegerField, OuterRef, Q, QuerySet, Subquery, Value, When
from django.db.models.functions import Coalesce

from alerts import health
from alerts.models import DeviceHealth, StateChange
from readings.models import Device, DeviceType, Message, Reading
from readings.models import Series as SeriesEntry
from readings.selectors.devices import device_search
from readings.selectors.units import QuantityDisplay, quantity_displays

PAGE_SIZE = 50
# Counted up to this many devices; past it the page says "more than".
COUNT_CAP = 10_000
# Pages past the capped count are not offered: a search or a filter narrows.
MAX_PAGES = COUNT_CAP // PAGE_SIZE
# The order of "needs attention": down, late, new, muted, up.
ATTENTION = (health.DOWN, health.LATE, health.NEW, health.MUTED, health.UP)
SORTS = ("state", "-state", "last_seen", "-last_seen")
DEFAULT_SORT = "state"
# Latest values shown in a row; the device page shows them all.
VALUES_SHOWN = 4
# Device types offered by the type filter.
TYPES_OFFERED = 200
# State changes shown on a device's page.
HISTORY_SHOWN = 20
# Quantities taken for the battery, best first; else a name containing "bat".
BATTERY_NAMES = ("battery_v", "vbat", "battery", "vbat_v", "battery_mv", "vbat_mv", "bat", "batt")


def battery_quantity(quantities: list[str]) -> str | None:
    """The battery-like quantity among a device's quantities, or None."""
    lowered = {q.lower(): q for q in quantities}
    for name in BATTERY_NAMES:
        if name in lowered:
            return lowered[name]
    return next((q for q in sorted(quantities) if "bat" in q.lower()), None)


@dataclass(frozen=True)
class LatestValue:
    sensor: str
    quantity: str
    value: float
    time: datetime
    shown: QuantityDisplay

    @property
    def name(self) -> str:
        return self.shown.label or self.quantity


@dataclass
class FleetRow:
    device: Device
    state: str
    interval_s: float | None
    values: list[LatestValue] = field(default_factory=list)
    more_values: int = 0
    battery: LatestValue | None = None
    rssi: float | None = None
    snr: float | None = None


@dataclass(frozen=True)
class FleetPage:
    rows: list[FleetRow]
    page: int
    has_next: bool
    count: int  # up to COUNT_CAP
    count_capped: bool  # more devices match than COUNT_CAP
    sort: str
    state: str
    device_type: str
    search: str
    types: list[DeviceType]

    @property
    def has_previous(self) -> bool:
        return self.page > 1

    @property
    def first(self) -> int:
        return (self.page - 1) * PAGE_SIZE + 1 if self.rows else 0

    @property
    def last(self) -> int:
        return (self.page - 1) * PAGE_SIZE + len(self.rows)


def _state_expression():
    # No DeviceHealth row yet (the worker has not run): the device is new.
    return Coalesce(F("health__state"), Value(health.NEW))


def _attention_expression():
    return Case(
        *(When(Q(health__state=state), then=Value(rank)) for rank, state in enumerate(ATTENTION)),
        default=Value(ATTENTION.index(health.NEW)),
        output_field=IntegerField(),
    )


def fleet_devices(*, state: str = "", device_type: str = "", search: str = "",
                  sort: str = DEFAULT_SORT) -> QuerySet[Device]:
    """The devices matching the filters, in the order asked for, each with its
    health and its type's health settings joined (LEFT JOIN: one query)."""
    devices = (
        device_search(search)
        .select_related("health", "device_type__health_settings")
        .annotate(fleet_state=_state_expression(), attention=_attention_expression())
    )
    if state == health.NEW:
        devices = devices.filter(Q(health__isnull=True) | Q(health__state=health.NEW))
    elif state in health.STATES:
        devices = devices.filter(health__state=state)
    if device_type:
        devices = devices.filter(device_type__sigfox_id=device_type.strip().upper())
    newest_first = F("last_seen").desc(nulls_last=True)
    oldest_first = F("last_seen").asc(nulls_first=True)
    order = {
        # Attention first; within a state, the device heard from last first:
        # a device that went down a minute ago before one silent for a year.
        "state": [F("attention").asc(), newest_first],
        "-state": [F("attention").desc(), newest_first],
        "last_seen": [oldest_first],
        "-last_seen": [newest_first],
    }[sort if sort in SORTS else DEFAULT_SORT]
    return devices.order_by(*order, "sigfox_id")


def interval_in_force_s(device: Device) -> float | None:
    """The device's own interval, else its type's, else the learned one
    (as alerts.evaluation reckons it). Needs health and
    device_type__health_settings selected, else it queries."""
    own = _health_of(device)
    type_settings = _type_settings_of(device)
    for value in (own and own.interval_s, type_settings and type_settings.interval_s,
                  own and own.learned_interval_s):
        if value is not None:
            return value
    return None


def _health_of(device: Device) -> DeviceHealth | None:
    try:
        return device.health
    except DeviceHealth.DoesNotExist:
        return None


def _type_settings_of(device: Device):
    if device.device_type is None:
        return None
    try:
        return device.device_type.health_settings
    except DeviceType.health_settings.RelatedObjectDoesNotExist:
        return None


def latest_values(devices: list[Device]) -> dict[int, list[LatestValue]]:
    """The newest reading of every series of these devices, in one query: the
    series registry, each row with one probe of the (device, sensor,
    quantity, time) index for its newest reading."""
    newest = Reading.objects.filter(
        device_id=OuterRef("device_id"), sensor=OuterRef("sensor"), quantity=OuterRef("quantity"),
    ).order_by("-time")
    rows = (
        SeriesEntry.objects.filter(device_id__in=[d.pk for d in devices])
        .annotate(value=Subquery(newest.values("value")[:1]), time=Subquery(newest.values("time")[:1]))
        .order_by("device_id", "quantity", "sensor")
        .values_list("device_id", "sensor", "quantity", "value", "time")
    )
    displays = quantity_displays(devices=devices)
    by_device = defaultdict(list)
    for pk, sensor, quantity, value, time in rows:
        if value is not None:
            by_device[pk].append(LatestValue(sensor, quantity, value, time, displays.of(pk, quantity)))
    return by_device


def last_signals(devices: list[Device]) -> dict[int, tuple[float | None, float | None]]:
    """RSSI and SNR of each device's newest message, in one query (a probe of
    the unique (device, time) index per device)."""
    newest = Message.objects.filter(device_id=OuterRef("pk")).order_by("-time").values("pk")[:1]
    last = Device.objects.filter(pk__in=[d.pk for d in devices]).annotate(message=Subquery(newest))
    return {
        pk: (rssi, snr)
        for pk, rssi, snr in Message.objects.filter(pk__in=last.values("message")).order_by()
        .values_list("device_id", "rssi", "snr")
    }


def fleet_rows(devices: list[Device]) -> list[FleetRow]:
    values = latest_values(devices)
    signals = last_signals(devices)
    rows = []
    for device in devices:
        shown = values.get(device.pk, [])
        battery_name = battery_quantity([v.quantity for v in shown])
        battery = next((v for v in shown if v.quantity == battery_name), None)
        others = [v for v in shown if v is not battery]
        rssi, snr = signals.get(device.pk, (None, None))
        rows.append(FleetRow(
            device=device, state=device.fleet_state, interval_s=interval_in_force_s(device),
            values=others[:VALUES_SHOWN], more_values=max(0, len(others) - VALUES_SHOWN),
            battery=battery, rssi=rssi, snr=snr,
        ))
    return rows


def _page_number(text: str) -> int:
    try:
        return min(MAX_PAGES, max(1, int(text)))
    except ValueError:
        return 1


def fleet_page(*, state: str = "", device_type: str = "", search: str = "",
               sort: str = "", page: str = "") -> FleetPage:
    """One page of the overview, from the page's query string. Unknown values
    are ignored rather than refused, like the chart page's."""
    state = state if state in health.STATES else ""
    sort = sort if sort in SORTS else DEFAULT_SORT
    search = search.strip()[:100]
    device_type = device_type.strip()[:24].upper()
    number = _page_number(page)
    devices = fleet_devices(state=state, device_type=device_type, search=search, sort=sort)
    start = (number - 1) * PAGE_SIZE
    # The sort touches every matching device: it carries their ids alone, and
    # the page's rows are read whole afterwards (a third faster at 100,000).
    pks = list(devices.values_list("pk", flat=True)[start:start + PAGE_SIZE + 1])
    has_next = len(pks) > PAGE_SIZE and number < MAX_PAGES
    pks = pks[:PAGE_SIZE]
    found = {d.pk: d for d in fleet_devices().filter(pk__in=pks).order_by()}
    listed = [found[pk] for pk in pks if pk in found]
    # The count stops at COUNT_CAP: never a COUNT of the whole fleet per view.
    count = devices.order_by().values("pk")[:COUNT_CAP + 1].count()
    types = list(DeviceType.objects.order_by("sigfox_id")[:TYPES_OFFERED])
    return FleetPage(
        rows=fleet_rows(listed), page=number, has_next=has_next, count=min(count, COUNT_CAP),
        count_capped=count > COUNT_CAP, sort=sort, state=state, device_type=device_type,
        search=search, types=types,
    )


# -- one device's health -------------------------------------------------------

@dataclass(frozen=True)
class Setting:
    """A value in force and where it comes from: "device", "type", "site" or "learned"."""

    value: float | None
    source: str


@dataclass(frozen=True)
class Rules:
    interval: Setting
    late_after: Setting
    down_after: Setting
    grace_s: Setting

    @property
    def thresholds(self) -> health.Thresholds:
        return health.Thresholds(self.late_after.value, self.down_after.value, self.grace_s.value)

    @property
    def late_s(self) -> float | None:
        return None if self.interval.value is None else self.thresholds.late_s(self.interval.value)

    @property
    def down_s(self) -> float | None:
        return None if self.interval.value is None else self.thresholds.down_s(self.interval.value)


def _setting(name: str, own, of_type, site: float | None, *, site_source="site") -> Setting:
    for source, holder in (("device", own), ("type", of_type)):
        value = getattr(holder, name, None) if holder is not None else None
        if value is not None:
            return Setting(value, source)
    return Setting(site, site_source if site is not None else "")


def device_rules(device: Device) -> Rules:
    """The thresholds in force for a device: its own, else its type's, else the site's."""
    own, of_type = _health_of(device), _type_settings_of(device)
    learned = own.learned_interval_s if own is not None else None
    return Rules(
        interval=_setting("interval_s", own, of_type, learned, site_source="learned"),
        late_after=_setting("late_after", own, of_type, settings.SIGFOX_LATE_AFTER),
        down_after=_setting("down_after", own, of_type, settings.SIGFOX_DOWN_AFTER),
        grace_s=_setting("grace_s", own, of_type, settings.SIGFOX_GRACE_S),
    )


@dataclass(frozen=True)
class RhythmBin:
    label: str
    low_s: float
    high_s: float | None  # None: no upper bound
    count: int


def rhythm_bins(samples: list[float], rules: Rules) -> list[RhythmBin]:
    """The device's recent intervals counted against its expected interval and
    thresholds: early, on time, later than usual, late, down."""
    interval_s = rules.interval.value
    if not samples or interval_s is None:
        return []
    on_time_s = 1.1 * interval_s
    bins = [
        ("early", 0.0, 0.9 * interval_s),
        ("on time", 0.9 * interval_s, on_time_s),
        ("later than usual", on_time_s, max(on_time_s, rules.late_s)),
        ("late", max(on_time_s, rules.late_s), max(on_time_s, rules.down_s)),
        ("down", max(on_time_s, rules.down_s), None),
    ]
    counts = [0] * len(bins)
    for sample in samples:
        counts[next(i for i, (_, _, high) in enumerate(bins) if high is None or sample < high)] += 1
    # A bin that thresholds below 1.1 intervals squeeze to nothing is left out.
    return [RhythmBin(label, low, high, count)
            for (label, low, high), count in zip(bins, counts, strict=True)
            if high is None or high > low]


@dataclass(frozen=True)
class DeviceHealthView:
    health: DeviceHealth | None
    state: str
    rules: Rules
    samples: list[float]
    rhythm: list[RhythmBin]
    changes: list[StateChange]


def device_health(device: Device) -> DeviceHealthView:
    """A device's state, rhythm, alert history (newest first, with each
    change's notifications) and the thresholds in force."""
    own = _health_of(device)
    rules = device_rules(device)
    samples = list(own.samples) if own is not None else []
    changes = list(
        StateChange.objects.filter(device=device).order_by("-time")
        .prefetch_related("notifications__channel")[:HISTORY_SHOWN]
    )
    return DeviceHealthView(
        health=own, state=own.state if own is not None else health.NEW, rules=rules,
        samples=samples, rhythm=rhythm_bins(samples, rules), changes=changes,
    )
