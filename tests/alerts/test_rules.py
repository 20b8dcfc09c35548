"""Rules on values: the pure logic (alerts.rules, with property tests) and the
worker's rule step against a real database and a real HTTP receiver."""

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from alerts import rules
from alerts.evaluation import evaluate
from alerts.models import DeviceHealth, Notification, Rule, RuleBreach
from alerts.notify import notifications_send
from readings.models import Device, DeviceType
from readings.services.ingest import UplinkCallback, message_ingest
from tests.alerts.test_worker import Receiver

T0 = datetime(2026, 3, 1, tzinfo=UTC)
STEP = timedelta(minutes=10)


# The pure logic.

def test_above_breaches_past_the_bound_and_recovers_past_the_band():
    assert not rules.breached("above", 30, 30, 2, False)
    assert rules.breached("above", 30.1, 30, 2, False)
    assert rules.breached("above", 28.5, 30, 2, True)  # inside the band: still breached
    assert not rules.breached("above", 27.9, 30, 2, True)


def test_below_mirrors_above():
    assert rules.breached("below", 3.2, 3.3, 0.1, False)
    assert rules.breached("below", 3.35, 3.3, 0.1, True)
    assert not rules.breached("below", 3.41, 3.3, 0.1, True)


def test_loss_share_counts_the_lost_among_all():
    assert rules.loss_share(missing=5, received=15) == 0.25
    assert rules.loss_share(missing=0, received=0) == 0.0


def test_the_most_specific_rule_wins_for_a_kind_and_quantity():
    site = rules.RuleScope(1, "above", "temp")
    of_type = rules.RuleScope(2, "above", "temp", device_type_id=7)
    own = rules.RuleScope(3, "above", "temp", device_id=42)
    battery = rules.RuleScope(4, "below", "battery_v")
    every = [site, of_type, own, battery]
    assert rules.rules_in_force(every, device_id=42, device_type_id=7) == [own, battery]
    assert rules.rules_in_force(every, device_id=43, device_type_id=7) == [of_type, battery]
    assert rules.rules_in_force(every, device_id=44, device_type_id=None) == [site, battery]


def test_it_describes_each_kind():
    assert rules.describe(kind="above", quantity="temp", threshold=30.0,
                          window=None) == "temp above 30"
    assert rules.describe(kind="loss", quantity="", threshold=0.2, window=50) == (
        "lost messages above 20% of the last 50")
    assert rules.describe(kind="silence", quantity="temp", threshold=None, window=3600) == (
        "no temp for 1 h")


def _states(kind, values, threshold, hysteresis):
    state, states = False, []
    for value in values:
        state = rules.breached(kind, value, threshold, hysteresis, state)
        states.append(state)
    return states


def _switches(states) -> int:
    return sum(1 for a, b in zip([False, *states], states) if a != b)


bounds = st.floats(-1000, 1000, allow_nan=False)
bands = st.floats(0.01, 100, allow_nan=False)


@given(bounds, bands, st.data())
def test_a_value_hovering_within_the_band_never_flaps(threshold, hysteresis, data):
    # Once breached, any values inside [threshold - hysteresis, threshold + 1]
    # keep it breached; once within bounds, any at or under the threshold keep it so.
    hovering = data.draw(st.lists(st.floats(threshold - hysteresis, threshold + hysteresis,
                                            allow_nan=False), max_size=50))
    states = _states("above", [threshold + 1, *hovering], threshold, hysteresis)
    assert all(states)
    inside = [v for v in hovering if v <= threshold]
    assert not any(_states("above", inside, threshold, hysteresis))
    # Drawn afresh rather than mirrored: 2 * threshold - v can round out of the band.
    hovering_low = data.draw(st.lists(st.floats(threshold - hysteresis, threshold + hysteresis,
                                                allow_nan=False), max_size=50))
    mirrored = _states("below", [threshold - 1, *hovering_low], threshold, hysteresis)
    assert all(mirrored)


@given(bounds, st.floats(0, 100, allow_nan=False), st.integers(1, 20), st.integers(1, 20))
def test_a_clean_crossing_breaches_once_and_recovers_once(threshold, hysteresis, up, down):
    values = ([threshold - hysteresis - 1] * 3 + [threshold + 1] * up
              + [threshold - hysteresis - 1] * down)
    states = _states("above", values, threshold, hysteresis)
    assert _switches(states) == 2 and not states[-1]
    mirrored = _states("below", [2 * threshold - v for v in values], threshold, hysteresis)
    assert _switches(mirrored) == 2 and not mirrored[-1]


# The worker's rule step.

def send(device_id: str, time: datetime, seq: int | None = None, device_type: str | None = None,
         **values: float) -> None:
    message_ingest(uplink=UplinkCallback(device_id=device_id, time=time, sensor="1",
                                         values=values, values_raw=values, seq_number=seq,
                                         device_type_id=device_type), now=time)


def one_pass(now: datetime) -> tuple[int, int]:
    evaluate(now=now)
    return notifications_send(now=now)


