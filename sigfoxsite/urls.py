from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from django.views.generic import RedirectView

urlpatterns = [
    path("", RedirectView.as_view(pattern_name="graph", permanent=False)),
    path("admin/", admin.site.urls),
    # The site's own login, for readers and staff alike (the admin's refuses
    # non-staff users); django-axes guards both.
    path("accounts/login/", auth_views.LoginView.as_view(redirect_authenticated_user=True),
         name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("", include("readings.urls")),
    path("", include("dashboard.urls")),
]

handler404 = "readings.views.not_found"
