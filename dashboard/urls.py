from django.urls import path

from dashboard import views
from readings import converters  # noqa: F401  (registers <sigfox_id>)

urlpatterns = [
    path("", views.overview, name="overview"),
    path("graph", views.graph, name="graph"),
    path("devices/<sigfox_id:sigfox_id>", views.device_page, name="device"),
]
