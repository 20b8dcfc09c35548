"""Filtered lists of messages and readings (the API's pages) and the CSV export."""

from collections.abc import Iterable, Iterator
from datetime import datetime

from django.db.models import Exists, OuterRef, QuerySet

from readings.models import Device, Message, Reading
from readings.selectors.devices import device_pks
from readings.selectors.units import QuantityDisplays
from readings.times import iso_utc


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


# Beyond this a float no longer holds every integer: 2**53 + 1 reads as 2**53.
EXACT_INTEGER_LIMIT = 2**53


def _exact_integer(message_pk: int, sensor: str, quantity: str, value: float) -> int | None:
    """The integer the message kept for this reading (as the callback sent it, or as
    the payload decoded), when it is the reading's value unscaled; else None."""
    message = Message.objects.filter(pk=message_pk).values("values_raw", "payload_fields").first()
    if message is None:
        return None
    sent = message["values_raw"] or {}
    candidates = [(sent.get(sensor) or {}).get(quantity), (message["payload_fields"] or {}).get(quantity)]
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

