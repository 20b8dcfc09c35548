from django.urls import path, register_converter
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from readings import api, sigfox, views


class SensorConverter:
    """The <sensor> of /data/<sensor>: a short name such as "1" or "kitchen"."""

    regex = r"[A-Za-z0-9_.\-]{1,64}"

    def to_python(self, value: str) -> str:
        return value

    def to_url(self, value: str) -> str:
        return value


class SigfoxIdConverter:
    """A device's hex Sigfox id, in any case, padded or not; stored in its one
    spelling (upper case, no leading zeros)."""

    regex = sigfox.DEVICE_ID_PATTERN

    def to_python(self, value: str) -> str:
        return sigfox.normalize_device_id(value)

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
    path("api/quantity-settings/", api.QuantitySettingListView.as_view(),
         name="api-quantity-settings"),
    path("api/quantity-settings/<int:pk>/", api.QuantitySettingDetailView.as_view(),
         name="api-quantity-setting"),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
]
