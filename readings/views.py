"""HTTP entry points: the Sigfox callback, the chart pages, the health check."""

import logging
from urllib.parse import parse_qsl, urlencode

from django.conf import settings
from django.core.exceptions import SuspiciousOperation
from django.contrib.auth.views import redirect_to_login
from django.db import DatabaseError, connection
from django.http import Http404, JsonResponse
from django.shortcuts import render
from django.urls import reverse
from django.views.defaults import page_not_found
from django.utils import timezone
from rest_framework import status
from rest_framework.exceptions import ParseError, UnsupportedMediaType
from rest_framework.response import Response
from rest_framework.views import APIView

from readings import selectors, services, sigfox
from readings.auth import CallbackTokenAuthentication
from readings.limits import CallbackRateThrottle, FromAllowedNetwork, client_address
from readings.parsers import CallbackFormParser, CallbackJSONParser, CallbackTextParser
from readings.models import Rejection
from readings.serializers import AcknowledgeSerializer, UplinkSerializer

log = logging.getLogger(__name__)


class CallbackView(APIView):
    """What every Sigfox callback endpoint shares: encodings, size limit, token."""

    authentication_classes = [CallbackTokenAuthentication]
    permission_classes = [FromAllowedNetwork]
    throttle_classes = [CallbackRateThrottle]
    parser_classes = [CallbackJSONParser, CallbackFormParser, CallbackTextParser]
    http_method_names = ["get", "post", "put"]

    def perform_content_negotiation(self, request, force=False):
        # The answer is JSON whatever is asked: DRF reads ?format= as the name of
        # a renderer and answers 404, which lost a GET callback with a "format" field.
        return super().perform_content_negotiation(request, force=True)

    def post(self, request, **kwargs):
        if not request.content_type and request.META.get("CONTENT_LENGTH", "0") not in ("", "0"):
            raise UnsupportedMediaType(
                "", detail="Set a Content-Type: application/json, "
                "application/x-www-form-urlencoded or text/plain."
            )
        # Read (and size-check) the raw body before the parsers see it, so that
        # it can be stored exactly as received.
        body = request.body
        if b"\x00" in body:
            raise ParseError("Request body contains a NUL byte.")
        body_raw = body.decode("utf-8", errors="replace")
        return self.handle_callback(request, request.data, body_raw, **kwargs)

    put = post

    def get(self, request, **kwargs):
        # The query string is the callback as received, less the secret.
        query = request.META.get("QUERY_STRING", "")
        if "token" in request.GET:
            pairs = parse_qsl(query, keep_blank_values=True)
            query = urlencode([(k, v) for k, v in pairs if k != "token"])
        return self.handle_callback(request, request.query_params.dict(), query, **kwargs)

    REJECTIONS = frozenset({400, 401, 403, 413, 429})

    def finalize_response(self, request, response, *args, **kwargs):
        response = super().finalize_response(request, response, *args, **kwargs)
        if response.status_code in self.REJECTIONS:
            services.rejection_record(
                status=response.status_code, reason=_reason(response), path=request.path,
                device_id=_readable_device_id(request), client_address=client_address(request),
                now=timezone.now(),
            )
        return response

    def media_type(self, request) -> str:
        """The Content-Type without parameters, as stored with the message."""
        return (request.content_type or "").split(";")[0].strip()[:100]

    def handle_callback(self, request, data, body_raw: str, **kwargs):
        raise NotImplementedError


def _reason(response) -> str:
    """The error the client was answered, in one line."""
    data = getattr(response, "data", None)
    if isinstance(data, dict):
        parts = []
        for name, detail in data.items():
            text = " ".join(str(d) for d in detail) if isinstance(detail, list) else str(detail)
            parts.append(text if name in ("detail", "non_field_errors") else f"{name}: {text}")
        return "; ".join(parts)
    return str(data or response.status_code)


def _readable_device_id(request) -> str:
    """The device the refused callback names, when that can be read without
    parsing anything more (a body is read only if a parser already did)."""
    try:
        candidates = [request.query_params.get("device")]
    except (ValueError, SuspiciousOperation):  # a query string too large to read
        candidates = []
    data = getattr(request, "_full_data", None)
    if isinstance(data, dict):
        candidates.insert(0, data.get("device"))
    for value in candidates:
        if isinstance(value, str | int) and not isinstance(value, bool):
            try:
                return sigfox.normalize_device_id(str(value))
            except ValueError:
                continue
    return ""


class UplinkView(CallbackView):
    """/data/<sensor>: a DATA UPLINK, BIDIR or ADVANCED callback."""

    def handle_callback(self, request, data, body_raw: str, sensor: str):
        now = timezone.now()
        serializer = UplinkSerializer(data=data, context={"now": now})
        serializer.is_valid(raise_exception=True)
        uplink = services.Uplink(
            **serializer.validated_data,
            sensor=sensor,
            body_raw=body_raw,
            content_type=self.media_type(request),
        )
        result = services.message_ingest(uplink=uplink, now=now)
        # The transaction has committed: a 2xx now means "stored".
        if result.downlink_data:
            # The key is the device id exactly as the backend sent it.
            device_as_received = str(data.get("device", "")).strip()
            return Response({device_as_received: {"downlinkData": result.downlink_data}})
        return Response(status=status.HTTP_204_NO_CONTENT)


