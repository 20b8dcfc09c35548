"""The worker's pass against a real database, real receivers (an HTTP server
for Apprise's json://, an SMTP server for mailto://), and as a real process."""

import json
import os
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.db.models import F
from aiosmtpd.controller import Controller

from alerts.evaluation import evaluate
from alerts.models import Channel, DeviceHealth, Notification, StateChange
from alerts.notify import notifications_send
from readings.models import Device
from readings.services.ingest import UplinkCallback, message_ingest
from tests.serving import ROOT, free_port

T0 = datetime(2026, 3, 1, tzinfo=UTC)
INTERVAL_S = 600


class Receiver(ThreadingHTTPServer):
    """An HTTP endpoint that keeps every JSON body posted to it."""

    def __init__(self, status=200):
        self.bodies, self.status = [], status

        class Handler(BaseHTTPRequestHandler):
            def do_POST(handler):
                length = int(handler.headers.get("Content-Length", 0))
                self.bodies.append(json.loads(handler.rfile.read(length) or b"{}"))
                handler.send_response(self.status)
                handler.end_headers()

            def log_message(handler, *args):
                pass

        super().__init__(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.05},
                         daemon=True).start()

    @property
    def url(self) -> str:
        return f"json://127.0.0.1:{self.server_address[1]}/hook"

    def about(self, device_id: str) -> list[dict]:
        return [b for b in self.bodies if device_id in b.get("title", "")]


@pytest.fixture
def receiver():
    server = Receiver()
    yield server
    server.shutdown()
    server.server_close()


def ingest(device_id: str, time: datetime) -> None:
    message_ingest(uplink=UplinkCallback(device_id=device_id, time=time, sensor="1",
                                         values={"temp": 21.5}, values_raw={"temp": 21.5}),
                   now=time)


def history(device_id: str, count: int = 10) -> datetime:
    for i in range(count):
        ingest(device_id, T0 + timedelta(seconds=INTERVAL_S * i))
    return T0 + timedelta(seconds=INTERVAL_S * (count - 1))


def state(device_id: str) -> str:
    return DeviceHealth.objects.get(device__sigfox_id=device_id).state


def one_pass(now: datetime) -> tuple[int, int]:
    evaluate(now=now)
    return notifications_send(now=now)


@pytest.mark.django_db
def test_it_sends_one_alert_and_one_recovery(settings, receiver):
    settings.SIGFOX_ALERT_URLS = [receiver.url]
    settings.SIGFOX_SITE_URL = "https://sigfox.example.org"
    last = history("1A2B3C")
    Device.objects.filter(sigfox_id="1A2B3C").update(name="Greenhouse")
    assert one_pass(last + timedelta(seconds=60)) == (0, 0)
    assert state("1A2B3C") == "up"
    assert DeviceHealth.objects.get().learned_interval_s == INTERVAL_S
    one_pass(last + timedelta(seconds=1000))
    assert state("1A2B3C") == "late" and receiver.bodies == []
    assert one_pass(last + timedelta(seconds=1900)) == (1, 0)
    assert state("1A2B3C") == "down"
    [alert] = receiver.bodies
    assert alert["title"] == "Sigfox device 1A2B3C (Greenhouse) is down"
    assert "temp = 21.5" in alert["message"]
    assert "https://sigfox.example.org/devices/1A2B3C" in alert["message"]
    assert "Last message: 2026-03-01 01:30:00 UTC" in alert["message"]
    # Later passes while it stays down send nothing more.
    assert one_pass(last + timedelta(seconds=4000)) == (0, 0)
    back = last + timedelta(seconds=5000)
    ingest("1A2B3C", back)
    assert one_pass(back + timedelta(seconds=10)) == (1, 0)
    assert state("1A2B3C") == "up"
    assert [b["title"] for b in receiver.bodies] == [
        "Sigfox device 1A2B3C (Greenhouse) is down", "Sigfox device 1A2B3C (Greenhouse) is up again"]
    assert one_pass(back + timedelta(seconds=20)) == (0, 0)
    assert list(StateChange.objects.values_list("from_state", "to_state")) == [
        ("new", "up"), ("up", "late"), ("late", "down"), ("down", "up")]


