from django.apps import AppConfig


class SigfoxApiConfig(AppConfig):
    """The Sigfox REST API: messages the callbacks missed fetched back
    (backfill, by hand and by the worker), and the backend's callbacks set up
    on a device type in one command."""

    default_auto_field = "django.db.models.BigAutoField"
    name = "sigfoxapi"
    verbose_name = "Sigfox API"
