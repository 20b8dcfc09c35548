from django.urls import path

from alerts import api
from readings import converters  # noqa: F401  (registers <sigfox_id>)

urlpatterns = [
    path("api/devices/<sigfox_id:sigfox_id>/states/", api.StateChangeListView.as_view(),
         name="api-device-states"),
    path("api/devices/<sigfox_id:sigfox_id>/mute/", api.MuteView.as_view(), name="api-device-mute"),
]
