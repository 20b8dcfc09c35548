"""One pass of device health: learn each device's rhythm from the messages
that arrived since the last pass, then put every device in its state.

Both steps are set-based: a query reads the new messages of all devices that
have some, and one UPDATE moves every device whose state changed (100,000
devices in well under a second on PostgreSQL: bench/health). Each step is its
own short transaction, so callbacks never wait long on SQLite's write lock.
Several workers may run at once on PostgreSQL: the rows a pass changes are
locked with SKIP LOCKED, so a row is changed by one pass only.
"""

import json
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F, Q

from alerts import health
from alerts.models import DeviceHealth, Notification, State, StateChange
from alerts.rule_evaluation import RuleResult, rules_evaluate
from readings import db

# Messages read per device per pass: enough for a device's whole rhythm.
MESSAGES_PER_DEVICE = health.SAMPLES_KEPT + 1
# Devices learned from per transaction.
BATCH = 5000

# The newest messages of each listed device after the time it was last
# learned from: one query, numbered per device by a window.
_NEW_MESSAGES_SQL = """
SELECT device_id, time FROM (
    SELECT m.device_id, m.time,
           ROW_NUMBER() OVER (PARTITION BY m.device_id ORDER BY m.time DESC) AS n
    FROM readings_message m JOIN alerts_devicehealth h ON h.device_id = m.device_id
    WHERE m.device_id IN ({pks})
      AND (h.learned_until IS NULL OR m.time > h.learned_until)
) newest WHERE n <= %s
"""


@dataclass
class PassResult:
    devices_learned: int = 0
    changes: list[StateChange] = field(default_factory=list)
    rules: RuleResult | None = None


def health_rows_create() -> int:
    """A DeviceHealth row for every device that has none (one statement)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO alerts_devicehealth (device_id, state, samples, alert_open) "
            "SELECT d.id, %s, %s, %s FROM readings_device d "
            "WHERE NOT EXISTS (SELECT 1 FROM alerts_devicehealth h WHERE h.device_id = d.id) "
            # Two workers at once may both find a device without one.
            "ON CONFLICT (device_id) DO NOTHING",
            [health.NEW, "[]", False],
        )
        return cursor.rowcount


def rhythms_learn(*, min_interval_s: float | None = None) -> int:
    """Add the intervals of the messages that arrived since each device was
    last learned from; returns the number of devices updated."""
    if min_interval_s is None:
        min_interval_s = settings.SIGFOX_MIN_FRAME_SPACING_S
    stale = DeviceHealth.objects.filter(
        Q(learned_until__isnull=True, device__last_seen__isnull=False)
        | Q(device__last_seen__gt=F("learned_until"))
    )
    with transaction.atomic():
        rows = list(stale.select_for_update(skip_locked=True, of=("self",)).values_list(
            "device_id", "samples", "learned_until", "keep_alive_breached_at",
            "device__last_seen")[:BATCH])
        if not rows:
            return 0
        times = defaultdict(list)
        with connection.cursor() as cursor:
            cursor.execute(_NEW_MESSAGES_SQL.format(
                pks=",".join(str(int(pk)) for pk, *_ in rows)), [MESSAGES_PER_DEVICE])
            for pk, time in cursor.fetchall():
                times[pk].append(time if time.tzinfo else time.replace(tzinfo=UTC))
        changed = []
        for pk, samples, until, breached_at, last_seen in rows:
            samples, newest = health.intervals_add(samples, until, times[pk],
                                                   min_interval_s=min_interval_s)
            # Learned up to the device's last seen even when its messages are
            # gone (pruned, deleted): else the row would be stale for ever.
            newest = max(t for t in (newest, last_seen) if t is not None)
            if breached_at is not None and newest is not None and newest > breached_at:
                breached_at = None  # a message since Sigfox said the device was silent
            changed.append((pk, json.dumps(samples), newest,
                            health.expected_interval_s(samples), breached_at))
        db.update_rows("alerts_devicehealth", "device_id", [
            ("samples", "jsonb"), ("learned_until", "timestamptz"),
            ("learned_interval_s", "float8"), ("keep_alive_breached_at", "timestamptz"),
        ], changed)
    return len(changed)


# Every device's state in one statement: the interval in force is the
# device's own setting, else its type's, else the learned one; the thresholds
# likewise fall back to the site's. Only rows whose state changes come back.
_INTERVAL = "COALESCE(h.interval_s, t.interval_s, h.learned_interval_s)"
_SILENT_S = "(%(now_s)s - {last_seen_s})"
_NEW_STATE = f"""CASE
    WHEN h.muted_until IS NOT NULL AND h.muted_until > %(now)s THEN 'muted'
    WHEN h.keep_alive_breached_at IS NOT NULL THEN 'down'
    WHEN {_INTERVAL} IS NULL OR d.last_seen IS NULL THEN 'new'
    WHEN {_SILENT_S} > COALESCE(h.down_after, t.down_after, %(down_after)s) * {_INTERVAL}
                       + COALESCE(h.grace_s, t.grace_s, %(grace_s)s) THEN 'down'
    WHEN {_SILENT_S} > COALESCE(h.late_after, t.late_after, %(late_after)s) * {_INTERVAL}
                       + COALESCE(h.grace_s, t.grace_s, %(grace_s)s) THEN 'late'
    ELSE 'up' END"""
_CHANGES_SQL = f"""
SELECT h.device_id, h.state, {_NEW_STATE}, {_INTERVAL}, h.keep_alive_breached_at,
       h.alert_open