@pytest.mark.django_db
def test_it_sends_to_the_channels_of_the_type_and_the_device_once_each(settings, receiver):
    settings.SIGFOX_ALERT_URLS = [receiver.url]
    last = history("ABC")
    device = Device.objects.get(sigfox_id="ABC")
    Channel.objects.create(name="also the site's", url=receiver.url, device=device)
    other = Receiver()
    try:
        Channel.objects.create(name="own", url=other.url, device=device)
        one_pass(last + timedelta(seconds=60))
        assert one_pass(last + timedelta(seconds=1900)) == (2, 0)
        assert len(receiver.about("ABC")) == 1 and len(other.about("ABC")) == 1
    finally:
        other.shutdown()
        other.server_close()


@pytest.mark.django_db
def test_it_mails_the_alert_through_a_real_smtp_server(settings):
    mails = []

    class Handler:
        async def handle_DATA(self, server, session, envelope):
            mails.append(envelope.content.decode())
            return "250 OK"

    port = free_port()
    controller = Controller(Handler(), hostname="127.0.0.1", port=port)
    controller.start()
    try:
        settings.SIGFOX_ALERT_URLS = [
            f"mailto://127.0.0.1:{port}?from=alerts@example.com&to=ops@example.com"]
        last = history("BEEF")
        one_pass(last + timedelta(seconds=60))
        assert one_pass(last + timedelta(seconds=1900)) == (1, 0)
    finally:
        controller.stop()
    [mail] = mails
    assert "Subject: Sigfox device BEEF is down" in mail and "To: ops@example.com" in mail


@pytest.mark.django_db
def test_a_failed_send_is_kept_and_tried_again_with_backoff(settings):
    down = Receiver(status=500)
    try:
        settings.SIGFOX_ALERT_URLS = [down.url]
        last = history("CAFE")
        one_pass(last + timedelta(seconds=60))
        failed_at = last + timedelta(seconds=1900)
        assert one_pass(failed_at) == (0, 1)
        notification = Notification.objects.get()
        assert notification.status == "failed" and notification.attempts == 1
        assert notification.error
        # A minute after the attempt (the pass's time plus how long it had run).
        retry_in = notification.next_attempt_at - failed_at
        assert timedelta(minutes=1) <= retry_in < timedelta(minutes=1, seconds=10)
        assert one_pass(failed_at + timedelta(seconds=30)) == (0, 0)  # not due yet
        down.status = 200
        assert one_pass(failed_at + timedelta(minutes=1, seconds=10)) == (1, 0)
        assert Notification.objects.get().status == "sent" and len(down.bodies) == 2
    finally:
        down.shutdown()
        down.server_close()


@pytest.mark.django_db
def test_a_send_cut_short_by_a_crash_is_sent_again_not_lost(settings, receiver):
    settings.SIGFOX_ALERT_URLS = [receiver.url]
    last = history("D00D")
    one_pass(last + timedelta(seconds=60))
    down_at = last + timedelta(seconds=1900)
    evaluate(now=down_at)
    # A worker claimed it and died before sending: the row says "sending".
    Notification.objects.update(status="sending", attempts=1, last_attempt_at=down_at)
    assert notifications_send(now=down_at + timedelta(minutes=1)) == (0, 0)  # still leased
    assert notifications_send(now=down_at + timedelta(minutes=6)) == (1, 0)
    assert len(receiver.bodies) == 1


@pytest.mark.django_db
def test_a_muted_device_sends_nothing(settings, receiver):
    settings.SIGFOX_ALERT_URLS = [receiver.url]
    last = history("F00D")
    one_pass(last + timedelta(seconds=60))
    DeviceHealth.objects.update(muted_until=last + timedelta(days=1))
    assert one_pass(last + timedelta(seconds=1900)) == (0, 0)
    assert state("F00D") == "muted" and receiver.bodies == []


@pytest.mark.django_db
def test_a_set_interval_wins_over_the_learned_one(settings):
    last = history("FACE")
    DeviceHealth.objects.update_or_create(device=Device.objects.get(sigfox_id="FACE"),
                                          defaults={"interval_s": 3600})
    evaluate(now=last + timedelta(seconds=1900))
    assert state("FACE") == "up"
    evaluate(now=last + timedelta(seconds=3 * 3600 + 1))
    assert state("FACE") == "down"


