"""The read API under /api/: devices, messages, readings, downsampled series,
link quality and a CSV export. Read-only; sessions for the browser, tokens
(made in the admin) for scripts; public when PUBLIC_DASHBOARD is set.

The one thing written through it is the quantity settings (unit, label,
scale), by staff users only.
"""

import csv

from django.db import IntegrityError, transaction
from django.http import StreamingHttpResponse
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_view,
)
from rest_framework import generics
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.permissions import SAFE_METHODS
from rest_framework.response import Response

from readings.api.base import (
    DeviceCursorPagination,
    ReadAPIView,
    ReadOrStaffWritePermission,
    SettingPagination,
    TimeCursorPagination,
)
from readings.api.params import (
    DEVICE,
    DEVICE_TYPE,
    QUANTITY,
    SENSOR,
    MessageFilterParams,
    QuantitySettingFilterParams,
    RadioStatsParams,
    RangeParams,
    ReadingFilterParams,
    SeriesParams,
    list_pattern,
)
from readings.api.serializers import (
    DeviceDetailSerializer,
    DeviceEventSerializer,
    DeviceLocationSerializer,
    DeviceSerializer,
    MessageSerializer,
    QuantitySettingSerializer,
    RadioStatsSerializer,
    ReadingSerializer,
    SeriesSerializer,
)
from readings.models import DeviceEvent, DeviceLocation, QuantitySetting
from readings.selectors import devices, lists
from readings.selectors.radio import radio_stats
from readings.selectors.series import (
    SERIES_DEFAULT_POINTS,
    SERIES_MAX_POINTS,
    SERIES_MIN_POINTS,
    series_downsampled,
)
from readings.times import TIME_PATTERN

# The parameters carry the patterns that their fields check (readings.api.params),
# so that the schema says exactly what is accepted.
DEVICE_PATH = OpenApiParameter(
    "sigfox_id", {"type": "string", "pattern": f"^{DEVICE}$"}, OpenApiParameter.PATH,
    description="Hex Sigfox id of the device (any case).",
)
TIME_SCHEMA = {"type": "string", "pattern": TIME_PATTERN, "maxLength": 40}
SINCE = OpenApiParameter(
    "since", TIME_SCHEMA, description=(
        "Start of the range (included): ISO 8601 (`2026-01-31`, `2026-01-31T12:00:00Z`, "
        "`2026-01-31T13:00:00+01:00`; without an offset, in the site's time zone) or Unix "
        "epoch seconds (`1769860800`), between 0001-01-01 and 9999-12-31 in UTC."
    ), examples=[OpenApiExample("ISO 8601", value="2026-01-31T12:00:00Z"),
                 OpenApiExample("epoch seconds", value="1769860800")],
)
UNTIL = OpenApiParameter(
    "until", TIME_SCHEMA,
    description="End of the range (excluded), in the same forms as `since`; later than `since`.",
)
DEVICES = OpenApiParameter(
    "device", {"type": "string", "pattern": list_pattern(DEVICE)},
    description="Sigfox id of a device, or several separated by commas (`1A2B3C,BF1327`).",
)
SENSORS = OpenApiParameter(
    "sensor", {"type": "string", "pattern": list_pattern(SENSOR)},
    description="The `<sensor>` of the callback URL `/data/<sensor>`, or several separated by commas.",
)
QUANTITIES = OpenApiParameter(
    "quantity", {"type": "string", "pattern": list_pattern(QUANTITY)},
    description="Quantity name (`temp`, `vbat_mv`), or several separated by commas.",
)
POINTS = OpenApiParameter(
    "points", {"type": "integer", "minimum": SERIES_MIN_POINTS,
               "maximum": SERIES_MAX_POINTS},
    description=(
        f"At most this many points ({SERIES_MIN_POINTS} to "
        f"{SERIES_MAX_POINTS}; default {SERIES_DEFAULT_POINTS}, about a "
        "chart's width in pixels)."
    ),
)

# What the read API answers besides its data. Every error is JSON: a
# `detail`, or (400) the list of problems of each parameter.
ERRORS_BY_FIELD = {
    "type": "object",
    "additionalProperties": {
        "oneOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}],
    },
}
DETAIL = {"type": "object", "properties": {"detail": {"type": "string"}}, "required": ["detail"]}
BAD_PARAMETERS = OpenApiResponse(ERRORS_BY_FIELD, description="A parameter is wrong, named with "
                                 "its problem.")
NOT_AUTHENTICATED = OpenApiResponse(DETAIL, description="No valid session or token (answered "
                                    "only when PUBLIC_DASHBOARD is off).")
NO_SUCH_DEVICE = OpenApiResponse(DETAIL, description="No device has this Sigfox id.")
NO_SUCH_PAGE = OpenApiResponse(DETAIL, description="The cursor is not one this API made.")