FROM alerts_devicehealth h
JOIN readings_device d ON d.id = h.device_id
LEFT JOIN alerts_devicetypehealth t ON t.device_type_id = d.device_type_id
WHERE {_NEW_STATE} <> h.state
{{lock}}
"""
# PostgreSQL: rows another worker holds are skipped, not waited for.
_LOCK_POSTGRESQL = "FOR UPDATE OF h SKIP LOCKED"


def _reason(old: str, new: str, interval_s: float | None, breached_at: datetime | None) -> str:
    if new == health.DOWN and breached_at is not None:
        return "Sigfox reported its keep-alive breached (ERROR callback)"
    if new in (health.LATE, health.DOWN):
        return f"no message for longer than expected (interval {interval_s:.0f} s)"
    if new == health.UP and old in (health.LATE, health.DOWN):
        return "a message arrived"
    if new == health.UP:
        return f"rhythm learned (interval {interval_s:.0f} s)"
    if new == health.MUTED:
        return "muted"
    return "state recomputed"


def states_update(*, now: datetime) -> list[StateChange]:
    """Move every device whose state changed; record each change and the
    notifications it calls for (in the same transaction)."""
    sql = _CHANGES_SQL.replace("{last_seen_s}", db.epoch_s_sql("d.last_seen")).replace(
        "{lock}", _LOCK_POSTGRESQL if db.is_postgresql() else "")
    params = {"now": now, "now_s": now.timestamp(), "late_after": settings.SIGFOX_LATE_AFTER,
              "down_after": settings.SIGFOX_DOWN_AFTER, "grace_s": settings.SIGFOX_GRACE_S}
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            rows = cursor.fetchall()
        by_state = defaultdict(list)
        for pk, _, new, *_ in rows:
            by_state[new].append(pk)
        for new, pks in by_state.items():
            for start in range(0, len(pks), 10_000):
                DeviceHealth.objects.filter(device_id__in=pks[start:start + 10_000]).update(
                    state=new, state_since=now)
        changes = StateChange.objects.bulk_create([
            StateChange(device_id=pk, time=now, from_state=old, to_state=new,
                        reason=_reason(old, new, interval_s, breached_at))
            for pk, old, new, interval_s, breached_at, _ in rows
        ])
        kinds = [health.notification_kind(new, alert_open=open_)
                 for _, _, new, _, _, open_ in rows]
        for kind, opened in (("alert", True), ("recovery", False)):
            pks = [row[0] for row, k in zip(rows, kinds) if k == kind]
            DeviceHealth.objects.filter(device_id__in=pks).update(alert_open=opened)
        notifications_plan([(c, k) for c, k in zip(changes, kinds) if k], now=now)
    return changes


def notifications_plan(notified: list[tuple[StateChange, str]], *, now: datetime) -> int:
    """A pending Notification per channel for each (change, "alert" or "recovery")."""
    from alerts.notify import channels_for

    wanted = []
    channels = channels_for({change.device_id for change, _ in notified})
    for change, kind in notified:
        for url, channel in channels[change.device_id]:
            wanted.append(Notification(change=change, url=url, channel=channel, kind=kind,
                                       next_attempt_at=now))
    Notification.objects.bulk_create(wanted, ignore_conflicts=True)
    return len(wanted)


# A Sigfox ERROR callback of severity ERROR says the device missed its
# keep-alive: it is down until a message newer than the callback arrives.
_KEEP_ALIVE_SQL = """
UPDATE alerts_devicehealth SET keep_alive_breached_at = e.time
FROM (SELECT device_id, MAX(time) AS time FROM readings_deviceevent
      WHERE kind = 'error' AND severity = 'ERROR' AND device_id IS NOT NULL
      GROUP BY device_id) AS e, readings_device AS d
