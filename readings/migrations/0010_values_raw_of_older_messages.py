"""Messages stored before values_raw existed get it from their readings.

Before quantity scales existed, a reading the callback sent held the value as
sent, so it is the raw value that redecode scales and that a later copy of
the frame is compared with. Without it, a copy would fill values_raw with its
own (possibly conflicting) values, and those readings could never be scaled.
"""

from django.db import migrations


def fill(apps, schema_editor):
    Message = apps.get_model("readings", "Message")
    Reading = apps.get_model("readings", "Reading")
    last_pk = 0
    while True:
        batch = list(
            Message.objects.filter(pk__gt=last_pk, values_raw__isnull=True)
            .order_by("pk").values_list("pk", flat=True)[:2000]
        )
        if not batch:
            break
        last_pk = batch[-1]
        raw: dict[int, dict] = {}
        rows = Reading.objects.filter(message_id__in=batch, decoded=False).values_list(
            "message_id", "sensor", "quantity", "value")
        for message_pk, sensor, quantity, value in rows:
            raw.setdefault(message_pk, {}).setdefault(sensor, {})[quantity] = value
        for message_pk, values in raw.items():
            Message.objects.filter(pk=message_pk).update(values_raw=values)


class Migration(migrations.Migration):
    dependencies = [("readings", "0009_quantity_bounds")]

    operations = [migrations.RunPython(fill, migrations.RunPython.noop)]
