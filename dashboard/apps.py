from django.apps import AppConfig


class DashboardConfig(AppConfig):
    """The pages people read: charts, device pages, the site's login pages."""

    default_auto_field = "django.db.models.BigAutoField"
    name = "dashboard"
