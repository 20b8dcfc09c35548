"""The worker pass's rule step: judge devices by the rules on their values
(alerts.rules), open a RuleBreach when one is broken and close it when the
device is back within bounds, each with a pending Notification per channel.

Bounded whatever the fleet: rules on a value or on lost messages judge only
the devices that sent something since they were last judged (a RuleCursor
per device; every device once more when a rule is written), a batch at a
time; silence rules are one statement per rule over the series registry and
the readings' series index, and bring back only the devices whose breach
opens or closes. Nothing is read when no rule is enabled.
"""

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from django.db import connection, transaction
from django.db.models import F, Max, OuterRef, Q, Subquery
from django.utils.dateparse import parse_datetime

from alerts import rules
from alerts.models import DeviceHealth, Notification, Rule, RuleBreach, RuleCursor
from readings import db
from readings.models import Device, Reading, Series

# Devices judged per transaction.
BATCH = 2000


@dataclass
class RuleResult:
    devices_judged: int = 0
    opened: list[RuleBreach] = field(default_factory=list)
    closed: list[RuleBreach] = field(default_factory=list)


def _scope(rule: Rule) -> rules.RuleScope:
    return rules.RuleScope(pk=rule.pk, kind=rule.kind, quantity=rule.quantity,
                           device_type_id=rule.device_type_id, device_id=rule.device_id)


def _aware(value) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, str):
        value = parse_datetime(value)
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def breaches_retire(*, now: datetime) -> int:
    """Close, without a recovery, the open breaches of rules now disabled."""
    return RuleBreach.objects.filter(ended_at=None, rule__enabled=False).update(
        ended_at=now, recovered=False)


def cursors_create() -> int:
    """A RuleCursor for every device that has sent something and has none."""
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO alerts_rulecursor (device_id) SELECT d.id FROM readings_device d "
            "WHERE d.last_seen IS NOT NULL AND NOT EXISTS "
            "(SELECT 1 FROM alerts_rulecursor c WHERE c.device_id = d.id) "
            "ON CONFLICT (device_id) DO NOTHING")
        return cursor.rowcount


def _newest_values(pks: list[int], quantities: set[str]) -> dict[tuple[int, str], float]:
    """{(device pk, quantity): its newest value, whatever the sensor}: two probes
    of the series index per series."""
    if not pks or not quantities:
        return {}
    newest = Reading.objects.filter(device_id=OuterRef("device_id"), sensor=OuterRef("sensor"),
                                    quantity=OuterRef("quantity")).order_by("-time")
    rows = Series.objects.filter(device_id__in=pks, quantity__in=quantities).annotate(
        value=Subquery(newest.values("value")[:1]), time=Subquery(newest.values("time")[:1]),
    ).values_list("device_id", "quantity", "value", "time")
    found: dict[tuple[int, str], tuple[datetime, float]] = {}
    for pk, quantity, value, time in rows:
        time = _aware(time)
        if value is None or time is None:
            continue
        if (pk, quantity) not in found or time > found[(pk, quantity)][0]:
            found[(pk, quantity)] = (time, value)
    return {key: value for key, (_, value) in found.items()}


# Per device: its N-th newest message's time, then the messages since (N or
# fewer) and the messages lost between them (the gaps before each; a counter
# reset loses nothing known). Index probes on (device, time) only.
_LOSS_SQL = """
SELECT x.id,
  (SELECT COUNT(*) FROM readings_message m
   WHERE m.device_id = x.id AND (x.since IS NULL OR m.time >= x.since)),
  (SELECT COALESCE(SUM(g.missing), 0) FROM readings_sequencegap g
   WHERE g.device_id = x.id AND g.reset = %s AND (x.since IS NULL OR g.time >= x.since))
FROM (SELECT d.id, (SELECT m.time FROM readings_message m WHERE m.device_id = d.id
                    ORDER BY m.time DESC LIMIT 1 OFFSET %s) AS since
      FROM readings_device d WHERE d.id IN ({pks})) x
"""


def _loss_shares(pks: list[int], window: int) -> dict[int, float]:
    if not pks:
        return {}
    with connection.cursor() as cursor:
        cursor.execute(_LOSS_SQL.format(pks=",".join(str(int(pk)) for pk in pks)),
                       [False, window - 1])
        return {pk: rules.loss_share(missing=int(missing), received=int(received))
                for pk, received, missing in cursor.fetchall() if received}


def _reason(rule: Rule, value: float, unit: str = "") -> str:
    seen = rules.value_text(kind=rule.kind, value=value, unit=unit, window=rule.window)
    described = rules.describe(kind=rule.kind, quantity=rule.quantity, threshold=rule.threshold,
                               window=rule.window)
    return f"{described} ({seen})"[:300]


