"""Locations from every source: a message's location may now come from its
payload or from DATA ADVANCED computedLocation besides a GEOLOC callback.

`source` now names which of them placed the message (payload, network,
geoloc); Sigfox's own code of its estimate ({geolocSource}, which `source`
held until now) moves to `sigfox_source`. Every row stored so far came from a
GEOLOC callback.
"""

from django.db import migrations, models
from django.db.models import F


def geoloc_rows_named(apps, schema_editor):
    DeviceLocation = apps.get_model("readings", "DeviceLocation")
    DeviceLocation.objects.update(sigfox_source=F("source"), source="geoloc")


def geoloc_rows_unnamed(apps, schema_editor):
    DeviceLocation = apps.get_model("readings", "DeviceLocation")
    DeviceLocation.objects.update(source=F("sigfox_source"))


class Migration(migrations.Migration):

    dependencies = [
        ("readings", "0015_message_recovered"),
    ]

    operations = [
        migrations.AddField(
            model_name="devicelocation",
            name="sigfox_source",
            field=models.CharField(
                blank=True, max_length=32,
                help_text=(
                    "Sigfox's code of its estimate: {geolocSource}, or computedLocation's source."
                ),
            ),
        ),
        migrations.RunPython(geoloc_rows_named, geoloc_rows_unnamed, elidable=True),
        migrations.AlterField(
            model_name="devicelocation",
            name="radius_m",
            field=models.PositiveIntegerField(
                blank=True, null=True,
                help_text="Metres: the network's uncertainty (none for a payload fix).",
            ),
        ),
        migrations.AlterField(
            model_name="devicelocation",
            name="source",
            field=models.CharField(
                blank=True, max_length=32,
                choices=[
                    ("payload", "the device's own fix (payload or callback values)"),
                    ("network", "Sigfox's estimate (DATA ADVANCED computedLocation)"),
                    ("geoloc", "Sigfox's estimate (GEOLOC callback)"),
                ],
                help_text="Which source placed the message.",
            ),
        ),
    ]
