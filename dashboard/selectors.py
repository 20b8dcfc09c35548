"""What the chart pages offer and draw, from their query string; and what
the device page shows of the callbacks besides its uplinks (section 7 of
CALLBACKS.md): its last location, its ERROR and EVENT callbacks, its
downlinks and their acknowledgements."""

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.utils.timezone import get_default_timezone

from readings.models import Acknowledge, Device, DeviceEvent, DeviceLocation, Downlink
from readings.models import Series as SeriesEntry
from readings.selectors.devices import device_list, device_search, devices_last_seen, normalized
from readings.selectors.series import SeriesKey

# More lines than this make an unreadable chart; the pickers narrow it.
GRAPH_MAX_SERIES = 24

RANGES = {
    "hour": timedelta(hours=1),
    "day": timedelta(days=1),
    "week": timedelta(days=7),
    "month": timedelta(days=31),
    "year": timedelta(days=365),
    "all": None,
    "custom": None,
}
DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def chart_date(text: str, *, through: bool = False) -> str:
    """`text` when it is a day (YYYY-MM-DD) the chart can ask the API about, else "".

    The chart asks from the start of the `from` day, and up to the start of
    the day after `to` (through=True), in the site's time zone: a day whose
    bound is no time in UTC (February 30th; 0001-01-01 east of Greenwich,
    9999-12-31) is ignored like any other bad date, never a 500.
    """
    if not DATE.fullmatch(text):
        return ""
    try:
        day = datetime.fromisoformat(text) + timedelta(days=1 if through else 0)
        day.replace(tzinfo=get_default_timezone()).astimezone(UTC)
    except (ValueError, OverflowError):
        return ""
    return text


# How many devices the chart page's picker lists at once; a search narrows them.
PICKER_DEVICES = 50


@dataclass(frozen=True)
class ChartChoices:
    devices: list[Device]  # offered by the picker: the chosen ones, then a page of matches
    more_devices: bool  # more devices match the search than the picker lists
    device_search: str
    keys: list[SeriesKey]  # every series of the chosen devices
    chosen_devices: list[str]
    quantities: list[str]
    chosen_quantities: list[str]
    series: list[SeriesKey]  # what the chart draws
    more_series: int  # left out by GRAPH_MAX_SERIES
    range: str
    date_from: str
    date_to: str


def chart_choices(
    *, devices: Sequence[str], quantities: Sequence[str], range_name: str = "",
    date_from: str = "", date_to: str = "", device: Device | None = None, search: str = "",
    now: datetime,
) -> ChartChoices:
    """What the chart page offers and what it draws, from the page's query string.

    Unknown devices, quantities and ranges are ignored rather than refused:
    the page is reached by links and bookmarks, and shows what it can. Nothing
    here reads every device or every series: the picker lists the chosen
    devices and a page of those matching `search`, and the series are those
    of the chosen devices (each device has at most SIGFOX_MAX_SERIES_PER_DEVICE).
    """
    more_devices = False
    if device is not None:
        offered = [device]
        chosen_devices = [device.sigfox_id]
    else:
        wanted = list(dict.fromkeys(normalized(s) for s in devices[:PICKER_DEVICES]))
        chosen = {d.sigfox_id: d for d in device_list().filter(sigfox_id__in=wanted)}
        chosen_devices = [d for d in wanted if d in chosen]
        page = list(device_search(search).exclude(sigfox_id__in=chosen_devices)[:PICKER_DEVICES + 1])
        more_devices = len(page) > PICKER_DEVICES
        page = page[:PICKER_DEVICES]
        offered = [chosen[d] for d in chosen_devices] + page
        if not chosen_devices:
            chosen_devices = [d.sigfox_id for d in page]
    keys = [
        SeriesKey(sigfox_id, sensor, quantity)
        for sigfox_id, sensor, quantity in SeriesEntry.objects.filter(device__sigfox_id__in=chosen_devices)
        .order_by("device__sigfox_id", "sensor", "quantity")
        .values_list("device__sigfox_id", "sensor", "quantity")
    ]
    all_quantities = sorted({k.quantity for k in keys})
    chosen_quantities = [q for q in dict.fromkeys(quantities) if q in all_quantities]
    if not chosen_quantities:
        chosen_quantities = all_quantities
    drawn = [k for k in keys if k.quantity in chosen_quantities]
    date_from = chart_date(date_from)
    date_to = chart_date(date_to, through=True)
    if date_from and date_to and date_to < date_from:
        date_to = ""  # an empty range: the chart shows from `from` on
    if range_name not in RANGES:
        range_name = "custom" if (date_from or date_to) else ""
    if not range_name:
        # A fresh page shows the last day, or everything when the chosen
        # devices have been silent for longer.
        last = devices_last_seen(sigfox_ids=chosen_devices)
        range_name = "day" if last and last > now - RANGES["day"] else "all"
    return ChartChoices(
        devices=offered, more_devices=more_devices, device_search=search.strip()[:100], keys=keys,
        chosen_devices=chosen_devices, quantities=all_quantities,
        chosen_quantities=chosen_quantities, series=drawn[:GRAPH_MAX_SERIES],
        more_series=max(0, len(drawn) - GRAPH_MAX_SERIES), range=range_name,
        date_from=date_from, date_to=date_to,
    )


