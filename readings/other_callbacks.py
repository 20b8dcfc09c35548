"""Input shapes of the callbacks about a device's health (CALLBACKS.md section 7):
SERVICE STATUS, ERROR, EVENT and the deprecated GEOLOC.

They read their variables with the loose fields of readings.serializers (a
number, a boolean or a string holding one, in every field) and, as the DATA
callback does, refuse only what identifies the callback: any other field that
is wrong is left out and named in `field_errors`, and the rest is stored.
"""

import json

from rest_framework import serializers

from readings import sigfox
from readings.serializers import (
    LooseBooleanField,
    LooseCharField,
    LooseFloatField,
    LooseIntegerField,
    NotFinite,
    OptionalHexField,
    OptionalMixin,
    is_absent,
    parse_value,
    storable_json,
    LenientCallbackSerializer,
    _within,
)

# The sensor of the readings a STATUS callback makes, and their quantities
# (names carry units: the backend sends °C and V, CALLBACKS.md section 7).
STATUS_SENSOR = "status"
STATUS_QUANTITIES = {"temp": "module_temp_c", "batt": "battery_v"}
# An ERROR's info is one sentence; an EVENT's cause a few. Longer is cut here.
INFO_MAX_CHARS = 1000
# No radius on the earth is larger than half its circumference.
MAX_RADIUS_M = 20_037_509


class StatusValueField(OptionalMixin, serializers.Field):
    """{temp} or {batt}: (the reading's float, the value as sent)."""

    def to_internal_value(self, data):
        if isinstance(data, bool):
            raise serializers.ValidationError("Must be a number, not a boolean.")
        try:
            return parse_value(data)
        except NotFinite:
            raise serializers.ValidationError("Must be a finite number.") from None
        except ValueError:
            raise serializers.ValidationError("Must be a number or a string holding one.") from None

    def to_representation(self, value):
        return value


class StatusSerializer(LenientCallbackSerializer):
    """A SERVICE STATUS callback, in the shape of readings.services.ingest.UplinkCallback:
    `temp` and `batt` become the values module_temp_c and battery_v
    (STATUS_QUANTITIES); other fields than the variables below are not read
    (the body keeps them)."""

    temp = StatusValueField()
    batt = StatusValueField()
    seqNumber = LooseIntegerField(source="seq_number", min_value=0, max_value=sigfox.SEQ_MODULO - 1)
    deviceTypeId = OptionalHexField(source="device_type_id", max_length=sigfox.DEVICE_TYPE_ID_MAX_CHARS)
    duplicate = LooseBooleanField()
    station = OptionalHexField(max_length=8)
    rssi = LooseFloatField()
    snr = LooseFloatField()
    avgSnr = LooseFloatField(source="avg_snr")
    lat = LooseFloatField()
    lng = LooseFloatField()

    def validate_lat(self, value):
        return _within("latitude", value, 90)

    def validate_lng(self, value):
        return _within("longitude", value, 180)

    def completed(self, validated, *, clean, field_errors):
        values, values_raw = {}, {}
        for name, quantity in STATUS_QUANTITIES.items():
            sent = validated.pop(name, None)
            if sent is not None:
                # Kept under the reading's name, as DATA callbacks keep theirs:
                # redecode applies a scale set later (mV to V) to the value as sent.
                values[quantity], values_raw[quantity] = sent
        validated["values"], validated["values_raw"] = values, values_raw
        return super().completed(validated, clean=clean, field_errors=field_errors)


class SeverityField(LooseCharField):
    """ERROR, WARN, ... in upper case."""

    def __init__(self, **kwargs):
        super().__init__(max_length=16, **kwargs)

    def to_internal_value(self, data):
        return super().to_internal_value(data).upper()


class InfoField(LooseCharField):
    """Text of any length, cut to INFO_MAX_CHARS: the body keeps it whole."""

    def to_internal_value(self, data):
        return super().to_internal_value(data)[:INFO_MAX_CHARS]


class ErrorSerializer(LenientCallbackSerializer):
    """An ERROR callback: `severity` ERROR (the keep-alive was breached) or WARN
    (a base station that heard the device is down), and `info`."""

    severity = SeverityField()
    info = InfoField()


