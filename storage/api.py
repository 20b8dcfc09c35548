"""A device's retention policy in the API (storage.retention applies it).

GET   /api/devices/<id>/retention/  its own three values and the effective ones, with where each comes from
PUT   /api/devices/<id>/retention/  sets all three (staff)
PATCH /api/devices/<id>/retention/  sets some (staff)

Days: a whole number; 0 keeps forever; null inherits (the device type's
value, else the site's SIGFOX_*_RETENTION_DAYS).
"""

from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_field, extend_schema_view
from rest_framework import generics, serializers
from rest_framework.exceptions import NotFound

from readings.api.base import ReadAPIView, ReadOrStaffWritePermission
from readings.api.views import (
    DEVICE_PATH,
    DETAIL,
    ERRORS_BY_FIELD,
    NO_SUCH_DEVICE,
    NOT_AUTHENTICATED,
    read_responses,
)
from readings.models import Device
from readings.selectors.devices import normalized
from storage.retention import MAX_DAYS, SOURCES, policy_explained

OWN_HELP = {
    "raw_retention_days": "Days this device keeps its readings and their messages",
    "rollup_retention_days": "Days this device keeps its hourly and daily rollups (at least as long "
                             "as its readings, whatever this says)",
    "body_retention_days": "Days this device keeps each message's raw callback body",
}
INHERIT = f"; 0: forever; null: as its device type, else the site (at most {MAX_DAYS})."


class EffectiveSerializer(serializers.Serializer):
    days = serializers.IntegerField(allow_null=True, help_text="Days kept; null: forever.")
    source = serializers.ChoiceField(
        choices=SOURCES, help_text="Which value is in force: the device's own, its device type's, "
        "or the site's setting.")


class EffectivePolicySerializer(serializers.Serializer):
    raw_retention_days = EffectiveSerializer()
    rollup_retention_days = EffectiveSerializer()
    body_retention_days = EffectiveSerializer()


def _days(name: str) -> serializers.IntegerField:
    return serializers.IntegerField(allow_null=True, min_value=0, max_value=MAX_DAYS,
                                    help_text=OWN_HELP[name] + INHERIT)


class RetentionSerializer(serializers.ModelSerializer):
    device = serializers.CharField(source="sigfox_id", read_only=True, help_text="Hex Sigfox id, upper-case.")
    raw_retention_days = _days("raw_retention_days")
    rollup_retention_days = _days("rollup_retention_days")
    body_retention_days = _days("body_retention_days")
    effective = serializers.SerializerMethodField(
        help_text="The policy in force for each kind, and where it comes from.")

    class Meta:
        model = Device
        fields = ["device", "raw_retention_days", "rollup_retention_days", "body_retention_days", "effective"]

    @extend_schema_field(EffectivePolicySerializer)
    def get_effective(self, device: Device) -> dict:
        return {kept.value: {"days": effective.days, "source": effective.source}
                for kept, effective in policy_explained(device).items()}

    def update(self, instance: Device, validated_data: dict) -> Device:
        # These columns only: a callback updates the same row (last_seen) meanwhile.
        for name, value in validated_data.items():
            setattr(instance, name, value)
        instance.save(update_fields=list(validated_data))
        return instance


REFUSED = OpenApiResponse(ERRORS_BY_FIELD, description="A value is not a whole number from 0 to "
                          f"{MAX_DAYS} or null, named field by field (PUT: each of the three is required).")
FORBIDDEN = OpenApiResponse(DETAIL, description="Only staff users may change a device's retention.")
WRITTEN = {200: RetentionSerializer, 400: REFUSED, 401: NOT_AUTHENTICATED, 403: FORBIDDEN,
           404: NO_SUCH_DEVICE}


@extend_schema(tags=["devices"], parameters=[DEVICE_PATH], description=(
    "How long a device keeps its readings with their messages, its rollups, and its messages' "
    "raw bodies: its own values (null inherits), and the ones in force with where each comes "
    "from (`device`, `device type` or `site`). The worker (`manage.py runworker`) applies them "
    "every SIGFOX_RETENTION_INTERVAL_S. Anyone who may read the API may read this; only staff "
    "users may change it."))
@extend_schema_view(
    get=extend_schema(summary="A device's retention policy", responses=read_responses(
        RetentionSerializer, not_found=NO_SUCH_DEVICE, params=False)),
    put=extend_schema(summary="Set a device's retention policy (staff only)", responses=WRITTEN),
    patch=extend_schema(summary="Change part of a device's retention policy (staff only)", responses=WRITTEN),
)
class DeviceRetentionView(ReadAPIView, generics.RetrieveUpdateAPIView):
    serializer_class = RetentionSerializer
    permission_classes = [ReadOrStaffWritePermission]

    def get_object(self) -> Device:
        device = (Device.objects.select_related("device_type")
                  .filter(sigfox_id=normalized(self.kwargs["sigfox_id"])).first())
        if device is None:
            raise NotFound("No such device.")
        self.check_object_permissions(self.request, device)
        return device
