"""The read API's answers, each rendered from a model or a selector's dataclass,
and the quantity settings it writes."""

import re
from datetime import UTC

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from readings import sigfox
from readings.api.params import DEVICE_TYPE
from readings.models import (
    Device,
    DeviceEvent,
    DeviceLocation,
    DeviceType,
    Message,
    QuantitySetting,
    Reading,
)
from readings.selectors.devices import device_latest_readings
from readings.selectors.units import quantity_displays
from readings.serializers import EXACT_FLOAT_LIMIT


def utc_time(**kwargs) -> serializers.DateTimeField:
    """A time written in UTC, "2026-01-31T12:00:00Z" (microseconds only when there are
    some): DRF's own field with UTC as its zone, whatever the site's TIME_ZONE."""
    return serializers.DateTimeField(default_timezone=UTC, **kwargs)


class DeviceSerializer(serializers.ModelSerializer):
    id = serializers.CharField(source="sigfox_id", help_text="Hex Sigfox id, upper-case.")
    device_type = serializers.SlugRelatedField(
        slug_field="sigfox_id", read_only=True, allow_null=True,
        help_text="Sigfox id of the device type; null until a callback names one.",
    )
    first_seen = utc_time(allow_null=True, help_text="Time of the earliest message stored.")
    last_seen = utc_time(allow_null=True, help_text="Time of the latest message stored.")
    url = serializers.HyperlinkedIdentityField(
        view_name="api-device", lookup_field="sigfox_id", lookup_url_kwarg="sigfox_id"
    )
    # Kept by the alerts app (alerts.models.DeviceHealth, Device.health); "new"
    # until its worker has looked at the device.
    state = serializers.SerializerMethodField(
        help_text="new (rhythm not known yet), up, late, down or muted: see /api/devices/<id>/states/.")

    class Meta:
        model = Device
        fields = ["id", "name", "device_type", "first_seen", "last_seen", "state", "url"]

    @extend_schema_field(serializers.ChoiceField(choices=["new", "up", "late", "down", "muted"]))
    def get_state(self, device) -> str:
        health = getattr(device, "health", None)  # None until the worker has seen the device
        return health.state if health is not None else "new"


UNIT_HELP = (
    "Unit of the value: the quantity's setting (the device's own, else its type's; empty "
    "when set without one), else guessed from the quantity's name; may be empty."
)


class DisplaysListSerializer(serializers.ListSerializer):
    """A list of readings that loads the unit settings of their devices once."""

    def to_representation(self, data):
        items = list(data.all() if hasattr(data, "all") else data)
        self.displays = quantity_displays(device_pks={r.device_id for r in items})
        return super().to_representation(items)


class ReadingUnitMixin:
    def get_unit(self, reading) -> str:
        displays = getattr(self.parent, "displays", None)
        if displays is None:  # one reading on its own
            displays = quantity_displays(device_pks=[reading.device_id])
        return displays.of(reading.device_id, reading.quantity).unit


class LatestReadingSerializer(ReadingUnitMixin, serializers.ModelSerializer):
    time = utc_time()
    unit = serializers.SerializerMethodField(help_text=UNIT_HELP)

    class Meta:
        model = Reading
        fields = ["time", "sensor", "quantity", "value", "unit"]
        list_serializer_class = DisplaysListSerializer


class DeviceDetailSerializer(DeviceSerializer):
    last_readings = serializers.SerializerMethodField(
        help_text="The newest reading of each series (sensor and quantity) of the device."
    )

    class Meta(DeviceSerializer.Meta):
        fields = [*DeviceSerializer.Meta.fields, "last_readings"]

    @extend_schema_field(LatestReadingSerializer(many=True))
    def get_last_readings(self, device):
        readings = device_latest_readings(device=device)
        return LatestReadingSerializer(readings, many=True).data


class ReadingSerializer(ReadingUnitMixin, serializers.ModelSerializer):
    time = utc_time()
    device = serializers.CharField(source="device.sigfox_id")
    unit = serializers.SerializerMethodField(help_text=UNIT_HELP)
    decoded = serializers.BooleanField(
        source="from_payload",
        help_text="True when the value was decoded here from the message's raw payload.")

    class Meta:
        model = Reading
        fields = [
            "id", "time", "device", "sensor", "quantity", "value", "message", "decoded", "unit",
        ]
        list_serializer_class = DisplaysListSerializer


