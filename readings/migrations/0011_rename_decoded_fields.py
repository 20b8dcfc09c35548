"""Names that say what they hold (no data changes): Message.decoded, a dict of
the payload's fields, is payload_fields; Reading.decoded, a flag saying where
the value came from, is from_payload. The API keeps calling both "decoded"."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("readings", "0010_values_raw_of_older_messages"),
    ]

    operations = [
        migrations.RenameField(model_name="message", old_name="decoded", new_name="payload_fields"),
        migrations.RenameField(model_name="reading", old_name="decoded", new_name="from_payload"),
    ]
