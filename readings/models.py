"""What a Sigfox receiver keeps: devices, the messages they sent, the values in them."""

from django.core.validators import RegexValidator
from django.db import models
from django.db.models.functions import Length, Upper
from django.db.models.lookups import Exact, GreaterThan


class Device(models.Model):
    """A Sigfox device, registered the first time one of its callbacks arrives."""

    sigfox_id = models.CharField(
        "Sigfox id",
        max_length=8,
        unique=True,
        validators=[RegexValidator(r"^[0-9A-Fa-f]{1,8}$", "Up to 8 hexadecimal characters.")],
        help_text="Hex device id as the Sigfox backend sends it (stored upper-case).",
    )
    name = models.CharField(max_length=100, blank=True)
    first_seen = models.DateTimeField(
        null=True, blank=True, help_text="Time of the earliest message stored."
    )
    last_seen = models.DateTimeField(
        null=True, blank=True, help_text="Time of the latest message stored."
    )

    class Meta:
        ordering = ["sigfox_id"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(Exact(models.F("sigfox_id"), Upper("sigfox_id")))
                & models.Q(GreaterThan(Length("sigfox_id"), 0)),
                name="device_sigfox_id_upper_nonempty",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.sigfox_id} ({self.name})" if self.name else self.sigfox_id


class Message(models.Model):
    """One uplink as received, raw body included, stored once however often it arrives."""

    device = models.ForeignKey(Device, on_delete=models.CASCADE, related_name="messages")
    time = models.DateTimeField(help_text="Reception time reported by the Sigfox backend.")
    seq_number = models.PositiveIntegerField(null=True, blank=True)
    sensor = models.CharField(max_length=64, help_text="The <sensor> part of the callback URL.")
    body_raw = models.TextField(blank=True)
    content_type = models.CharField(max_length=100, blank=True)
    received_at = models.DateTimeField()
    # Identifies the message among the device's messages at the same time: the
    # sequence number when the backend sends one, else a digest of the values.
    dedup_key = models.CharField(max_length=80, editable=False)

    class Meta:
        ordering = ["-time"]
        constraints = [
            models.UniqueConstraint(
                fields=["device", "time", "dedup_key"], name="message_unique_per_device"
            ),
        ]
        indexes = [
            models.Index(fields=["device", "-time"], name="message_device_time"),
            models.Index(fields=["time"], name="message_time"),
        ]

    def __str__(self) -> str:
        return f"{self.device.sigfox_id} at {self.time:%Y-%m-%d %H:%M:%S}Z"


class Reading(models.Model):
    """One measured value: a quantity ("temp") of a device's sensor at a time."""

    message = models.ForeignKey(Message, on_delete=models.CASCADE, related_name="readings")
    # Copied from the message so that a series is read from one index alone.
    device = models.ForeignKey(Device, on_delete=models.CASCADE, related_name="readings")
    sensor = models.CharField(max_length=64)
    quantity = models.CharField(max_length=64)
    value = models.FloatField()
    time = models.DateTimeField()

    class Meta:
        ordering = ["-time"]
        constraints = [
            models.UniqueConstraint(
                fields=["message", "quantity"], name="reading_unique_per_message"
            ),
            models.CheckConstraint(
                condition=models.Q(GreaterThan(Length("quantity"), 0)), name="reading_quantity_nonempty"
            ),
        ]
        indexes = [
            # "this series over a time range, newest first" is a range scan here.
            models.Index(
                fields=["device", "sensor", "quantity", "-time"], name="reading_series_time"
            ),
            # Pruning by age and the admin's date hierarchy read by time alone.
            models.Index(fields=["time"], name="reading_time"),
        ]

    def __str__(self) -> str:
        return f"{self.quantity}={self.value:g}"
