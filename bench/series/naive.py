"""The reference the series endpoint is measured against: every reading of
the range, loaded into Python and sent to the browser as it is."""

from django.urls import include, path
from django.utils import timezone
from rest_framework.exceptions import NotFound
from rest_framework.response import Response

from readings.api.base import ReadAPIView
from readings.api.params import SeriesParams
from readings.api.views import _params
from readings.models import Reading
from readings.selectors.devices import device_get
from readings.selectors.units import quantity_unit, series_label
from readings.times import iso_utc


class NaiveSeriesView(ReadAPIView):
    def get(self, request):
        params = _params(SeriesParams, request).validated_data
        device = device_get(sigfox_id=params["device"])
        if device is None:
            raise NotFound("No such device.")
        rows = Reading.objects.filter(device=device, quantity=params["quantity"])
        if params.get("sensor"):
            rows = rows.filter(sensor=params["sensor"])
        since, until = params.get("since"), params.get("until") or timezone.now()
        if since:
            rows = rows.filter(time__gte=since)
        rows = rows.filter(time__lt=until).order_by("time").values_list("time", "value")
        points = [[int(time.timestamp() * 1000), value] for time, value in rows]
        return Response({
            "device": device.sigfox_id, "sensor": params.get("sensor"), "quantity": params["quantity"],
            "unit": quantity_unit(params["quantity"]),
            "label": series_label(device.sigfox_id, params.get("sensor"), params["quantity"]),
            "since": iso_utc(since) if since else None, "until": iso_utc(until),
            "max_points": len(points), "count": len(points), "method": "raw", "source": "naive",
            "points": points,
            "buckets": [],
        })


urlpatterns = [
    path("api/series/", NaiveSeriesView.as_view()),
    path("", include("sigfoxsite.urls")),
]
