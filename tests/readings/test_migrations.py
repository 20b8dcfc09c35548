"""Upgrading a database made by an earlier version: copies of a frame and a
device under two ids are merged before the new constraints go on, nothing lost."""

from datetime import UTC, datetime

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

pytestmark = pytest.mark.django_db(transaction=True)

BEFORE = [("readings", "0003_fewer_indexes")]
T0 = datetime(2026, 1, 1, tzinfo=UTC)
T1 = datetime(2026, 1, 1, 0, 10, tzinfo=UTC)
T2 = datetime(2026, 1, 1, 0, 20, tzinfo=UTC)


def migrate(targets):
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)
    return executor.loader.project_state(targets).apps


@pytest.fixture
def old_apps():
    apps = migrate(BEFORE)
    yield apps
    migrate(MigrationExecutor(connection).loader.graph.leaf_nodes())


def test_it_merges_copies_of_a_frame_and_a_device_under_two_ids(old_apps):
    Device = old_apps.get_model("readings", "Device")
    DeviceType = old_apps.get_model("readings", "DeviceType")
    Message = old_apps.get_model("readings", "Message")
    Reading = old_apps.get_model("readings", "Reading")
    Reception = old_apps.get_model("readings", "Reception")
    SequenceGap = old_apps.get_model("readings", "SequenceGap")

    shifted = DeviceType.objects.create(sigfox_id="ABC", payload_config="a::uint:4:big-endian:7 b::uint:4")
    DeviceType.objects.create(sigfox_id="DEF", payload_config="temp::int:8")
    typed = Device.objects.create(sigfox_id="004E2F1A", name="Kitchen", device_type=shifted)
    sent = Device.objects.create(sigfox_id="4E2F1A", first_seen=T0, last_seen=T1)

    def message(device, time, key, **fields):
        return Message.objects.create(device=device, time=time, sensor="1", received_at=time,
                                      dedup_key=key, **fields)

    uplink = message(sent, T0, "val:abc")  # sent without a seqNumber
    advanced = message(sent, T0, "seq:7", seq_number=7, lqi="GOOD", station="1A2B")  # DATA ADVANCED
    later = message(sent, T1, "seq:8", seq_number=8)
    typed_message = message(typed, T2, "seq:12", seq_number=12)
    for msg, quantity, value in [(uplink, "temp", 21), (advanced, "temp", 21),
                                 (advanced, "hum", 40), (later, "temp", 22),
                                 (typed_message, "temp", 23)]:
        Reading.objects.create(message=msg, device=msg.device, sensor="1", quantity=quantity,
                               value=value, time=msg.time)
    Reception.objects.create(message=advanced, station="1A2B", received_at=T0)

    new_apps = migrate(MigrationExecutor(connection).loader.graph.leaf_nodes())
    Device = new_apps.get_model("readings", "Device")
    DeviceType = new_apps.get_model("readings", "DeviceType")
    Message = new_apps.get_model("readings", "Message")
    Reading = new_apps.get_model("readings", "Reading")
    SequenceGap = new_apps.get_model("readings", "SequenceGap")

    device = Device.objects.get()
    assert (device.sigfox_id, device.name, device.device_type.sigfox_id) == ("4E2F1A", "Kitchen", "ABC")
    assert list(Message.objects.order_by("time").values_list("time", "seq_number", "lqi")) == [
        (T0, 7, "GOOD"), (T1, 8, ""), (T2, 12, "")]
    assert sorted(Reading.objects.values_list("time", "quantity", "value")) == [
        (T0, "hum", 40.0), (T0, "temp", 21.0), (T1, "temp", 22.0), (T2, "temp", 23.0)]
    assert Message.objects.get(time=T0).receptions.count() == 1
    # Sequence records computed again from the merged messages: 9, 10 and 11 lost.
    assert list(SequenceGap.objects.values_list("previous_seq_number", "seq_number", "missing")) == [
        (8, 12, 3)]
    assert "Run `manage.py redecode`" in DeviceType.objects.get(sigfox_id="ABC").payload_config_notice
    # The values as sent, for redecode to scale and later copies to be compared with.
    assert Message.objects.get(time=T0).values_raw == {"1": {"temp": 21.0, "hum": 40.0}}
    assert DeviceType.objects.get(sigfox_id="DEF").payload_config_notice == ""
