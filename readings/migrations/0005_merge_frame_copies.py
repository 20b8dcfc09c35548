"""One frame, one message; one device, one id (data, part 2 of 3).

Earlier versions could store one radio frame twice (a DATA ADVANCED copy
with a seqNumber after an uplink without one, copies through other sensor
paths or encodings), and one device twice (4E2F1A from callbacks, 004E2F1A
typed in the admin). Before 0006 puts the new unique constraints on, this
merges them, losing nothing:

- devices: ids become upper case without leading zeros; a device whose
  normalised id is taken is merged into that one (its messages, readings,
  acknowledges, downlinks and sequence records re-pointed);
- messages of one device at one time: the oldest row is kept, the others'
  readings, receptions and downlink move to it, metadata it lacks is
  filled in, and a value that disagrees with the kept one is recorded as a
  MessageConflict instead of being stored twice;
- sequence records are computed again from the messages as they now are,
  counter resets apart from losses;
- payload configs that the corrected grammar refuses or reads differently
  are flagged (payload_config_notice) with the advice to run redecode.
"""

import logging
from datetime import timedelta

from django.conf import settings
from django.db import migrations
from django.db.models import Count, Min

log = logging.getLogger("readings.migrations")

MERGED_FIELDS = (
    "ack", "long_polling", "station", "rssi", "snr", "avg_snr", "lat", "lng",
    "lqi", "link_quality", "operator_name", "country_code", "fixed_lat", "fixed_lng",
    "duplicates", "computed_location", "decoded", "data", "seq_number", "downlink_data",
    "device_type_id", "values_raw", "text_values", "field_errors",
)


def _blank(value) -> bool:
    return value is None or value == ""


def merge_message(apps, keeper, other) -> None:
    Message = apps.get_model("readings", "Message")
    Reading = apps.get_model("readings", "Reading")
    Reception = apps.get_model("readings", "Reception")
    SequenceGap = apps.get_model("readings", "SequenceGap")
    Downlink = apps.get_model("readings", "Downlink")
    Acknowledge = apps.get_model("readings", "Acknowledge")
    MessageConflict = apps.get_model("readings", "MessageConflict")

    now = other.received_at
    if (keeper.seq_number is not None and other.seq_number is not None
            and keeper.seq_number != other.seq_number):
        MessageConflict.objects.create(
            message=keeper, variable="seqNumber", kept_value=str(keeper.seq_number),
            other_value=str(other.seq_number), received_at=now,
        )
    changes = {}
    for name in MERGED_FIELDS:
        if _blank(getattr(keeper, name)) and not _blank(getattr(other, name)):
            changes[name] = getattr(other, name)
            setattr(keeper, name, changes[name])
    if changes:
        Message.objects.filter(pk=keeper.pk).update(**changes)

    kept = {(r.sensor, r.quantity): r for r in Reading.objects.filter(message=keeper)}
    for reading in Reading.objects.filter(message=other):
        existing = kept.get((reading.sensor, reading.quantity))
        if existing is None:
            Reading.objects.filter(pk=reading.pk).update(message=keeper, device_id=keeper.device_id)
            kept[(reading.sensor, reading.quantity)] = reading
            continue
        if existing.value != reading.value:
            MessageConflict.objects.create(
                message=keeper, variable=reading.quantity, sensor=reading.sensor,
                kept_value=repr(existing.value), other_value=repr(reading.value), received_at=now,
            )
        reading.delete()

    stations = set(Reception.objects.filter(message=keeper).values_list("station", flat=True))
    for reception in Reception.objects.filter(message=other):
        if reception.station in stations:
            reception.delete()
        else:
            Reception.objects.filter(pk=reception.pk).update(message=keeper)
            stations.add(reception.station)

    SequenceGap.objects.filter(message=other).delete()
    other_downlink = Downlink.objects.filter(message=other).first()
    if other_downlink is not None:
        keeper_downlink = Downlink.objects.filter(message=keeper).first()
        if keeper_downlink is None:
            Downlink.objects.filter(pk=other_downlink.pk).update(
                message=keeper, device_id=keeper.device_id
            )
        else:
            Acknowledge.objects.filter(downlink=other_downlink).update(downlink=keeper_downlink)
            other_downlink.delete()
    Message.objects.filter(pk=other.pk).delete()


def normalise(sigfox_id: str) -> str:
    return sigfox_id.strip().lstrip("0").upper() or "0"