def read_responses(data, *, not_found: OpenApiResponse | None = None, params: bool = True) -> dict:
    responses = {200: data, 401: NOT_AUTHENTICATED}
    if params:
        responses[400] = BAD_PARAMETERS
    if not_found is not None:
        responses[404] = not_found
    return responses


def _params(serializer_class, request):
    params = serializer_class(data=request.query_params.dict())
    params.is_valid(raise_exception=True)
    return params


@extend_schema(tags=["devices"], summary="Devices, by Sigfox id",
               responses=read_responses(DeviceSerializer(many=True), not_found=NO_SUCH_PAGE))
class DeviceListView(ReadAPIView, generics.ListAPIView):
    serializer_class = DeviceSerializer
    pagination_class = DeviceCursorPagination

    def get_queryset(self):
        return devices.device_list()


@extend_schema(tags=["devices"], summary="A device, with the newest reading of each series",
               parameters=[DEVICE_PATH],
               responses=read_responses(DeviceDetailSerializer, not_found=NO_SUCH_DEVICE,
                                        params=False))
class DeviceDetailView(ReadAPIView, generics.RetrieveAPIView):
    serializer_class = DeviceDetailSerializer

    def get_object(self):
        device = devices.device_get(sigfox_id=self.kwargs["sigfox_id"])
        if device is None:
            raise NotFound("No such device.")
        return device


@extend_schema(tags=["devices"], summary="A device's ERROR and EVENT callbacks, newest first",
               parameters=[DEVICE_PATH],
               responses=read_responses(DeviceEventSerializer(many=True),
                                        not_found=OpenApiResponse(DETAIL, description=(
                                            "No device has this Sigfox id, or the cursor is not "
                                            "one this API made."))))
class DeviceEventListView(ReadAPIView, generics.ListAPIView):
    serializer_class = DeviceEventSerializer
    pagination_class = TimeCursorPagination

    def get_queryset(self):
        device = devices.device_get(sigfox_id=self.kwargs["sigfox_id"])
        if device is None:
            raise NotFound("No such device.")
        # The (device, time) index answers it, a page at a time.
        return DeviceEvent.objects.filter(device=device).select_related("device")


@extend_schema(
    tags=["devices"], summary="A device's track: where it was for each message, newest first",
    description=(
        "One point per message located over [since, until): the device's own fix from its "
        "payload (`source` payload, no radius) when it sent one, else Sigfox's estimate "
        "(`network`: DATA ADVANCED computedLocation; `geoloc`: GEOLOC callback) with its "
        "radius in metres."
    ),
    parameters=[DEVICE_PATH, SINCE, UNTIL],
    responses=read_responses(DeviceLocationSerializer(many=True),
                             not_found=OpenApiResponse(DETAIL, description=(
                                 "No device has this Sigfox id, or the cursor is not one this "
                                 "API made."))),
)
class DeviceLocationListView(ReadAPIView, generics.ListAPIView):
    serializer_class = DeviceLocationSerializer
    pagination_class = TimeCursorPagination

    def get_queryset(self):
        params = _params(RangeParams, self.request).validated_data
        device = devices.device_get(sigfox_id=self.kwargs["sigfox_id"])
        if device is None:
            raise NotFound("No such device.")
        # The (device, time) unique index answers it, a page at a time.
        locations = DeviceLocation.objects.filter(device=device)
        if params.get("since") is not None:
            locations = locations.filter(time__gte=params["since"])
        if params.get("until") is not None:
            locations = locations.filter(time__lt=params["until"])
        return locations


@extend_schema(tags=["readings"], summary="Readings, newest first",
               parameters=[DEVICES, SENSORS, QUANTITIES, SINCE, UNTIL],
               responses=read_responses(ReadingSerializer(many=True), not_found=NO_SUCH_PAGE))
class ReadingListView(ReadAPIView, generics.ListAPIView):
    serializer_class = ReadingSerializer
    pagination_class = TimeCursorPagination

    def get_queryset(self):
        filters = _params(ReadingFilterParams, self.request).filters()
        return lists.readings_filter(**filters).select_related("device")


@extend_schema(tags=["messages"], summary="Messages (uplinks as received), newest first",
               parameters=[DEVICES, SENSORS, SINCE, UNTIL],
               responses=read_responses(MessageSerializer(many=True), not_found=NO_SUCH_PAGE))
class MessageListView(ReadAPIView, generics.ListAPIView):
    serializer_class = MessageSerializer
    pagination_class = TimeCursorPagination

    def get_queryset(self):
        filters = _params(MessageFilterParams, self.request).filters()
        return lists.messages_filter(**filters).select_related("device")


