"""Device health, pure: a device's rhythm learned from its own intervals, and
the state that the time since its last message puts it in.

No Django, no clock: every function takes the times it needs, so that the
worker, the tests and the property tests agree.

A Sigfox device sends on a schedule (at most 140 messages a day), so its
expected interval is the median of its recent intervals between messages:
robust to a lost message or an outage (one long interval among many), and
blind to retries and duplicate copies (they are the same message: one
device, one time) and to history arriving out of order (a message older
than the newest one seen adds no interval).
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

# States, as stored and shown.
NEW, UP, LATE, DOWN, MUTED = "new", "up", "late", "down", "muted"
STATES = (NEW, UP, LATE, DOWN, MUTED)
# Intervals kept per device, newest last; the median of these is its rhythm.
SAMPLES_KEPT = 16
# Intervals needed before a device leaves "new".
MIN_SAMPLES = 3
# Defaults: late after 1.5 expected intervals without a message, down after 3.
LATE_AFTER = 1.5
DOWN_AFTER = 3.0


def intervals_add(samples: list[float], last_time: datetime | None, times: Iterable[datetime],
                  *, min_interval_s: float) -> tuple[list[float], datetime | None]:
    """The samples and newest time after the messages at `times` arrived.

    `samples`: intervals in seconds, newest last. A time at or before
    `last_time` (backfilled history, a late retry) adds nothing; an interval
    shorter than `min_interval_s` (two frames closer than a device can send)
    is not a rhythm and is left out.
    """
    samples = list(samples)
    for time in sorted(times):
        if last_time is not None and time <= last_time:
            continue
        if last_time is not None:
            interval_s = (time - last_time).total_seconds()
            if interval_s >= min_interval_s:
                samples.append(interval_s)
        last_time = time
    return samples[-SAMPLES_KEPT:], last_time


def expected_interval_s(samples: list[float]) -> float | None:
    """The learned interval (median of the samples), or None while there are too few."""
    if len(samples) < MIN_SAMPLES:
        return None
    return float(statistics.median(samples))


@dataclass(frozen=True)
class Thresholds:
    """When a device is late and down: after `late_after` and `down_after`
    expected intervals without a message, plus `grace_s` seconds."""

    late_after: float = LATE_AFTER
    down_after: float = DOWN_AFTER
    grace_s: float = 0.0

    def late_s(self, interval_s: float) -> float:
        return self.late_after * interval_s + self.grace_s

    def down_s(self, interval_s: float) -> float:
        return self.down_after * interval_s + self.grace_s


def state_of(*, last_seen: datetime | None, interval_s: float | None, thresholds: Thresholds,
             now: datetime, muted_until: datetime | None = None,
             keep_alive_breached: bool = False) -> str:
    """The state a device is in at `now`.

    muted while `muted_until` is ahead; new while no interval is known (learned
    or set); down when Sigfox said its keep-alive was breached (an ERROR
    callback) and no message came since, or after thresholds.down_s without a
    message; late after thresholds.late_s; else up.
    """
    if muted_until is not None and muted_until > now:
        return MUTED
    if keep_alive_breached:
        return DOWN
    if interval_s is None or last_seen is None:
        return NEW
    silent_s = (now - last_seen).total_seconds()
    if silent_s > thresholds.down_s(interval_s):
        return DOWN
    if silent_s > thresholds.late_s(interval_s):
        return LATE
    return UP


def notification_kind(new: str, *, alert_open: bool) -> str | None:
    """What a change into `new` tells the channels: "alert" into down (unless
    the alert of this outage went out already), "recovery" into up or new while
    an alert is open (however the device left down: a message, an interval set
    longer, a keep-alive breach cleared, a mute ended), else nothing.
    Late and muted say nothing and leave an open alert open."""
    if new == DOWN and not alert_open:
        return "alert"
    if new in (UP, NEW) and alert_open:
        return "recovery"
    return None