def values_judge(*, now: datetime, in_force: list[Rule], rules_at: datetime | None) -> tuple[
        int, list[RuleBreach], list[RuleBreach]]:
    """Judge one batch of the devices with news (or under rules written since
    they were last judged) by the rules on values and lost messages; returns
    (devices judged, breaches opened, breaches closed)."""
    value_rules = [r for r in in_force if r.kind != rules.SILENCE]
    by_pk = {r.pk: r for r in value_rules}
    scopes = [_scope(r) for r in value_rules]
    stale = RuleCursor.objects.filter(
        Q(checked_until__isnull=True) | Q(device__last_seen__gt=F("checked_until"))
        | Q(rules_seen_at__isnull=True)
        | (Q(rules_seen_at__lt=rules_at) if rules_at is not None else Q(pk__in=[])))
    opened, closed = [], []
    with transaction.atomic():
        rows = list(stale.select_for_update(skip_locked=True, of=("self",)).values_list(
            "device_id", "device__device_type_id", "device__last_seen")[:BATCH])
        if not rows:
            return 0, [], []
        pks = [pk for pk, *_ in rows]
        under = {pk: [by_pk[s.pk] for s in rules.rules_in_force(
            scopes, device_id=pk, device_type_id=type_pk)] for pk, type_pk, _ in rows}
        quantities = {r.quantity for r in value_rules if r.kind in (rules.ABOVE, rules.BELOW)}
        values = _newest_values(pks, quantities)
        losses: dict[int, dict[int, float]] = {}
        for window in {r.window for r in value_rules if r.kind == rules.LOSS}:
            losses[window] = _loss_shares(
                [pk for pk in pks if any(r.kind == rules.LOSS and r.window == window
                                         for r in under[pk])], window)
        open_now = {(b.rule_id, b.device_id): b for b in RuleBreach.objects.filter(
            device_id__in=pks, ended_at=None).exclude(rule__kind=rules.SILENCE)}
        open_of = defaultdict(list)
        for (rule_pk, device_pk), breach in open_now.items():
            open_of[device_pk].append((rule_pk, breach))
        for pk in pks:
            judged = set()
            for rule in under[pk]:
                judged.add(rule.pk)
                if rule.kind == rules.LOSS:
                    value = losses[rule.window].get(pk)
                else:
                    value = values.get((pk, rule.quantity))
                if value is None:
                    continue  # nothing to judge: the state stays
                breach = open_now.get((rule.pk, pk))
                now_breached = rules.breached(rule.kind, value, rule.threshold, rule.hysteresis,
                                              breach is not None)
                if now_breached and breach is None:
                    opened.append(RuleBreach(rule=rule, device_id=pk, started_at=now, value=value,
                                             reason=_reason(rule, value)))
                elif breach is not None and not now_breached:
                    breach.ended_at, breach.end_value = now, value
                    closed.append(breach)
            for rule_pk, breach in open_of[pk]:
                if rule_pk not in judged:
                    breach.ended_at, breach.recovered = now, False  # no longer applies
                    closed.append(breach)
        RuleBreach.objects.bulk_create(opened)
        RuleBreach.objects.bulk_update(closed, ["ended_at", "end_value", "recovered"])
        db.update_rows("alerts_rulecursor", "device_id", [
            ("checked_until", "timestamptz"), ("rules_seen_at", "timestamptz")],
            [(pk, last_seen, rules_at) for pk, _, last_seen in rows])
        notifications_plan(opened, closed, now=now)
    return len(rows), opened, closed


def _silence_sql(rule: Rule) -> tuple[str, list]:
    """Devices under a silence rule whose breach opens or closes now: the
    newest reading of the quantity per device (any sensor), from the series
    registry and one probe of the series index per series."""
    params: list = [rule.quantity]
    if rule.device_id is not None:
        scope = "d.id = %s"
        params.append(rule.device_id)
        overridden = "FALSE" if db.is_postgresql() else "0"
    else:
        if rule.device_type_id is not None:
            scope = "d.device_type_id = %s"
            params.append(rule.device_type_id)
            wins = "o.device_id = d.id"
        else:
            scope = "1 = 1"
            wins = ("o.device_id = d.id OR (o.device_id IS NULL AND o.device_type_id IS NOT NULL "
                    "AND o.device_type_id = d.device_type_id)")
        overridden = (f"EXISTS (SELECT 1 FROM alerts_rule o WHERE o.enabled = %s AND o.kind = %s "
                      f"AND o.quantity = %s AND ({wins}))")
        params += [True, rules.SILENCE, rule.quantity]
    cutoff = connection.ops.adapt_datetimefield_value(rule.cutoff)
    sql = f"""
SELECT n.device_id, n.newest, b.id FROM (
    SELECT s.device_id, MAX((SELECT MAX(r.time) FROM readings_reading r
                             WHERE r.device_id = s.device_id AND r.sensor = s.sensor
                               AND r.quantity = s.quantity)) AS newest
    FROM readings_series s JOIN readings_device d ON d.id = s.device_id
    WHERE s.quantity = %s AND {scope} AND NOT ({overridden})
    GROUP BY s.device_id
) n LEFT JOIN alerts_rulebreach b
    ON b.rule_id = %s AND b.device_id = n.device_id AND b.ended_at IS NULL
WHERE (n.newest < %s AND b.id IS NULL) OR (n.newest >= %s AND b.id IS NOT NULL)
"""
    return sql, [*params, rule.pk, cutoff, cutoff]