@pytest.fixture
def receiver(settings):
    server = Receiver()
    settings.SIGFOX_ALERT_URLS = [server.url]
    yield server
    server.shutdown()
    server.server_close()


def titles(receiver, device_id: str) -> list[str]:
    return [b["title"] for b in receiver.about(device_id)]


@pytest.mark.django_db
def test_above_with_hysteresis_alerts_once_and_recovers_once(receiver):
    Rule.objects.create(kind="above", quantity="temp", threshold=30, hysteresis=2)
    time = T0
    for temp in [25, 31.2, 29, 30.5, 28.5, 29.9, 27.5, 27]:  # hovers in 28..30 after the alert
        send("1A2B3C", time, temp=temp)
        one_pass(time + timedelta(seconds=5))
        time += STEP
    assert titles(receiver, "1A2B3C") == [
        "Sigfox device 1A2B3C: temp above 30 (31.2 °C)",
        "Sigfox device 1A2B3C: temp back within bounds (27.5 °C)"]
    breach = RuleBreach.objects.get()
    assert breach.value == 31.2 and breach.end_value == 27.5 and breach.recovered
    assert list(Notification.objects.values_list("kind", "status")) == [
        ("alert", "sent"), ("recovery", "sent")]


@pytest.mark.django_db
def test_a_low_battery_alerts_with_its_unit(receiver):
    Rule.objects.create(kind="below", quantity="battery_v", threshold=3.3, hysteresis=0.1)
    send("BA7", T0, battery_v=3.6)
    one_pass(T0 + timedelta(seconds=5))
    send("BA7", T0 + STEP, battery_v=3.1)
    assert one_pass(T0 + STEP + timedelta(seconds=5)) == (1, 0)
    assert titles(receiver, "BA7") == ["Sigfox device BA7: battery_v below 3.3 (3.1 V)"]
    [alert] = receiver.about("BA7")
    assert "Rule: battery_v below 3.3 (site)." in alert["message"]


@pytest.mark.django_db
def test_a_share_of_lost_messages_alerts_and_recovers(receiver):
    Rule.objects.create(kind="loss", threshold=0.2, window=10)
    seq, time = 0, T0
    for _ in range(10):
        send("105E", time, seq=seq, temp=20)
        seq, time = seq + 1, time + STEP
    one_pass(time)
    assert receiver.bodies == []
    # Three lost before the next one: 3 of the last 10 + 3 = 23%.
    seq += 3
    send("105E", time, seq=seq, temp=20)
    assert one_pass(time + timedelta(seconds=5)) == (1, 0)
    assert titles(receiver, "105E") == [
        "Sigfox device 105E: lost messages above 20% of the last 10 (23% of the last 10 lost)"]
    for _ in range(10):  # ten received in a row: the gap leaves the window
        seq, time = seq + 1, time + STEP
        send("105E", time, seq=seq, temp=20)
        one_pass(time + timedelta(seconds=5))
    assert titles(receiver, "105E")[1:] == [
        "Sigfox device 105E: lost messages back within bounds (0% of the last 10 lost)"]


@pytest.mark.django_db
def test_no_value_for_a_time_alerts_and_a_value_recovers(receiver):
    Rule.objects.create(kind="silence", quantity="temp", window=3600)
    send("5110", T0, temp=20)
    send("5111", T0, battery_v=3.6)  # never sent temp: not judged by it
    assert one_pass(T0 + timedelta(seconds=3600)) == (0, 0)
    assert one_pass(T0 + timedelta(seconds=3601)) == (1, 0)
    assert titles(receiver, "5110") == ["Sigfox device 5110: no temp for 1 h"]
    assert one_pass(T0 + timedelta(hours=3)) == (0, 0)
    back = T0 + timedelta(hours=4)
    send("5110", back, temp=21)
    assert one_pass(back + timedelta(seconds=5)) == (1, 0)
    assert titles(receiver, "5110")[1:] == ["Sigfox device 5110: temp values again"]
    assert receiver.about("5111") == []


@pytest.mark.django_db
def test_each_alert_and_recovery_goes_to_each_channel_once(receiver):
    from alerts.models import Channel

    Rule.objects.create(kind="above", quantity="temp", threshold=30)
    send("C4A", T0, temp=31)
    device = Device.objects.get()
    other = Receiver()
    try:
        Channel.objects.create(name="own", url=other.url, device=device)
        Channel.objects.create(name="again the site's", url=receiver.url, device=device)
        assert one_pass(T0 + timedelta(seconds=5)) == (2, 0)
        assert one_pass(T0 + timedelta(seconds=35)) == (0, 0)
        send("C4A", T0 + STEP, temp=29)
        assert one_pass(T0 + STEP + timedelta(seconds=5)) == (2, 0)
        assert one_pass(T0 + STEP + timedelta(seconds=35)) == (0, 0)
        assert len(receiver.about("C4A")) == 2 and len(other.about("C4A")) == 2
    finally:
        other.shutdown()
        other.server_close()


