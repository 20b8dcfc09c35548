"""The pages people read: the fleet overview, the chart of chosen series, and
one device's page.

The overview is rendered on the server (dashboard/overview.py). The chart
pages are drawn in the browser by static/dashboard/js/ (ES modules) from the
read API (readings/api/views.py); the page gives it its configuration as JSON
(json_script).
"""

from datetime import timedelta

from django.conf import settings
from django.contrib.auth.views import redirect_to_login
from django.http import Http404
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone

from alerts.rule_evaluation import device_value_rules
from dashboard.overview import ATTENTION, device_health, fleet_page
from dashboard.selectors import (
    GRAPH_MAX_SERIES,
    RANGES,
    ChartChoices,
    chart_choices,
    device_last_location,
    device_recent_acknowledges,
    device_recent_downlinks,
    device_recent_events,
)
from readings.api.base import CheckedCursorPagination
from readings.models import InfoCode, Rejection
from readings.selectors.devices import device_get, device_latest_readings
from readings.selectors.series import (
    SERIES_DEFAULT_POINTS,
    SERIES_MAX_POINTS,
    SERIES_MIN_POINTS,
    SeriesKey,
)
from readings.selectors.units import QuantityDisplays, quantity_displays, series_label

# How often the chart pages ask for new readings.
POLL_MS = 5000
RANGE_LABELS = {
    "hour": "Last hour",
    "day": "Last day",
    "week": "Last week",
    "month": "Last month",
    "year": "Last year",
    "all": "All",
    "custom": "From–to dates",
}


def _may_see_dashboard(request) -> bool:
    return settings.PUBLIC_DASHBOARD or request.user.is_authenticated


def _int_param(request, name: str, *, low: int, high: int) -> int | None:
    try:
        return min(high, max(low, int(request.GET[name])))
    except (KeyError, ValueError):
        return None


def series_config(key: SeriesKey, displays: QuantityDisplays) -> dict:
    """A series as the chart script knows it: ids, unit and label."""
    shown = displays.of(key.device_id, key.quantity)
    return {
        "device": key.device_id,
        "sensor": key.sensor,
        "quantity": key.quantity,
        "unit": shown.unit,
        "label": series_label(key.device_id, key.sensor, key.quantity, shown),
    }


def _chart_context(request, choices: ChartChoices, *, device=None) -> dict:
    """The page's controls, and the JSON that static/dashboard/js/main.js draws
    from (json_script): what to draw, and the server's bounds it keeps to."""
    # Units and labels of every series offered, from the settings loaded once.
    displays = quantity_displays(devices=choices.devices)
    chart = {
        "timeZone": settings.TIME_ZONE,
        "urls": {
            "series": reverse("api-series"),
            "readings": reverse("api-readings"),
            "csv": reverse("api-readings-csv"),
            "link": reverse("api-device-link", args=[device.sigfox_id]) if device else None,
        },
        "range": choices.range,
        "from": choices.date_from,
        "to": choices.date_to,
        # The presets' lengths, as the server reckons them (null: "all", "custom").
        "ranges": {
            name: None if length is None else length // timedelta(milliseconds=1)
            for name, length in RANGES.items()
        },
        # The bounds of /api/series/ `points`; `fixed` is the address's ?points=
        # (else the chart asks for about one point per pixel).
        "points": {
            "min": SERIES_MIN_POINTS,
            "max": SERIES_MAX_POINTS,
            "default": SERIES_DEFAULT_POINTS,
            "fixed": _int_param(request, "points", low=SERIES_MIN_POINTS, high=SERIES_MAX_POINTS),
        },
        # Tests speed the live update up; nobody needs it faster than twice a second.
        "pollMs": _int_param(request, "poll_ms", low=500, high=600_000) or POLL_MS,
        # A poll asks for a full page of new readings; more than that loads afresh.
        "pollPageSize": CheckedCursorPagination.max_page_size,
        "maxSeries": GRAPH_MAX_SERIES,
        "series": [series_config(key, displays) for key in choices.series],
        "keys": [series_config(key, displays) for key in choices.keys],
    }
    return {
        "choices": choices,
        # A site with one device needs no picker; a search or a long list does.
        "device_picker": device is None and (
            len(choices.devices) > 1 or bool(choices.device_search) or choices.more_devices
        ),
        "chart": chart,
        "ranges": [(name, label) for name, label in RANGE_LABELS.items()],
        "callback_url": request.build_absolute_uri("/data/1"),
    }


