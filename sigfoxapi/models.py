"""What the Sigfox API part of the server records: each backfill run, and how
far the worker has looked for messages that may have been missed."""

from django.db import models

from readings.models import Device, DeviceType


class BackfillReason(models.TextChoices):
    """Why a span was fetched back (sigfoxapi.watch finds the last three)."""

    MANUAL = "manual", "asked for (manage.py sigfox backfill)"
    ARRIVAL_GAP = "arrival-gap", "silence across the device type"
    SEQUENCE_GAP = "sequence-gap", "sequence numbers missing"
    NOT_DELIVERED = "not-delivered", "callbacks the backend could not deliver"


class BackfillScope(models.TextChoices):
    DEVICE_TYPE = "device_type", "device type"
    DEVICE = "device", "device"


class BackfillRun(models.Model):
    """One backfill of one device type (or one device) over one span of time.

    Counts are messages, over every attempt: `fetched` from the API, `stored`
    new, `already` stored by a callback or an earlier run, `failed` refused
    by the ingest or unreadable (their reasons in `error`). `api_calls`
    counts HTTP requests, retries included.

    The worker (sigfoxapi.watch) records each span it finds as a run with
    `retry_after` set, then runs it: a run an API error cut short stays
    incomplete, with what is left to read ending at `resume_before`, and is
    tried again after `retry_after` (empty: not by itself, e.g. the API
    refused the credentials: the operator sees the error).
    """

    device_type = models.ForeignKey(DeviceType, null=True, blank=True, on_delete=models.SET_NULL,
                                    related_name="backfill_runs")
    device = models.ForeignKey(Device, null=True, blank=True, on_delete=models.SET_NULL,
                               related_name="backfill_runs")
    scope = models.CharField(max_length=16, choices=BackfillScope.choices,
                             default=BackfillScope.DEVICE_TYPE)
    # The Sigfox id asked for (as this server writes it: upper case), kept
    # when the device or type row is deleted.
    sigfox_id = models.CharField("Sigfox id", max_length=24)
    since = models.DateTimeField(help_text="Start of the span, included.")
    until = models.DateTimeField(help_text="End of the span, excluded.")
    reason = models.CharField(max_length=16, choices=BackfillReason.choices)
    dry_run = models.BooleanField(default=False)
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)
    fetched = models.PositiveIntegerField(default=0)
    stored = models.PositiveIntegerField(default=0)
    replayed = models.PositiveIntegerField(
        default=0, help_text="Of the stored, those replayed from a failed callback's body.")
    already = models.PositiveIntegerField(default=0)
    failed = models.PositiveIntegerField(default=0)
    api_calls = models.PositiveIntegerField(default=0)
    # The whole span was read: no API error stopped the run.
    complete = models.BooleanField(default=False)
    error = models.TextField(blank=True)
    attempts = models.PositiveIntegerField(default=0)
    retry_after = models.DateTimeField(
        null=True, blank=True, help_text="When the worker runs it (again); empty: not by itself.")
    resume_before = models.DateTimeField(
        null=True, blank=True, help_text="What is left to read ends here (the API pages newest first).")

    class Meta:
        ordering = ["-started_at"]
        indexes = [
            models.Index(fields=["started_at"], name="backfill_started"),
            models.Index(fields=["retry_after"], name="backfill_due",
                         condition=models.Q(retry_after__isnull=False)),
        ]

    def __str__(self) -> str:
        return f"{self.sigfox_id} {self.since:%Y-%m-%d %H:%M}..{self.until:%Y-%m-%d %H:%M}Z"

    @classmethod
    def of(cls, scope: str, sigfox_id: str, **fields) -> "BackfillRun":
        """A new (unsaved) run of the device type or device with this Sigfox id
        (as this server writes it), linked to its row when there is one."""
        rows = DeviceType.objects if scope == BackfillScope.DEVICE_TYPE else Device.objects
        row = rows.filter(sigfox_id=sigfox_id).first()
        return cls(scope=scope, sigfox_id=sigfox_id, **fields,
                   **{"device_type" if scope == BackfillScope.DEVICE_TYPE else "device": row})


class Watermark(models.Model):
    """How far the worker has looked for one signal of missed messages
    (sigfoxapi.watch): per device type, message times for arrival gaps and the
    API's times for the callbacks-not-delivered list; for the whole site, the
    last SequenceGap id looked at."""

    device_type = models.ForeignKey(DeviceType, null=True, blank=True, on_delete=models.CASCADE,
                                    related_name="backfill_watermarks")
    signal = models.CharField(max_length=16, choices=BackfillReason.choices)
    until = models.DateTimeField(null=True, blank=True)
    last_id = models.BigIntegerField(null=True, blank=True)
    checked_at = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["device_type", "signal"],
                                               name="watermark_unique_signal")]


class ApiUsage(models.Model):
    """Requests the worker sent to the Sigfox API in one clock hour (UTC),
    held to SIGFOX_BACKFILL_CALLS_PER_HOUR: backfills and polls alike."""

    hour = models.DateTimeField(unique=True)
    calls = models.PositiveIntegerField(default=0)

    def __str__(self) -> str:
        return f"{self.hour:%Y-%m-%d %H}h: {self.calls}"
