"""HTTP entry points: the Sigfox callback, the chart page, the health check."""

import logging
from urllib.parse import parse_qsl, urlencode

from django.conf import settings
from django.contrib.auth.views import redirect_to_login
from django.db import DatabaseError, connection
from django.http import JsonResponse
from django.shortcuts import render
from django.views.defaults import page_not_found
from django.utils import timezone
from rest_framework import status
from rest_framework.exceptions import ParseError, UnsupportedMediaType
from rest_framework.response import Response
from rest_framework.views import APIView

from readings import selectors, services
from readings.auth import CallbackTokenAuthentication
from readings.limits import CallbackRateThrottle, FromAllowedNetwork
from readings.parsers import CallbackFormParser, CallbackJSONParser, CallbackTextParser
from readings.serializers import AcknowledgeSerializer, UplinkSerializer

log = logging.getLogger(__name__)


class CallbackView(APIView):
    """What every Sigfox callback endpoint shares: encodings, size limit, token."""

    authentication_classes = [CallbackTokenAuthentication]
    permission_classes = [FromAllowedNetwork]
    throttle_classes = [CallbackRateThrottle]
    parser_classes = [CallbackJSONParser, CallbackFormParser, CallbackTextParser]
    http_method_names = ["get", "post", "put"]

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

    def media_type(self, request) -> str:
        """The Content-Type without parameters, as stored with the message."""
        return (request.content_type or "").split(";")[0].strip()[:100]

    def handle_callback(self, request, data, body_raw: str, **kwargs):
        raise NotImplementedError


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


def graph(request):
    """The chart page: the latest readings of every series, drawn with Chart.js."""
    if not settings.PUBLIC_DASHBOARD and not request.user.is_authenticated:
        return redirect_to_login(request.get_full_path())
    devices = list(selectors.device_list())
    chosen = request.GET.get("device", "").upper()
    if chosen and not any(d.sigfox_id == chosen for d in devices):
        chosen = ""
    series = selectors.latest_series(device_id=chosen or None, per_series=selectors.GRAPH_POINTS)
    context = {
        "devices": devices,
        "chosen": chosen,
        "chart": {"series": series, "timeZone": settings.TIME_ZONE},
        "callback_url": request.build_absolute_uri("/data/1"),
    }
    return render(request, "readings/graph.html", context)


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
