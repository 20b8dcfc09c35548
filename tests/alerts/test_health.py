"""alerts.health, pure: rhythm learning and the state machine, with `now` passed in."""

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from alerts import health

T0 = datetime(2026, 1, 1, tzinfo=UTC)
DEFAULTS = health.Thresholds()


def learned(times, *, min_interval_s=20):
    samples, last = health.intervals_add([], None, times, min_interval_s=min_interval_s)
    return health.expected_interval_s(samples), samples, last


def every(interval_s, count, start=T0):
    return [start + timedelta(seconds=interval_s * i) for i in range(count)]


def test_it_learns_the_interval_of_a_steady_device():
    assert learned(every(600, 10))[0] == 600


def test_it_needs_a_few_intervals_before_it_knows():
    assert learned(every(600, 3))[0] is None  # two intervals
    assert learned(every(600, 4))[0] == 600


def test_an_outage_or_a_lost_message_does_not_change_the_rhythm():
    times = every(600, 10) + [T0 + timedelta(seconds=600 * 9 + 86_400)] + every(600, 5, T0 + timedelta(days=2))
    times.remove(T0 + timedelta(seconds=600 * 4))  # one message lost
    assert learned(times)[0] == 600


def test_history_arriving_late_adds_no_interval():
    samples, last = health.intervals_add([], None, every(600, 6), min_interval_s=20)
    again, last_again = health.intervals_add(samples, last, every(60, 5, T0 - timedelta(hours=1)),
                                             min_interval_s=20)
    assert (again, last_again) == (samples, last)


def test_frames_closer_than_a_device_can_send_are_no_rhythm():
    times = [t for start in every(600, 6) for t in (start, start + timedelta(seconds=2))]
    assert learned(times)[0] == 598


def test_it_keeps_the_newest_samples_only():
    samples = learned(every(60, 100))[1]
    assert len(samples) == health.SAMPLES_KEPT


def state(silent_s, interval_s=600.0, **kwargs):
    now = T0 + timedelta(seconds=silent_s)
    return health.state_of(last_seen=T0, interval_s=interval_s, thresholds=DEFAULTS, now=now,
                           **kwargs)


def test_it_is_late_after_one_and_a_half_intervals_and_down_after_three():
    assert [state(s) for s in (0, 900, 901, 1800, 1801)] == ["up", "up", "late", "late", "down"]


def test_grace_and_factors_move_the_thresholds():
    thresholds = health.Thresholds(late_after=2, down_after=4, grace_s=60)
    def at(seconds):
        return health.state_of(last_seen=T0, interval_s=600, thresholds=thresholds,
                               now=T0 + timedelta(seconds=seconds))

    assert [at(s) for s in (1260, 1261, 2460, 2461)] == ["up", "late", "late", "down"]


def test_new_muted_and_keep_alive():
    assert state(5000, interval_s=None) == "new"
    assert state(5000, muted_until=T0 + timedelta(days=1)) == "muted"
    assert state(5000, muted_until=T0 + timedelta(seconds=10)) == "down"
    assert state(0, keep_alive_breached=True) == "down"


def test_only_going_down_and_coming_back_after_an_alert_notify():
    kind = health.notification_kind
    assert kind("down", alert_open=False) == "alert" and kind("down", alert_open=True) is None
    assert kind("up", alert_open=True) == "recovery" and kind("new", alert_open=True) == "recovery"
    assert kind("up", alert_open=False) is None
    assert kind("late", alert_open=True) is None and kind("muted", alert_open=True) is None


steady = st.tuples(st.integers(60, 86_400), st.integers(5, 60),
                   st.lists(st.floats(-0.2, 0.2), min_size=60, max_size=60))


@given(steady)
def test_a_device_that_keeps_its_rhythm_never_alerts(case):
    interval_s, count, jitters = case
    times = [T0 + timedelta(seconds=interval_s * (i + jitters[i])) for i in range(count)]
    samples, last = [], None
    for time, following in zip(times, times[1:]):
        samples, last = health.intervals_add(samples, last, [time], min_interval_s=20)
        # The worst moment: just before the next message, sent up to 20 % of an
        # interval off its schedule, arrives.
        got = health.state_of(last_seen=last, interval_s=health.expected_interval_s(samples),
                              thresholds=DEFAULTS, now=following - timedelta(seconds=1))
        assert got != "down"


@given(steady, st.floats(0, 1))
def test_a_device_that_stops_is_down_within_its_threshold(case, fraction):
    interval_s, count, jitters = case
    times = [T0 + timedelta(seconds=interval_s * (i + jitters[i])) for i in range(max(count, 8))]
    samples, last = health.intervals_add([], None, times, min_interval_s=20)
    expected = health.expected_interval_s(samples)
    assert expected is not None
    silent = DEFAULTS.down_s(expected) + 1 + fraction * interval_s
    assert health.state_of(last_seen=last, interval_s=expected, thresholds=DEFAULTS,
                           now=last + timedelta(seconds=silent)) == "down"


@given(st.lists(st.integers(0, 5000), min_size=1, max_size=40))
def test_the_state_never_flaps_on_steady_input(silences):
    # The same silence always gives the same state: no memory, so no flapping.
    for silent_s in silences:
        assert state(silent_s) == state(silent_s)
    ordered = [state(s) for s in sorted(silences)]
    rank = {"up": 0, "late": 1, "down": 2}
    assert [rank[s] for s in ordered] == sorted(rank[s] for s in ordered)
