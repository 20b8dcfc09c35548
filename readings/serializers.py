"""Input shapes of the Sigfox callbacks.

The backend substitutes variables into a template as plain text, so every
field may arrive as a JSON number, a boolean or a string holding one; the
fields here accept all of those and turn them into Python values.

Over 400 lines, on purpose: the loose field types and the two callbacks that
use them (DATA, ACKNOWLEDGE) are one declaration of what a callback may say,
kept together so that a variable is read the same way in every callback.
"""

import copy
import json
import math
import re
from datetime import UTC, datetime

from rest_framework import serializers

from readings import sigfox
from readings.services.ingest import UplinkCallback

HEX_ID = re.compile(r"[0-9A-Fa-f]+")
NUMBER = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")
INTEGER = re.compile(r"[+-]?\d{1,40}")
# How JSON and text spell the non-finite numbers (Python's json reads the first three).
NON_FINITE = frozenset({"nan", "infinity", "-infinity", "+infinity", "inf", "-inf", "+inf"})
# Past 2**53 a float (and a JavaScript number) no longer holds every integer.
EXACT_FLOAT_LIMIT = 2**53
# Strings the backend renders for an absent value ({rssi} may be null, {avgSnr} N/A).
ABSENT = frozenset({"", "null", "n/a", "na", "none"})

# Sigfox started in 2010; anything earlier is not a Sigfox reception time.
MIN_EPOCH_S = int(datetime(2010, 1, 1, tzinfo=UTC).timestamp())
# Reception times are stamped by the backend, so the future is a client's error;
# a day of slack covers clock skew between the backend and this server.
FUTURE_SLACK_S = 86_400


def storable_text(text: str) -> bool:
    """True when every database can store the text: no NUL (PostgreSQL
    refuses it) and no lone surrogate (JSON's "\\ud800", not UTF-8)."""
    if "\x00" in text:
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def storable_json(value) -> bool:
    """True when every database's JSON column can hold the value: finite
    numbers, text that storable_text accepts."""
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, str):
        return storable_text(value)
    if isinstance(value, list):
        return all(storable_json(item) for item in value)
    if isinstance(value, dict):
        return all(storable_json(k) and storable_json(v) for k, v in value.items())
    return True


def is_absent(value) -> bool:
    return value is None or (isinstance(value, str) and value.strip().lower() in ABSENT)


class NotFinite(ValueError):
    """NaN or an infinity (or a number too large for a float), as a JSON constant or a string."""


def parse_number(value) -> float:
    """A finite float from a JSON number, boolean or numeric string; ValueError otherwise."""
    if isinstance(value, bool):
        return 1.0 if value else 0.0
    if isinstance(value, int | float):
        try:
            number = float(value)
        except OverflowError:
            raise NotFinite("is too large") from None
    elif isinstance(value, str) and len(value) <= 64 and NUMBER.fullmatch(value.strip()):
        number = float(value.strip())
    elif isinstance(value, str) and value.strip().lower() in {"true", "false"}:
        return 1.0 if value.strip().lower() == "true" else 0.0
    else:
        raise ValueError("must be a number or a string holding one")
    if not math.isfinite(number):
        raise NotFinite("must be a finite number")
    return number


def parse_value(value) -> tuple[float, int | float | bool]:
    """(the reading's float, the value as sent) of a callback value field.

    The value as sent keeps integers exact (a uint:64 is not a float).
    Raises NotFinite for NaN and infinities, ValueError for anything that is
    not a number (text, lists, objects).
    """
    if isinstance(value, str) and value.strip().lower() in NON_FINITE:
        raise NotFinite("must be a finite number")
    if isinstance(value, float) and not math.isfinite(value):
        raise NotFinite("must be a finite number")
    number = parse_number(value)
    if isinstance(value, bool) or isinstance(value, float):
        return number, value
    if isinstance(value, int):
        return number, value
    text = value.strip()
    if text.lower() in {"true", "false"}:
        return number, text.lower() == "true"
    if INTEGER.fullmatch(text):
        return number, int(text)
    return number, number