class MessageSerializer(serializers.ModelSerializer):
    time = utc_time()
    received_at = utc_time()
    device = serializers.CharField(source="device.sigfox_id")
    decoded = serializers.JSONField(source="payload_fields", allow_null=True, required=False)
    exact_values = serializers.SerializerMethodField(
        help_text=(
            "Integers beyond 2^53 that the callback sent or the payload held, as decimal "
            "strings ({name: \"18446744073709551615\"}): JSON numbers that large lose digits "
            "in JavaScript, and the readings hold the nearest float."
        )
    )

    class Meta:
        model = Message
        fields = [
            "id", "time", "device", "sensor", "seq_number", "data", "decoded", "station",
            "rssi", "snr", "avg_snr", "lat", "lng", "lqi", "link_quality", "operator_name",
            "country_code", "ack", "downlink_data", "received_at", "text_values",
            "field_errors", "exact_values", "recovered",
        ]

    def get_exact_values(self, message) -> dict[str, str]:
        return message_exact_values(message)


def message_exact_values(message: Message) -> dict[str, str]:
    """{name: decimal string} of the message's integers that a float cannot hold exactly."""
    found = {}
    sources = [*(message.values_raw or {}).values(), message.payload_fields or {}]
    for values in sources:
        for name, value in values.items():
            if type(value) is int and abs(value) > EXACT_FLOAT_LIMIT:
                found[name] = str(value)
    return found


class DeviceEventSerializer(serializers.ModelSerializer):
    """An ERROR or EVENT callback about a device (CALLBACKS.md section 7)."""

    time = utc_time(help_text="When the Sigfox cloud raised it.")
    received_at = utc_time()
    device = serializers.CharField(source="device.sigfox_id")
    variables = serializers.JSONField(
        allow_null=True, required=False,
        help_text="Every variable of an EVENT callback as received; null for an ERROR.",
    )

    class Meta:
        model = DeviceEvent
        fields = ["id", "time", "device", "kind", "event_type", "severity", "info", "variables",
                  "received_at"]


class DeviceLocationSerializer(serializers.ModelSerializer):
    """Where the device was when it sent one message: a point of its track."""

    time = utc_time(help_text="Time of the message located.")
    lat = serializers.FloatField(help_text="Latitude, degrees (WGS 84).")
    lng = serializers.FloatField(help_text="Longitude, degrees (WGS 84).")
    radius_m = serializers.IntegerField(
        allow_null=True, help_text="The network's uncertainty in metres; null for a payload fix.")
    source = serializers.ChoiceField(
        choices=DeviceLocation.Source.choices,
        help_text="payload: the device's own fix (values named lat/lng, latitude/longitude, "
                  "lon); network: Sigfox's estimate (DATA ADVANCED computedLocation); geoloc: "
                  "Sigfox's estimate (GEOLOC callback). The most precise one of the message.",
    )
    sigfox_source = serializers.CharField(
        help_text="Sigfox's code of its estimate (computedLocation source, geolocSource); "
                  "empty for a payload fix.")
    seq_number = serializers.IntegerField(allow_null=True, help_text="seqNumber of the message.")

    class Meta:
        model = DeviceLocation
        fields = ["time", "lat", "lng", "radius_m", "source", "sigfox_source", "seq_number"]


class BucketSerializer(serializers.Serializer):
    start = serializers.IntegerField(help_text="Start of the bucket, epoch milliseconds.")
    end = serializers.IntegerField(help_text="End of the bucket (excluded), epoch milliseconds.")
    count = serializers.IntegerField(help_text="Readings in the bucket.")
    first_time = serializers.IntegerField()
    first = serializers.FloatField()
    min_time = serializers.IntegerField(help_text="Time of the lowest value, epoch ms.")
    min = serializers.FloatField(help_text="Lowest value in the bucket.")
    max_time = serializers.IntegerField(help_text="Time of the highest value, epoch ms.")
    max = serializers.FloatField(help_text="Highest value in the bucket.")
    last_time = serializers.IntegerField()
    last = serializers.FloatField()


@extend_schema_field({"type": "array", "items": {"type": "number"}, "minItems": 2, "maxItems": 2})
class PointField(serializers.Field):
    """(epoch ms, value) as [1700000000000, 21.5]: the time stays a whole number."""

    def to_representation(self, value):
        return [value[0], value[1]]


