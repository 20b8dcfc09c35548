from django.urls import path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from readings import converters, views  # noqa: F401  (converters registers <sigfox_id>)
from readings.api import views as api

urlpatterns = [
    path("data/<sensor:sensor>", views.UplinkView.as_view(), name="uplink"),
    path("sigfox/acknowledge", views.AcknowledgeView.as_view(), name="acknowledge"),
    path("sigfox/status", views.StatusView.as_view(), name="sigfox-status"),
    path("sigfox/error", views.ErrorView.as_view(), name="sigfox-error"),
    path("sigfox/event", views.EventView.as_view(), name="sigfox-event"),
    path("sigfox/geoloc", views.GeolocView.as_view(), name="sigfox-geoloc"),
    path("healthz", views.healthz, name="healthz"),
    # The read API.
    path("api/devices/", api.DeviceListView.as_view(), name="api-devices"),
    path("api/devices/<sigfox_id:sigfox_id>/", api.DeviceDetailView.as_view(), name="api-device"),
    path("api/devices/<sigfox_id:sigfox_id>/link/", api.RadioStatsView.as_view(),
         name="api-device-link"),
    path("api/devices/<sigfox_id:sigfox_id>/events/", api.DeviceEventListView.as_view(),
         name="api-device-events"),
    path("api/devices/<sigfox_id:sigfox_id>/locations/", api.DeviceLocationListView.as_view(),
         name="api-device-locations"),
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
