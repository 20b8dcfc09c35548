"""Device health in the read API: a device's state changes, and muting it.

GET  /api/devices/<id>/states/  its changes of state, newest first (cursor pages)
PUT  /api/devices/<id>/mute/    {"until": time} mutes it until then (staff)
DELETE /api/devices/<id>/mute/  unmutes it (staff)

Times as everywhere in the API (readings/times.py): ISO 8601, or epoch seconds.
"""


from django.utils import timezone
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import generics, serializers, status
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.response import Response

from alerts.models import DeviceHealth, StateChange
from readings.api.base import ReadAPIView, ReadOrStaffWritePermission, TimeCursorPagination
from readings.api.params import TimeParamField
from readings.api.serializers import utc_time
from readings.api.views import DEVICE_PATH, NO_SUCH_DEVICE, read_responses
from readings.selectors.devices import device_get


class StateChangeSerializer(serializers.ModelSerializer):
    time = utc_time()

    class Meta:
        model = StateChange
        fields = ["time", "from_state", "to_state", "reason"]


class MuteSerializer(serializers.Serializer):
    until = TimeParamField(help_text="Muted until this time: ISO 8601 or epoch seconds.")


class MutedSerializer(serializers.Serializer):
    device = serializers.CharField()
    muted_until = utc_time(allow_null=True)


def _device(sigfox_id: str):
    device = device_get(sigfox_id=sigfox_id)
    if device is None:
        raise NotFound("No such device.")
    return device


@extend_schema(tags=["devices"], summary="A device's changes of state, newest first",
               parameters=[DEVICE_PATH],
               responses=read_responses(StateChangeSerializer(many=True), not_found=NO_SUCH_DEVICE))
class StateChangeListView(ReadAPIView, generics.ListAPIView):
    serializer_class = StateChangeSerializer
    pagination_class = TimeCursorPagination

    def get_queryset(self):
        return StateChange.objects.filter(device=_device(self.kwargs["sigfox_id"]))


class MuteView(ReadAPIView):
    permission_classes = [ReadOrStaffWritePermission]
    http_method_names = ["put", "delete", "options"]

    @extend_schema(tags=["devices"], summary="Mute a device's alerts until a time (staff)",
                   parameters=[DEVICE_PATH], request=MuteSerializer,
                   responses={200: MutedSerializer, 400: OpenApiResponse(description="Bad time."),
                              404: NO_SUCH_DEVICE})
    def put(self, request, sigfox_id):
        device = _device(sigfox_id)
        params = MuteSerializer(data=request.data)
        params.is_valid(raise_exception=True)
        until = params.validated_data["until"]
        if until <= timezone.now():
            raise ValidationError({"until": ["Must be in the future."]})
        DeviceHealth.objects.update_or_create(device=device, defaults={"muted_until": until})
        return Response(MutedSerializer({"device": device.sigfox_id, "muted_until": until}).data)

    @extend_schema(tags=["devices"], summary="Unmute a device's alerts (staff)",
                   parameters=[DEVICE_PATH], request=None,
                   responses={200: MutedSerializer, 404: NO_SUCH_DEVICE})
    def delete(self, request, sigfox_id):
        device = _device(sigfox_id)
        DeviceHealth.objects.filter(device=device).update(muted_until=None)
        return Response(MutedSerializer({"device": device.sigfox_id, "muted_until": None}).data,
                        status=status.HTTP_200_OK)
