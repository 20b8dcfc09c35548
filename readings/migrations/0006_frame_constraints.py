"""One frame, one message; one device, one id (constraints, part 3 of 3)."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("readings", "0005_merge_frame_copies")]

    operations = [
        migrations.RemoveField(
            model_name='message',
            name='dedup_key',
        ),
        migrations.AddConstraint(
            model_name='device',
            constraint=models.CheckConstraint(condition=models.Q(models.Q(('sigfox_id__startswith', '0'), _negated=True), ('sigfox_id', '0'), _connector='OR'), name='device_sigfox_id_no_leading_zero'),
        ),
        migrations.AddConstraint(
            model_name='message',
            constraint=models.UniqueConstraint(fields=('device', 'time'), name='message_unique_frame'),
        ),
    ]