def silences_judge(*, now: datetime, in_force: list[Rule]) -> tuple[list[RuleBreach],
                                                                    list[RuleBreach]]:
    """Open and close the breaches of every silence rule; returns (opened, closed)."""
    silence_rules = [r for r in in_force if r.kind == rules.SILENCE]
    opened, closed = [], []
    scopes = [_scope(r) for r in silence_rules]
    with transaction.atomic():
        # A rule another worker is judging is skipped (PostgreSQL), so that a
        # breach opens once.
        mine = set(Rule.objects.filter(pk__in=[r.pk for r in silence_rules])
                   .select_for_update(skip_locked=True).values_list("pk", flat=True))
        for rule in [r for r in silence_rules if r.pk in mine]:
            rule.cutoff = now - timedelta(seconds=rule.window)
            sql, params = _silence_sql(rule)
            with connection.cursor() as cursor:
                cursor.execute(sql, params)
                found = cursor.fetchall()
            ending = {}
            for pk, newest, breach_pk in found:
                silent_s = (now - _aware(newest)).total_seconds()
                if breach_pk is None:
                    opened.append(RuleBreach(rule=rule, device_id=pk, started_at=now,
                                             value=silent_s, reason=_reason(rule, silent_s)))
                else:
                    ending[breach_pk] = silent_s
            for breach in RuleBreach.objects.filter(pk__in=list(ending)).select_for_update():
                breach.ended_at, breach.end_value = now, ending[breach.pk]
                closed.append(breach)
        # Open silence breaches of rules that no longer apply to their device
        # (a more specific rule came, the device changed type): closed, no recovery.
        still = RuleBreach.objects.filter(ended_at=None, rule__kind=rules.SILENCE).exclude(
            pk__in=[b.pk for b in closed]).select_related("device")
        for breach in still:
            under = rules.rules_in_force(scopes, device_id=breach.device_id,
                                         device_type_id=breach.device.device_type_id)
            if breach.rule_id not in {s.pk for s in under}:
                breach.ended_at, breach.recovered = now, False
                closed.append(breach)
        RuleBreach.objects.bulk_create(opened)
        RuleBreach.objects.bulk_update(closed, ["ended_at", "end_value", "recovered"])
        notifications_plan(opened, closed, now=now)
    return opened, closed


def notifications_plan(opened: list[RuleBreach], closed: list[RuleBreach], *,
                       now: datetime) -> int:
    """A pending Notification per channel for each breach opened (an alert) and
    each closed by recovering (a recovery); none while the device is muted."""
    from alerts.notify import channels_for

    told = [(b, "alert") for b in opened] + [
        (b, "recovery") for b in closed if b.recovered]
    if not told:
        return 0
    pks = {b.device_id for b, _ in told}
    muted = set(DeviceHealth.objects.filter(device_id__in=pks, muted_until__gt=now)
                .values_list("device_id", flat=True))
    channels = channels_for(pks - muted)
    wanted = [Notification(breach=breach, url=url, channel=channel, kind=kind,
                           next_attempt_at=now)
              for breach, kind in told if breach.device_id in channels
              for url, channel in channels[breach.device_id]]
    Notification.objects.bulk_create(wanted, ignore_conflicts=True)
    return len(wanted)


def rules_evaluate(*, now: datetime) -> RuleResult:
    """The pass's rule step: retire breaches of disabled rules, judge the
    devices with news by the value and loss rules, then every silence rule."""
    result = RuleResult()
    breaches_retire(now=now)
    in_force = list(Rule.objects.filter(enabled=True))
    if not in_force:
        return result
    if any(r.kind != rules.SILENCE for r in in_force):
        cursors_create()
        rules_at = Rule.objects.aggregate(at=Max("updated_at"))["at"]
        while True:
            judged, opened, closed = values_judge(now=now, in_force=in_force, rules_at=rules_at)
            result.devices_judged += judged
            result.opened += opened
            result.closed += closed
            if judged < BATCH:
                break
    opened, closed = silences_judge(now=now, in_force=in_force)
    result.opened += opened
    result.closed += closed
    return result


def device_value_rules(device: Device) -> list[tuple[Rule, RuleBreach | None]]:
    """The enabled rules a device is under (alerts.rules.rules_in_force), each
    with its open breach or None, for its page."""
    in_force = list(Rule.objects.filter(
        Q(device=device) | Q(device_type_id=device.device_type_id, device__isnull=True)
        | Q(device_type__isnull=True, device__isnull=True), enabled=True))
    by_pk = {r.pk: r for r in in_force}
    under = rules.rules_in_force([_scope(r) for r in in_force], device_id=device.pk,
                                 device_type_id=device.device_type_id)
    breaches = {b.rule_id: b for b in RuleBreach.objects.filter(device=device, ended_at=None)}
    return [(by_pk[s.pk], breaches.get(s.pk)) for s in under]
