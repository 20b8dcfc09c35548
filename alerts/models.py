"""Health of each device, its changes of state, notification channels and the
notifications sent (or to send) for each change."""

from django.db import models

from alerts import health
from readings.models import Device, DeviceType


class State(models.TextChoices):
    NEW = health.NEW, "new"
    UP = health.UP, "up"
    LATE = health.LATE, "late"
    DOWN = health.DOWN, "down"
    MUTED = health.MUTED, "muted"


class HealthSettings(models.Model):
    """What a device type or a device sets instead of what is learned or the
    site's defaults; an empty field means "not set here"."""

    interval_s = models.FloatField(
        null=True, blank=True,
        help_text="Expected seconds between messages; empty: learned from the device's rhythm.")
    late_after = models.FloatField(
        null=True, blank=True, help_text="Late after this many expected intervals (site: 1.5).")
    down_after = models.FloatField(
        null=True, blank=True, help_text="Down after this many expected intervals (site: 3).")
    grace_s = models.FloatField(null=True, blank=True, help_text="Seconds added to both (site: 0).")

    class Meta:
        abstract = True


class DeviceTypeHealth(HealthSettings):
    device_type = models.OneToOneField(DeviceType, on_delete=models.CASCADE, primary_key=True,
                                       related_name="health_settings")

    class Meta:
        verbose_name = "device type health settings"
        verbose_name_plural = "device type health settings"


class DeviceHealth(HealthSettings):
    """One row per device: its state, its learned rhythm, its own settings."""

    device = models.OneToOneField(Device, on_delete=models.CASCADE, primary_key=True,
                                  related_name="health")
    state = models.CharField(max_length=8, choices=State.choices, default=State.NEW)
    state_since = models.DateTimeField(null=True, blank=True)
    # The learned rhythm: recent intervals in seconds (newest last), their
    # median, and the newest message time they were learned from.
    samples = models.JSONField(default=list, blank=True)
    learned_interval_s = models.FloatField(null=True, blank=True)
    learned_until = models.DateTimeField(null=True, blank=True)
    muted_until = models.DateTimeField(null=True, blank=True)
    # Set by a Sigfox ERROR callback of severity ERROR (keep-alive breached);
    # cleared by the next message.
    keep_alive_breached_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name_plural = "device health"
        indexes = [models.Index(fields=["state", "device"], name="health_state")]

    def __str__(self) -> str:
        return f"{self.device_id}: {self.state}"


class StateChange(models.Model):
    device = models.ForeignKey(Device, on_delete=models.CASCADE, related_name="state_changes")
    time = models.DateTimeField()
    from_state = models.CharField(max_length=8, choices=State.choices)
    to_state = models.CharField(max_length=8, choices=State.choices)
    reason = models.CharField(max_length=300)

    class Meta:
        indexes = [models.Index(fields=["device", "-time"], name="statechange_device_time")]

    def __str__(self) -> str:
        return f"{self.from_state} → {self.to_state}"


class Channel(models.Model):
    """Where notifications go: an Apprise URL (mailtos://…, ntfy://…, json://…),
    for a device type or a device. The site's own list is SIGFOX_ALERT_URLS."""

    name = models.CharField(max_length=100)
    url = models.CharField(max_length=1000, help_text="An Apprise URL, e.g. ntfys://ntfy.sh/my-topic")
    device_type = models.ForeignKey(DeviceType, null=True, blank=True, on_delete=models.CASCADE,
                                    related_name="channels")
    device = models.ForeignKey(Device, null=True, blank=True, on_delete=models.CASCADE,
                               related_name="channels")

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=models.Q(device_type__isnull=True) | models.Q(device__isnull=True),
                name="channel_for_a_type_or_a_device"),
        ]

    def __str__(self) -> str:
        return self.name


class Notification(models.Model):
    """One state change sent to one channel, recorded before the send and after
    it, so that a crash in between repeats it once but never loses it."""

    class Status(models.TextChoices):
        PENDING = "pending"
        SENDING = "sending"
        SENT = "sent"
        FAILED = "failed"  # tried; tried again at next_attempt_at

    change = models.ForeignKey(StateChange, on_delete=models.CASCADE, related_name="notifications")
    # The channel's URL (Channel.url or one of SIGFOX_ALERT_URLS) as the send used it.
    url = models.CharField(max_length=1000)
    channel = models.ForeignKey(Channel, null=True, blank=True, on_delete=models.SET_NULL)
    kind = models.CharField(max_length=10)  # "alert", "recovery" or "reminder"
    # 0 for the alert or recovery itself; 1, 2, ... for the reminders of an
    # alert while the device stays down (SIGFOX_ALERT_REMINDER_S apart).
    reminder = models.PositiveIntegerField(default=0)
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField()
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    error = models.TextField(blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["change", "url", "reminder"],
                                               name="one_notification_per_change_and_channel")]
        indexes = [models.Index(fields=["status", "next_attempt_at"], name="notification_due")]
