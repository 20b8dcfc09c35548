"""Reads: devices, series of readings and link quality, for the chart pages and the API.

A series is one quantity of one device's sensor ("1A2B3C", "1", "temp"). The
chart never needs more points than it has pixels, so a series over a long
range is downsampled in the database, one bucket of time per few pixels, each
bucket keeping its first, lowest, highest and last reading (M4): peaks survive
and the answer stays a few kilobytes whether the range holds a hundred
readings or a million.
"""

import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from django.db import connection
from django.utils.timezone import get_default_timezone
from django.db.models import Exists, Max, OuterRef, Q, QuerySet

from readings import sigfox
from readings.models import Device, Message, QuantitySetting, Reading, SequenceGap
from readings.models import Series as SeriesEntry

# More lines than this make an unreadable chart; the pickers narrow it.
GRAPH_MAX_SERIES = 24
# Bounds of the number of points a series answer may hold.
SERIES_MIN_POINTS = 10
SERIES_MAX_POINTS = 2000
# About the width of the chart in pixels.
SERIES_DEFAULT_POINTS = 1000

# Quantity names whose unit is known when no QuantitySetting gives one; other
# names are shown as they are. README.md ("Units, labels and scale") lists them.
UNITS = {
    "temp": "°C",
    "temperature": "°C",
    "hum": "%",
    "humidity": "%",
    "vbat": "V",
    "battery": "V",
    "pressure": "hPa",
    "press": "hPa",
    "co2": "ppm",
    "lux": "lx",
    "light": "lx",
    "rssi": "dBm",
    "snr": "dB",
}
# Units spelled as a suffix of the name, as the house style asks (`vbat_mv`).
UNIT_SUFFIXES = {
    "mv": "mV",
    "v": "V",
    "ma": "mA",
    "c": "°C",
    "pct": "%",
    "percent": "%",
    "hpa": "hPa",
    "pa": "Pa",
    "ppm": "ppm",
    "s": "s",
    "ms": "ms",
    "min": "min",
    "m": "m",
    "mm": "mm",
    "lux": "lx",
    "dbm": "dBm",
    "db": "dB",
}


def quantity_unit(quantity: str) -> str:
    """The unit of a quantity guessed from its name ("temp" °C, "vbat_mv" mV), or "".

    Only for a quantity that no QuantitySetting describes: see quantity_display.
    """
    name = quantity.lower()
    if name in UNITS:
        return UNITS[name]
    stem, sep, suffix = name.rpartition("_")
    return UNIT_SUFFIXES.get(suffix, "") if sep and stem else ""


@dataclass(frozen=True)
class QuantityDisplay:
    """How a quantity of a device is shown: its unit ("" for none) and its label
    ("" when the user set none: the quantity's name is shown)."""

    unit: str
    label: str = ""


class QuantityDisplays:
    """Unit and label of each (device, quantity), from the settings of a set of
    devices loaded at once (a query or two), so that a list costs no query per row.

    A device's own QuantitySetting wins over its type's; with neither, the unit
    is guessed from the quantity's name. A setting with an empty unit means "no
    unit": the name is not guessed from then on.
    """

    def __init__(self, devices: Iterable[tuple[int, str, int | None]]):
        # devices: (pk, sigfox_id, device_type_id)
        self._type_of: dict[int, int | None] = {}
        self._pk_of: dict[str, int] = {}
        for pk, sigfox_id, type_pk in devices:
            self._type_of[pk] = type_pk
            self._pk_of[sigfox_id] = pk
        self._own: dict[tuple[int, str], QuantityDisplay] = {}
        self._of_type: dict[tuple[int, str], QuantityDisplay] = {}
        type_pks = {t for t in self._type_of.values() if t is not None}
        if not self._type_of:
            return
        rows = QuantitySetting.objects.filter(
            Q(device_id__in=list(self._type_of)) | Q(device_type_id__in=list(type_pks))
        ).values_list("device_id", "device_type_id", "quantity", "unit", "label")
        for device_pk, type_pk, quantity, unit, label in rows:
            shown = QuantityDisplay(unit, label)
            if device_pk is not None:
                self._own[(device_pk, quantity)] = shown
            else:
                self._of_type[(type_pk, quantity)] = shown

    def of(self, device: int | str, quantity: str) -> QuantityDisplay:
        """device: a Device's primary key, or its Sigfox id."""
        pk = self._pk_of.get(device) if isinstance(device, str) else device
        if pk is not None:
            if (shown := self._own.get((pk, quantity))) is not None:
                return shown
            type_pk = self._type_of.get(pk)
            if type_pk is not None and (shown := self._of_type.get((type_pk, quantity))):
                return shown
        return QuantityDisplay(quantity_unit(quantity))


