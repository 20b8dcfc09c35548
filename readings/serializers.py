"""Input shapes of the Sigfox callbacks.

The backend substitutes variables into a template as plain text, so every
field may arrive as a JSON number, a boolean or a string holding one; the
fields here accept all of those and turn them into Python values.
"""

import copy
import json
import math
import re
from datetime import UTC, datetime

from rest_framework import serializers

HEX_ID = re.compile(r"[0-9A-Fa-f]+")
NUMBER = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")
# Strings the backend renders for an absent value ({rssi} may be null, {avgSnr} N/A).
ABSENT = frozenset({"", "null", "n/a", "na", "none"})

# Sigfox started in 2010; anything earlier is not a Sigfox reception time.
MIN_EPOCH_S = int(datetime(2010, 1, 1, tzinfo=UTC).timestamp())
# Reception times are stamped by the backend, so the future is a client's error;
# a day of slack covers clock skew between the backend and this server.
FUTURE_SLACK_S = 86_400


def storable_json(value) -> bool:
    """True when every database's JSON column can hold the value: finite
    numbers, no NUL character (PostgreSQL refuses \\u0000)."""
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, str):
        return "\x00" not in value
    if isinstance(value, list):
        return all(storable_json(item) for item in value)
    if isinstance(value, dict):
        return all(storable_json(k) and storable_json(v) for k, v in value.items())
    return True


def is_absent(value) -> bool:
    return value is None or (isinstance(value, str) and value.strip().lower() in ABSENT)


def parse_number(value) -> float:
    """A finite float from a JSON number, boolean or numeric string; ValueError otherwise."""
    if isinstance(value, bool):
        return 1.0 if value else 0.0
    if isinstance(value, int | float):
        try:
            number = float(value)
        except OverflowError:
            raise ValueError("is too large") from None
    elif isinstance(value, str) and len(value) <= 64 and NUMBER.fullmatch(value.strip()):
        number = float(value.strip())
    elif isinstance(value, str) and value.strip().lower() in {"true", "false"}:
        return 1.0 if value.strip().lower() == "true" else 0.0
    else:
        raise ValueError("must be a number or a string holding one")
    if not math.isfinite(number):
        raise ValueError("must be a finite number")
    return number


class SigfoxIdField(serializers.CharField):
    """A hex id of at most max_length characters, returned upper-case."""

    def __init__(self, **kwargs):
        kwargs.setdefault("trim_whitespace", True)
        super().__init__(**kwargs)

    def to_internal_value(self, data):
        if isinstance(data, bool) or not isinstance(data, str | int):
            self.fail("invalid")
        value = super().to_internal_value(data)
        if not HEX_ID.fullmatch(value):
            raise serializers.ValidationError("Must be hexadecimal (0-9, A-F).")
        return value.upper()


class EpochSecondsField(serializers.Field):
    """Unix epoch seconds (a whole number, or a string of one) as an aware UTC datetime."""

    default_error_messages = {
        "invalid": "Must be a whole number of Unix epoch seconds.",
        "range": "Must be between {min} (2010-01-01) and one day from now.",
    }

    def to_internal_value(self, data):
        if isinstance(data, bool):
            self.fail("invalid")
        if isinstance(data, str):
            data = data.strip()
            if not data.isascii() or not data.isdigit() or len(data) > 12:
                self.fail("invalid")
            data = int(data)
        if not isinstance(data, int):
            self.fail("invalid")
        now_s = self.context["now"].timestamp() if "now" in self.context else datetime.now(UTC).timestamp()
        if not MIN_EPOCH_S <= data <= now_s + FUTURE_SLACK_S:
            self.fail("range", min=MIN_EPOCH_S)
        return datetime.fromtimestamp(data, tz=UTC)

    def to_representation(self, value):
        return int(value.timestamp())


class OptionalMixin:
    """Absent-looking values ("null", "N/A", "") count as not sent."""

    def __init__(self, **kwargs):
        kwargs.setdefault("required", False)
        kwargs.setdefault("allow_null", True)
        super().__init__(**kwargs)

    def validate_empty_values(self, data):
        if data is not serializers.empty and is_absent(data):
            return True, None
        return super().validate_empty_values(data)


class LooseFloatField(OptionalMixin, serializers.Field):
    """A finite number from a JSON number or a string."""

    def to_internal_value(self, data):
        if isinstance(data, bool):
            raise serializers.ValidationError("Must be a number, not a boolean.")
        try:
            return parse_number(data)
        except ValueError as exc:
            raise serializers.ValidationError(f"Value {exc}.") from None

    def to_representation(self, value):
        return value


class LooseBooleanField(OptionalMixin, serializers.Field):
    """true/false as JSON booleans, strings or 1/0."""

    TRUE = frozenset({"true", "1", "yes"})
    FALSE = frozenset({"false", "0", "no"})

    def to_internal_value(self, data):
        if isinstance(data, bool):
            return data
        text = str(data).strip().lower() if isinstance(data, str | int) else None
        if text in self.TRUE:
            return True
        if text in self.FALSE:
            return False
        raise serializers.ValidationError("Must be true or false.")

    def to_representation(self, value):
        return value


class StrictIntegerField(serializers.IntegerField):
    """An integer that is not a boolean (JSON true is no sequence number)."""

    def to_internal_value(self, data):
        if isinstance(data, bool):
            self.fail("invalid")
        return super().to_internal_value(data)


class LooseIntegerField(OptionalMixin, StrictIntegerField):
    pass


class LooseCharField(OptionalMixin, serializers.CharField):
    def to_internal_value(self, data):
        if not isinstance(data, str | int | float) or isinstance(data, bool):
            self.fail("invalid")
        return super().to_internal_value(data)


