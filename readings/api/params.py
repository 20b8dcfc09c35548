"""The read API's query parameters, validated: times, lists of names, numbers."""

import re

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from readings import sigfox, times
from readings.selectors.series import SERIES_DEFAULT_POINTS, SERIES_MAX_POINTS, SERIES_MIN_POINTS
from readings.times import TIME_PATTERN, iso_utc

# Query parameters are read with ASCII-only patterns and no trimming: Python's
# \d and int() also take "٣" and " 12", which no client means and the OpenAPI
# schema (readings/api/views.py, checked by tests/readings/api/test_schema_fuzz.py) cannot say.
WHOLE_NUMBER = re.compile(r"-?[0-9]{1,100}")
SENSOR = sigfox.SENSOR_PATTERN
DEVICE = sigfox.DEVICE_ID_PATTERN
DEVICE_TYPE = sigfox.DEVICE_TYPE_ID_PATTERN
QUANTITY = r"[^,\x00]{1,64}"
MAX_LIST_ITEMS = 100


def list_pattern(item: str) -> str:
    """One item, or up to MAX_LIST_ITEMS separated by commas."""
    return rf"^{item}(?:,{item}){{0,{MAX_LIST_ITEMS - 1}}}$"


@extend_schema_field({"type": "string", "pattern": TIME_PATTERN, "maxLength": 40})
class TimeParamField(serializers.Field):
    """A point in time: ISO 8601 (a date, or a date and time with or without an
    offset; without one, in the site's time zone) or Unix epoch seconds."""

    default_error_messages = {
        "invalid": "Must be ISO 8601 (2026-01-31, 2026-01-31T12:00:00Z) or Unix epoch seconds.",
        "range": "Out of range: must be between 0001-01-01T00:00:00Z and 9999-12-31T23:59:59Z.",
    }

    def to_internal_value(self, data):
        try:
            return times.parse_time(data)
        except times.TimeOutOfRange:
            self.fail("range")
        except ValueError:
            self.fail("invalid")

    def to_representation(self, value):
        return iso_utc(value)


class WholeNumberParam(serializers.IntegerField):
    """A whole number in plain digits: "12", not "12.0", " 12" or "١٢"."""

    def to_internal_value(self, data):
        if not isinstance(data, str) or not WHOLE_NUMBER.fullmatch(data):
            self.fail("invalid")
        return int(data)


class NameListField(serializers.Field):
    """One name or several separated by commas: `device=1A2B3C,BF1327`."""

    default_error_messages = {
        "invalid": "Must be one name or several separated by commas (no spaces).",
        "too_many": f"At most {MAX_LIST_ITEMS} names.",
    }

    def __init__(self, *, pattern: str, device_ids: bool = False, **kwargs):
        self.pattern = re.compile(pattern)
        # Device ids in their one spelling (readings.sigfox.normalize_device_id).
        self.device_ids = device_ids
        super().__init__(**kwargs)

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid")
        # Taken as written, as list_pattern() tells the schema: an item " temp"
        # is refused rather than read as "temp".
        items = data.split(",")
        if len(items) > MAX_LIST_ITEMS:
            self.fail("too_many")
        if not all(self.pattern.fullmatch(item) for item in items):
            self.fail("invalid")
        if self.device_ids:
            return [sigfox.normalize_device_id(item) for item in items]
        return items


class RangeParams(serializers.Serializer):
    since = TimeParamField(required=False)
    until = TimeParamField(required=False)

    def validate(self, attrs):
        since, until = attrs.get("since"), attrs.get("until")
        if since is not None and until is not None and until <= since:
            raise serializers.ValidationError({"until": ["Must be later than since."]})
        return attrs


class ReadingFilterParams(RangeParams):
    device = NameListField(pattern=DEVICE, device_ids=True, required=False)
    sensor = NameListField(pattern=SENSOR, required=False)
    quantity = NameListField(pattern=QUANTITY, required=False)

    def filters(self) -> dict:
        data = self.validated_data
        return {
            "devices": data.get("device"),
            "sensors": data.get("sensor"),
            "quantities": data.get("quantity"),
            "since": data.get("since"),
            "until": data.get("until"),
        }


class MessageFilterParams(RangeParams):
    device = NameListField(pattern=DEVICE, device_ids=True, required=False)
    sensor = NameListField(pattern=SENSOR, required=False)

    def filters(self) -> dict:
        data = self.validated_data
        return {
            "devices": data.get("device"),
            "sensors": data.get("sensor"),
            "since": data.get("since"),
            "until": data.get("until"),
        }


class SeriesParams(RangeParams):
    device = serializers.RegexField(rf"^{DEVICE}\Z", max_length=8, trim_whitespace=False)
    sensor = serializers.RegexField(rf"^{SENSOR}\Z", required=False, max_length=64,
                                    trim_whitespace=False)
    quantity = serializers.CharField(max_length=64, trim_whitespace=False)
    points = WholeNumberParam(
        required=False, default=SERIES_DEFAULT_POINTS,
        min_value=SERIES_MIN_POINTS, max_value=SERIES_MAX_POINTS,
    )


class RadioStatsParams(RangeParams):
    points = WholeNumberParam(
        required=False, default=SERIES_DEFAULT_POINTS,
        min_value=SERIES_MIN_POINTS, max_value=SERIES_MAX_POINTS,
    )


class QuantitySettingFilterParams(serializers.Serializer):
    device = serializers.RegexField(rf"^{DEVICE}\Z", required=False, trim_whitespace=False)
    device_type = serializers.RegexField(rf"^{DEVICE_TYPE}\Z", required=False,
                                         trim_whitespace=False)