@extend_schema(
    tags=["readings"],
    summary="One series over a range, downsampled to at most `points` points",
    description=(
        "One quantity of one device (of one sensor, or of all its sensors) over "
        "[since, until). When the range holds more readings than `points`, it is cut into "
        "`points / 4` buckets of equal time and each bucket keeps its first, lowest, highest "
        "and last reading (M4), so spikes survive. Computed in the database. Without `since` "
        "the range starts at the first reading; without `until` it ends now (with `since`) "
        "or at the last reading (without). Times in "
        "`points` and `buckets` are epoch milliseconds."
    ),
    parameters=[
        OpenApiParameter("device", {"type": "string", "pattern": f"^{DEVICE}$"}, required=True,
                         description="Sigfox id of the device."),
        OpenApiParameter("sensor", {"type": "string", "pattern": f"^{SENSOR}$"},
                         description="Only this sensor (`/data/<sensor>`); default: all."),
        OpenApiParameter("quantity", {"type": "string", "pattern": "^[^\\x00]{1,64}$"},
                         required=True, description="Quantity name, e.g. `temp`."),
        SINCE, UNTIL, POINTS,
    ],
    responses=read_responses(SeriesSerializer, not_found=NO_SUCH_DEVICE),
)
class SeriesView(ReadAPIView):
    def get(self, request):
        params = _params(SeriesParams, request).validated_data
        device = devices.device_get(sigfox_id=params["device"])
        if device is None:
            raise NotFound("No such device.")
        series = series_downsampled(
            device=device, quantity=params["quantity"], sensor=params.get("sensor"),
            since=params.get("since"), until=params.get("until"),
            max_points=params["points"], now=timezone.now(),
        )
        return Response(SeriesSerializer(series).data)


@extend_schema(
    tags=["devices"],
    summary="Link quality of a device: RSSI, SNR and lost messages per bucket of time",
    description=(
        "Messages of the device over [since, until), cut into at most `points` buckets of "
        "equal time: per bucket the lowest, mean and highest RSSI (dBm) and SNR (dB), the "
        "number of messages, and the messages lost (jumps in seqNumber). Buckets without "
        "messages or losses are left out."
    ),
    parameters=[DEVICE_PATH, SINCE, UNTIL, POINTS],
    responses=read_responses(RadioStatsSerializer, not_found=NO_SUCH_DEVICE),
)
class RadioStatsView(ReadAPIView):
    """/api/devices/<id>/link/: our statistics of the device's radio link (not
    Sigfox's linkQuality variable, which each message keeps)."""

    def get(self, request, sigfox_id):
        params = _params(RadioStatsParams, request).validated_data
        device = devices.device_get(sigfox_id=sigfox_id)
        if device is None:
            raise NotFound("No such device.")
        stats = radio_stats(
            device=device, since=params.get("since"), until=params.get("until"),
            buckets=params["points"], now=timezone.now(),
        )
        return Response(RadioStatsSerializer(stats).data)


class _Echo:
    """A file-like object whose write hands back the line, for csv.writer."""

    def write(self, value):
        return value


@extend_schema(
    tags=["readings"],
    summary="Readings as CSV, oldest first, streamed",
    description=(
        "Header `time,device,sensor,quantity,value,unit`; times ISO 8601 in UTC. `unit` is "
        "the quantity's setting (else guessed from its name; may be empty). A value of 2^53 "
        "or more is written as the exact integer its message kept, when it kept one. A text "
        "cell (device, sensor, quantity, unit) that starts with `=`, `+`, `-`, `@`, a tab or "
        "a carriage return is written with a leading `'`, so that a spreadsheet shows it "
        "as text instead of running it as a formula; values stay numbers (`-3.5`)."
    ),
    parameters=[DEVICES, SENSORS, QUANTITIES, SINCE, UNTIL],
    responses={
        (200, "text/csv"): OpenApiResponse(OpenApiTypes.STR, description="CSV file"),
        400: BAD_PARAMETERS,
        401: NOT_AUTHENTICATED,
    },
)
class ReadingsCsvView(ReadAPIView):
    def perform_content_negotiation(self, request, force=False):
        # The answer is CSV whatever the Accept header; errors stay JSON.
        return super().perform_content_negotiation(request, force=True)

    def get(self, request):
        params = _params(ReadingFilterParams, request)
        writer = csv.writer(_Echo())

        def lines():
            yield writer.writerow(["time", "device", "sensor", "quantity", "value", "unit"])
            for row in lists.readings_csv_rows(**params.filters()):
                yield writer.writerow(row)

        response = StreamingHttpResponse(lines(), content_type="text/csv; charset=utf-8")
        stamp = timezone.now().strftime("%Y%m%dT%H%M%SZ")
        response["Content-Disposition"] = f'attachment; filename="readings-{stamp}.csv"'
        return response


