"""Series: one quantity of one device's sensor ("1A2B3C", "1", "temp").

The chart never needs more points than it has pixels, so a series over a long
range is downsampled in the database, one bucket of time per few pixels, each
bucket keeping its first, lowest, highest and last reading (M4): peaks survive
and the answer stays a few kilobytes whether the range holds a hundred
readings or a million.

Buckets of an hour or more are drawn from the hourly or daily rollups
(readings.models.Rollup, kept by readings.services.rollups), on the rollups'
grid: the range is widened to whole hours or days and each bucket holds a
whole number of them. The hours the rollups do not hold yet (readings newer
than their watermark, hours marked dirty) are read from the readings, so the
answer is the one the readings give for the same buckets, to the bit.
"""

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import reduce
from operator import or_

from django.db import connection
from django.db.models import Q, QuerySet, Sum

from readings import db
from readings.models import Device, Reading, Rollup, RollupDirty, RollupProgress, RollupResolution
from readings.selectors.retention import Kept, device_policies
from readings.selectors.units import quantity_display, series_label

# Bounds of the number of points a series answer may hold.
SERIES_MIN_POINTS = 10
SERIES_MAX_POINTS = 2000
# About the width of the chart in pixels.
SERIES_DEFAULT_POINTS = 1000
# Readings past the rollups' watermark (of every series) beyond which a chart
# does not lean on the rollups: each answer reads that tail by primary key.
# Far behind means the worker is stopped or catching up (a database fresh
# from an upgrade); the readings answer alone, over the same buckets.
ROLLUP_TAIL_MAX_READINGS = 50_000


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
    # Where the buckets come from: "raw" (the readings), "rollup-hourly" or
    # "rollup-daily" (the rollups, and the readings of hours they lack yet).
    source: str = "raw"
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


# The M4 aggregation reads "unit rows": the count and sum of the readings a
# row stands for, and its first, lowest, highest and last reading as (epoch
# seconds, value). A reading is a unit row of one (every pair its own); a
# rollup row is one of its own columns. So one aggregation draws charts from
# readings, charts from rollups, and builds the rollups themselves.
UNIT_COLUMNS = ("n", "s", "fe", "fv", "mine", "minv", "maxe", "maxv", "le", "lv")

# A reading as a unit row, over TimeBuckets.aggregate's {timed} (e, value).
_RAW_UNITS = (
    "SELECT {bucket} AS bucket, 1 AS n, value AS s, e AS fe, value AS fv, e AS mine, "
    "value AS minv, e AS maxe, value AS maxv, e AS le, value AS lv FROM ({timed}) AS timed"
)

# PostgreSQL: one pass, hash aggregate, no sort. Arrays compare element by
# element, so MIN(ARRAY[value, epoch]) is the lowest value with its earliest time.
_M4_POSTGRESQL = """
SELECT {groups}, n, s, f[1], f[2], lo[2], lo[1], -hi[2], hi[1], l[1], l[2] FROM (
    SELECT {groups}, SUM(n) AS n, SUM(s) AS s,
           MIN(ARRAY[fe, fv]) AS f, MIN(ARRAY[minv, mine]) AS lo,
           MAX(ARRAY[maxv, -maxe]) AS hi, MAX(ARRAY[le, lv]) AS l
    FROM ({units}) AS units
    GROUP BY {groups}
) AS m4
"""

# Elsewhere (SQLite): window functions number the rows of each group four
# ways; the rows that come first in one of them make the group's row.
_M4_WINDOWS = """
SELECT {groups}, MAX(n), MAX(s),
       MAX(CASE WHEN rf = 1 THEN fe END), MAX(CASE WHEN rf = 1 THEN fv END),
       MAX(CASE WHEN rmin = 1 THEN mine END), MAX(CASE WHEN rmin = 1 THEN minv END),
       MAX(CASE WHEN rmax = 1 THEN maxe END), MAX(CASE WHEN rmax = 1 THEN maxv END),
       MAX(CASE WHEN rl = 1 THEN le END), MAX(CASE WHEN rl = 1 THEN lv END)
FROM (
    SELECT {groups}, fe, fv, mine, minv, maxe, maxv, le, lv,
           SUM(n) OVER whole AS n, SUM(s) OVER whole AS s,
           ROW_NUMBER() OVER (PARTITION BY {groups} ORDER BY fe, fv) AS rf,
           ROW_NUMBER() OVER (PARTITION BY {groups} ORDER BY le DESC, lv DESC) AS rl,
           ROW_NUMBER() OVER (PARTITION BY {groups} ORDER BY minv, mine) AS rmin,
           ROW_NUMBER() OVER (PARTITION BY {groups} ORDER BY maxv DESC, maxe) AS rmax
    FROM ({units}) AS units
    WINDOW whole AS (PARTITION BY {groups})
) AS ranked
WHERE rf = 1 OR rl = 1 OR rmin = 1 OR rmax = 1
GROUP BY {groups}
"""


