from django.urls import path, register_converter

from readings import views


class SensorConverter:
    """The <sensor> of /data/<sensor>: a short name such as "1" or "kitchen"."""

    regex = r"[A-Za-z0-9_.\-]{1,64}"

    def to_python(self, value: str) -> str:
        return value

    def to_url(self, value: str) -> str:
        return value


register_converter(SensorConverter, "sensor")

urlpatterns = [
    path("data/<sensor:sensor>", views.UplinkView.as_view(), name="uplink"),
    path("sigfox/acknowledge", views.AcknowledgeView.as_view(), name="acknowledge"),
    path("graph", views.graph, name="graph"),
    path("healthz", views.healthz, name="healthz"),
]
