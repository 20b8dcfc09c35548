"""Input shapes of the Sigfox callbacks.

The backend substitutes variables into a template as plain text, so every
field may arrive as a JSON number, a boolean or a string holding one; the
fields here accept all of those and turn them into Python values.
"""

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


class UplinkSerializer(serializers.Serializer):
    """A DATA UPLINK callback: device, time, and any number of measured values."""

    RESERVED = frozenset({"device", "time", "seqNumber", "token"})

    device = SigfoxIdField(max_length=8)
    time = EpochSecondsField()
    seqNumber = serializers.IntegerField(required=False, allow_null=True, min_value=0, max_value=4095)

    def to_internal_value(self, data):
        if not isinstance(data, dict):
            raise serializers.ValidationError(
                {"non_field_errors": ["Expected a JSON object of callback variables."]}
            )
        if is_absent(data.get("seqNumber")):
            data = {**data, "seqNumber": None}
        validated = super().to_internal_value(data)
        values, errors = {}, {}
        for name, raw in data.items():
            if name in self.RESERVED or is_absent(raw):
                continue
            if len(name) > 64:
                errors[name[:64]] = ["Field names are limited to 64 characters."]
                continue
            try:
                values[name] = parse_number(raw)
            except ValueError as exc:
                errors[name] = [f"Value {exc}."]
        if errors:
            raise serializers.ValidationError(errors)
        validated["values"] = values
        return validated