def _decoded(value):
    """A variable as it is kept: JSON text (deviceInfo, contractIds in a form or
    a query string) decoded when it holds an object or an array."""
    if isinstance(value, str) and value.strip()[:1] in ("{", "["):
        try:
            decoded = json.loads(value, parse_constant=lambda name: None)
        except (ValueError, RecursionError):
            return value
        if storable_json(decoded):
            return decoded
    return value


class EventSerializer(LenientCallbackSerializer):
    """An EVENT callback (set at group level): the device it is about is
    `device` when the template sends one, else `sourceId` when `sourceType`
    is DEVICE, else the `id` of `deviceInfo`; an EVENT that names no device
    (its source is a device type or a group) is kept without one. Every
    variable is kept as received, in `variables`."""

    IDENTITY = frozenset({"device", "time", "sourceId"})
    # Never kept: the secret, when it comes in the query string or the body.
    NOT_VARIABLES = frozenset({"token"})

    device = OptionalHexField(max_length=sigfox.DEVICE_ID_MAX_CHARS, source="device_id", device_id=True)
    severity = SeverityField()
    eventType = LooseCharField(source="event_type", max_length=64)
    sourceType = LooseCharField(source="source_type", max_length=32)
    sourceId = LooseCharField(source="source_id", max_length=64)
    info = InfoField()
    deviceCause = InfoField(source="device_cause")
    deviceShortCause = InfoField(source="device_short_cause")

    def completed(self, validated, *, clean, field_errors):
        variables = {}
        for name, value in clean.items():
            if name in self.NOT_VARIABLES or len(name) > 64:
                continue
            value = _decoded(value)
            if not storable_json(value):
                field_errors[name] = "Numbers must be finite and text must not hold NUL."
                continue
            variables[name] = value
        validated["device_id"] = self.device_named(validated, variables, field_errors)
        causes = [validated.pop(name, None) for name in ("info", "device_cause", "device_short_cause")]
        validated["info"] = next((cause for cause in causes if cause), "")
        validated["source"] = ":".join(
            (validated.pop("source_type", None) or "", validated.pop("source_id", None) or ""))
        validated["variables"] = variables
        return super().completed(validated, clean=clean, field_errors=field_errors)

    @staticmethod
    def device_named(validated: dict, variables: dict, field_errors: dict) -> str | None:
        """The device the EVENT is about, or None (see the class)."""
        if validated.get("device_id") is not None:
            return validated["device_id"]
        source_id = validated.get("source_id")
        if source_id and (validated.get("source_type") or "").strip().upper() == "DEVICE":
            try:
                return sigfox.normalize_device_id(source_id)
            except ValueError:
                raise serializers.ValidationError(
                    {"sourceId": ["The id of a DEVICE source must be 1 to 8 hexadecimal digits."]}
                ) from None
        info = variables.get("deviceInfo")
        if isinstance(info, dict) and isinstance(info.get("id"), str | int) and not is_absent(info["id"]):
            try:
                return sigfox.normalize_device_id(str(info["id"]))
            except ValueError:
                field_errors["deviceInfo"] = "Its id is no device id (1 to 8 hexadecimal digits)."
        return None


class GeolocSerializer(LenientCallbackSerializer):
    """A GEOLOC callback: where the network placed the device for one message.
    Without a latitude and a longitude it says nothing: they are required."""

    IDENTITY = frozenset({"device", "time", "lat", "lng"})

    lat = LooseFloatField(required=True)
    lng = LooseFloatField(required=True)
    radius = LooseFloatField(source="radius_m")
    geolocSource = LooseCharField(source="source", max_length=32)
    seqNumber = LooseIntegerField(source="seq_number", min_value=0, max_value=sigfox.SEQ_MODULO - 1)

    def validate_lat(self, value):
        if value is None:
            raise serializers.ValidationError("A GEOLOC callback needs a latitude.")
        return _within("latitude", value, 90)

    def validate_lng(self, value):
        if value is None:
            raise serializers.ValidationError("A GEOLOC callback needs a longitude.")
        return _within("longitude", value, 180)

    def validate_radius(self, value):
        if value is not None and not 0 <= value <= MAX_RADIUS_M:
            raise serializers.ValidationError(f"Must be from 0 to {MAX_RADIUS_M} metres.")
        return None if value is None else round(value)
