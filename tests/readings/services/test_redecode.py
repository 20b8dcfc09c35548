"""manage.py redecode: decode stored raw payloads again after a config change."""

from datetime import UTC, datetime
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from readings.models import Device, DeviceType, Message, Reading

pytestmark = pytest.mark.django_db


def send(post_json, device="1A2B3C", time=1700000000, data="15e40c", **extra):
    body = {"device": device, "time": str(time), "data": data, **extra}
    import json

    assert post_json(json.dumps(body)).status_code == 204


def redecode(*args) -> str:
    out = StringIO()
    call_command("redecode", *args, stdout=out)
    return out.getvalue()


def readings_of(device="1A2B3C") -> dict:
    rows = Reading.objects.filter(device__sigfox_id=device).order_by("time", "quantity")
    return {(int(r.time.timestamp()), r.quantity): (r.value, r.from_payload) for r in rows}


def test_it_decodes_messages_stored_before_a_config_was_set(post_json):
    send(post_json)
    assert not Reading.objects.exists()
    Device.objects.update(payload_config="temp::int:8 vbat::uint:16:little-endian")
    output = redecode()
    assert readings_of() == {(1700000000, "temp"): (21.0, True), (1700000000, "vbat"): (3300.0, True)}
    assert Message.objects.get().payload_fields == {"temp": 21, "vbat": 3300}
    assert output == "Re-decoded 1 of 1 messages with raw data: 0 readings replaced by 2.\n"


def test_it_replaces_readings_decoded_with_an_old_config(post_json, settings):
    settings.SIGFOX_PAYLOAD_CONFIG = "temp::int:8"
    send(post_json)
    DeviceType.objects.create(sigfox_id="AB12", payload_config="t::uint:8 v::uint:16")
    Device.objects.update(device_type=DeviceType.objects.get())
    redecode()
    assert readings_of() == {(1700000000, "t"): (21.0, True), (1700000000, "v"): (58380.0, True)}


def test_it_keeps_values_the_callback_sent(post_json, settings):
    send(post_json, temp=22, hum=40)
    Device.objects.update(payload_config="temp::int:8 vbat::uint:16:little-endian")
    redecode()
    assert readings_of() == {
        (1700000000, "hum"): (40.0, False),
        (1700000000, "temp"): (22.0, False),
        (1700000000, "vbat"): (3300.0, True),
    }


def test_it_changes_nothing_on_a_second_run(post_json):
    send(post_json)
    Device.objects.update(payload_config="temp::int:8")
    redecode()
    assert redecode() == "Re-decoded 0 of 1 messages with raw data: 0 readings replaced by 0.\n"


def test_it_counts_without_changing_on_dry_run(post_json):
    send(post_json)
    Device.objects.update(payload_config="temp::int:8")
    assert redecode("--dry-run") == "Would re-decode 1 of 1 messages with raw data.\n"
    assert not Reading.objects.exists()


def test_it_limits_itself_to_one_device_and_a_time(post_json, settings):
    send(post_json, device="1A2B3C")
    send(post_json, device="BF1327")
    send(post_json, device="BF1327", time=1600000000)
    settings.SIGFOX_PAYLOAD_CONFIG = "temp::int:8"
    redecode("--device", "bf1327", "--since", "2023-01-01")
    assert readings_of("1A2B3C") == {}
    assert readings_of("BF1327") == {(1700000000, "temp"): (21.0, True)}


@pytest.mark.parametrize(
    "args, message",
    [
        (["--device", "nothex"], "is not a Sigfox id"),
        (["--device", "ABCDEF"], "no device ABCDEF"),
        (["--since", "yesterday"], "argument --since: 'yesterday' must be ISO 8601"),
    ],
)
def test_it_rejects_bad_arguments(args, message):
    with pytest.raises(CommandError, match=message):
        call_command("redecode", *args, stdout=StringIO())


@pytest.mark.parametrize("text, expected", [
    # Without an offset, in the site's TIME_ZONE, as the read API reads it.
    ("2024-02-03", datetime(2024, 2, 2, 23, tzinfo=UTC)),
    ("2024-07-03T12:00", datetime(2024, 7, 3, 10, tzinfo=UTC)),
    ("2024-02-03T00:00:00Z", datetime(2024, 2, 3, tzinfo=UTC)),
    ("1706918400", datetime(2024, 2, 3, tzinfo=UTC)),
])
def test_since_is_read_as_the_api_reads_times(settings, text, expected):
    from readings.management.commands.redecode import Command

    settings.TIME_ZONE = "Europe/Paris"
    parser = Command().create_parser("manage.py", "redecode")
    assert parser.parse_args(["--since", text]).since == expected


def test_it_shows_the_upgrade_notice_on_the_device_page_until_redecode(client, settings):
    from readings.models import Device
    from readings.services.maintenance import messages_redecode

    settings.PUBLIC_DASHBOARD = True
    Device.objects.create(sigfox_id="1A2B3C", payload_config="a::uint:4:big-endian:7 b::uint:4",
                          payload_config_notice="starts on byte 0 now. Run `manage.py redecode`.")
    page = client.get("/devices/001a2b3c").content.decode()
    assert "starts on byte 0 now" in page
    messages_redecode()
    page = client.get("/devices/1A2B3C").content.decode()
    assert "starts on byte 0 now" not in page


def test_it_warns_of_a_site_config_that_reads_differently_now(settings):
    from django.core import checks

    settings.SIGFOX_PAYLOAD_CONFIG = "a::uint:4:big-endian:7 b::uint:16"
    found = {message.id for message in checks.run_checks()}
    assert "readings.W002" in found
    settings.SIGFOX_PAYLOAD_CONFIG = "temp::int:8"
    assert "readings.W002" not in {message.id for message in checks.run_checks()}