class AcknowledgeView(CallbackView):
    """/sigfox/acknowledge: a SERVICE ACKNOWLEDGE callback, the outcome of a downlink."""

    def handle_callback(self, request, data, body_raw: str):
        now = timezone.now()
        serializer = AcknowledgeSerializer(data=data, context={"now": now})
        serializer.is_valid(raise_exception=True)
        services.acknowledge_record(**serializer.validated_data, body_raw=body_raw, now=now)
        return Response(status=status.HTTP_204_NO_CONTENT)


# How often the chart pages ask for new readings.
POLL_MS = 5000
RANGE_LABELS = {
    "hour": "Last hour",
    "day": "Last day",
    "week": "Last week",
    "month": "Last month",
    "year": "Last year",
    "all": "All",
    "custom": "From–to dates",
}


def _may_see_dashboard(request) -> bool:
    return settings.PUBLIC_DASHBOARD or request.user.is_authenticated


def _int_param(request, name: str, *, low: int, high: int) -> int | None:
    try:
        return min(high, max(low, int(request.GET[name])))
    except (KeyError, ValueError):
        return None


def _chart_context(request, choices: selectors.ChartChoices, *, device=None) -> dict:
    """The page's controls, and the JSON that graph.js draws from (json_script)."""
    # Units and labels of every series offered, from the settings loaded once.
    displays = selectors.quantity_displays(devices=choices.devices)
    chart = {
        "timeZone": settings.TIME_ZONE,
        "urls": {
            "series": reverse("api-series"),
            "readings": reverse("api-readings"),
            "csv": reverse("api-readings-csv"),
            "link": reverse("api-device-link", args=[device.sigfox_id]) if device else None,
        },
        "range": choices.range,
        "from": choices.date_from,
        "to": choices.date_to,
        "maxSeries": selectors.GRAPH_MAX_SERIES,
        "series": [key.as_dict(displays) for key in choices.series],
        "keys": [key.as_dict(displays) for key in choices.keys],
    }
    return {
        "choices": choices,
        # A site with one device needs no picker; a search or a long list does.
        "device_picker": device is None and (
            len(choices.devices) > 1 or bool(choices.device_search) or choices.more_devices
        ),
        "chart": chart,
        "ranges": [(name, label) for name, label in RANGE_LABELS.items()],
        # Tests speed the live update up; nobody needs it faster than twice a second.
        "poll_ms": _int_param(request, "poll_ms", low=500, high=600_000) or POLL_MS,
        "points": _int_param(request, "points", low=selectors.SERIES_MIN_POINTS,
                             high=selectors.SERIES_MAX_POINTS),
        "callback_url": request.build_absolute_uri("/data/1"),
    }


def graph(request):
    """The chart page: chosen series of chosen devices over a range, drawn by
    static/readings/graph.js from the read API."""
    if not _may_see_dashboard(request):
        return redirect_to_login(request.get_full_path())
    choices = selectors.chart_choices(
        devices=request.GET.getlist("device"),
        quantities=request.GET.getlist("quantity"),
        range_name=request.GET.get("range", ""),
        date_from=request.GET.get("from", ""),
        date_to=request.GET.get("to", ""),
        search=request.GET.get("q", ""),
        now=timezone.now(),
    )
    return render(request, "readings/graph.html", _chart_context(request, choices))


def device_page(request, sigfox_id: str):
    """One device: its series, its link quality (RSSI, SNR, lost messages), its latest values."""
    if not _may_see_dashboard(request):
        return redirect_to_login(request.get_full_path())
    device = selectors.device_get(sigfox_id=sigfox_id)
    if device is None:
        raise Http404("No such device.")
    choices = selectors.chart_choices(
        devices=[device.sigfox_id],
        quantities=request.GET.getlist("quantity"),
        range_name=request.GET.get("range", ""),
        date_from=request.GET.get("from", ""),
        date_to=request.GET.get("to", ""),
        device=device,
        now=timezone.now(),
    )
    context = _chart_context(request, choices, device=device)
    context["device"] = device
    context["rejections"] = list(
        Rejection.objects.filter(device_id=device.sigfox_id).order_by("-time")[:10]
    )
    displays = selectors.quantity_displays(devices=[device])
    context["latest"] = [
        (reading, displays.of(device.pk, reading.quantity))
        for reading in selectors.device_latest_readings(device=device, keys=choices.keys)
    ]
    return render(request, "readings/device.html", context)


def healthz(request):
    """200 when the database answers a trivial query, 503 when it does not."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except DatabaseError as exc:
        log.warning("health check: database unreachable: %s", exc)
        return JsonResponse({"status": "error", "database": "unreachable"}, status=503)
    return JsonResponse({"status": "ok", "database": "ok"})


def not_found(request, exception=None):
    """JSON for machine clients (callbacks, API), Django's page for people."""
    if request.path.startswith(("/data/", "/api/", "/sigfox/")):
        return JsonResponse({"detail": "Not found."}, status=404)
    return page_not_found(request, exception)
