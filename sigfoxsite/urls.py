from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView

urlpatterns = [
    path("", RedirectView.as_view(pattern_name="graph", permanent=False)),
    path("admin/", admin.site.urls),
    path("", include("readings.urls")),
]

handler404 = "readings.views.not_found"