def quantity_displays(*, devices: Iterable[Device] | None = None,
                      device_pks: Iterable[int] | None = None) -> QuantityDisplays:
    """The QuantityDisplays of these devices (Device objects or primary keys);
    of every device when neither is given."""
    if devices is not None:
        return QuantityDisplays((d.pk, d.sigfox_id, d.device_type_id) for d in devices)
    rows = Device.objects.all()
    if device_pks is not None:
        rows = rows.filter(pk__in=list(set(device_pks)))
    return QuantityDisplays(rows.values_list("pk", "sigfox_id", "device_type_id"))


def quantity_display(device: Device, quantity: str) -> QuantityDisplay:
    """Unit and label of one quantity of one device (one query); lists use quantity_displays."""
    return quantity_displays(devices=[device]).of(device.pk, quantity)


def series_label(device_id: str, sensor: str | None, quantity: str,
                 shown: QuantityDisplay | None = None) -> str:
    """"1A2B3C · sensor 1 · Battery (V)": the setting's label, else the quantity's name."""
    if shown is None:
        shown = QuantityDisplay(quantity_unit(quantity))
    name = shown.label or quantity
    what = f"{name} ({shown.unit})" if shown.unit else name
    return f"{device_id} · sensor {sensor} · {what}" if sensor else f"{device_id} · {what}"


@dataclass(frozen=True)
class SeriesKey:
    device_id: str  # the Sigfox id
    sensor: str
    quantity: str

    def as_dict(self, displays: QuantityDisplays) -> dict:
        shown = displays.of(self.device_id, self.quantity)
        return {
            "device": self.device_id,
            "sensor": self.sensor,
            "quantity": self.quantity,
            "unit": shown.unit,
            "label": series_label(self.device_id, self.sensor, self.quantity, shown),
        }


# -- devices -----------------------------------------------------------------


def device_list() -> QuerySet[Device]:
    return Device.objects.select_related("device_type").order_by("sigfox_id")


def device_get(*, sigfox_id: str) -> Device | None:
    try:
        sigfox_id = sigfox.normalize_device_id(sigfox_id)
    except ValueError:
        return None
    return device_list().filter(sigfox_id=sigfox_id).first()


def _normalized(sigfox_id: str) -> str:
    """The id's one spelling, or the text itself when it is no id (it then matches nothing)."""
    try:
        return sigfox.normalize_device_id(sigfox_id)
    except ValueError:
        return sigfox_id


def device_pks(*, sigfox_ids: Iterable[str]) -> list[int]:
    """Primary keys of the devices with these Sigfox ids (unknown ids are left out)."""
    wanted = {_normalized(s) for s in sigfox_ids}
    return list(Device.objects.filter(sigfox_id__in=wanted).values_list("pk", flat=True))


def device_latest_readings(*, device: Device, keys: Sequence["SeriesKey"] | None = None
                           ) -> list[Reading]:
    """The newest reading of each series of the device, one index probe per series."""
    latest = []
    for key in series_keys(device_pks=[device.pk]) if keys is None else keys:
        reading = (
            Reading.objects.filter(device=device, sensor=key.sensor, quantity=key.quantity)
            .order_by("-time")
            .first()
        )
        if reading is not None:
            latest.append(reading)
    return latest


def devices_last_seen(*, sigfox_ids: Iterable[str] | None = None) -> datetime | None:
    devices = Device.objects.all()
    if sigfox_ids is not None:
        devices = devices.filter(sigfox_id__in=list(sigfox_ids))
    return devices.aggregate(last=Max("last_seen"))["last"]


# -- series keys ---------------------------------------------------------------

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


# -- filtered lists (API pages, CSV) ------------------------------------------------


def _split(values: Iterable[str] | None) -> list[str] | None:
    if values is None:
        return None
    return [v for v in values if v]


def _filter_by_device_sensor_time(queryset, *, devices, sensors, since, until):
    """What messages and readings are filtered by alike; a list matches any of its values."""
    if (devices := _split(devices)) is not None:
        # Filtering on the key, not through a join, keeps the indexes usable.
        queryset = queryset.filter(device_id__in=device_pks(sigfox_ids=devices))
    if (sensors := _split(sensors)) is not None:
        if queryset.model is Message:
            # Sensor belongs to readings: a frame may hold readings of several.
            queryset = queryset.filter(
                Exists(Reading.objects.filter(message=OuterRef("pk"), sensor__in=sensors))
            )
        else:
            queryset = queryset.filter(sensor__in=sensors)
    if since is not None:
        queryset = queryset.filter(time__gte=since)
    if until is not None:
        queryset = queryset.filter(time__lt=until)
    return queryset