WHERE alerts_devicehealth.device_id = e.device_id AND d.id = e.device_id
  AND (d.last_seen IS NULL OR e.time > d.last_seen)
  AND (alerts_devicehealth.keep_alive_breached_at IS NULL
       OR alerts_devicehealth.keep_alive_breached_at < e.time)
"""


def keep_alive_breaches_apply() -> int:
    """Mark the devices Sigfox said are silent (readings.models.DeviceEvent)."""
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(_KEEP_ALIVE_SQL)
        return cursor.rowcount


def reminders_plan(*, now: datetime) -> int:
    """While a device stays down, a reminder to each channel of its alert every
    SIGFOX_ALERT_REMINDER_S seconds (none when 0, the default); a reminder
    missed while no worker ran is not made up, the latest one is sent."""
    every_s = settings.SIGFOX_ALERT_REMINDER_S
    if every_s <= 0:
        return 0
    # The change that began each current outage: into down, at state_since.
    outages = StateChange.objects.filter(
        to_state=health.DOWN, device__health__state=health.DOWN,
        time=F("device__health__state_since"), time__lte=now - timedelta(seconds=every_s))
    sent = Notification.objects.filter(change__in=outages, kind__in=["alert", "reminder"])
    latest: dict[tuple[int, str], tuple[Notification, int]] = {}
    for notification in sent.select_related("change").order_by("reminder"):
        latest[(notification.change_id, notification.url)] = (
            notification, notification.reminder)
    wanted = []
    for (change_id, url), (notification, number) in latest.items():
        due = int((now - notification.change.time).total_seconds() // every_s)
        if due > number:
            wanted.append(Notification(change_id=change_id, url=url, channel=notification.channel,
                                       kind="reminder", reminder=due, next_attempt_at=now))
    Notification.objects.bulk_create(wanted, ignore_conflicts=True)
    return len(wanted)


def evaluate(*, now: datetime) -> PassResult:
    """One pass: health rows for new devices, keep-alive breaches, rhythms,
    states, reminders, then the rules on values (alerts.rule_evaluation)."""
    health_rows_create()
    keep_alive_breaches_apply()
    result = PassResult()
    while (learned := rhythms_learn()):
        result.devices_learned += learned
        if learned < BATCH:
            break
    result.changes = states_update(now=now)
    reminders_plan(now=now)
    result.rules = rules_evaluate(now=now)
    return result


__all__ = ["evaluate", "State"]