class SigfoxIdField(serializers.CharField):
    """A hex id of at most max_length characters, returned upper-case.

    A device id (device_id=True) is also stripped of leading zeros
    (readings.sigfox.normalize_device_id): one device, one id.
    """

    def __init__(self, *, device_id: bool = False, **kwargs):
        kwargs.setdefault("trim_whitespace", True)
        self.device_id = device_id
        super().__init__(**kwargs)

    def to_internal_value(self, data):
        if isinstance(data, bool) or not isinstance(data, str | int):
            self.fail("invalid")
        value = super().to_internal_value(data)
        if not HEX_ID.fullmatch(value):
            raise serializers.ValidationError("Must be hexadecimal (0-9, A-F).")
        if self.max_length is not None and len(value) > self.max_length:
            self.fail("max_length", max_length=self.max_length)
        if self.device_id:
            return sigfox.normalize_device_id(value)
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
    """The raw {data}: even-length hex of at most 12 bytes
    (sigfox.UPLINK_PAYLOAD_MAX_BYTES), returned lower-case."""

    def to_internal_value(self, data):
        if not isinstance(data, str):
            raise serializers.ValidationError("Must be a string of hex digits.")
        data = data.strip()
        if len(data) > 2 * sigfox.UPLINK_PAYLOAD_MAX_BYTES:
            raise serializers.ValidationError(
                f"Must be at most {sigfox.UPLINK_PAYLOAD_MAX_BYTES} bytes "
                f"({2 * sigfox.UPLINK_PAYLOAD_MAX_BYTES} hex digits)."
            )
        if data and not HEX_ID.fullmatch(data):
            raise serializers.ValidationError("Must be hex digits (0-9, a-f).")
        if len(data) % 2:
            raise serializers.ValidationError("Must be an even number of hex digits (whole bytes).")
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

    device = SigfoxIdField(max_length=sigfox.DEVICE_ID_MAX_CHARS, source="device_id", device_id=True)
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
        # No text column can hold a NUL or a lone surrogate; no Sigfox variable has one.
        if any(isinstance(v, str) and not storable_text(v) for v in data.values()) or any(
            not storable_text(k) for k in data
        ):
            raise serializers.ValidationError(
                {"non_field_errors": ["Values must not contain NUL characters or lone surrogates."]}
            )
        return super().to_internal_value(data)


def _within(what: str, value: float | None, limit: float) -> float | None:
    """A coordinate on the earth: -limit to limit degrees, else a field error."""
    if value is not None and not -limit <= value <= limit:
        raise serializers.ValidationError(f"A {what} must be between -{limit} and {limit} degrees.")
    return value


def _printable_name(name: str) -> str:
    """A field name as it can be stored and shown, whatever it holds."""
    name = name.encode("utf-8", "backslashreplace").decode("utf-8").replace("\x00", "\\x00")
    return name[:64] if name.strip() else "(empty name)"


class LenientCallbackSerializer(CallbackSerializer):
    """A callback whose IDENTITY fields must be right (a 400 otherwise); any
    other field that is wrong is left out and named in `field_errors`, so that
    one bad field never loses what the callback says."""

    IDENTITY = frozenset({"device", "time"})

    def to_internal_value(self, data):
        if not isinstance(data, dict):
            raise serializers.ValidationError(
                {"non_field_errors": ["Expected a JSON object of callback variables."]}
            )
        field_errors: dict[str, str] = {}
        clean = {}
        for name, raw in data.items():
            if storable_text(name) and (not isinstance(raw, str) or storable_text(raw)):
                clean[name] = raw
            elif name in self.IDENTITY:
                raise serializers.ValidationError(
                    {name: ["Must not contain NUL characters or lone surrogates."]}
                )
            else:
                field_errors[_printable_name(name)] = "Must not contain NUL characters or lone surrogates."
        try:
            validated = serializers.Serializer.to_internal_value(self, clean)
        except serializers.ValidationError as exc:
            errors = exc.detail if isinstance(exc.detail, dict) else {"non_field_errors": exc.detail}
            if set(errors) & (self.IDENTITY | {"non_field_errors"}):
                raise serializers.ValidationError(
                    {k: v for k, v in errors.items() if k in self.IDENTITY or k == "non_field_errors"}
                ) from None
            for name, messages in errors.items():
                field_errors[name] = " ".join(str(m) for m in messages)
                clean.pop(name, None)
            validated = serializers.Serializer.to_internal_value(self, clean)
        return self.completed(validated, clean=clean, field_errors=field_errors)

    def completed(self, validated: dict, *, clean: dict, field_errors: dict) -> dict:
        """The validated data, with what a subclass works out from the whole callback."""
        validated["field_errors"] = field_errors
        return validated


