"""Units and labels of quantities: a device's own QuantitySetting, else its
type's, else a unit guessed from the quantity's name (README.md, "Units,
labels and scale"). The read API, the CSV and the chart pages show the same.
"""

from collections.abc import Iterable
from dataclasses import dataclass

from django.db.models import Q

from readings.models import Device, QuantitySetting

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
