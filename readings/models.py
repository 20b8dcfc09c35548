"""What a Sigfox receiver keeps: devices, the messages they sent, the values in them.

Over 400 lines, on purpose: Django finds an app's models in one module, and
these tables are read together (a message, its readings, its receptions and
sequence records); splitting them would only add imports between the parts.
"""

import math

from django.core.exceptions import ValidationError
from django.core.validators import RegexValidator
from django.db import models
from django.utils.deconstruct import deconstructible
from django.db.models.functions import Length, Upper
from django.db.models.lookups import Exact, GreaterThan

from readings import payload, sigfox


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


# Retention policy fields of a device type and a device (storage.retention):
# empty inherits (device from its type, type from the site's settings), 0 keeps forever.
_INHERIT = " Empty: as the {parent}; 0: forever."
RAW_RETENTION_HELP = "Days to keep readings and their messages."
ROLLUP_RETENTION_HELP = "Days to keep hourly and daily rollups (charts of older times draw from them)."
BODY_RETENTION_HELP = "Days to keep each message's raw callback body (about a tenth of its size)."


def retention_help(text: str, parent: str) -> str:
    return text + _INHERIT.format(parent=parent)


class DeviceType(models.Model):
    """A Sigfox device type, registered from the deviceTypeId of a callback."""

    sigfox_id = models.CharField(
        "Sigfox id",
        max_length=sigfox.DEVICE_TYPE_ID_MAX_CHARS,
        unique=True,
        validators=[RegexValidator(rf"^{sigfox.DEVICE_TYPE_ID_PATTERN}$",
                                   "Up to 24 hexadecimal characters.")],
    )
    name = models.CharField(max_length=100, blank=True)
    payload_config = models.TextField(
        blank=True, validators=[validate_payload_config], help_text=PAYLOAD_CONFIG_HELP
    )
    payload_config_notice = models.TextField(
        blank=True, editable=False,
        help_text="Set when an upgrade found that this config reads differently now.",
    )
    first_seen = models.DateTimeField(null=True, blank=True)

    raw_retention_days = models.PositiveIntegerField(
        null=True, blank=True, help_text=retention_help(RAW_RETENTION_HELP, "site (SIGFOX_RAW_RETENTION_DAYS)"))
    rollup_retention_days = models.PositiveIntegerField(
        null=True, blank=True, help_text=retention_help(ROLLUP_RETENTION_HELP, "site (SIGFOX_ROLLUP_RETENTION_DAYS)"))
    body_retention_days = models.PositiveIntegerField(
        null=True, blank=True, help_text=retention_help(BODY_RETENTION_HELP, "site (SIGFOX_BODY_RETENTION_DAYS)"))

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
        help_text=(
            "Hex device id as the Sigfox backend sends it: stored upper-case without leading "
            "zeros, so 004e2f1a (as printed on a module) and 4E2F1A are the same device."
        ),
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
    payload_config_notice = models.TextField(
        blank=True, editable=False,
        help_text="Set when an upgrade found that this config reads differently now.",
    )
    downlink_data = models.CharField(
        max_length=2 * sigfox.DOWNLINK_PAYLOAD_BYTES,
        blank=True,
        validators=[RegexValidator(rf"^([0-9A-Fa-f]{{{2 * sigfox.DOWNLINK_PAYLOAD_BYTES}}})?$",
                                   "Exactly 16 hexadecimal characters (8 bytes).")],
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
    series_refused = models.PositiveIntegerField(
        default=0, editable=False,
        help_text="Readings not stored because they would have made a series past the bounds "
        "(SIGFOX_MAX_SERIES_PER_DEVICE, SIGFOX_MAX_QUANTITIES).",
    )
    series_refused_at = models.DateTimeField(null=True, blank=True, editable=False)

    raw_retention_days = models.PositiveIntegerField(
        null=True, blank=True, help_text=retention_help(RAW_RETENTION_HELP, "device type"))
    rollup_retention_days = models.PositiveIntegerField(
        null=True, blank=True, help_text=retention_help(ROLLUP_RETENTION_HELP, "device type"))
    body_retention_days = models.PositiveIntegerField(
        null=True, blank=True, help_text=retention_help(BODY_RETENTION_HELP, "device type"))

    class Meta:
        ordering = ["sigfox_id"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(Exact(models.F("sigfox_id"), Upper("sigfox_id")))
                & models.Q(GreaterThan(Length("sigfox_id"), 0)),
                name="device_sigfox_id_upper_nonempty",
            ),
            # One device, one id: the backend drops leading zeros, so must we.
            models.CheckConstraint(
                condition=~models.Q(sigfox_id__startswith="0") | models.Q(sigfox_id="0"),
                name="device_sigfox_id_no_leading_zero",
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


class MessageRecovery(models.TextChoices):
    """How a message missed by its callbacks was fetched back (sigfoxapi.backfill)."""

    CALLBACK = "", "callback"
    API = "api", "Sigfox API messages"
    REPLAY = "replay", "replayed failed callback"


class Message(models.Model):
    """One radio frame, raw body included, stored once however often it arrives.

    A frame is identified by its device and time (CALLBACKS.md section 5): a
    device cannot send two frames within one second, so every later copy (a
    retry, another base station's, the BIDIR or UPLINK twin, DATA ADVANCED,
    a callback to another sensor path) merges into this row.
    """

    # No index of its own: the unique (device, time) index serves every
    # look-up by device, newest first included (scanned backwards).
    device = models.ForeignKey(
        Device, on_delete=models.CASCADE, related_name="messages", db_index=False
    )
    time = models.DateTimeField(help_text="Reception time reported by the Sigfox backend.")
    seq_number = models.PositiveIntegerField(null=True, blank=True)
    sensor = models.CharField(
        max_length=64,
        help_text=(
            "The <sensor> of the first callback's URL; readings decoded from the payload are "
            "kept under it. Each reading has its own sensor."
        ),
    )
    body_raw = models.TextField(blank=True)
    content_type = models.CharField(max_length=100, blank=True)
    received_at = models.DateTimeField()
    data = models.CharField(max_length=2 * sigfox.UPLINK_PAYLOAD_MAX_BYTES, blank=True,
                            help_text="Raw payload, hex.")
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
    # What the payload config made of `data`, text fields included, as
    # decoded (before any scale): rewritten by `manage.py redecode`. The API's "decoded".
    payload_fields = models.JSONField(null=True, blank=True)
    # Numbers the callback sent itself, as sent (integers exact, before any
    # scale), per sensor path: {sensor: {name: number}}.
    values_raw = models.JSONField(
        null=True, blank=True, help_text="Values the callback sent, as sent (before any scale)."
    )
    # Text the callback sent in a value field (the backend renders `char`
    # custom fields as text): {name: text}. Never a reading.
    text_values = models.JSONField(null=True, blank=True, help_text="Text fields the callback sent.")
    # Fields that were dropped while the frame was stored: {name: reason}.
    field_errors = models.JSONField(
        null=True, blank=True, help_text="Fields left out of the readings, and why."
    )
    downlink_data = models.CharField(max_length=16, blank=True, help_text="Downlink answered to this uplink.")
    # How the frame reached us when it was first stored: a callback, or
    # fetched back through the Sigfox API after its callbacks failed (sigfoxapi).
    # A database default, so that the fast path's INSERT needs no change.
    recovered = models.CharField(
        max_length=8, blank=True, default="", db_default="", choices=MessageRecovery.choices,
        help_text="Empty for a callback; how it was fetched back through the Sigfox API otherwise.",
    )

    class Meta:
        ordering = ["-time"]
        constraints = [
            models.UniqueConstraint(fields=["device", "time"], name="message_unique_frame"),
        ]
        indexes = [
            models.Index(fields=["time"], name="message_time"),
            # The few messages fetched back through the Sigfox API, for the
            # admin's filter; callbacks never enter it.
            models.Index(fields=["time"], condition=~models.Q(recovered=""),
                         name="message_recovered_time"),
        ]

    def __str__(self) -> str:
        return f"{self.device.sigfox_id} at {self.time:%Y-%m-%d %H:%M:%S}Z"


class Reading(models.Model):
    """One measured value: a quantity ("temp") of a device's sensor at a time.

    On PostgreSQL this table and readings_message are partitioned by `time`
    (storage.partitions); the primary key there is (id, time), and `message`
    has no database constraint (a key into a partitioned table would need the
    time too): Django's CASCADE, which runs in Python, and retention keep it whole.
    """

    # Both foreign keys lead an index already (the unique (message, quantity)
    # and the series index), so they get none of their own: every index is
    # paid for on each insert.
    message = models.ForeignKey(
        Message, on_delete=models.CASCADE, related_name="readings", db_index=False,
        db_constraint=False,
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
    from_payload = models.BooleanField(default=False)

    class Meta:
        ordering = ["-time"]
        constraints = [
            # Callbacks of one frame to /data/1 and /data/2 each add their own. The
            # time (the message's) is in the key because on PostgreSQL the table is
            # partitioned by it, and a partitioned table's unique keys must hold it.
            models.UniqueConstraint(
                fields=["message", "sensor", "quantity", "time"], name="reading_unique_per_frame"
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


class Series(models.Model):
    """A series of readings: one quantity of one device's sensor.

    Registered by ingest when its first reading is stored, and bounded per
    device (SIGFOX_MAX_SERIES_PER_DEVICE) so that a flood of new field names
    or sensor paths cannot grow what every page and query walks through.
    Pickers and filters take their choices from here, a small table.
    """

    # The unique (device, sensor, quantity) index serves look-ups by device.
    device = models.ForeignKey(Device, on_delete=models.CASCADE, related_name="series", db_index=False)
    sensor = models.CharField(max_length=64)
    quantity = models.CharField(max_length=64)
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["device", "sensor", "quantity"]
        verbose_name_plural = "series"
        constraints = [
            models.UniqueConstraint(fields=["device", "sensor", "quantity"], name="series_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.sensor}/{self.quantity}"


class Quantity(models.Model):
    """A quantity name in use on this site, bounded by SIGFOX_MAX_QUANTITIES."""

    name = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["name"]
        verbose_name_plural = "quantities"

    def __str__(self) -> str:
        return self.name


class Rejection(models.Model):
    """A callback this server refused (400, 401, 403, 413, 429), for the operator to see:
    the Sigfox backend is the only client that sees the answer.

    Bounded: services.rejections.rejection_record keeps the newest REJECTIONS_KEPT rows
    and records at most one a minute per device (or address) and status, so
    that an unauthenticated flood cannot grow the database.
    """

    time = models.DateTimeField()
    status = models.PositiveSmallIntegerField()
    # As the callback named it when it could be read; no foreign key: refused
    # callbacks must not register devices.
    device_id = models.CharField("device id", max_length=8, blank=True)
    reason = models.CharField(max_length=300)
    path = models.CharField(max_length=200)
    client_address = models.CharField(max_length=45, blank=True)
    repeated = models.PositiveIntegerField(
        default=0, help_text="Further rejections of the same kind within the minute, not recorded."
    )

    class Meta:
        ordering = ["-time"]
        indexes = [models.Index(fields=["device_id", "-time"], name="rejection_device_time")]

    def __str__(self) -> str:
        return f"{self.status} {self.device_id or self.client_address}: {self.reason[:60]}"


class Reception(models.Model):
    """One base station's report of a message: the first callback, a duplicate, or DATA ADVANCED."""

    message = models.ForeignKey(Message, on_delete=models.CASCADE, related_name="receptions",
                                db_constraint=False)
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
    """A jump in sequence numbers between a message and the one just before it in time.

    Either messages lost in between (`missing` > 0), or a reset of the
    device's counter (`reset`: a jump larger than the device could have sent
    frames in the time between, see readings.sigfox.is_counter_reset). Kept
    up to date as messages arrive in any order: a late retry or a recovered
    message shrinks or removes the gap it falls into.
    """

    device = models.ForeignKey(Device, on_delete=models.CASCADE, related_name="sequence_gaps")
    message = models.OneToOneField(Message, on_delete=models.CASCADE, related_name="gap_before",
                                   db_constraint=False)
    previous_seq_number = models.PositiveIntegerField()
    seq_number = models.PositiveIntegerField()
    missing = models.PositiveIntegerField(help_text="Messages lost in between (0 for a reset).")
    reset = models.BooleanField(default=False, help_text="The device's counter restarted.")
    time = models.DateTimeField()

    class Meta:
        ordering = ["-time"]
        indexes = [models.Index(fields=["device", "-time"], name="gap_device_time")]

    def __str__(self) -> str:
        if self.reset:
            return f"counter reset before #{self.seq_number}"
        return f"{self.missing} lost before #{self.seq_number}"


class MessageConflict(models.Model):
    """A copy of a frame that disagreed with the stored one: the first value was kept."""

    message = models.ForeignKey(Message, on_delete=models.CASCADE, related_name="conflicts",
                                db_constraint=False)
    # "seqNumber", or the quantity of a reading (with its sensor).
    variable = models.CharField(max_length=64)
    sensor = models.CharField(max_length=64, blank=True)
    kept_value = models.CharField(max_length=64)
    other_value = models.CharField(max_length=64)
    received_at = models.DateTimeField()

    class Meta:
        ordering = ["-received_at"]

    def __str__(self) -> str:
        return f"{self.variable}: kept {self.kept_value}, not {self.other_value}"


@deconstructible
class FiniteWithin:
    """A validator: a finite number from -limit to limit."""

    def __init__(self, limit: float):
        self.limit = limit

    def __call__(self, value: float) -> None:
        if not (isinstance(value, int | float) and math.isfinite(value)
                and -self.limit <= value <= self.limit):
            raise ValidationError(f"Must be a finite number from {-self.limit:g} to {self.limit:g}.")

    def __eq__(self, other) -> bool:
        return isinstance(other, FiniteWithin) and other.limit == self.limit


class QuantitySetting(models.Model):
    """How one quantity of a device type (or one device) is shown and scaled.

    A payload field is usually a raw integer (tenths of a degree, millivolts):
    the reading stored is raw * scale + offset in `unit`, and the raw value
    stays with the message. A device's own setting overrides its type's.
    """

    device_type = models.ForeignKey(
        DeviceType, null=True, blank=True, on_delete=models.CASCADE, related_name="quantity_settings"
    )
    device = models.ForeignKey(
        Device, null=True, blank=True, on_delete=models.CASCADE, related_name="quantity_settings"
    )
    quantity = models.CharField(max_length=64, help_text="Field name, e.g. temp or vbat.")
    unit = models.CharField(max_length=16, blank=True, help_text="Unit of the scaled value, e.g. °C or V.")
    label = models.CharField(max_length=64, blank=True, help_text="Name shown in charts, e.g. Temperature.")
    scale = models.FloatField(
        default=1.0, validators=[FiniteWithin(1e6)],
        help_text="The reading is raw × scale + offset (at most 10⁶ either way).",
    )
    offset = models.FloatField(default=0.0, validators=[FiniteWithin(1e12)])

    class Meta:
        ordering = ["quantity"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(device_type__isnull=False, device__isnull=True)
                | models.Q(device_type__isnull=True, device__isnull=False),
                name="quantitysetting_of_type_or_device",
            ),
            models.UniqueConstraint(
                fields=["device_type", "quantity"], condition=models.Q(device__isnull=True),
                name="quantitysetting_unique_per_type",
            ),
            models.UniqueConstraint(
                fields=["device", "quantity"], condition=models.Q(device_type__isnull=True),
                name="quantitysetting_unique_per_device",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.quantity} ({self.unit})" if self.unit else self.quantity


class Downlink(models.Model):
    """Downlink data answered to an uplink, and what the ACKNOWLEDGE callback said of it."""

    device = models.ForeignKey(Device, on_delete=models.CASCADE, related_name="downlinks")
    message = models.OneToOneField(Message, on_delete=models.CASCADE, related_name="downlink",
                                   db_constraint=False)
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


# {infoCode} of a DOWNLINK ACKNOWLEDGE callback, named as the backend names them.
InfoCode = models.IntegerChoices(
    "InfoCode", [(name, (code, name)) for code, name in sigfox.INFO_CODES.items()]
)


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


class EventKind(models.TextChoices):
    ERROR = "error", "ERROR callback (keep-alive breached, network warning)"
    EVENT = "event", "EVENT callback (group level: sequence, contract, ...)"


class DeviceEvent(models.Model):
    """What the Sigfox cloud says of a device besides its messages: an ERROR
    callback (keep-alive breached, network warning) or an EVENT callback
    (break in the message sequence, off contract, ...). CALLBACKS.md section 7.

    Stored once however often the callback is retried: `fingerprint` is a
    digest of what the callback says (readings.services.events).
    """

    # Null for an EVENT that names no device (its source is a group or a device type).
    # No index of its own: the (device, time) index serves look-ups by device.
    device = models.ForeignKey(
        Device, null=True, blank=True, on_delete=models.CASCADE, related_name="events",
        db_index=False,
    )
    time = models.DateTimeField(help_text="When the Sigfox cloud raised it ({time}).")
    kind = models.CharField(max_length=8, choices=EventKind.choices)
    event_type = models.CharField(
        max_length=64, blank=True, help_text="{eventType} of an EVENT, e.g. OFF_CONTRACT."
    )
    severity = models.CharField(max_length=16, blank=True, help_text="ERROR or WARN, upper case.")
    info = models.CharField(
        max_length=1000, blank=True,
        help_text="{info} of an ERROR; the cause an EVENT gives (deviceCause, deviceShortCause).",
    )
    # Every variable of an EVENT as received, JSON text (deviceInfo) decoded.
    variables = models.JSONField(null=True, blank=True)
    field_errors = models.JSONField(null=True, blank=True, help_text="Fields left out, and why.")
    body_raw = models.TextField(blank=True)
    content_type = models.CharField(max_length=100, blank=True)
    fingerprint = models.CharField(
        max_length=64, unique=True, editable=False,
        help_text="Digest of kind, device or source, time, type, severity and info.",
    )
    received_at = models.DateTimeField()

    class Meta:
        ordering = ["-time"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(kind__in=EventKind.values), name="deviceevent_kind_known"
            ),
        ]
        indexes = [
            models.Index(fields=["device", "-time"], name="event_device_time"),
            models.Index(fields=["time"], name="event_time"),
        ]

    def __str__(self) -> str:
        what = self.event_type or self.kind.upper()
        return f"{what} {self.severity} of {self.device.sigfox_id if self.device else '-'}"


class DeviceLocation(models.Model):
    """Where a device was when it sent one message: one row per message (its
    device and time), from the most precise source that placed it.

    Sources (`source`), most precise first:

    - `payload`: the device's own fix, a pair of numbers named like
      coordinates (`lat`/`lng`, `latitude`/`longitude`, `lon`, any case) in
      its decoded payload or among the values of its callback, after their
      quantity scale; no radius. The callback variables `{lat}` and `{lng}`
      are the base station's position (CALLBACKS.md section 2), never this.
    - `network`: Sigfox's estimate from DATA ADVANCED `{computedLocation}`
      (also the Sigfox API's `computedLocation`, fetched back by sigfoxapi),
      with its radius.
    - `geoloc`: Sigfox's estimate from a GEOLOC callback (deprecated), with
      its radius.

    A more precise source replaces a less precise one for the same message;
    between equals the first stored is kept (readings.services.events.location_keep).
    """

    class Source(models.TextChoices):
        PAYLOAD = "payload", "the device's own fix (payload or callback values)"
        NETWORK = "network", "Sigfox's estimate (DATA ADVANCED computedLocation)"
        GEOLOC = "geoloc", "Sigfox's estimate (GEOLOC callback)"

    device = models.ForeignKey(
        Device, on_delete=models.CASCADE, related_name="locations", db_index=False
    )
    time = models.DateTimeField(help_text="Time of the message located.")
    lat = models.FloatField(help_text="Degrees.")
    lng = models.FloatField(help_text="Degrees.")
    radius_m = models.PositiveIntegerField(
        null=True, blank=True, help_text="Metres: the network's uncertainty (none for a payload fix)."
    )
    source = models.CharField(max_length=32, blank=True, choices=Source.choices,
                              help_text="Which source placed the message.")
    sigfox_source = models.CharField(
        max_length=32, blank=True,
        help_text="Sigfox's code of its estimate: {geolocSource}, or computedLocation's source.",
    )
    seq_number = models.PositiveIntegerField(null=True, blank=True)
    field_errors = models.JSONField(null=True, blank=True, help_text="Fields left out, and why.")
    # The GEOLOC callback as received; empty for a location taken from a
    # message (the message keeps its body).
    body_raw = models.TextField(blank=True)
    content_type = models.CharField(max_length=100, blank=True)
    received_at = models.DateTimeField()

    class Meta:
        ordering = ["-time"]
        constraints = [
            # The unique index serves look-ups by device, newest first included.
            models.UniqueConstraint(fields=["device", "time"], name="location_unique_message"),
            models.CheckConstraint(
                condition=models.Q(lat__gte=-90, lat__lte=90, lng__gte=-180, lng__lte=180),
                name="location_on_earth",
            ),
        ]
        indexes = [models.Index(fields=["time"], name="location_time")]

    def __str__(self) -> str:
        return f"{self.lat:.5f}, {self.lng:.5f}"


class RollupResolution(models.IntegerChoices):
    HOUR = 3600, "hourly"
    DAY = 86400, "daily"


class Rollup(models.Model):
    """Aggregates of one series over one UTC hour or day: count, sum, and the
    first, lowest, highest and last reading with their times.

    Kept by readings.services.rollups from the readings (never by ingest
    itself); retention of raw readings leaves them, so a chart of a year whose
    readings are gone still draws. Times are float epoch seconds, the very
    numbers the series query computes from a reading's time, so that a chart
    drawn from rollups and one drawn from readings agree to the bit. Ties
    break as in readings.selectors.series: first and last by (time, value),
    lowest by (value, time), highest by (value desc, time).
    """

    device = models.ForeignKey(Device, on_delete=models.CASCADE, related_name="rollups", db_index=False)
    sensor = models.CharField(max_length=64)
    quantity = models.CharField(max_length=64)
    resolution_s = models.PositiveIntegerField(choices=RollupResolution.choices)
    start = models.DateTimeField(help_text="Start of the hour or day, UTC.")
    count = models.PositiveIntegerField()
    sum = models.FloatField()
    first_epoch_s = models.FloatField()
    first = models.FloatField()
    min_epoch_s = models.FloatField()
    min = models.FloatField()
    max_epoch_s = models.FloatField()
    max = models.FloatField()
    last_epoch_s = models.FloatField()
    last = models.FloatField()

    class Meta:
        ordering = ["device", "sensor", "quantity", "resolution_s", "start"]
        constraints = [
            # Also the index of every read: a series at a resolution over a range.
            models.UniqueConstraint(
                fields=["device", "sensor", "quantity", "resolution_s", "start"], name="rollup_unique"
            ),
        ]
        indexes = [models.Index(fields=["resolution_s", "start"], name="rollup_resolution_start")]

    def __str__(self) -> str:
        return f"{self.sensor}/{self.quantity} {self.get_resolution_s_display()} from {self.start:%Y-%m-%d %H:%M}Z"


class RollupDirty(models.Model):
    """An hour of a series whose rollups must be computed again: written when
    readings are changed or deleted other than by retention (an admin
    deletion, redecode); new readings are found by RollupProgress instead.
    A log (duplicates allowed): the worker deletes the rows it has read."""

    device_id = models.BigIntegerField()
    sensor = models.CharField(max_length=64)
    quantity = models.CharField(max_length=64)
    hour = models.DateTimeField(help_text="Start of the hour, UTC.")

    class Meta:
        indexes = [models.Index(fields=["device_id", "quantity", "hour"], name="rollupdirty_series")]


class RollupProgress(models.Model):
    """How far the rollups have taken in new readings (one row).

    Every reading with id <= reading_id is in the rollups. A reading id
    becomes safe to take once no transaction that could still commit a lower
    id is running: candidate_id (the highest id seen committed at one pass)
    is taken at a later pass once every transaction running at the time of
    candidate_xmax (PostgreSQL's next transaction id then) has ended.
    """

    reading_id = models.BigIntegerField(default=0)
    candidate_id = models.BigIntegerField(default=0)
    candidate_xmax = models.BigIntegerField(null=True, blank=True)
    updated_at = models.DateTimeField(null=True, blank=True)