class OptionalHexField(OptionalMixin, SigfoxIdField):
    pass


class PayloadHexField(OptionalMixin, serializers.Field):
    """The raw {data}: even-length hex of at most 12 bytes, returned lower-case."""

    def to_internal_value(self, data):
        if not isinstance(data, str):
            raise serializers.ValidationError("Must be a string of hex digits.")
        data = data.strip()
        if len(data) > 24:
            raise serializers.ValidationError("Must be at most 12 bytes (24 hex digits).")
        if len(data) % 2 or (data and not HEX_ID.fullmatch(data)):
            raise serializers.ValidationError("Must be an even number of hex digits.")
        return data.lower()

    def to_representation(self, value):
        return value


class EmbeddedJSONField(OptionalMixin, serializers.Field):
    """A JSON value that arrives as itself in a JSON body or as text in a form."""

    def __init__(self, *, kind: type, max_items: int = 100, **kwargs):
        self.kind, self.max_items = kind, max_items
        super().__init__(**kwargs)

    def to_internal_value(self, data):
        if isinstance(data, str):
            try:
                data = json.loads(data, parse_constant=lambda name: None)
            except (ValueError, RecursionError):
                raise serializers.ValidationError("Must be valid JSON.") from None
        if data is None:
            return None
        if not isinstance(data, self.kind):
            raise serializers.ValidationError(f"Must be a JSON {'array' if self.kind is list else 'object'}.")
        if len(data) > self.max_items:
            raise serializers.ValidationError(f"At most {self.max_items} items.")
        if not storable_json(data):
            raise serializers.ValidationError("Numbers must be finite and text must not hold NUL.")
        return data

    def to_representation(self, value):
        return value


class CallbackSerializer(serializers.Serializer):
    """What every callback carries: the device, and the time in epoch seconds."""

    device = SigfoxIdField(max_length=8, source="device_id")
    time = EpochSecondsField()

    # DRF deep-copies every declared field for each serializer it creates:
    # with two dozen fields that was the largest single cost of a callback.
    # Deep-copy them once per class instead, and give each serializer shallow
    # copies of those never-bound templates to bind.
    _field_templates: dict[type, dict] = {}

    def get_fields(self):
        templates = self._field_templates.get(type(self))
        if templates is None:
            templates = self._field_templates[type(self)] = super().get_fields()
        return {name: copy.copy(field) for name, field in templates.items()}

    def to_internal_value(self, data):
        if not isinstance(data, dict):
            raise serializers.ValidationError(
                {"non_field_errors": ["Expected a JSON object of callback variables."]}
            )
        # No text column of PostgreSQL can hold a NUL; no Sigfox variable has one.
        if any(isinstance(v, str) and "\x00" in v for v in data.values()) or any(
            "\x00" in k for k in data
        ):
            raise serializers.ValidationError(
                {"non_field_errors": ["Values must not contain NUL characters."]}
            )
        return super().to_internal_value(data)


class UplinkSerializer(CallbackSerializer):
    """A DATA UPLINK, BIDIR or ADVANCED callback.

    The variables of the Sigfox protocol are typed fields; every other field
    is a value (customData, or the tutorial's "temp") and must be a number,
    a numeric string, a boolean, or absent.
    """

    seqNumber = LooseIntegerField(source="seq_number", min_value=0, max_value=4095)
    data = PayloadHexField()
    deviceTypeId = OptionalHexField(source="device_type_id", max_length=24)
    ack = LooseBooleanField()
    longPolling = LooseBooleanField(source="long_polling")
    duplicate = LooseBooleanField()
    station = OptionalHexField(max_length=8)
    rssi = LooseFloatField()
    snr = LooseFloatField()
    avgSnr = LooseFloatField(source="avg_snr")
    lat = LooseFloatField()
    lng = LooseFloatField()
    lqi = LooseCharField(max_length=16)
    linkQuality = LooseIntegerField(source="link_quality", min_value=0, max_value=4)
    operatorName = LooseCharField(source="operator_name", max_length=64)
    countryCode = LooseCharField(source="country_code", max_length=8)
    fixedLat = LooseFloatField(source="fixed_lat")
    fixedLng = LooseFloatField(source="fixed_lng")
    duplicates = EmbeddedJSONField(kind=list)
    computedLocation = EmbeddedJSONField(source="computed_location", kind=dict, max_items=20)

    # Never readings: authentication, and fields the backend may add that
    # describe the callback rather than measure anything.
    NOT_VALUES = frozenset({"token", "callbackType", "type"})

    def to_internal_value(self, data):
        validated = super().to_internal_value(data)
        values, errors = {}, {}
        for name, raw in data.items():
            if name in self.fields or name in self.NOT_VALUES or is_absent(raw):
                continue
            if len(name) > 64:
                errors[name[:64]] = ["Field names are limited to 64 characters."]
                continue
            if not name.strip():
                errors["non_field_errors"] = ["Every value needs a field name."]
                continue
            try:
                values[name] = parse_number(raw)
            except ValueError as exc:
                errors[name] = [f"Value {exc}."]
        if errors:
            raise serializers.ValidationError(errors)
        validated["values"] = values
        return validated


class AcknowledgeSerializer(CallbackSerializer):
    """A SERVICE ACKNOWLEDGE callback."""

    infoCode = StrictIntegerField(source="info_code", min_value=0, max_value=99)
    infoMessage = LooseCharField(source="info_message", max_length=200)
    downlinkAck = LooseBooleanField(source="downlink_ack")
    downlinkOverusage = LooseBooleanField(source="downlink_overusage")
