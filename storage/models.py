"""What the storage app records of its own work."""

from django.db import models


class RetentionRun(models.Model):
    """One application of the retention policy (storage.retention), by the
    worker or by `manage.py prunereadings`: what it removed, and how long it took."""

    started_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)
    trigger = models.CharField(max_length=32, help_text="runworker or prunereadings.")
    partitions_dropped = models.JSONField(default=list, blank=True,
                                          help_text="Names of the partitions dropped.")
    readings_deleted = models.BigIntegerField(default=0, help_text="Readings removed, partitions included.")
    messages_deleted = models.BigIntegerField(default=0, help_text="Messages removed, partitions included.")
    bodies_cleared = models.BigIntegerField(default=0)
    rollups_deleted = models.BigIntegerField(default=0)
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["-started_at"]
        indexes = [models.Index(fields=["-started_at"], name="retentionrun_started")]

    def __str__(self) -> str:
        return f"retention {self.started_at:%Y-%m-%d %H:%M:%S}Z ({self.trigger})"