# -- Quantity settings: unit, label and scale ----------------------------------------------


class QuantitySettingWrites:
    """Saves that a concurrent twin made non-unique answer 400, as validate() would have."""

    def _save(self, serializer):
        try:
            with transaction.atomic():
                serializer.save()
        except IntegrityError as exc:
            raise ValidationError(
                {"quantity": ["This device or device type already has a setting for this "
                              "quantity."]}
            ) from exc

    def perform_create(self, serializer):
        self._save(serializer)

    def perform_update(self, serializer):
        self._save(serializer)


SETTING_DESCRIPTION = (
    "How a quantity of a device type, or of one device, is shown and scaled: `unit`, "
    "`label`, and the reading stored as raw × `scale` + `offset` (messages keep the raw "
    "value; run `manage.py redecode` after changing a scale). A device's own setting "
    "overrides its type's. Anyone who may read the API may read these; only staff users "
    "may create, change or delete them."
)


SETTING_ID = OpenApiParameter(
    "id", OpenApiTypes.INT, OpenApiParameter.PATH, description="Id of the quantity setting.",
)
SETTING_REFUSED = OpenApiResponse(
    ERRORS_BY_FIELD,
    description="Bad input, named field by field: no owner or both, a second setting of the "
    "same quantity for the same device or device type, an unknown device."
)
SETTING_FORBIDDEN = OpenApiResponse(DETAIL, description="Only staff users may change settings.")
NO_SUCH_SETTING = OpenApiResponse(DETAIL, description="No quantity setting has this id.")


@extend_schema(tags=["quantity settings"], description=SETTING_DESCRIPTION)
@extend_schema_view(
    get=extend_schema(summary="Quantity settings (unit, label, scale), by id", parameters=[
        OpenApiParameter("device", {"type": "string", "pattern": f"^{DEVICE}$"},
                         description="Only the settings of this device (Sigfox id)."),
        OpenApiParameter("device_type", {"type": "string", "pattern": f"^{DEVICE_TYPE}$"},
                         description="Only the settings of this device type (Sigfox id)."),
    ], responses=read_responses(QuantitySettingSerializer(many=True), not_found=NO_SUCH_PAGE)),
    post=extend_schema(summary="Add a quantity setting (staff only)", responses={
        201: QuantitySettingSerializer, 400: SETTING_REFUSED, 401: NOT_AUTHENTICATED,
        403: SETTING_FORBIDDEN}),
)
class QuantitySettingListView(QuantitySettingWrites, ReadAPIView, generics.ListCreateAPIView):
    serializer_class = QuantitySettingSerializer
    pagination_class = SettingPagination
    permission_classes = [ReadOrStaffWritePermission]

    def get_queryset(self):
        settings_ = QuantitySetting.objects.select_related("device", "device_type")
        if self.request.method not in SAFE_METHODS:
            return settings_
        params = _params(QuantitySettingFilterParams, self.request).validated_data
        if "device" in params:
            settings_ = settings_.filter(device_id__in=devices.device_pks(
                sigfox_ids=[params["device"]]))
        if "device_type" in params:
            settings_ = settings_.filter(device_type__sigfox_id=params["device_type"].upper())
        return settings_


@extend_schema(tags=["quantity settings"], description=SETTING_DESCRIPTION,
               parameters=[SETTING_ID])
@extend_schema_view(
    get=extend_schema(summary="A quantity setting", responses=read_responses(
        QuantitySettingSerializer, not_found=NO_SUCH_SETTING, params=False)),
    put=extend_schema(summary="Replace a quantity setting (staff only)", responses={
        200: QuantitySettingSerializer, 400: SETTING_REFUSED, 401: NOT_AUTHENTICATED,
        403: SETTING_FORBIDDEN, 404: NO_SUCH_SETTING}),
    patch=extend_schema(summary="Change a quantity setting (staff only)", responses={
        200: QuantitySettingSerializer, 400: SETTING_REFUSED, 401: NOT_AUTHENTICATED,
        403: SETTING_FORBIDDEN, 404: NO_SUCH_SETTING}),
    delete=extend_schema(summary="Delete a quantity setting (staff only)", responses={
        204: OpenApiResponse(description="Deleted."), 401: NOT_AUTHENTICATED,
        403: SETTING_FORBIDDEN, 404: NO_SUCH_SETTING}),
)
class QuantitySettingDetailView(QuantitySettingWrites, ReadAPIView,
                                generics.RetrieveUpdateDestroyAPIView):
    serializer_class = QuantitySettingSerializer
    permission_classes = [ReadOrStaffWritePermission]
    queryset = QuantitySetting.objects.select_related("device", "device_type")