@pytest.mark.django_db
def test_a_rule_applies_to_its_scope_and_the_most_specific_wins(receiver):
    send("A1", T0, device_type="77", temp=25)
    send("A2", T0, device_type="77", temp=25)
    send("B1", T0, temp=25)
    of_type = DeviceType.objects.get(sigfox_id="77")
    Rule.objects.create(kind="above", quantity="temp", threshold=30)
    Rule.objects.create(kind="above", quantity="temp", threshold=20, device_type=of_type)
    Rule.objects.create(kind="above", quantity="temp", threshold=40,
                        device=Device.objects.get(sigfox_id="A2"))
    one_pass(T0 + timedelta(seconds=5))
    assert [b["title"] for b in receiver.bodies] == ["Sigfox device A1: temp above 20 (25 °C)"]
    later = T0 + STEP
    for device_id in ["A1", "A2", "B1"]:
        send(device_id, later, device_type="77" if device_id[0] == "A" else None, temp=35)
    one_pass(later + timedelta(seconds=5))
    assert sorted(b["title"] for b in receiver.bodies[1:]) == [
        "Sigfox device B1: temp above 30 (35 °C)"]


@pytest.mark.django_db
def test_a_new_rule_judges_devices_that_sent_nothing_since(receiver):
    send("ADD", T0, temp=35)
    one_pass(T0 + timedelta(seconds=5))
    Rule.objects.create(kind="above", quantity="temp", threshold=30)
    assert one_pass(T0 + timedelta(seconds=35)) == (1, 0)
    # Disabled: its breach ends without a recovery.
    Rule.objects.update(enabled=False)
    assert one_pass(T0 + timedelta(seconds=65)) == (0, 0)
    breach = RuleBreach.objects.get()
    assert breach.ended_at is not None and not breach.recovered


@pytest.mark.django_db
def test_a_muted_device_records_the_breach_but_sends_nothing(receiver):
    Rule.objects.create(kind="above", quantity="temp", threshold=30)
    send("F00D", T0, temp=20)
    one_pass(T0 + timedelta(seconds=5))
    DeviceHealth.objects.update(muted_until=T0 + timedelta(days=1))
    send("F00D", T0 + STEP, temp=35)
    assert one_pass(T0 + STEP + timedelta(seconds=5)) == (0, 0)
    assert RuleBreach.objects.filter(ended_at=None).count() == 1


@pytest.mark.django_db
def test_nothing_is_judged_when_nothing_changed():
    Rule.objects.create(kind="above", quantity="temp", threshold=30)
    send("1A2B3C", T0, temp=20)
    assert evaluate(now=T0 + timedelta(seconds=5)).rules.devices_judged == 1
    assert evaluate(now=T0 + timedelta(seconds=35)).rules.devices_judged == 0


@pytest.mark.django_db
@pytest.mark.parametrize("model", ["rule", "rulebreach"])
def test_the_admin_lists_rules_and_breaches(admin_client, model, receiver):
    Rule.objects.create(kind="above", quantity="temp", threshold=30)
    send("1A2B3C", T0, temp=35)
    one_pass(T0 + timedelta(seconds=5))
    assert admin_client.get(f"/admin/alerts/{model}/?q=1a2b").status_code == 200
    breach = RuleBreach.objects.get()
    assert admin_client.get(f"/admin/alerts/rulebreach/{breach.pk}/change/").status_code == 200
    assert admin_client.get("/admin/alerts/notification/").status_code == 200


@pytest.mark.django_db
def test_the_admin_offers_a_battery_rule_first(admin_client):
    content = admin_client.get("/admin/alerts/rule/add/").content.decode()
    assert 'value="battery_v"' in content
    response = admin_client.post("/admin/alerts/rule/add/", {
        "name": "", "kind": "below", "quantity": "battery_v", "threshold": "3.3",
        "hysteresis": "0.1", "window": "", "enabled": "on"})
    assert response.status_code == 302
    assert str(Rule.objects.get()) == "battery_v below 3.3"


@pytest.mark.django_db
def test_an_incomplete_rule_is_refused_by_the_database():
    from django.db import IntegrityError

    with pytest.raises(IntegrityError):
        Rule.objects.create(kind="above", quantity="temp")  # no threshold


@pytest.mark.django_db
def test_the_device_page_lists_its_rules_and_their_breaches(admin_client, receiver):
    Rule.objects.create(kind="above", quantity="temp", threshold=30, hysteresis=2)
    Rule.objects.create(kind="silence", quantity="temp", window=3600,
                        device_type=DeviceType.objects.create(sigfox_id="99"))
    send("1A2B3C", T0, temp=35)
    one_pass(T0 + timedelta(seconds=5))
    content = admin_client.get("/devices/1A2B3C").content.decode()
    assert 'id="value-rules"' in content and "temp above 30" in content
    assert "(hysteresis 2)" in content and "broken" in content
    assert "no temp for 1 h" not in content  # another type's
