from django.apps import AppConfig


class AlertsConfig(AppConfig):
    """Device health learned from each device's rhythm, alerts and their notifications."""

    default_auto_field = "django.db.models.BigAutoField"
    name = "alerts"
