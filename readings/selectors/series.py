"""Series: one quantity of one device's sensor ("1A2B3C", "1", "temp").

The chart never needs more points than it has pixels, so a series over a long
range is downsampled in the database, one bucket of time per few pixels, each
bucket keeping its first, lowest, highest and last reading (M4): peaks survive
and the answer stays a few kilobytes whether the range holds a hundred
readings or a million.
"""

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db import connection
from django.db.models import QuerySet

from readings import db
from readings.models import Device, Reading
from readings.selectors.units import quantity_display, series_label

# Bounds of the number of points a series answer may hold.
SERIES_MIN_POINTS = 10
SERIES_MAX_POINTS = 2000
# About the width of the chart in pixels.
SERIES_DEFAULT_POINTS = 1000


@dataclass(frozen=True)
class SeriesKey:
    """One series: a quantity of one sensor of one device."""

    device_id: str  # the Sigfox id
    sensor: str
    quantity: str


@dataclass
class Bucket:
    """One bucket of time of a downsampled series; times are epoch milliseconds."""

    start: int
    end: int  # excluded
    count: int
    first_time: int
    first: float
    min_time: int
    min: float
    max_time: int
    max: float
    last_time: int
    last: float


@dataclass
class Series:
    """A series over [since, until) as at most max_points points ([epoch ms, value]);
    rendered by readings.api.serializers.SeriesSerializer."""

    device: str  # the Sigfox id
    sensor: str | None  # None: every sensor of the device
    quantity: str
    unit: str
    label: str
    since: datetime | None
    until: datetime | None
    max_points: int
    count: int = 0
    method: str = "raw"  # "raw": every reading; "m4": first, min, max, last per bucket
    points: list[tuple[int, float]] = field(default_factory=list)
    buckets: list[Bucket] = field(default_factory=list)


# Walks the (device, sensor, quantity, time) index from one series to the next
# (a "loose index scan"): one probe per series instead of reading every row as
# SELECT DISTINCT would. Row values work on SQLite (3.15+) and PostgreSQL.
_SERIES_KEYS_SQL = """
WITH RECURSIVE series_key(device_id, sensor, quantity) AS (
    SELECT device_id, sensor, quantity FROM (
        SELECT device_id, sensor, quantity FROM readings_reading
        WHERE {where}
        ORDER BY device_id, sensor, quantity LIMIT 1
    ) first_key
    UNION ALL
    SELECT r.device_id, r.sensor, r.quantity
    FROM series_key k JOIN readings_reading r ON r.id = (
        SELECT n.id FROM readings_reading n
        WHERE {next_where}
        ORDER BY n.device_id, n.sensor, n.quantity LIMIT 1
    )
)
SELECT d.sigfox_id, k.sensor, k.quantity
FROM series_key k JOIN readings_device d ON d.id = k.device_id
"""


def series_keys(*, device_pks: Sequence[int] | None = None) -> list[SeriesKey]:
    """Every (device, sensor, quantity) that has readings, in that order."""
    if device_pks is None:
        sql = _SERIES_KEYS_SQL.format(
            where="1 = 1",
            next_where="(n.device_id, n.sensor, n.quantity) > (k.device_id, k.sensor, k.quantity)",
        )
        batches = [(sql, [])]
    else:
        sql = _SERIES_KEYS_SQL.format(
            where="device_id = %s",
            next_where="n.device_id = %s AND (n.sensor, n.quantity) > (k.sensor, k.quantity)",
        )
        batches = [(sql, [pk, pk]) for pk in device_pks]
    keys = []
    with connection.cursor() as cursor:
        for sql, params in batches:
            cursor.execute(sql, params)
            keys.extend(SeriesKey(*row) for row in cursor.fetchall())
    return sorted(keys, key=lambda k: (k.device_id, k.sensor, k.quantity))


# PostgreSQL: one pass, hash aggregate, no sort. Arrays compare element by
# element, so MIN(ARRAY[value, epoch]) is the lowest value with its earliest time.
_M4_POSTGRESQL = """
SELECT bucket, COUNT(*),
       MIN(ARRAY[e, value]), MAX(ARRAY[e, value]),
       MIN(ARRAY[value, e]), MAX(ARRAY[value, -e])
FROM (SELECT {bucket} AS bucket, e, value FROM ({timed}) AS timed) AS bucketed
GROUP BY bucket ORDER BY bucket
"""

# Elsewhere (SQLite): window functions number the rows of each bucket four ways.
_M4_WINDOWS = """
SELECT bucket, n, e, value, rf, rl, rmin, rmax FROM (
    SELECT bucket, e, value,
           COUNT(*) OVER (PARTITION BY bucket) AS n,
           ROW_NUMBER() OVER (PARTITION BY bucket ORDER BY e, value) AS rf,
           ROW_NUMBER() OVER (PARTITION BY bucket ORDER BY e DESC, value DESC) AS rl,
           ROW_NUMBER() OVER (PARTITION BY bucket ORDER BY value, e) AS rmin,
           ROW_NUMBER() OVER (PARTITION BY bucket ORDER BY value DESC, e) AS rmax
    FROM (SELECT {bucket} AS bucket, e, value FROM ({timed}) AS timed) AS bucketed
) AS ranked
WHERE rf = 1 OR rl = 1 OR rmin = 1 OR rmax = 1
ORDER BY bucket
"""