def m4_sql(units: str, groups: Sequence[str]) -> str:
    """SQL of the M4 aggregation of `units` (SQL of rows holding the columns
    `groups` and UNIT_COLUMNS) per group: one row per group of *groups,
    count, sum, then the first, lowest, highest and last reading each as
    (epoch seconds, value): len(groups) + 10 columns, in no order.

    Ties break as readings.models.Rollup says: first and last by (time,
    value), lowest by (value, time), highest by (value descending, time).
    `units` may hold str.format fields; the result keeps them.
    """
    template = _M4_POSTGRESQL if db.is_postgresql() else _M4_WINDOWS
    return template.replace("{groups}", ", ".join(groups)).replace("{units}", units)


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
    rollups: bool = True,
) -> Series:
    """One quantity of a device (of one sensor, or of all its sensors) over
    [since, until), as at most max_points points.

    Without since, the range starts at the first reading. Without until, it
    ends now when since is given, else just after the last reading.

    A range of at most max_points readings answers with them (method "raw").
    Else max_points // 4 buckets (method "m4"): buckets narrower than an hour
    cut [since, until) as asked, from the readings; wider ones lie on the
    rollups' grid (RollupGrid: since and until widened to whole hours or
    days, and given back so) and come from the rollups (source
    "rollup-hourly" or "rollup-daily"), or from the readings (source "raw")
    when the rollups lag too far behind (rollups_watermark) or `rollups` is
    False. Both sources give the same buckets to the bit, as long as the
    readings are kept: a range reaching back past the device's raw retention
    draws from the rollups what the readings no longer hold, in buckets of
    an hour at least, however few readings are left.
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
    count = max(1, max_points // 4)
    grid = RollupGrid.over(since, until, count)
    watermark = rollups_watermark() if rollups and grid is not None else None
    rolled = None  # the buckets of `grid` from the rollups, once read
    if watermark is not None:
        # A long range: the rollups answer first, and their count tells whether
        # the readings are few enough to answer as they are (then, below).
        buckets = rolled = _rollup_buckets(device_pk=device.pk, sensors=sensors, quantity=quantity,
                                           grid=grid, watermark=watermark)
        if sum(b.count for b in buckets) > max_points:
            series.method, series.source = "m4", grid.source
            series.since, series.until = grid.since, grid.until
            series.buckets = buckets
            series.count = sum(b.count for b in buckets)
            series.points = m4_points(buckets)
            return series
    rows = _series_rows(device_pk=device.pk, sensors=sensors, quantity=quantity,
                        since=since, until=until)
    # A short range answers with its readings as they are. Counting at most
    # max_points + 1 rows is a cheap probe; a long range stops there.
    found = rows[: max_points + 1].count()
    pruned = found <= max_points and rollups and _rollups_hold_more(
        device=device, sensors=sensors, quantity=quantity, since=since, until=until,
        found=found, now=now)
    if found <= max_points and not pruned:
        head = rows.order_by("time", "id").values_list("time", "value")
        series.points = [(db.ms(t.timestamp()), v) for t, v in head]
        series.count = len(series.points)
        return series
    series.method = "m4"
    # `hourly` only gives a grid where none was: one there already stays the same.
    grid = grid or RollupGrid.over(since, until, count, hourly=pruned)
    if grid is None:  # buckets narrower than an hour: from the readings, over the range as asked
        buckets = db.TimeBuckets(since, until, count)
        series.buckets = _m4_buckets(*_raw_units(rows, buckets), buckets)
    else:
        series.since, series.until = grid.since, grid.until
        watermark = None if rolled is not None or not rollups else rollups_watermark()
        if rolled is not None:  # read above; the readings held fewer (their retention)
            series.source, series.buckets = grid.source, rolled
        elif watermark is None:
            rows = _series_rows(device_pk=device.pk, sensors=sensors, quantity=quantity,
                                since=grid.since, until=grid.until)
            series.buckets = _m4_buckets(*_raw_units(rows, grid.buckets), grid.buckets)
        else:
            series.source = grid.source
            series.buckets = _rollup_buckets(device_pk=device.pk, sensors=sensors,
                                             quantity=quantity, grid=grid, watermark=watermark)
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


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_US = timedelta(microseconds=1)


@dataclass(frozen=True)
class RollupGrid:
    """Buckets on the rollups' grid: `count` buckets of `width_s` seconds (a
    whole number of hours or days, `resolution_s`) from `since`, a UTC hour
    or day."""

    resolution_s: int
    since: datetime
    width_s: int
    count: int

    @classmethod
    def over(cls, since: datetime, until: datetime, buckets: int, *, hourly: bool = False
             ) -> "RollupGrid | None":
        """The grid for [since, until) cut into `buckets`: the coarsest rollup
        no wider than a bucket as asked (daily from a day, hourly from an
        hour), the range widened to its edges, each bucket the fewest whole
        rollups that keep at most `buckets` of them. None when a bucket as
        asked is narrower than an hour, unless `hourly` (then buckets of an
        hour). Integer microseconds: exact edges."""
        span_us = (until - since) // _US
        if span_us < buckets * RollupResolution.HOUR * 1_000_000 and not hourly:
            return None
        daily = span_us >= buckets * RollupResolution.DAY * 1_000_000
        resolution_s = RollupResolution.DAY if daily else RollupResolution.HOUR
        step_us = resolution_s * 1_000_000
        since_us = (since - _EPOCH) // _US // step_us * step_us
        until_us = -(-((until - _EPOCH) // _US) // step_us) * step_us
        width_us = -(-(until_us - since_us) // (buckets * step_us)) * step_us
        count = -(-(until_us - since_us) // width_us)
        return cls(int(resolution_s), _EPOCH + since_us * _US, width_us // 1_000_000, count)

    @property
    def until(self) -> datetime:
        """The end of the last bucket (at or past the end of the range as asked)."""
        return self.since + timedelta(seconds=self.width_s * self.count)

    @property
    def buckets(self) -> db.TimeBuckets:
        return db.TimeBuckets(self.since, self.until, self.count)

    @property
    def source(self) -> str:
        return "rollup-daily" if self.resolution_s == RollupResolution.DAY else "rollup-hourly"

    def index(self, time: datetime) -> int:
        """The bucket of a time within [since, until), by the integer arithmetic
        that TimeBuckets.index_sql does in floats (the same bucket: edges are
        whole seconds and times whole microseconds)."""
        return (time - self.since) // _US // (self.width_s * 1_000_000)

    def ranges(self, indexes: Iterable[int]) -> list[tuple[datetime, datetime]]:
        """[start, end) of the given buckets, neighbours joined, in time order."""
        joined: list[list[int]] = []
        for i in sorted(set(indexes)):
            if joined and joined[-1][1] == i:
                joined[-1][1] = i + 1
            else:
                joined.append([i, i + 1])
        width = timedelta(seconds=self.width_s)
        return [(self.since + width * a, self.since + width * b) for a, b in joined]


def rollups_watermark() -> int | None:
    """The reading id up to which the rollups hold every reading (but the
    hours marked dirty), or None when they lag too far behind for a chart to
    lean on them: never refreshed, or more than ROLLUP_TAIL_MAX_READINGS
    readings behind (the gap in ids, from the sequence: an upper bound)."""
    progress = RollupProgress.objects.order_by("pk").values_list("reading_id", "updated_at").first()
    if progress is None or progress[1] is None:
        return None
    behind = db.last_id(Reading._meta.db_table) - progress[0]
    return progress[0] if behind <= ROLLUP_TAIL_MAX_READINGS else None


def _rollups_hold_more(*, device: Device, sensors: Sequence[str], quantity: str, since: datetime,
                       until: datetime, found: int, now: datetime) -> bool:
    """True when the hourly rollups of [since, until) hold more readings than
    the `found` ones left: the range reaches back past the device's raw
    retention, whose readings are gone but whose rollups stay."""
    if device.raw_retention_days == 0 or (
            device.raw_retention_days is None and device.device_type_id is None
            and Kept.RAW.site_days() is None):
        return False  # kept forever, known without a query
    device_pk = device.pk
    cutoff = device_policies(Kept.RAW, [device_pk])[device_pk].cutoff(now)
    if cutoff is None or since >= cutoff:
        return False
    hour = timedelta(seconds=RollupResolution.HOUR)
    held = Rollup.objects.filter(
        device_id=device_pk, sensor__in=list(sensors), quantity=quantity,
        resolution_s=RollupResolution.HOUR, start__gte=_EPOCH + (since - _EPOCH) // hour * hour,
        start__lt=until,
    ).aggregate(held=Sum("count"))["held"]
    return (held or 0) > found


def _in_ranges(field_name: str, ranges: Sequence[tuple[datetime, datetime]]) -> Q:
    return reduce(or_, (Q(**{f"{field_name}__gte": a, f"{field_name}__lt": b}) for a, b in ranges))


def _stale_buckets(*, device_pk: int, sensors: Sequence[str], quantity: str, grid: RollupGrid,
                   watermark: int) -> set[int]:
    """The buckets holding an hour the rollups lack: a reading past the
    watermark (a short scan by primary key), or an hour marked dirty."""
    since, until = grid.since, grid.until
    tail = Reading.objects.filter(
        pk__gt=watermark, device_id=device_pk, sensor__in=list(sensors), quantity=quantity,
        time__gte=since, time__lt=until,
    ).order_by().values_list("time", flat=True)
    dirty = RollupDirty.objects.filter(
        device_id=device_pk, quantity=quantity, sensor__in=list(sensors),
        hour__gte=since, hour__lt=until,
    ).order_by().values_list("hour", flat=True).distinct()
    return {grid.index(time) for time in [*tail, *dirty]}


_ROLLUP_UNITS = (
    'SELECT {bucket} AS bucket, "count" AS n, "sum" AS s, first_epoch_s AS fe, "first" AS fv, '
    'min_epoch_s AS mine, "min" AS minv, max_epoch_s AS maxe, "max" AS maxv, '
    'last_epoch_s AS le, "last" AS lv FROM ({rows}) AS rollup_rows'
)


def _rollup_buckets(*, device_pk: int, sensors: Sequence[str], quantity: str, grid: RollupGrid,
                    watermark: int) -> list[Bucket]:
    """The buckets of `grid` from the rollups at its resolution, but those of
    the hours the rollups lack, from the readings: one query."""
    stale = grid.ranges(_stale_buckets(device_pk=device_pk, sensors=sensors, quantity=quantity,
                                       grid=grid, watermark=watermark))
    buckets = grid.buckets
    rollups = Rollup.objects.filter(
        device_id=device_pk, sensor__in=list(sensors), quantity=quantity,
        resolution_s=grid.resolution_s, start__gte=grid.since, start__lt=grid.until,
    ).order_by()
    if stale:
        rollups = rollups.exclude(_in_ranges("start", stale))
    rows_sql, rows_params = rollups.values_list(
        "start", "count", "sum", "first_epoch_s", "first", "min_epoch_s", "min",
        "max_epoch_s", "max", "last_epoch_s", "last").query.sql_with_params()
    bucket, bucket_params = buckets.index_sql(db.epoch_s_sql('"start"'))
    sql = _ROLLUP_UNITS.format(bucket=bucket, rows=rows_sql)
    params = [*bucket_params, *rows_params]
    if stale:
        readings = Reading.objects.filter(device_id=device_pk, sensor__in=list(sensors),
                                          quantity=quantity).filter(_in_ranges("time", stale))
        raw_sql, raw_params = _raw_units(readings.order_by(), buckets)
        sql, params = f"{sql} UNION ALL {raw_sql}", [*params, *raw_params]
    return _m4_buckets(sql, params, buckets)


def _raw_units(rows: QuerySet[Reading], buckets: db.TimeBuckets) -> tuple[str, list]:
    """SQL of `rows` as unit rows of `buckets`, and its parameters."""
    return buckets.aggregate(_RAW_UNITS, rows.values_list("time", "value"), "value")


def _m4_buckets(units: str, params: list, buckets: db.TimeBuckets) -> list[Bucket]:
    """The M4 of unit rows (`units`, with a `bucket` column of `buckets`), bucket by bucket."""
    ms = db.ms
    with connection.cursor() as cursor:
        cursor.execute(m4_sql(units, ["bucket"]) + " ORDER BY bucket", params)
        return [
            Bucket(*buckets.edges_ms(index), count, first_time=ms(fe), first=fv, min_time=ms(mine),
                   min=minv, max_time=ms(maxe), max=maxv, last_time=ms(le), last=lv)
            for index, count, _sum, fe, fv, mine, minv, maxe, maxv, le, lv in cursor.fetchall()
        ]
