"""Sending notifications through Apprise, once per change and channel.

A notification row is written pending with the change that calls for it
(alerts.evaluation). Sending claims it (status "sending", committed) before
Apprise is called and records the outcome after: a crash in between leaves
it "sending", and a later pass sends it again once its lease has run out,
so a notification may be repeated once but is never lost. A failed send is
tried again with backoff, its error kept for the admin.
"""

import logging
import time
from collections import defaultdict
from datetime import datetime, timedelta

import apprise
from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.urls import reverse

from alerts.models import Channel, Notification
from readings.models import Device, Reading

log = logging.getLogger(__name__)

# A claimed notification not settled within this long is sent again.
LEASE = timedelta(minutes=5)
# Backoff after a failed send: 1, 2, 4, ... minutes, at most a day.
FIRST_RETRY = timedelta(minutes=1)
MAX_RETRY = timedelta(days=1)
# Then it is given up (about ten days of trying), and shown so in the admin.
MAX_ATTEMPTS = 20
BATCH = 100


def channels_for(device_pks) -> dict[int, list[tuple[str, Channel | None]]]:
    """{device pk: [(url, channel)]}: every channel a change of each device goes
    to (the site's SIGFOX_ALERT_URLS, its type's channels, its own; each URL
    once), from two queries however many devices."""
    type_of = dict(Device.objects.filter(pk__in=list(device_pks))
                   .values_list("pk", "device_type_id"))
    type_pks = {t for t in type_of.values() if t}
    channels = list(Channel.objects.filter(
        Q(device_id__in=list(type_of)) | Q(device_type_id__in=type_pks)).order_by("pk"))
    of_device, of_type = defaultdict(list), defaultdict(list)
    for channel in channels:
        if channel.device_id:
            of_device[channel.device_id].append(channel)
        else:
            of_type[channel.device_type_id].append(channel)
    answer = {}
    for pk, type_pk in type_of.items():
        found: dict[str, Channel | None] = {url: None for url in settings.SIGFOX_ALERT_URLS}
        for channel in sorted(of_type[type_pk] + of_device[pk], key=lambda c: c.pk):
            found.setdefault(channel.url, channel)
        answer[pk] = list(found.items())
    return answer


def _latest(device: Device) -> str:
    reading = Reading.objects.filter(device=device).order_by("-time").first()
    if reading is None:
        return "no reading yet"
    return f"{reading.quantity} = {reading.value:g} at {reading.time:%Y-%m-%d %H:%M:%S} UTC"


def message_text(notification: Notification) -> tuple[str, str]:
    """(title, body) naming the device, what happened, since when, its last
    value and a link to its page."""
    if notification.breach_id is not None:
        return _breach_text(notification)
    change = notification.change
    device = change.device
    name = f"{device.sigfox_id} ({device.name})" if device.name else device.sigfox_id
    what = {"alert": "is down", "reminder": "is still down"}.get(notification.kind, "is up again")
    title = f"Sigfox device {name} {what}"
    last = (f"Last message: {device.last_seen:%Y-%m-%d %H:%M:%S} UTC" if device.last_seen
            else "No message yet")
    url = settings.SIGFOX_SITE_URL.rstrip("/") + reverse("device", args=[device.sigfox_id])
    body = "\n".join([
        f"{title}: {change.reason}.",
        f"Since {change.time:%Y-%m-%d %H:%M:%S} UTC ({change.from_state} → {change.to_state}).",
        last + ".",
        f"Latest value: {_latest(device)}.",
        url,
    ])
    return title, body


