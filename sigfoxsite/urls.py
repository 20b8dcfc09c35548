from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    # The site's own login, for readers and staff alike (the admin's refuses
    # non-staff users); django-axes guards both.
    path("accounts/login/", auth_views.LoginView.as_view(redirect_authenticated_user=True),
         name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("", include("readings.urls")),
    path("", include("dashboard.urls")),
    path("", include("alerts.urls")),
    path("", include("storage.urls")),
    path("", include("storage.status_urls")),
]

handler404 = "readings.views.not_found"
