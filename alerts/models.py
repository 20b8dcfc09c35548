"""Health of each device, its changes of state, notification channels and the
notifications sent (or to send) for each change."""

from django.core.validators import MinValueValidator
from django.db import models

from alerts import health, rules
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
        null=True, blank=True, validators=[MinValueValidator(1.0)],
        help_text="Expected seconds between messages; empty: learned from the device's rhythm.")
    late_after = models.FloatField(
        null=True, blank=True, validators=[MinValueValidator(1.0)],
        help_text="Late after this many expected intervals (site: 1.5).")
    down_after = models.FloatField(
        null=True, blank=True, validators=[MinValueValidator(1.0)],
        help_text="Down after this many expected intervals (site: 3).")
    grace_s = models.FloatField(null=True, blank=True, validators=[MinValueValidator(0.0)],
                                help_text="Seconds added to both (site: 0).")

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
    # An alert went out and its recovery has not (alerts.health.notification_kind).
    alert_open = models.BooleanField(default=False)

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
        GAVE_UP = "gave_up", "gave up"  # failed alerts.notify.MAX_ATTEMPTS times

    # What is notified: a change of state, or a rule's breach (its alert or recovery).
    change = models.ForeignKey(StateChange, null=True, blank=True, on_delete=models.CASCADE,
                               related_name="notifications")
    breach = models.ForeignKey("RuleBreach", null=True, blank=True, on_delete=models.CASCADE,
                               related_name="notifications")
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
        constraints = [
            models.UniqueConstraint(fields=["change", "url", "reminder"],
                                    name="one_notification_per_change_and_channel"),
            models.UniqueConstraint(fields=["breach", "url", "kind"],
                                    name="one_notification_per_breach_and_channel"),
            models.CheckConstraint(
                condition=models.Q(change__isnull=False, breach__isnull=True)
                | models.Q(change__isnull=True, breach__isnull=False),
                name="notification_of_a_change_or_a_breach"),
        ]
        indexes = [models.Index(fields=["status", "next_attempt_at"], name="notification_due")]


class Rule(models.Model):
    """A rule on values (alerts.rules): for the whole site, a device type or a
    device. The most specific scope wins for each kind and quantity."""

    class Kind(models.TextChoices):
        ABOVE = rules.ABOVE, "value above"
        BELOW = rules.BELOW, "value below (battery: quantity battery_v)"
        LOSS = rules.LOSS, "lost messages above a share of the last N"
        SILENCE = rules.SILENCE, "no value for a time"

    name = models.CharField(max_length=100, blank=True)
    device_type = models.ForeignKey(DeviceType, null=True, blank=True, on_delete=models.CASCADE,
                                    related_name="value_rules",
                                    help_text="Empty with the device: for the whole site.")
    device = models.ForeignKey(Device, null=True, blank=True, on_delete=models.CASCADE,
                               related_name="value_rules")
    kind = models.CharField(max_length=8, choices=Kind.choices)
    quantity = models.CharField(max_length=64, blank=True,
                                help_text="The quantity watched (e.g. temp, battery_v); "
                                "empty for lost messages.")
    threshold = models.FloatField(null=True, blank=True,
                                  help_text="The bound; for lost messages a share, 0 to 1.")
    hysteresis = models.FloatField(
        default=0, help_text="Back within bounds only this far on the other side of the bound, "
        "so a hovering value does not flap.")
    window = models.PositiveIntegerField(null=True, blank=True,
                                         help_text="Lost messages: the last N messages. "
                                         "No value: seconds.")
    enabled = models.BooleanField(default=True)
    # When it was last written: every device is judged again under it.
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["pk"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(device_type__isnull=True) | models.Q(device__isnull=True),
                name="rule_for_a_type_or_a_device"),
            models.CheckConstraint(condition=models.Q(hysteresis__gte=0),
                                   name="rule_hysteresis_not_negative"),
            models.CheckConstraint(
                condition=(models.Q(kind__in=[rules.ABOVE, rules.BELOW], threshold__isnull=False)
                           & ~models.Q(quantity=""))
                | models.Q(kind=rules.LOSS, threshold__gte=0, threshold__lte=1, window__gte=1)
                | (models.Q(kind=rules.SILENCE, window__gte=1) & ~models.Q(quantity="")),
                name="rule_complete_for_its_kind"),
        ]

    def __str__(self) -> str:
        return self.name or rules.describe(kind=self.kind, quantity=self.quantity,
                                           threshold=self.threshold, window=self.window)

    @property
    def scope(self) -> str:
        if self.device_id:
            return f"device {self.device}"
        if self.device_type_id:
            return f"type {self.device_type}"
        return "site"


class RuleBreach(models.Model):
    """A rule broken by a device, from when it was seen until it was back within
    bounds (ended_at): its opening is an alert, its end a recovery."""

    rule = models.ForeignKey(Rule, on_delete=models.CASCADE, related_name="breaches")
    device = models.ForeignKey(Device, on_delete=models.CASCADE, related_name="rule_breaches")
    started_at = models.DateTimeField()
    ended_at = models.DateTimeField(null=True, blank=True)
    # What was seen: the value (the share lost; the seconds without a value).
    value = models.FloatField(null=True, blank=True)
    end_value = models.FloatField(null=True, blank=True)
    reason = models.CharField(max_length=300)
    # False when it ended because the rule was disabled or no longer applies.
    recovered = models.BooleanField(default=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["rule", "device"], condition=models.Q(ended_at=None),
                                    name="one_open_breach_per_rule_and_device"),
        ]
        indexes = [models.Index(fields=["device", "-started_at"], name="breach_device_time")]

    def __str__(self) -> str:
        return f"{self.device_id}: {self.reason}"


class RuleCursor(models.Model):
    """How far the rules have judged a device: its messages up to
    `checked_until`, under the rules as they stood at `rules_seen_at`."""

    device = models.OneToOneField(Device, on_delete=models.CASCADE, primary_key=True,
                                  related_name="rule_cursor")
    checked_until = models.DateTimeField(null=True, blank=True)
    rules_seen_at = models.DateTimeField(null=True, blank=True)