def _series_rows(*, device_pk: int, sensors: Sequence[str], quantity: str,
                 since: datetime, until: datetime) -> QuerySet[Reading]:
    return Reading.objects.filter(
        device_id=device_pk, sensor__in=list(sensors), quantity=quantity,
        time__gte=since, time__lt=until,
    ).order_by()


def series_sensors(*, device_pk: int, quantity: str) -> list[str]:
    return [k.sensor for k in series_keys(device_pks=[device_pk]) if k.quantity == quantity]


def series_bounds(*, device_pk: int, sensors: Sequence[str], quantity: str
                  ) -> tuple[datetime, datetime] | None:
    """Times of the first and the last reading of a series (two index probes)."""
    rows = Reading.objects.filter(device_id=device_pk, sensor__in=list(sensors), quantity=quantity)
    first = rows.order_by("time").values_list("time", flat=True).first()
    if first is None:
        return None
    last = rows.order_by("-time").values_list("time", flat=True).first()
    return first, last


def series_downsampled(
    *,
    device: Device,
    quantity: str,
    sensor: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    max_points: int = SERIES_DEFAULT_POINTS,
    now: datetime,
) -> Series:
    """One quantity of a device (of one sensor, or of all its sensors) over
    [since, until), as at most max_points points.

    Without since, the range starts at the first reading. Without until, it
    ends now when since is given, else just after the last reading.
    """
    sensors = [sensor] if sensor else series_sensors(device_pk=device.pk, quantity=quantity)
    shown = quantity_display(device, quantity)
    series = Series(device.sigfox_id, sensor, quantity, shown.unit,
                    series_label(device.sigfox_id, sensor, quantity, shown),
                    since, until, max_points)
    if not sensors:
        return series
    if since is None or until is None:
        bounds = series_bounds(device_pk=device.pk, sensors=sensors, quantity=quantity)
        if bounds is None:
            return series
        after_last = bounds[1] + timedelta(microseconds=1)
        # A range given only a start runs to now; no range at all is the whole series.
        until = until or (max(now, after_last) if since else after_last)
        since = since or bounds[0]
        series.since, series.until = since, until
    if until <= since:
        return series
    rows = _series_rows(device_pk=device.pk, sensors=sensors, quantity=quantity,
                        since=since, until=until)
    # A short range answers with its readings as they are. Counting at most
    # max_points + 1 rows is a cheap probe; a long range stops there.
    if rows[: max_points + 1].count() <= max_points:
        head = rows.order_by("time", "id").values_list("time", "value")
        series.points = [(db.ms(t.timestamp()), v) for t, v in head]
        series.count = len(series.points)
        return series
    series.method = "m4"
    series.buckets = _m4_buckets(rows, db.TimeBuckets(since, until, max(1, max_points // 4)))
    series.count = sum(b.count for b in series.buckets)
    series.points = m4_points(series.buckets)
    return series


def m4_points(buckets: Iterable[Bucket]) -> list[tuple[int, float]]:
    """The line through each bucket's first, min, max and last reading, in time order."""
    points = []
    for b in buckets:
        points.extend(sorted({(b.first_time, b.first), (b.min_time, b.min),
                              (b.max_time, b.max), (b.last_time, b.last)}))
    return points


def _m4_buckets(rows: QuerySet[Reading], buckets: db.TimeBuckets) -> list[Bucket]:
    template = _M4_POSTGRESQL if db.is_postgresql() else _M4_WINDOWS
    sql, params = buckets.aggregate(template, rows.values_list("time", "value"), "value")
    ms = db.ms
    result = []
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        if db.is_postgresql():
            for index, count, first, last, low, high in cursor.fetchall():
                result.append(Bucket(
                    *buckets.edges_ms(index), count,
                    first_time=ms(first[0]), first=first[1], min_time=ms(low[1]), min=low[0],
                    max_time=ms(-high[1]), max=high[0], last_time=ms(last[0]), last=last[1],
                ))
            return result
        current = None
        for index, count, e, value, rf, rl, rmin, rmax in cursor.fetchall():
            start, end = buckets.edges_ms(index)
            time_ms = ms(e)
            if current is None or current.start != start:
                current = Bucket(start, end, count, *((time_ms, value) * 4))
                result.append(current)
            if rf == 1:
                current.first_time, current.first = time_ms, value
            if rl == 1:
                current.last_time, current.last = time_ms, value
            if rmin == 1:
                current.min_time, current.min = time_ms, value
            if rmax == 1:
                current.max_time, current.max = time_ms, value
    return result