class SeriesSerializer(serializers.Serializer):
    device = serializers.CharField()
    sensor = serializers.CharField(allow_null=True, help_text="null: every sensor of the device.")
    quantity = serializers.CharField()
    unit = serializers.CharField(help_text=UNIT_HELP)
    label = serializers.CharField(
        help_text="Device, sensor and the quantity's label (its setting's, else its name) "
        "with its unit."
    )
    since = utc_time(allow_null=True, help_text="Start of the range, ISO 8601 UTC.")
    until = utc_time(allow_null=True, help_text="End of the range (excluded).")
    max_points = serializers.IntegerField()
    count = serializers.IntegerField(help_text="Readings in the range.")
    method = serializers.ChoiceField(
        choices=["raw", "m4"],
        help_text="raw: every reading; m4: first, lowest, highest and last reading per bucket.",
    )
    source = serializers.ChoiceField(
        choices=["raw", "rollup-hourly", "rollup-daily"],
        help_text="Where the buckets come from: raw, the readings; rollup-hourly or rollup-daily, "
        "the hourly or daily rollups (with the readings of hours not yet rolled up), to the same "
        "answer. Buckets of an hour or more lie on whole UTC hours or days, since and until "
        "widened to them, whatever the source.",
    )
    points = serializers.ListField(
        child=PointField(),
        help_text="[epoch ms, value] in time order, at most max_points: the line to draw.",
    )
    buckets = BucketSerializer(many=True, help_text="Per bucket of time (m4 only).")


class RadioBucketSerializer(serializers.Serializer):
    start = serializers.IntegerField(help_text="Epoch milliseconds.")
    end = serializers.IntegerField()
    messages = serializers.IntegerField(help_text="Messages received in the bucket.")
    rssi_min = serializers.FloatField(allow_null=True, help_text="dBm")
    rssi_avg = serializers.FloatField(allow_null=True)
    rssi_max = serializers.FloatField(allow_null=True)
    snr_min = serializers.FloatField(allow_null=True, help_text="dB")
    snr_avg = serializers.FloatField(allow_null=True)
    snr_max = serializers.FloatField(allow_null=True)
    lost = serializers.IntegerField(help_text="Messages lost (jumps in seqNumber).")
    resets = serializers.IntegerField(
        help_text="Resets of the device's sequence counter (jumps too large for the time "
        "between: not losses)."
    )


class RadioStatsSerializer(serializers.Serializer):
    device = serializers.CharField()
    since = utc_time(allow_null=True)
    until = utc_time()
    buckets = RadioBucketSerializer(many=True)


# -- quantity settings -----------------------------------------------------------------


class DeviceIdField(serializers.SlugRelatedField):
    """A device by its Sigfox id, in any case, padded or not."""

    default_error_messages = {
        "does_not_exist": "No device {slug_name}={value}.",
        "invalid": "Must be 1 to 8 hexadecimal digits.",
    }

    def to_internal_value(self, data):
        try:
            data = sigfox.normalize_device_id(data)
        except ValueError:
            self.fail("invalid")
        return super().to_internal_value(data)


class DeviceTypeIdField(serializers.SlugRelatedField):
    default_error_messages = {
        "does_not_exist": "No device type {slug_name}={value}.",
        "invalid": "Must be up to 24 hexadecimal digits.",
    }

    def to_internal_value(self, data):
        if not isinstance(data, str) or not re.fullmatch(DEVICE_TYPE, data.strip()):
            self.fail("invalid")
        return super().to_internal_value(data.strip().upper())


class QuantitySettingSerializer(serializers.ModelSerializer):
    device = DeviceIdField(
        slug_field="sigfox_id", queryset=Device.objects.all(), required=False, allow_null=True,
        help_text="Sigfox id of the device this setting is for (or set device_type).",
    )
    device_type = DeviceTypeIdField(
        slug_field="sigfox_id", queryset=DeviceType.objects.all(), required=False,
        allow_null=True,
        help_text="Sigfox id of the device type this setting is for (or set device). A "
        "device's own setting of a quantity overrides its type's.",
    )

    class Meta:
        model = QuantitySetting
        fields = ["id", "device", "device_type", "quantity", "unit", "label", "scale", "offset"]
        # Uniqueness and "exactly one owner" are checked in validate(), with plain messages.
        validators = []

    def validate(self, attrs):
        current = self.instance
        owner = {
            name: attrs[name] if name in attrs else getattr(current, name, None)
            for name in ("device", "device_type")
        }
        if (owner["device"] is None) == (owner["device_type"] is None):
            raise serializers.ValidationError(
                {"non_field_errors": ["Set exactly one of device and device_type."]}
            )
        quantity = attrs["quantity"] if "quantity" in attrs else current.quantity
        if owner["device"] is not None:
            same = QuantitySetting.objects.filter(device=owner["device"], quantity=quantity)
            who = f"Device {owner['device'].sigfox_id}"
        else:
            same = QuantitySetting.objects.filter(
                device_type=owner["device_type"], device__isnull=True, quantity=quantity
            )
            who = f"Device type {owner['device_type'].sigfox_id}"
        if current is not None:
            same = same.exclude(pk=current.pk)
        if same.exists():
            raise serializers.ValidationError(
                {"quantity": [f"{who} already has a setting for {quantity!r}."]}
            )
        return attrs
