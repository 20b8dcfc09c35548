"""HTTP entry points of the core: the Sigfox callbacks, the health check, the 404 answer.

The pages people read are the dashboard app's (dashboard/views.py)."""

import logging
from urllib.parse import parse_qsl, urlencode

from django.core.exceptions import SuspiciousOperation
from django.db import DatabaseError, connection
from django.http import JsonResponse
from django.views.defaults import page_not_found
from django.utils import timezone
from rest_framework import status
from rest_framework.exceptions import ParseError, UnsupportedMediaType
from rest_framework.response import Response
from rest_framework.views import APIView

from readings import sigfox
from readings.services.downlinks import acknowledge_record
from readings.services.events import event_record, location_record
from readings.services.ingest import UplinkCallback, message_ingest
from readings.services.rejections import rejection_record
from readings.auth import CallbackTokenAuthentication
from readings.callback_schema import (
    acknowledge_schema,
    error_schema,
    event_schema,
    geoloc_schema,
    status_schema,
    uplink_schema,
)
from readings.limits import CallbackRateThrottle, FromAllowedNetwork, client_address
from readings.parsers import CallbackFormParser, CallbackJSONParser, CallbackTextParser
from readings.models import EventKind
from readings.other_callbacks import (
    STATUS_SENSOR,
    ErrorSerializer,
    EventSerializer,
    GeolocSerializer,
    StatusSerializer,
)
from readings.serializers import AcknowledgeSerializer, uplink_callback

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
            rejection_record(
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


@uplink_schema
class UplinkView(CallbackView):
    """/data/<sensor>: a DATA UPLINK, BIDIR or ADVANCED callback."""

    def handle_callback(self, request, data, body_raw: str, sensor: str):
        now = timezone.now()
        uplink = uplink_callback(data, sensor=sensor, body_raw=body_raw,
                                 content_type=self.media_type(request), now=now)
        result = message_ingest(uplink=uplink, now=now)
        # The transaction has committed: a 2xx now means "stored".
        if result.downlink_data:
            # The key is the device id exactly as the backend sent it.
            device_as_received = str(data.get("device", "")).strip()
            return Response({device_as_received: {"downlinkData": result.downlink_data}})
        return Response(status=status.HTTP_204_NO_CONTENT)


@acknowledge_schema
class AcknowledgeView(CallbackView):
    """/sigfox/acknowledge: a SERVICE ACKNOWLEDGE callback, the outcome of a downlink."""

    def handle_callback(self, request, data, body_raw: str):
        now = timezone.now()
        serializer = AcknowledgeSerializer(data=data, context={"now": now})
        serializer.is_valid(raise_exception=True)
        acknowledge_record(**serializer.validated_data, body_raw=body_raw, now=now)
        return Response(status=status.HTTP_204_NO_CONTENT)


@status_schema
class StatusView(CallbackView):
    """/sigfox/status: a SERVICE STATUS callback. A message of the device, its
    temperature and battery readings of the sensor "status" (STATUS_SENSOR)."""

    def handle_callback(self, request, data, body_raw: str):
        now = timezone.now()
        serializer = StatusSerializer(data=data, context={"now": now})
        serializer.is_valid(raise_exception=True)
        uplink = UplinkCallback(
            **serializer.validated_data,
            sensor=STATUS_SENSOR,
            body_raw=body_raw,
            content_type=self.media_type(request),
        )
        message_ingest(uplink=uplink, now=now)
        return Response(status=status.HTTP_204_NO_CONTENT)


@error_schema
class ErrorView(CallbackView):
    """/sigfox/error: an ERROR callback (keep-alive breached, network warning)."""

    def handle_callback(self, request, data, body_raw: str):
        now = timezone.now()
        serializer = ErrorSerializer(data=data, context={"now": now})
        serializer.is_valid(raise_exception=True)
        event_record(kind=EventKind.ERROR, **serializer.validated_data, body_raw=body_raw,
                     content_type=self.media_type(request), now=now)
        return Response(status=status.HTTP_204_NO_CONTENT)


@event_schema
class EventView(CallbackView):
    """/sigfox/event: an EVENT callback, set at group level."""

    def handle_callback(self, request, data, body_raw: str):
        now = timezone.now()
        serializer = EventSerializer(data=data, context={"now": now})
        serializer.is_valid(raise_exception=True)
        event_record(kind=EventKind.EVENT, **serializer.validated_data, body_raw=body_raw,
                     content_type=self.media_type(request), now=now)
        return Response(status=status.HTTP_204_NO_CONTENT)


@geoloc_schema
class GeolocView(CallbackView):
    """/sigfox/geoloc: a GEOLOC callback (deprecated by Sigfox), a location per message."""

    def handle_callback(self, request, data, body_raw: str):
        now = timezone.now()
        serializer = GeolocSerializer(data=data, context={"now": now})
        serializer.is_valid(raise_exception=True)
        location_record(**serializer.validated_data, body_raw=body_raw,
                        content_type=self.media_type(request), now=now)
        return Response(status=status.HTTP_204_NO_CONTENT)


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
