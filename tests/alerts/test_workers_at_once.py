"""Several workers at once on PostgreSQL: each change and each notification once."""

import threading
from datetime import timedelta

import pytest
from django.conf import settings
from django.db import connection

from alerts.evaluation import evaluate
from alerts.models import Notification, StateChange
from alerts.notify import notifications_send
from tests.alerts.test_worker import Receiver, history

pytestmark = [
    pytest.mark.skipif(
        settings.DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql",
        reason="needs PostgreSQL (DATABASE_URL=postgres://...): several workers at once is "
        "what SKIP LOCKED is for; one worker is enough on SQLite",
    ),
    pytest.mark.django_db(transaction=True),
]
WORKERS = 4


def at_once(function) -> list:
    barrier = threading.Barrier(WORKERS)
    results: list = [None] * WORKERS

    def run(index: int) -> None:
        try:
            barrier.wait(timeout=30)
            results[index] = function()
        except BaseException as exc:  # noqa: BLE001  (reported by the test)
            results[index] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(WORKERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return results


def test_workers_at_once_change_each_state_and_send_each_notification_once(settings):
    receiver = Receiver()
    try:
        settings.SIGFOX_ALERT_URLS = [receiver.url]
        last = None
        for n in range(20):
            last = history(f"AB{n:02X}")
        evaluate(now=last + timedelta(seconds=60))
        down_at = last + timedelta(seconds=1900)
        results = at_once(lambda: evaluate(now=down_at))
        assert not [r for r in results if isinstance(r, BaseException)], results
        assert StateChange.objects.filter(to_state="down").count() == 20
        assert Notification.objects.count() == 20
        sent = at_once(lambda: notifications_send(now=down_at))
        assert not [r for r in sent if isinstance(r, BaseException)], sent
        assert sum(s[0] for s in sent) == 20
        assert sorted(b["title"] for b in receiver.bodies) == sorted(
            f"Sigfox device AB{n:02X} is down" for n in range(20))
    finally:
        receiver.shutdown()
        receiver.server_close()


def test_workers_at_once_on_devices_none_has_seen_yet():
    for n in range(20):
        last = history(f"CD{n:02X}")
    results = at_once(lambda: evaluate(now=last + timedelta(seconds=60)))
    assert not [r for r in results if isinstance(r, BaseException)], results
    assert StateChange.objects.filter(from_state="new", to_state="up").count() == 20