class UplinkSerializer(LenientCallbackSerializer):
    """A DATA UPLINK, BIDIR or ADVANCED callback.

    Only what identifies the frame is required to be right: `device` and
    `time` (a 400 otherwise). Any other field that is wrong is left out of
    what is stored and named in `field_errors`, so that one bad field never
    loses the frame's other values (the backend would retry three times and
    then drop it). The variables of the Sigfox protocol are typed fields;
    every other field is a value (customData, or the tutorial's "temp"): a
    number (or a string or boolean holding one) becomes a reading, text
    (the backend renders `char` custom fields as text) is kept in
    `text_values`, and NaN or an infinity makes no reading.
    """

    seqNumber = LooseIntegerField(source="seq_number", min_value=0, max_value=sigfox.SEQ_MODULO - 1)
    data = PayloadHexField()
    deviceTypeId = OptionalHexField(source="device_type_id", max_length=sigfox.DEVICE_TYPE_ID_MAX_CHARS)
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

    def validate_lat(self, value):
        return _within("latitude", value, 90)

    def validate_lng(self, value):
        return _within("longitude", value, 180)

    def validate_fixedLat(self, value):
        return _within("latitude", value, 90)

    def validate_fixedLng(self, value):
        return _within("longitude", value, 180)

    def validate_computedLocation(self, value):
        if value is not None:
            for name, limit in (("lat", 90), ("lng", 180)):
                if name in value:
                    if isinstance(value[name], bool) or not isinstance(value[name], int | float):
                        raise serializers.ValidationError(f"{name} must be a number.")
                    _within("latitude" if name == "lat" else "longitude", value[name], limit)
        return value

    # Never readings: authentication, and fields the backend may add that
    # describe the callback rather than measure anything.
    NOT_VALUES = frozenset({"token", "callbackType", "type"})
    MAX_TEXT_CHARS = 200

    def completed(self, validated: dict, *, clean: dict, field_errors: dict) -> dict:
        """Every other field holding a number or a boolean is a reading; a short
        text is kept as text; anything else is named in field_errors."""
        values, values_raw, text_values = {}, {}, {}
        for name, raw in clean.items():
            if name in self.fields or name in self.NOT_VALUES or is_absent(raw):
                continue
            if len(name) > 64:
                field_errors[name[:64]] = "Field names are limited to 64 characters."
                continue
            if not name.strip():
                field_errors["(empty name)"] = "Every value needs a field name."
                continue
            try:
                values[name], values_raw[name] = parse_value(raw)
            except NotFinite:
                field_errors[name] = "Value must be a finite number."
            except ValueError as exc:
                if isinstance(raw, str) and len(raw) <= self.MAX_TEXT_CHARS:
                    text_values[name] = raw
                else:
                    field_errors[name] = f"Value {exc}." if isinstance(raw, str | int | float) else (
                        "Value must be a number or text, not a list or an object.")
        validated["values"] = values
        validated["values_raw"] = values_raw
        validated["text_values"] = text_values
        validated["field_errors"] = field_errors
        return validated


class AcknowledgeSerializer(CallbackSerializer):
    """A SERVICE ACKNOWLEDGE callback."""

    infoCode = StrictIntegerField(source="info_code", min_value=0, max_value=99)
    infoMessage = LooseCharField(source="info_message", max_length=200)
    downlinkAck = LooseBooleanField(source="downlink_ack")
    downlinkOverusage = LooseBooleanField(source="downlink_overusage")


def uplink_callback(data: dict, *, sensor: str, body_raw: str, content_type: str, now):
    """An uplink's variables (a parsed callback body) as the UplinkCallback that
    readings.services.ingest.message_ingest stores: the callback view's
    reading of a body, and the backfill's of a message read back through the
    Sigfox API. Raises ValidationError when device or time is wrong."""
    serializer = UplinkSerializer(data=data, context={"now": now})
    serializer.is_valid(raise_exception=True)
    return UplinkCallback(**serializer.validated_data, sensor=sensor, body_raw=body_raw,
                          content_type=content_type)