def readings_filter(
    *,
    devices: Iterable[str] | None = None,
    sensors: Iterable[str] | None = None,
    quantities: Iterable[str] | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> QuerySet[Reading]:
    """Readings matching every given filter; a list filter matches any of its values."""
    readings = _filter_by_device_sensor_time(
        Reading.objects.all(), devices=devices, sensors=sensors, since=since, until=until
    )
    if (quantities := _split(quantities)) is not None:
        readings = readings.filter(quantity__in=quantities)
    return readings


def messages_filter(
    *,
    devices: Iterable[str] | None = None,
    sensors: Iterable[str] | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> QuerySet[Message]:
    return _filter_by_device_sensor_time(
        Message.objects.all(), devices=devices, sensors=sensors, since=since, until=until
    )


def iso_utc(time: datetime) -> str:
    """2026-01-31T12:00:00Z (with microseconds only when there are some)."""
    return time.astimezone(UTC).isoformat().replace("+00:00", "Z")


# Beyond this a float no longer holds every integer: 2**53 + 1 reads as 2**53.
EXACT_INTEGER_LIMIT = 2**53


def _exact_integer(message_pk: int, sensor: str, quantity: str, value: float) -> int | None:
    """The integer the message kept for this reading (as the callback sent it, or as
    the payload decoded), when it is the reading's value unscaled; else None."""
    message = Message.objects.filter(pk=message_pk).values("values_raw", "decoded").first()
    if message is None:
        return None
    sent = message["values_raw"] or {}
    candidates = [(sent.get(sensor) or {}).get(quantity), (message["decoded"] or {}).get(quantity)]
    for raw in candidates:
        # A scaled reading is no longer the raw integer: its float stands.
        if type(raw) is int and float(raw) == value:
            return raw
    return None


# A cell starting with one of these is a formula to a spreadsheet (OWASP, "CSV Injection").
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_text(text: str) -> str:
    """A text cell as a spreadsheet shows it, never evaluates it: with a leading
    single quote when it starts like a formula ("=HYPERLINK(...)", "-2+3")."""
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def readings_csv_rows(**filters) -> Iterator[tuple]:
    """(time, device, sensor, quantity, value, unit) oldest first, streamed from the database.

    A value too large for a float to hold exactly is written as the integer its
    message kept, when it kept one. Names and units (field names and units are
    anyone's text) go through spreadsheet_text; values stay numbers (-3.5).
    """
    devices = list(Device.objects.values_list("pk", "sigfox_id", "device_type_id"))
    names = {pk: sigfox_id for pk, sigfox_id, _ in devices}
    displays = QuantityDisplays(devices)
    rows = (
        readings_filter(**filters)
        .order_by("time", "id")
        .values_list("time", "device_id", "sensor", "quantity", "value", "message_id")
    )
    for time, device_pk, sensor, quantity, value, message_pk in rows.iterator(chunk_size=2000):
        cell = repr(value)
        if abs(value) >= EXACT_INTEGER_LIMIT:
            exact = _exact_integer(message_pk, sensor, quantity, value)
            if exact is not None:
                cell = str(exact)
        unit = displays.of(device_pk, quantity).unit
        yield (iso_utc(time), spreadsheet_text(names.get(device_pk, "")), spreadsheet_text(sensor),
               spreadsheet_text(quantity), cell, spreadsheet_text(unit))


# -- downsampled series ---------------------------------------------------------------


@dataclass
class Bucket:
    start_ms: int
    end_ms: int
    count: int
    first: tuple[int, float]  # (epoch ms, value)
    min: tuple[int, float]
    max: tuple[int, float]
    last: tuple[int, float]

    def as_dict(self) -> dict:
        return {
            "start": self.start_ms,
            "end": self.end_ms,
            "count": self.count,
            "first_time": self.first[0],
            "first": self.first[1],
            "min_time": self.min[0],
            "min": self.min[1],
            "max_time": self.max[0],
            "max": self.max[1],
            "last_time": self.last[0],
            "last": self.last[1],
        }


@dataclass
class Series:
    device_id: str
    sensor: str | None
    quantity: str
    since: datetime | None
    until: datetime | None
    max_points: int
    count: int = 0
    method: str = "raw"
    points: list[tuple[int, float]] = field(default_factory=list)
    buckets: list[Bucket] = field(default_factory=list)

    def as_dict(self, displays: QuantityDisplays) -> dict:
        return {
            **SeriesKey(self.device_id, self.sensor, self.quantity).as_dict(displays),
            "since": iso_utc(self.since) if self.since else None,
            "until": iso_utc(self.until) if self.until else None,
            "max_points": self.max_points,
            "count": self.count,
            "method": self.method,
            "points": [list(p) for p in self.points],
            "buckets": [b.as_dict() for b in self.buckets],
        }


def _ms(epoch_s: float) -> int:
    return int(round(epoch_s * 1000))


def _epoch_s_sql(column: str) -> str:
    """SQL for the float Unix epoch seconds of a datetime column."""
    if connection.vendor == "postgresql":
        # date_part is float8; EXTRACT is numeric since PostgreSQL 14, and slower.
        return f"date_part('epoch', {column})"
    # SQLite keeps datetimes as text in UTC, "2026-01-31 12:00:00[.ffffff]": whole
    # seconds from strftime, exact (julianday's float would blur bucket edges),
    # plus the fraction after the 19th character.
    return f"(CAST(strftime('%%s', {column}) AS REAL) + CAST(substr({column}, 20) AS REAL))"


def _bucket_sql(epoch: str) -> str:
    """SQL for the bucket index of an epoch: floor((epoch - start) * buckets / span),
    clamped to the last bucket. Parameters: start, buckets, span, last bucket."""
    if connection.vendor == "postgresql":
        return f"LEAST(FLOOR(({epoch} - %s) * %s / %s)::integer, %s)"
    # epoch >= start, so truncation is the floor.
    return f"MIN(CAST(({epoch} - %s) * %s / %s AS INTEGER), %s)"


# PostgreSQL: one pass, hash aggregate, no sort. Arrays compare element by
# element, so MIN(ARRAY[value, epoch]) is the lowest value with its earliest time.
_M4_POSTGRESQL = """
SELECT bucket, COUNT(*),
       MIN(ARRAY[e, value]), MAX(ARRAY[e, value]),
       MIN(ARRAY[value, e]), MAX(ARRAY[value, -e])
FROM (SELECT {bucket} AS bucket, e, value
      FROM (SELECT {epoch} AS e, value FROM ({rows}) AS series_rows) AS timed) AS bucketed
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
    FROM (SELECT {bucket} AS bucket, e, value
          FROM (SELECT {epoch} AS e, value FROM ({rows}) AS series_rows) AS timed) AS bucketed
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
    series = Series(device.sigfox_id, sensor, quantity, since, until, max_points)
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
        series.points = [(_ms(t.timestamp()), v) for t, v in head]
        series.count = len(series.points)
        return series
    series.method = "m4"
    series.buckets = _m4_buckets(rows, since=since, until=until, buckets=max(1, max_points // 4))
    series.count = sum(b.count for b in series.buckets)
    series.points = m4_points(series.buckets)
    return series


def m4_points(buckets: Iterable[Bucket]) -> list[tuple[int, float]]:
    """The line through each bucket's first, min, max and last reading, in time order."""
    points = []
    for bucket in buckets:
        points.extend(sorted({bucket.first, bucket.min, bucket.max, bucket.last}))
    return points


def _m4_buckets(rows: QuerySet[Reading], *, since: datetime, until: datetime,
                buckets: int) -> list[Bucket]:
    start_s = since.timestamp()
    span_s = (until - since).total_seconds()
    rows_sql, rows_params = rows.values_list("time", "value").query.sql_with_params()
    epoch = _epoch_s_sql('"time"')
    bucket_params = [start_s, buckets, span_s, buckets - 1]
    template = _M4_POSTGRESQL if connection.vendor == "postgresql" else _M4_WINDOWS
    sql = template.format(bucket=_bucket_sql("e"), epoch=epoch, rows=rows_sql)
    params = [*bucket_params, *rows_params]

    def edges(index: int) -> tuple[int, int]:
        return (_ms(start_s + span_s * index / buckets),
                _ms(start_s + span_s * (index + 1) / buckets))

    result = []
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        if connection.vendor == "postgresql":
            for index, count, first, last, low, high in cursor.fetchall():
                result.append(Bucket(
                    *edges(index), count,
                    first=(_ms(first[0]), first[1]), last=(_ms(last[0]), last[1]),
                    min=(_ms(low[1]), low[0]), max=(_ms(-high[1]), high[0]),
                ))
            return result
        current = None
        for index, count, e, value, rf, rl, rmin, rmax in cursor.fetchall():
            if current is None or current.start_ms != edges(index)[0]:
                point = (_ms(e), value)
                current = Bucket(*edges(index), count, point, point, point, point)
                result.append(current)
            point = (_ms(e), value)
            if rf == 1:
                current.first = point
            if rl == 1:
                current.last = point
            if rmin == 1:
                current.min = point
            if rmax == 1:
                current.max = point
    return result


# -- link quality -----------------------------------------------------------------

_LINK_SQL = """
SELECT bucket, COUNT(*), MIN(rssi), AVG(rssi), MAX(rssi), MIN(snr), AVG(snr), MAX(snr)
FROM (SELECT {bucket} AS bucket, rssi, snr
      FROM (SELECT {epoch} AS e, rssi, snr FROM ({rows}) AS series_rows) AS timed) AS bucketed
GROUP BY bucket ORDER BY bucket
"""

_GAPS_SQL = """
SELECT bucket, SUM(missing), SUM(CASE WHEN reset THEN 1 ELSE 0 END)
FROM (SELECT {bucket} AS bucket, missing, reset
      FROM (SELECT {epoch} AS e, missing, reset FROM ({rows}) AS series_rows) AS timed) AS bucketed
GROUP BY bucket ORDER BY bucket
"""


def _round(value: float | None, digits: int = 2) -> float | None:
    return None if value is None else round(value, digits)


def link_quality(
    *, device: Device, since: datetime | None = None, until: datetime | None = None,
    buckets: int = SERIES_DEFAULT_POINTS, now: datetime,
) -> dict:
    """RSSI and SNR (lowest, mean, highest), lost messages and counter resets per bucket of time."""
    messages = Message.objects.filter(device=device).order_by()
    if since is None:
        since = messages.order_by("time").values_list("time", flat=True).first()
    if until is None:
        last = messages.order_by("-time").values_list("time", flat=True).first()
        until = max(now, last + timedelta(microseconds=1)) if last else now
    answer = {
        "device": device.sigfox_id,
        "since": iso_utc(since) if since else None,
        "until": iso_utc(until),
        "buckets": [],
    }
    if since is None or until <= since:
        return answer
    start_s = since.timestamp()
    span_s = (until - since).total_seconds()
    epoch = _epoch_s_sql('"time"')
    bucket_params = [start_s, buckets, span_s, buckets - 1]
    in_range = {"time__gte": since, "time__lt": until}
    message_rows = messages.filter(**in_range).values_list("time", "rssi", "snr")
    gap_rows = SequenceGap.objects.filter(device=device, **in_range).order_by()
    gap_rows = gap_rows.values_list("time", "missing", "reset")
    by_bucket: dict[int, dict] = {}

    def bucket(index: int) -> dict:
        if index not in by_bucket:
            by_bucket[index] = {
                "start": _ms(start_s + span_s * index / buckets),
                "end": _ms(start_s + span_s * (index + 1) / buckets),
                "messages": 0, "rssi_min": None, "rssi_avg": None, "rssi_max": None,
                "snr_min": None, "snr_avg": None, "snr_max": None, "lost": 0, "resets": 0,
            }
        return by_bucket[index]

    with connection.cursor() as cursor:
        rows_sql, rows_params = message_rows.query.sql_with_params()
        sql = _LINK_SQL.format(bucket=_bucket_sql("e"), epoch=epoch, rows=rows_sql)
        cursor.execute(sql, [*bucket_params, *rows_params])
        for index, count, rmin, ravg, rmax, smin, savg, smax in cursor.fetchall():
            bucket(index).update(
                messages=count, rssi_min=_round(rmin), rssi_avg=_round(ravg),
                rssi_max=_round(rmax), snr_min=_round(smin), snr_avg=_round(savg),
                snr_max=_round(smax),
            )
        rows_sql, rows_params = gap_rows.query.sql_with_params()
        sql = _GAPS_SQL.format(bucket=_bucket_sql("e"), epoch=epoch, rows=rows_sql)
        cursor.execute(sql, [*bucket_params, *rows_params])
        for index, missing, resets in cursor.fetchall():
            bucket(index).update(lost=int(missing), resets=int(resets))
    answer["buckets"] = [by_bucket[i] for i in sorted(by_bucket)]
    return answer


# -- the chart pages ---------------------------------------------------------------

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


def device_search(text: str) -> QuerySet[Device]:
    """Devices whose id starts with `text` (in any spelling) or whose name contains it."""
    devices = device_list()
    text = text.strip()[:100]
    if not text:
        return devices
    condition = Q(name__icontains=text)
    if (prefix := sigfox.device_id_prefix(text)) is not None:
        condition |= Q(sigfox_id__startswith=prefix)
    return devices.filter(condition)


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
        wanted = list(dict.fromkeys(_normalized(s) for s in devices[:PICKER_DEVICES]))
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
