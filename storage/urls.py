from django.urls import path

from readings import converters  # noqa: F401  (registers <sigfox_id>)
from storage import api

urlpatterns = [
    path("api/devices/<sigfox_id:sigfox_id>/retention/", api.DeviceRetentionView.as_view(),
         name="api-device-retention"),
]