def overview(request):
    """The landing page: a page of devices, attention first, with their state,
    last message, rhythm and latest values; filtered, searched and sorted."""
    if not _may_see_dashboard(request):
        return redirect_to_login(request.get_full_path())
    page = fleet_page(
        state=request.GET.get("state", ""),
        device_type=request.GET.get("type", ""),
        search=request.GET.get("q", ""),
        sort=request.GET.get("sort", ""),
        page=request.GET.get("page", ""),
    )
    return render(request, "dashboard/overview.html", {
        "fleet": page, "states": ATTENTION, "callback_url": request.build_absolute_uri("/data/1"),
    })


def graph(request):
    """The chart page: chosen series of chosen devices over a range, drawn by
    static/dashboard/js/main.js from the read API."""
    if not _may_see_dashboard(request):
        return redirect_to_login(request.get_full_path())
    choices = chart_choices(
        devices=request.GET.getlist("device"),
        quantities=request.GET.getlist("quantity"),
        range_name=request.GET.get("range", ""),
        date_from=request.GET.get("from", ""),
        date_to=request.GET.get("to", ""),
        search=request.GET.get("q", ""),
        now=timezone.now(),
    )
    return render(request, "dashboard/graph.html", _chart_context(request, choices))


def device_page(request, sigfox_id: str):
    """One device: its series, its link quality (RSSI, SNR, lost messages), its latest values."""
    if not _may_see_dashboard(request):
        return redirect_to_login(request.get_full_path())
    device = device_get(sigfox_id=sigfox_id)
    if device is None:
        raise Http404("No such device.")
    choices = chart_choices(
        devices=[device.sigfox_id],
        quantities=request.GET.getlist("quantity"),
        range_name=request.GET.get("range", ""),
        date_from=request.GET.get("from", ""),
        date_to=request.GET.get("to", ""),
        device=device,
        now=timezone.now(),
    )
    context = _chart_context(request, choices, device=device)
    context["device"] = device
    context["rejections"] = list(
        Rejection.objects.filter(device_id=device.sigfox_id).order_by("-time")[:10]
    )
    displays = quantity_displays(devices=[device])
    context["latest"] = [
        (reading, displays.of(device.pk, reading.quantity))
        for reading in device_latest_readings(device=device, keys=choices.keys)
    ]
    context["health"] = device_health(device)
    context["value_rules"] = device_value_rules(device)
    # What the other callback kinds said (CALLBACKS.md section 7): STATUS
    # readings are among `latest` (sensor "status"); GEOLOC and DATA ADVANCED
    # locations, ERROR and EVENT callbacks, downlinks and their ACKNOWLEDGE.
    context["last_location"] = device_last_location(device)
    context["track_url"] = _track_url(device)
    context["events"] = device_recent_events(device)
    context["downlinks"] = [
        (downlink, _info_name(downlink.info_code)) for downlink in device_recent_downlinks(device)
    ]
    context["acknowledges"] = device_recent_acknowledges(device)
    return render(request, "dashboard/device.html", context)


def _info_name(code: int | None) -> str:
    """The name of an ACKNOWLEDGE {infoCode} (ACKED, NO_ANSWER, ...), "" when none came."""
    if code is None:
        return ""
    return InfoCode(code).label if code in InfoCode.values else f"code {code}"


def _track_url(device) -> str:
    """/api/devices/<id>/locations/: the device's track."""
    return reverse("api-device-locations", args=[device.sigfox_id])


