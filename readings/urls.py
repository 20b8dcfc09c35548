from django.urls import path, register_converter
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from readings import api, views


class SensorConverter:
    """The <sensor> of /data/<sensor>: a short name such as "1" or "kitchen"."""

    regex = r"[A-Za-z0-9_.\-]{1,64}"

    def to_python(self, value: str) -> str:
        return value

    def to_url(self, value: str) -> str:
        return value


class SigfoxIdConverter:
    """A device's hex Sigfox id, in any case; stored upper-case."""

    regex = r"[0-9A-Fa-f]{1,8}"

    def to_python(self, value: str) -> str:
        return value.upper()

    def to_url(self, value: str) -> str:
        return value


register_converter(SensorConverter, "sensor")
register_converter(SigfoxIdConverter, "sigfox_id")

urlpatterns = [
    path("data/<sensor:sensor>", views.UplinkView.as_view(), name="uplink"),
    path("sigfox/acknowledge", views.AcknowledgeView.as_view(), name="acknowledge"),
    path("graph", views.graph, name="graph"),
    path("devices/<sigfox_id:sigfox_id>", views.device_page, name="device"),
    path("healthz", views.healthz, name="healthz"),
    # The read API.
    path("api/devices/", api.DeviceListView.as_view(), name="api-devices"),
    path("api/devices/<sigfox_id:sigfox_id>/", api.DeviceDetailView.as_view(), name="api-device"),
    path("api/devices/<sigfox_id:sigfox_id>/link/", api.LinkQualityView.as_view(),
         name="api-device-link"),
    path("api/messages/", api.MessageListView.as_view(), name="api-messages"),
    path("api/readings/", api.ReadingListView.as_view(), name="api-readings"),
    path("api/readings.csv", api.ReadingsCsvView.as_view(), name="api-readings-csv"),
    path("api/series/", api.SeriesView.as_view(), name="api-series"),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
]
