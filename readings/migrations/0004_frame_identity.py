"""One frame, one message (schema, part 1 of 3).

New columns and tables; the old identity (device, time, dedup_key) goes, the
new one (device, time) comes in 0006 once 0005 has merged the copies of a
frame that earlier versions stored twice.
"""

import django.core.validators
import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('readings', '0003_fewer_indexes'),
    ]

    operations = [
        migrations.CreateModel(
            name='MessageConflict',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('variable', models.CharField(max_length=64)),
                ('sensor', models.CharField(blank=True, max_length=64)),
                ('kept_value', models.CharField(max_length=64)),
                ('other_value', models.CharField(max_length=64)),
                ('received_at', models.DateTimeField()),
            ],
            options={
                'ordering': ['-received_at'],
            },
        ),
        migrations.CreateModel(
            name='QuantitySetting',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('quantity', models.CharField(help_text='Field name, e.g. temp or vbat.', max_length=64)),
                ('unit', models.CharField(blank=True, help_text='Unit of the scaled value, e.g. °C or V.', max_length=16)),
                ('label', models.CharField(blank=True, help_text='Name shown in charts, e.g. Temperature.', max_length=64)),
                ('scale', models.FloatField(default=1.0, help_text='The reading is raw × scale + offset.')),
                ('offset', models.FloatField(default=0.0)),
            ],
            options={
                'ordering': ['quantity'],
            },
        ),
        migrations.RemoveConstraint(
            model_name='message',
            name='message_unique_per_device',
        ),
        migrations.RemoveConstraint(
            model_name='reading',
            name='reading_unique_per_message',
        ),
        migrations.RemoveField(
            model_name='device',
            name='last_seq_number',
        ),
        migrations.AddField(
            model_name='device',
            name='payload_config_notice',
            field=models.TextField(blank=True, editable=False, help_text='Set when an upgrade found that this config reads differently now.'),
        ),
        migrations.AddField(
            model_name='devicetype',
            name='payload_config_notice',
            field=models.TextField(blank=True, editable=False, help_text='Set when an upgrade found that this config reads differently now.'),
        ),
        migrations.AddField(
            model_name='message',
            name='field_errors',
            field=models.JSONField(blank=True, help_text='Fields left out of the readings, and why.', null=True),
        ),
        migrations.AddField(
            model_name='message',
            name='text_values',
            field=models.JSONField(blank=True, help_text='Text fields the callback sent.', null=True),
        ),
        migrations.AddField(
            model_name='message',
            name='values_raw',
            field=models.JSONField(blank=True, help_text='Values the callback sent, as sent (before any scale).', null=True),
        ),
        migrations.AddField(
            model_name='sequencegap',
            name='reset',
            field=models.BooleanField(default=False, help_text="The device's counter restarted."),
        ),
        migrations.AlterField(
            model_name='device',
            name='sigfox_id',
            field=models.CharField(help_text='Hex device id as the Sigfox backend sends it: stored upper-case without leading zeros, so 004e2f1a (as printed on a module) and 4E2F1A are the same device.', max_length=8, unique=True, validators=[django.core.validators.RegexValidator('^[0-9A-Fa-f]{1,8}$', 'Up to 8 hexadecimal characters.')], verbose_name='Sigfox id'),
        ),
        migrations.AlterField(
            model_name='message',
            name='sensor',
            field=models.CharField(help_text="The <sensor> of the first callback's URL; readings decoded from the payload are kept under it. Each reading has its own sensor.", max_length=64),
        ),
        migrations.AlterField(
            model_name='sequencegap',
            name='missing',
            field=models.PositiveIntegerField(help_text='Messages lost in between (0 for a reset).'),
        ),
        migrations.AddConstraint(
            model_name='reading',
            constraint=models.UniqueConstraint(fields=('message', 'sensor', 'quantity'), name='reading_unique_per_frame'),
        ),
        migrations.AddField(
            model_name='messageconflict',
            name='message',
            field=models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='conflicts', to='readings.message'),
        ),
        migrations.AddField(
            model_name='quantitysetting',
            name='device',
            field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.CASCADE, related_name='quantity_settings', to='readings.device'),
        ),
        migrations.AddField(
            model_name='quantitysetting',
            name='device_type',
            field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.CASCADE, related_name='quantity_settings', to='readings.devicetype'),
        ),
        migrations.AddConstraint(
            model_name='quantitysetting',
            constraint=models.CheckConstraint(condition=models.Q(models.Q(('device__isnull', True), ('device_type__isnull', False)), models.Q(('device__isnull', False), ('device_type__isnull', True)), _connector='OR'), name='quantitysetting_of_type_or_device'),
        ),
        migrations.AddConstraint(
            model_name='quantitysetting',
            constraint=models.UniqueConstraint(condition=models.Q(('device__isnull', True)), fields=('device_type', 'quantity'), name='quantitysetting_unique_per_type'),
        ),
        migrations.AddConstraint(
            model_name='quantitysetting',
            constraint=models.UniqueConstraint(condition=models.Q(('device_type__isnull', True)), fields=('device', 'quantity'), name='quantitysetting_unique_per_device'),
        ),
    ]