@pytest.mark.http
def test_the_worker_process_alerts_and_recovers(server, receiver):
    """History posted over HTTP with past times, the device silent, one pass of
    `manage.py runworker --once`; a message arrives; a second pass."""
    from tests.helpers import request

    now = int(time.time())
    for i in range(10):
        body = json.dumps({"device": "5EED01", "time": now - 8400 + 600 * i, "temp": 20 + i})
        assert request(server.url + "/data/1", body)[0] == 204
    env = {**os.environ, "DATABASE_URL": server.database_url, "SIGFOXSITE_READ_DOT_ENV": "false",
           "SECRET_KEY": "worker-in-the-test-suite-" + "x" * 30, "SIGFOX_ALERT_URLS": receiver.url}

    def worker_pass():
        done = subprocess.run([sys.executable, "manage.py", "runworker", "--once"], cwd=ROOT,
                              env=env, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        return done.stdout

    # Silent for 3000 s: down after 3 x 600 s.
    worker_pass()
    assert [b["title"] for b in receiver.about("5EED01")] == ["Sigfox device 5EED01 is down"]
    assert request(server.url + "/data/1", json.dumps(
        {"device": "5EED01", "time": now + 5, "temp": 30}))[0] == 204
    worker_pass()
    worker_pass()
    assert [b["title"] for b in receiver.about("5EED01")] == [
        "Sigfox device 5EED01 is down", "Sigfox device 5EED01 is up again"]


@pytest.mark.django_db
def test_learned_times_compare_with_the_devices_own(settings):
    # A microsecond after the newest learned message is new; the same time is not.
    last = history("ACE")
    evaluate(now=last + timedelta(seconds=60))
    health_row = DeviceHealth.objects.get()
    assert health_row.learned_until == last
    assert DeviceHealth.objects.filter(device__last_seen__gt=F("learned_until")).count() == 0
    ingest("ACE", last + timedelta(microseconds=1))
    assert DeviceHealth.objects.filter(device__last_seen__gt=F("learned_until")).count() == 1


@pytest.mark.django_db
def test_a_keep_alive_error_callback_marks_the_device_down_until_a_message(
        settings, receiver, client):
    settings.SIGFOX_ALERT_URLS = [receiver.url]
    last = history("BAD")
    one_pass(last + timedelta(seconds=60))
    raised = last + timedelta(seconds=300)  # sooner than its own rhythm would say
    response = client.post("/sigfox/error", {
        "device": "BAD", "time": int(raised.timestamp()), "severity": "ERROR",
        "info": "No message received since 2026-03-01 01:30:00"}, content_type="application/json")
    assert response.status_code == 204, response.content
    assert one_pass(raised + timedelta(seconds=10)) == (1, 0)
    assert state("BAD") == "down"
    assert StateChange.objects.last().reason == (
        "Sigfox reported its keep-alive breached (ERROR callback)")
    # A network warning (WARN) is shown, not an alert.
    client.post("/sigfox/error", {"device": "ABC", "time": int(raised.timestamp()),
                                  "severity": "WARN", "info": "base station down"},
                content_type="application/json")
    ingest("BAD", raised + timedelta(seconds=60))
    assert one_pass(raised + timedelta(seconds=70)) == (1, 0)
    assert state("BAD") == "up"
    assert [b["title"] for b in receiver.about("BAD")] == [
        "Sigfox device BAD is down", "Sigfox device BAD is up again"]


@pytest.mark.django_db
def test_it_reminds_while_a_device_stays_down_when_asked(settings, receiver):
    settings.SIGFOX_ALERT_URLS = [receiver.url]
    last = history("B0B")
    one_pass(last + timedelta(seconds=60))
    down_at = last + timedelta(seconds=1900)
    one_pass(down_at)
    one_pass(down_at + timedelta(hours=5))
    assert len(receiver.about("B0B")) == 1  # off by default
    settings.SIGFOX_ALERT_REMINDER_S = 3600
    assert one_pass(down_at + timedelta(hours=5, seconds=10)) == (1, 0)  # the 5th, not all 5
    assert one_pass(down_at + timedelta(hours=5, seconds=20)) == (0, 0)
    assert one_pass(down_at + timedelta(hours=6, seconds=1)) == (1, 0)
    assert [b["title"] for b in receiver.about("B0B")] == [
        "Sigfox device B0B is down", "Sigfox device B0B is still down",
        "Sigfox device B0B is still down"]
    back = down_at + timedelta(hours=6, minutes=30)
    ingest("B0B", back)
    one_pass(back)
    assert one_pass(back + timedelta(minutes=10)) == (0, 0)  # up: no more reminders
    assert receiver.about("B0B")[-1]["title"] == "Sigfox device B0B is up again"


@pytest.mark.django_db
@pytest.mark.parametrize("way_out", ["muted", "interval", "young-keep-alive"])
def test_every_way_out_of_down_sends_the_recovery(settings, receiver, client, way_out):
    settings.SIGFOX_ALERT_URLS = [receiver.url]
    if way_out == "young-keep-alive":
        last = history("C0DE", count=2)  # too few messages to know a rhythm
        client.post("/sigfox/error", {"device": "C0DE", "time": int(last.timestamp()) + 300,
                                      "severity": "ERROR", "info": "No message received"},
                    content_type="application/json")
        down_at = last + timedelta(seconds=310)
    else:
        last = history("C0DE")
        one_pass(last + timedelta(seconds=60))
        down_at = last + timedelta(seconds=1900)
    assert one_pass(down_at) == (1, 0) and state("C0DE") == "down"
    later = down_at + timedelta(seconds=60)
    if way_out == "muted":
        DeviceHealth.objects.update(muted_until=later)
        one_pass(later - timedelta(seconds=30))
        assert state("C0DE") == "muted"
        ingest("C0DE", later)
    elif way_out == "interval":
        DeviceHealth.objects.update(interval_s=86_400)  # it sends daily, in fact
    else:
        ingest("C0DE", later)
    assert one_pass(later + timedelta(seconds=5)) == (1, 0)
    assert state("C0DE") in ("up", "new")
    assert [b["title"] for b in receiver.about("C0DE")] == [
        "Sigfox device C0DE is down", "Sigfox device C0DE is up again"]
    assert one_pass(later + timedelta(seconds=10)) == (0, 0)


@pytest.mark.django_db
def test_a_device_whose_messages_are_gone_is_learned_once(settings):
    from alerts.evaluation import health_rows_create, rhythms_learn
    from readings.models import Message

    history("DEAD")
    health_rows_create()
    Message.objects.all().delete()  # pruned: last seen stays
    assert rhythms_learn() == 1
    assert rhythms_learn() == 0


@pytest.mark.django_db
def test_it_gives_up_after_many_failed_attempts(settings):
    from alerts import notify

    settings.SIGFOX_ALERT_URLS = ["json://127.0.0.1:9/nothing-listens"]
    last = history("FADE")
    one_pass(last + timedelta(seconds=60))
    down_at = last + timedelta(seconds=1900)
    evaluate(now=down_at)
    Notification.objects.update(attempts=notify.MAX_ATTEMPTS - 1)
    assert notifications_send(now=down_at) == (0, 1)
    notification = Notification.objects.get()
    assert notification.status == "gave_up" and notification.attempts == notify.MAX_ATTEMPTS
    assert notifications_send(now=down_at + timedelta(days=30)) == (0, 0)


@pytest.mark.django_db
def test_a_send_taken_over_after_its_lease_is_not_sent_again(settings, receiver):
    settings.SIGFOX_ALERT_URLS = [receiver.url]
    last = history("BEAD")
    one_pass(last + timedelta(seconds=60))
    down_at = last + timedelta(seconds=1900)
    evaluate(now=down_at)
    from alerts import notify

    [claimed] = notify._claim(down_at)  # worker A claims it, then stalls
    # Worker B takes it over once A's lease has run out, and sends it.
    assert notifications_send(now=down_at + timedelta(minutes=6)) == (1, 0)
    # A wakes up: its claim is no longer the row's, so it sends nothing.
    assert not Notification.objects.filter(pk=claimed.pk, attempts=claimed.attempts,
                                            status="sending").exists()
    assert len(receiver.bodies) == 1