def _breach_text(notification: Notification) -> tuple[str, str]:
    """A rule's alert, "Sigfox device 1A2B3C: temp above 30 (31.2 °C)", or its
    recovery, "Sigfox device 1A2B3C: temp back within bounds (28.1 °C)"."""
    from alerts import rules
    from readings.selectors.units import quantity_display

    breach = notification.breach
    rule, device = breach.rule, breach.device
    name = f"{device.sigfox_id} ({device.name})" if device.name else device.sigfox_id
    unit = quantity_display(device, rule.quantity).unit if rule.quantity else ""
    described = rules.describe(kind=rule.kind, quantity=rule.quantity, threshold=rule.threshold,
                               window=rule.window)
    if notification.kind == "recovery":
        value = breach.end_value
        if rule.kind == rules.SILENCE:
            what, value = f"{rule.quantity} values again", None
        elif rule.kind == rules.LOSS:
            what = "lost messages back within bounds"
        else:
            what = f"{rule.quantity} back within bounds"
        since = f"Back at {breach.ended_at:%Y-%m-%d %H:%M:%S} UTC; broken since " \
                f"{breach.started_at:%Y-%m-%d %H:%M:%S} UTC."
    else:
        value, what = breach.value, described
        since = f"Since {breach.started_at:%Y-%m-%d %H:%M:%S} UTC."
    if rule.kind == rules.SILENCE:
        value = None  # the title says it all
    seen = rules.value_text(kind=rule.kind, value=value, unit=unit, window=rule.window)
    title = f"Sigfox device {name}: {what}" + (f" ({seen})" if seen else "")
    url = settings.SIGFOX_SITE_URL.rstrip("/") + reverse("device", args=[device.sigfox_id])
    scope = f"Rule: {rule} ({rule.scope})."
    body = "\n".join([title + ".", since, scope, f"Latest value: {_latest(device)}.", url])
    return title, body


def send(url: str, title: str, body: str) -> str:
    """Send one message to one Apprise URL: "" when it went, else why not."""
    sender = apprise.Apprise()
    if not sender.add(url):
        return "not an Apprise URL this server can use"
    logs = apprise.LogCapture(level=logging.WARNING)
    with logs as captured:
        ok = sender.notify(title=title, body=body)
    if ok:
        return ""
    return (captured.getvalue().strip().splitlines() or ["the service refused it"])[-1][:500]


def _claim(now: datetime) -> list[Notification]:
    due = Notification.objects.filter(
        Q(status__in=[Notification.Status.PENDING, Notification.Status.FAILED],
          next_attempt_at__lte=now)
        | Q(status=Notification.Status.SENDING, last_attempt_at__lt=now - LEASE)
    ).order_by("next_attempt_at", "pk")
    with transaction.atomic():
        claimed = list(due.select_for_update(skip_locked=True)[:BATCH])
        for notification in claimed:
            notification.status = Notification.Status.SENDING
            notification.attempts += 1
            notification.last_attempt_at = now
        Notification.objects.bulk_update(claimed, ["status", "attempts", "last_attempt_at"])
    return claimed


def notifications_send(*, now: datetime) -> tuple[int, int]:
    """Send what is due; returns (sent, failed).

    Each row's lease is renewed just before its send, on condition that it is
    still this pass's claim (same attempt), so a batch slower than LEASE is
    not sent a second time by another worker; the outcome is written on the
    same condition.
    """
    sent = failed = 0
    started = time.monotonic()
    for notification in _claim(now):
        mine = Notification.objects.filter(pk=notification.pk, status=Notification.Status.SENDING,
                                           attempts=notification.attempts)
        at = now + timedelta(seconds=time.monotonic() - started)
        if not mine.update(last_attempt_at=at):
            continue  # taken over by another worker after our lease ran out
        try:
            title, body = message_text(Notification.objects.select_related(
                "change__device", "breach__device", "breach__rule").get(pk=notification.pk))
            error = send(notification.url, title, body)
        except Exception as exc:  # noqa: BLE001  (one bad notification must not stop the rest)
            log.exception("notification %s could not be sent", notification.pk)
            error = f"{type(exc).__name__}: {exc}"[:500]
        if error:
            failed += 1
            if notification.attempts >= MAX_ATTEMPTS:
                mine.update(status=Notification.Status.GAVE_UP, error=error)
            else:
                delay = min(MAX_RETRY, FIRST_RETRY * 2 ** min(notification.attempts - 1, 12))
                mine.update(status=Notification.Status.FAILED, error=error,
                            next_attempt_at=at + delay)
            log.warning("notification %s to %s failed (attempt %d): %s", notification.pk,
                        _masked(notification.url), notification.attempts, error)
        else:
            sent += 1
            mine.update(status=Notification.Status.SENT, error="", sent_at=at)
    return sent, failed


def _masked(url: str) -> str:
    """The URL's scheme and host only: the rest may hold a password or token."""
    scheme, _, rest = url.partition("://")
    return f"{scheme}://{rest.split('/')[0].rpartition('@')[2]}/…"
