"""What a Sigfox receiver keeps: devices, the messages they sent, the values in them."""

from django.core.exceptions import ValidationError
from django.core.validators import RegexValidator
from django.db import models
from django.db.models.functions import Length, Upper
from django.db.models.lookups import Exact, GreaterThan

from readings import payload


def validate_payload_config(text: str) -> None:
    """A config must parse with the backend's grammar (readings.payload)."""
    if not text.strip():
        return
    try:
        payload.parse_config(text)
    except payload.PayloadError as exc:
        raise ValidationError(str(exc)) from exc


PAYLOAD_CONFIG_HELP = (
    "Sigfox custom payload config that splits the raw {data} into fields, e.g. "
    "<code>temp::int:8 vbat::uint:16:little-endian</code>. Try one with "
    "<code>manage.py decodepayload CONFIG HEX</code>."
)


class DeviceType(models.Model):
    """A Sigfox device type, registered from the deviceTypeId of a callback."""

    sigfox_id = models.CharField(
        "Sigfox id",
        max_length=24,
        unique=True,
        validators=[RegexValidator(r"^[0-9A-Fa-f]{1,24}$", "Up to 24 hexadecimal characters.")],
    )
    name = models.CharField(max_length=100, blank=True)
    payload_config = models.TextField(
        blank=True, validators=[validate_payload_config], help_text=PAYLOAD_CONFIG_HELP
    )
    first_seen = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["sigfox_id"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(Exact(models.F("sigfox_id"), Upper("sigfox_id")))
                & models.Q(GreaterThan(Length("sigfox_id"), 0)),
                name="devicetype_sigfox_id_upper_nonempty",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.sigfox_id} ({self.name})" if self.name else self.sigfox_id


class DownlinkMode(models.TextChoices):
    ONCE = "once", "Send once (until an ACKNOWLEDGE callback says ACKED)"
    ALWAYS = "always", "Send every time the device asks"


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
    device_type = models.ForeignKey(
        DeviceType, null=True, blank=True, on_delete=models.SET_NULL, related_name="devices"
    )
    payload_config = models.TextField(
        blank=True,
        validators=[validate_payload_config],
        help_text=PAYLOAD_CONFIG_HELP + " Overrides the device type's config.",
    )
    # The sequence number of the latest message, to count the ones lost in between.
    last_seq_number = models.PositiveIntegerField(null=True, blank=True, editable=False)
    downlink_data = models.CharField(
        max_length=16,
        blank=True,
        validators=[RegexValidator(r"^([0-9A-Fa-f]{16})?$", "Exactly 16 hexadecimal characters (8 bytes).")],
        help_text=(
            "8 bytes (16 hex characters) answered to the device's next uplink that asks for a "
            "downlink (DATA BIDIR callback with ack=true). For the firmware in this repository, "
            "see the byte layout in firmware/README.md, section \"Downlink layout\"."
        ),
    )
    downlink_mode = models.CharField(
        max_length=8, choices=DownlinkMode.choices, default=DownlinkMode.ONCE
    )
    downlink_delivered_at = models.DateTimeField(
        null=True, blank=True, help_text="When the device acknowledged the current downlink data."
    )

    class Meta:
        ordering = ["sigfox_id"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(Exact(models.F("sigfox_id"), Upper("sigfox_id")))
                & models.Q(GreaterThan(Length("sigfox_id"), 0)),
                name="device_sigfox_id_upper_nonempty",
            ),
            models.CheckConstraint(
                condition=models.Q(downlink_data="")
                | models.Q(Exact(Length("downlink_data"), 16)),
                name="device_downlink_data_8_bytes",
            ),
        ]

    def downlink_pending(self) -> str:
        """The downlink data to answer with now, or "" when there is none."""
        if not self.downlink_data:
            return ""
        if self.downlink_mode == DownlinkMode.ONCE and self.downlink_delivered_at is not None:
            return ""
        return self.downlink_data.lower()

    def __str__(self) -> str:
        return f"{self.sigfox_id} ({self.name})" if self.name else self.sigfox_id


class Message(models.Model):
    """One uplink as received, raw body included, stored once however often it arrives."""

    # No index of its own: the unique (device, time, dedup_key) index serves
    # every look-up by device, newest first included (scanned backwards).
    device = models.ForeignKey(
        Device, on_delete=models.CASCADE, related_name="messages", db_index=False
    )
    time = models.DateTimeField(help_text="Reception time reported by the Sigfox backend.")
    seq_number = models.PositiveIntegerField(null=True, blank=True)
    sensor = models.CharField(max_length=64, help_text="The <sensor> part of the callback URL.")
    body_raw = models.TextField(blank=True)
    content_type = models.CharField(max_length=100, blank=True)
    received_at = models.DateTimeField()
    data = models.CharField(max_length=24, blank=True, help_text="Raw payload, hex.")
    # Unindexed: it is only read through one message, and an index would be
    # paid on every insert for the rare deletion of a device type.
    device_type = models.ForeignKey(
        DeviceType, null=True, blank=True, on_delete=models.SET_NULL, related_name="messages",
        db_index=False,
    )
    ack = models.BooleanField(null=True, help_text="The device waited for a downlink.")
    long_polling = models.BooleanField(null=True)
    station = models.CharField(max_length=8, blank=True, help_text="First base station that reported it.")
    rssi = models.FloatField(null=True, blank=True, help_text="dBm")
    snr = models.FloatField(null=True, blank=True, help_text="dB")
    avg_snr = models.FloatField(null=True, blank=True, help_text="dB")
    lat = models.FloatField(null=True, blank=True, help_text="Base station latitude")
    lng = models.FloatField(null=True, blank=True, help_text="Base station longitude")
    # From the DATA ADVANCED callback, which arrives about 30 s later.
    lqi = models.CharField(max_length=16, blank=True)
    link_quality = models.PositiveSmallIntegerField(null=True, blank=True)
    operator_name = models.CharField(max_length=64, blank=True)
    country_code = models.CharField(max_length=8, blank=True)
    fixed_lat = models.FloatField(null=True, blank=True)
    fixed_lng = models.FloatField(null=True, blank=True)
    duplicates = models.JSONField(null=True, blank=True, help_text="Receiving stations (DATA ADVANCED).")
    computed_location = models.JSONField(null=True, blank=True)
    # What the payload config made of `data`, text fields included.
    decoded = models.JSONField(null=True, blank=True)
    downlink_data = models.CharField(max_length=16, blank=True, help_text="Downlink answered to this uplink.")
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
            models.Index(fields=["time"], name="message_time"),
        ]

    def __str__(self) -> str:
        return f"{self.device.sigfox_id} at {self.time:%Y-%m-%d %H:%M:%S}Z"