# -- The device page's callbacks --------------------------------------------------------

# Rows each list of the device page shows, newest first.
DEVICE_PAGE_ROWS = 10


@dataclass(frozen=True)
class LastLocation:
    """The device's last known location, and a link to it on openstreetmap.org
    (a plain link: the page loads no map, tiles or script from another host)."""

    location: DeviceLocation
    lat_text: str  # degrees, at most 6 decimals (about 0.1 m), a dot whatever the locale
    lng_text: str
    osm_url: str


def osm_zoom(radius_m: int | None) -> int:
    """An OpenStreetMap zoom level that shows about the radius (metres) around the point."""
    if radius_m is None or radius_m <= 200:
        return 17
    if radius_m <= 2_000:
        return 14
    if radius_m <= 20_000:
        return 11
    return 8


def device_last_location(device: Device) -> LastLocation | None:
    """Where the device was for its latest message located (DeviceLocation), or None."""
    location = DeviceLocation.objects.filter(device=device).order_by("-time").first()
    if location is None:
        return None
    # Written with a dot whatever the site's locale: the link is a URL.
    lat, lng, zoom = f"{location.lat:.6f}", f"{location.lng:.6f}", osm_zoom(location.radius_m)
    return LastLocation(
        location=location, lat_text=_degrees(location.lat), lng_text=_degrees(location.lng),
        osm_url=f"https://www.openstreetmap.org/?mlat={lat}&mlon={lng}#map={zoom}/{lat}/{lng}",
    )


def _degrees(value: float) -> str:
    text = f"{value:.6f}".rstrip("0").rstrip(".")
    return "0" if text == "-0" else text


def device_recent_events(device: Device) -> list[DeviceEvent]:
    """The device's latest ERROR and EVENT callbacks, newest first."""
    events = DeviceEvent.objects.filter(device=device).order_by("-time", "-id")
    return list(events[:DEVICE_PAGE_ROWS])


def device_recent_downlinks(device: Device) -> list[Downlink]:
    """The downlinks last answered to the device, newest first, with what their
    ACKNOWLEDGE callback said (info_code, delivered; null while none came)."""
    downlinks = Downlink.objects.filter(device=device).order_by("-answered_at", "-id")
    return list(downlinks[:DEVICE_PAGE_ROWS])


def device_recent_acknowledges(device: Device) -> list[Acknowledge]:
    """The device's latest ACKNOWLEDGE callbacks, newest first, with the downlink each settled."""
    return list(Acknowledge.objects.filter(device=device).select_related("downlink")
                .order_by("-time", "-id")[:DEVICE_PAGE_ROWS])
