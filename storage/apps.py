from django.apps import AppConfig


class StorageConfig(AppConfig):
    """Years of data on one machine: time partitions on PostgreSQL, retention,
    sizes for staff, and the move of a SQLite installation to PostgreSQL."""

    default_auto_field = "django.db.models.BigAutoField"
    name = "storage"

    def ready(self):
        from storage import checks  # noqa: F401  (registers the settings check)
