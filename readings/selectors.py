"""Reads: devices and series of readings for the chart page and the API."""

from django.db.models import QuerySet

from readings.models import Device, Reading

# The chart shows at least this many of the latest readings of each series.
GRAPH_POINTS = 200
# More lines than this make an unreadable chart; the device picker narrows it.
GRAPH_MAX_SERIES = 24


def device_list() -> QuerySet[Device]:
    return Device.objects.order_by("sigfox_id")


def series_keys(*, device_id: str | None = None) -> list[tuple[str, str, str]]:
    """(device id, sensor, quantity) of every series, optionally of one device."""
    readings = Reading.objects.all()
    if device_id:
        readings = readings.filter(device__sigfox_id=device_id)
    keys = (
        readings.order_by("device__sigfox_id", "sensor", "quantity")
        .values_list("device__sigfox_id", "sensor", "quantity")
        .distinct()
    )
    return list(keys[:GRAPH_MAX_SERIES])


def latest_series(*, device_id: str | None = None, per_series: int = GRAPH_POINTS) -> list[dict]:
    """The latest readings of each series, oldest first, as points [epoch ms, value]."""
    series = []
    for sigfox_id, sensor, quantity in series_keys(device_id=device_id):
        rows = (
            Reading.objects.filter(device__sigfox_id=sigfox_id, sensor=sensor, quantity=quantity)
            .order_by("-time")
            .values_list("time", "value")[:per_series]
        )
        points = [[int(time.timestamp() * 1000), value] for time, value in reversed(rows)]
        series.append(
            {
                "device": sigfox_id,
                "sensor": sensor,
                "quantity": quantity,
                "label": f"{sigfox_id} · sensor {sensor} · {quantity}",
                "points": points,
            }
        )
    return series
