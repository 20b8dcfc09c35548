"""The worker judges states in SQL (alerts.evaluation); alerts.health.state_of
says the same in Python. Both must agree on every device."""

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from alerts import health
from alerts.evaluation import health_rows_create, states_update
from alerts.models import DeviceHealth, DeviceTypeHealth
from readings.models import Device, DeviceType

NOW = datetime(2026, 6, 1, 12, tzinfo=UTC)
maybe = lambda strategy: st.none() | strategy  # noqa: E731

device_cases = st.fixed_dictionaries({
    # Silent for this many intervals in force, so that cases fall on every side
    # of every threshold.
    "silent_n": maybe(st.floats(0, 12)),
    "learned_s": maybe(st.floats(60, 86_400)),
    "own": st.fixed_dictionaries({"interval_s": maybe(st.floats(1, 86_400)),
                                  "late_after": maybe(st.floats(1, 5)),
                                  "down_after": maybe(st.floats(1, 10)),
                                  "grace_s": maybe(st.floats(0, 3600))}),
    "of_type": maybe(st.fixed_dictionaries({"interval_s": maybe(st.floats(1, 86_400)),
                                            "late_after": maybe(st.floats(1, 5)),
                                            "down_after": maybe(st.floats(1, 10)),
                                            "grace_s": maybe(st.floats(0, 3600))})),
    "muted_s": maybe(st.floats(-3600, 3600)),
})


def first(*values):
    return next((v for v in values if v is not None), None)


@pytest.mark.django_db
@settings(max_examples=settings.default.max_examples // 2, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(device_cases, min_size=1, max_size=8), st.floats(1, 3), st.floats(3, 6))
# Its own settings win over its type's, which win over the site's.
@example(cases=[{"silent_n": 5.0, "learned_s": 600.0, "muted_s": None,
                 "own": {"interval_s": None, "late_after": 1.5, "down_after": 2.0, "grace_s": None},
                 "of_type": {"interval_s": None, "late_after": 1.2, "down_after": 8.0,
                             "grace_s": 0.0}}],
         late_after=1.5, down_after=3.0)
def test_sql_and_python_agree_on_every_state(site_settings, cases, late_after, down_after):
    site_settings.SIGFOX_LATE_AFTER, site_settings.SIGFOX_DOWN_AFTER = late_after, down_after
    Device.objects.all().delete()
    DeviceType.objects.all().delete()
    for case in cases:
        own, of_type = case["own"], case["of_type"] or {}
        interval_s = first(own["interval_s"], of_type.get("interval_s"), case["learned_s"], 600.0)
        case["silent_s"] = None if case["silent_n"] is None else case["silent_n"] * interval_s
    for n, case in enumerate(cases):
        last_seen = None if case["silent_s"] is None else NOW - timedelta(seconds=case["silent_s"])
        device_type = None
        if case["of_type"] is not None:
            device_type = DeviceType.objects.create(sigfox_id=f"{n + 1:X}")
            DeviceTypeHealth.objects.create(device_type=device_type, **case["of_type"])
        Device.objects.create(sigfox_id=f"{n + 0xA0:X}", last_seen=last_seen,
                              device_type=device_type)
    health_rows_create()
    for n, case in enumerate(cases):
        muted = None if case["muted_s"] is None else NOW + timedelta(seconds=case["muted_s"])
        DeviceHealth.objects.filter(device__sigfox_id=f"{n + 0xA0:X}").update(
            learned_interval_s=case["learned_s"], muted_until=muted, **case["own"])
    states_update(now=NOW)
    for n, case in enumerate(cases):
        own, of_type = case["own"], case["of_type"] or {}
        thresholds = health.Thresholds(
            late_after=first(own["late_after"], of_type.get("late_after"), late_after),
            down_after=first(own["down_after"], of_type.get("down_after"), down_after),
            grace_s=first(own["grace_s"], of_type.get("grace_s"), 0.0))
        expected = health.state_of(
            last_seen=None if case["silent_s"] is None else NOW - timedelta(seconds=case["silent_s"]),
            interval_s=first(own["interval_s"], of_type.get("interval_s"), case["learned_s"]),
            thresholds=thresholds, now=NOW,
            muted_until=None if case["muted_s"] is None else NOW + timedelta(seconds=case["muted_s"]))
        got = DeviceHealth.objects.get(device__sigfox_id=f"{n + 0xA0:X}").state
        interval_s = first(own["interval_s"], of_type.get("interval_s"), case["learned_s"])
        if case["silent_s"] is not None and interval_s is not None and min(
                abs(case["silent_s"] - thresholds.late_s(interval_s)),
                abs(case["silent_s"] - thresholds.down_s(interval_s))) < 0.001:
            continue  # a tie within a millisecond: SQL's epoch floats round either way
        assert got == expected, case


@pytest.fixture
def site_settings(settings):
    settings.SIGFOX_GRACE_S = 0.0
    return settings