class Reading(models.Model):
    """One measured value: a quantity ("temp") of a device's sensor at a time."""

    # Both foreign keys lead an index already (the unique (message, quantity)
    # and the series index), so they get none of their own: every index is
    # paid for on each insert.
    message = models.ForeignKey(
        Message, on_delete=models.CASCADE, related_name="readings", db_index=False
    )
    # Copied from the message so that a series is read from one index alone.
    device = models.ForeignKey(
        Device, on_delete=models.CASCADE, related_name="readings", db_index=False
    )
    sensor = models.CharField(max_length=64)
    quantity = models.CharField(max_length=64)
    value = models.FloatField()
    time = models.DateTimeField()
    # True when the value was decoded here from the raw payload (and so is
    # replaced by `manage.py redecode`), False when the callback sent it.
    decoded = models.BooleanField(default=False)

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


class Reception(models.Model):
    """One base station's report of a message: the first callback, a duplicate, or DATA ADVANCED."""

    message = models.ForeignKey(Message, on_delete=models.CASCADE, related_name="receptions")
    station = models.CharField(max_length=8)
    rssi = models.FloatField(null=True, blank=True)
    snr = models.FloatField(null=True, blank=True)
    duplicate = models.BooleanField(default=False)
    received_at = models.DateTimeField()

    class Meta:
        ordering = ["received_at"]
        constraints = [
            models.UniqueConstraint(fields=["message", "station"], name="reception_unique_station"),
        ]

    def __str__(self) -> str:
        return f"station {self.station}"


class SequenceGap(models.Model):
    """Messages lost between two received ones, from a jump in sequence numbers."""

    device = models.ForeignKey(Device, on_delete=models.CASCADE, related_name="sequence_gaps")
    message = models.OneToOneField(Message, on_delete=models.CASCADE, related_name="gap_before")
    previous_seq_number = models.PositiveIntegerField()
    seq_number = models.PositiveIntegerField()
    missing = models.PositiveIntegerField()
    time = models.DateTimeField()

    class Meta:
        ordering = ["-time"]
        indexes = [models.Index(fields=["device", "-time"], name="gap_device_time")]

    def __str__(self) -> str:
        return f"{self.missing} lost before #{self.seq_number}"


class Downlink(models.Model):
    """Downlink data answered to an uplink, and what the ACKNOWLEDGE callback said of it."""

    device = models.ForeignKey(Device, on_delete=models.CASCADE, related_name="downlinks")
    message = models.OneToOneField(Message, on_delete=models.CASCADE, related_name="downlink")
    data = models.CharField(max_length=16)
    mode = models.CharField(max_length=8, choices=DownlinkMode.choices)
    answered_at = models.DateTimeField()
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    info_code = models.PositiveSmallIntegerField(null=True, blank=True)
    delivered = models.BooleanField(null=True, help_text="ACKED by the device (null: not known yet).")

    class Meta:
        ordering = ["-answered_at"]
        indexes = [models.Index(fields=["device", "-answered_at"], name="downlink_device_time")]

    def __str__(self) -> str:
        return f"{self.data} to {self.device.sigfox_id}"


class InfoCode(models.IntegerChoices):
    ACKED = 0, "ACKED"
    NO_ANSWER = 1, "NO_ANSWER"
    INVALID_PAYLOAD = 2, "INVALID_PAYLOAD"
    OVERRUN_ERROR = 3, "OVERRUN_ERROR"
    NETWORK_ERROR = 4, "NETWORK_ERROR"
    PENDING = 5, "PENDING"
    NO_DOWNLINK_CONTRACT = 6, "NO_DOWNLINK_CONTRACT"
    TOO_MANY_REQUESTS = 7, "TOO_MANY_REQUESTS"
    INVALID_CONFIGURATION = 8, "INVALID_CONFIGURATION"


class Acknowledge(models.Model):
    """A SERVICE ACKNOWLEDGE callback: the outcome of a downlink."""

    device = models.ForeignKey(Device, on_delete=models.CASCADE, related_name="acknowledges")
    time = models.DateTimeField()
    info_code = models.PositiveSmallIntegerField()
    info_meaning = models.CharField(max_length=32, help_text="The name of the info code.")
    info_message = models.CharField(max_length=200, blank=True)
    downlink_ack = models.BooleanField(null=True)
    downlink_overusage = models.BooleanField(null=True)
    downlink = models.ForeignKey(
        Downlink, null=True, blank=True, on_delete=models.SET_NULL, related_name="acknowledges"
    )
    body_raw = models.TextField(blank=True)
    received_at = models.DateTimeField()

    class Meta:
        ordering = ["-time"]
        constraints = [
            models.UniqueConstraint(
                fields=["device", "time", "info_code"], name="acknowledge_unique"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.info_meaning} for {self.device.sigfox_id}"
