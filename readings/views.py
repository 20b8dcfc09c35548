"""HTTP entry points: the Sigfox callback, the chart page, the health check."""

import logging

from django.conf import settings
from django.contrib.auth.views import redirect_to_login
from django.db import DatabaseError, connection
from django.http import JsonResponse
from django.shortcuts import render
from django.views.defaults import page_not_found
from django.utils import timezone
from rest_framework import status
from rest_framework.exceptions import UnsupportedMediaType
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from readings import selectors, services
from readings.parsers import CallbackFormParser, CallbackJSONParser, CallbackTextParser
from readings.serializers import UplinkSerializer

log = logging.getLogger(__name__)


class UplinkView(APIView):
    """POST/PUT /data/<sensor> (or GET with a query string): one Sigfox uplink."""

    authentication_classes: list = []
    permission_classes = [AllowAny]
    parser_classes = [CallbackJSONParser, CallbackFormParser, CallbackTextParser]
    http_method_names = ["get", "post", "put"]

    def post(self, request, sensor: str):
        if request.content_type == "" and request.META.get("CONTENT_LENGTH", "0") not in ("", "0"):
            raise UnsupportedMediaType("", detail="Set a Content-Type: application/json, "
                                       "application/x-www-form-urlencoded or text/plain.")
        # Read (and size-check) the raw body before the parsers see it, so that
        # it can be stored exactly as received.
        body_raw = request.body.decode("utf-8", errors="replace")
        return self.ingest(request, sensor, request.data, body_raw)

    put = post

    def get(self, request, sensor: str):
        return self.ingest(request, sensor, request.query_params.dict(), request.META.get("QUERY_STRING", ""))

    def ingest(self, request, sensor: str, data, body_raw: str):
        now = timezone.now()
        serializer = UplinkSerializer(data=data, context={"now": now})
        serializer.is_valid(raise_exception=True)
        fields = serializer.validated_data
        result = services.message_ingest(
            device_id=fields["device"],
            time=fields["time"],
            sensor=sensor,
            values=fields["values"],
            seq_number=fields.get("seqNumber"),
            body_raw=body_raw,
            content_type=request.content_type or "",
            now=now,
        )
        if not result.created:
            log.info("duplicate callback for %s at %s ignored", fields["device"], fields["time"])
        # 2xx only now that the transaction has committed; no body, since there
        # is no downlink to send.
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