def merge_devices(apps) -> None:
    Device = apps.get_model("readings", "Device")
    Message = apps.get_model("readings", "Message")
    Reading = apps.get_model("readings", "Reading")
    SequenceGap = apps.get_model("readings", "SequenceGap")
    Downlink = apps.get_model("readings", "Downlink")
    Acknowledge = apps.get_model("readings", "Acknowledge")

    for device in Device.objects.order_by("pk"):
        target = normalise(device.sigfox_id)
        if target == device.sigfox_id:
            continue
        keeper = Device.objects.filter(sigfox_id=target).first()
        if keeper is None:
            Device.objects.filter(pk=device.pk).update(sigfox_id=target)
            continue
        log.warning("merging device %s into %s (one device, one id)", device.sigfox_id, target)
        for message in Message.objects.filter(device=device).order_by("time", "pk"):
            twin = Message.objects.filter(device=keeper, time=message.time).order_by("pk").first()
            Message.objects.filter(pk=message.pk).update(device=keeper)
            Reading.objects.filter(message=message).update(device=keeper)
            message.device_id = keeper.pk
            if twin is not None:
                if twin.pk < message.pk:
                    merge_message(apps, twin, message)
                else:
                    merge_message(apps, message, twin)
        SequenceGap.objects.filter(device=device).update(device=keeper)
        Downlink.objects.filter(device=device).update(device=keeper)
        Reading.objects.filter(device=device).update(device=keeper)
        taken = set(Acknowledge.objects.filter(device=keeper).values_list("time", "info_code"))
        for ack in Acknowledge.objects.filter(device=device):
            if (ack.time, ack.info_code) in taken:
                ack.delete()
            else:
                Acknowledge.objects.filter(pk=ack.pk).update(device=keeper)
        changes = {}
        for name in ("name", "payload_config", "downlink_data", "device_type_id",
                     "downlink_delivered_at"):
            if _blank(getattr(keeper, name)) and not _blank(getattr(device, name)):
                changes[name] = getattr(device, name)
        if device.first_seen and (keeper.first_seen is None or device.first_seen < keeper.first_seen):
            changes["first_seen"] = device.first_seen
        if device.last_seen and (keeper.last_seen is None or device.last_seen > keeper.last_seen):
            changes["last_seen"] = device.last_seen
        if changes:
            Device.objects.filter(pk=keeper.pk).update(**changes)
        device.delete()


def merge_messages(apps) -> None:
    Message = apps.get_model("readings", "Message")
    groups = (
        Message.objects.order_by().values("device_id", "time")
        .annotate(copies=Count("pk"), first=Min("pk")).filter(copies__gt=1)
    )
    for group in groups.iterator():
        keeper = Message.objects.get(pk=group["first"])
        others = Message.objects.filter(
            device_id=group["device_id"], time=group["time"]
        ).exclude(pk=keeper.pk).order_by("pk")
        for other in others:
            merge_message(apps, keeper, other)
            keeper.refresh_from_db()


def recompute_gaps(apps) -> None:
    from readings import sigfox

    Message = apps.get_model("readings", "Message")
    SequenceGap = apps.get_model("readings", "SequenceGap")
    spacing_s = getattr(settings, "SIGFOX_MIN_FRAME_SPACING_S", sigfox.DEFAULT_MIN_FRAME_SPACING_S)
    SequenceGap.objects.all().delete()
    rows = (
        Message.objects.filter(seq_number__isnull=False).order_by("device_id", "time")
        .values_list("pk", "device_id", "time", "seq_number")
    )
    batch, previous = [], None
    for pk, device_pk, time, seq in rows.iterator(chunk_size=5000):
        if previous is not None and previous[0] == device_pk:
            jump = sigfox.sequence_jump(previous[2], seq)
            elapsed_s = (time - previous[1]) / timedelta(seconds=1)
            reset = sigfox.is_counter_reset(jump=jump, elapsed_s=elapsed_s, min_spacing_s=spacing_s)
            if reset or jump > 1:
                batch.append(SequenceGap(
                    device_id=device_pk, message_id=pk, previous_seq_number=previous[2],
                    seq_number=seq, missing=0 if reset else jump - 1, reset=reset, time=time,
                ))
        previous = (device_pk, time, seq)
        if len(batch) >= 1000:
            SequenceGap.objects.bulk_create(batch)
            batch = []
    SequenceGap.objects.bulk_create(batch)


def flag_payload_configs(apps) -> None:
    from readings import payload

    for model_name in ("DeviceType", "Device"):
        model = apps.get_model("readings", model_name)
        for row in model.objects.exclude(payload_config=""):
            reason = payload.legacy_meaning_changed(row.payload_config)
            if reason:
                notice = (f"{reason} Run `manage.py redecode` to decode stored messages "
                          "with the corrected grammar.")
                model.objects.filter(pk=row.pk).update(payload_config_notice=notice)
                log.warning("%s %s payload config: %s", model_name, row.sigfox_id, notice)


def forwards(apps, schema_editor):
    merge_devices(apps)
    merge_messages(apps)
    recompute_gaps(apps)
    flag_payload_configs(apps)


class Migration(migrations.Migration):
    dependencies = [("readings", "0004_frame_identity")]

    operations = [migrations.RunPython(forwards, migrations.RunPython.noop)]
