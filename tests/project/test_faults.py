"""The database goes away under load: quick 503s, nothing half-stored, recovery on its own.

A TCP proxy stands between gunicorn and the local PostgreSQL; cutting it
drops every open connection and refuses new ones, as a stopped server does.
"""

import http.client
import json
import os
import socket
import threading
import time
from collections import Counter

import pytest

from tests.conftest import missing_dependency
from tests.serving import (
    drop_postgres_database,
    free_port,
    gunicorn,
    migrate,
    postgres_database,
    served_env,
)

pytestmark = pytest.mark.http

CUT_AFTER_S = 2.0
CUT_FOR_S = 3.0
RUN_AFTER_S = 4.0
CLIENTS = 4


class TcpProxy:
    """Forwards a local port to PostgreSQL until cut; restore() listens again."""

    def __init__(self, target: tuple[str, int]):
        self.target = target
        self.port = free_port()
        self.listener: socket.socket | None = None
        self.sockets: set[socket.socket] = set()
        self.lock = threading.Lock()

    def start(self) -> None:
        with self.lock:
            self.listener = socket.create_server(("127.0.0.1", self.port))
        threading.Thread(target=self._accept, args=(self.listener,), daemon=True).start()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return  # the listener was closed: cut
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            with self.lock:
                if listener is not self.listener or listener.fileno() == -1:
                    client.close()  # accepted just as the proxy was cut
                    upstream.close()
                    return
                self.sockets |= {client, upstream}
            for src, dst in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(src, dst), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        for sock in (src, dst):
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def cut(self) -> None:
        with self.lock:
            # shutdown() wakes the thread blocked in accept(); close() alone does not.
            try:
                self.listener.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            self.listener.close()
            sockets, self.sockets = self.sockets, set()
        for sock in sockets:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()

    restore = start


@pytest.fixture
def postgres_url():
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith(("postgres://", "postgresql://")):
        pytest.skip("runs against PostgreSQL: the suite's PostgreSQL pass (DATABASE_URL) covers it")
    try:
        import psycopg

        psycopg.connect(url, connect_timeout=3).close()
    except Exception as exc:  # noqa: BLE001  (any failure here means: no database)
        missing_dependency(f"PostgreSQL at {url} cannot be reached: {exc}")
    return url


@pytest.fixture
def database_url(postgres_url):
    """A database of the test's own beside the test database, dropped afterwards.
    Named after this process, so that two suites can share one PostgreSQL."""
    url = postgres_database(postgres_url, f"sigfoxsite_faults_{os.getpid()}")
    yield url
    drop_postgres_database(postgres_url, url)


def send_until(stop: threading.Event, url: str, client: int, results: list) -> None:
    host, port = url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=15)
    number = 0
    while not stop.is_set():
        number += 1
        body = {"device": f"FA{client:02X}", "time": str(1_700_000_000 + number * 600),
                "temp": number % 40, "hum": 50}
        started = time.monotonic()
        try:
            connection.request("POST", "/data/1", json.dumps(body),
                               {"Content-Type": "application/json"})
            response = connection.getresponse()
            response.read()
            status = response.status
        except (OSError, http.client.HTTPException):
            connection.close()
            status = "no answer"
        results.append((started, body["device"], number, status, time.monotonic() - started))


def test_it_answers_503_while_the_database_is_gone_and_recovers(database_url, tmp_path):
    migrate(served_env(database_url))
    host, port = "127.0.0.1", 5432
    proxy = TcpProxy((host, port))
    proxy.start()
    proxied_url = database_url.replace(f"@{host}:{port}/", f"@127.0.0.1:{proxy.port}/")
    assert proxied_url != database_url

    results: list = []
    stop = threading.Event()
    with gunicorn(served_env(proxied_url), tmp_path / "gunicorn.log") as url:
        threads = [threading.Thread(target=send_until, args=(stop, url, c, results)) for c in range(CLIENTS)]
        for thread in threads:
            thread.start()
        time.sleep(CUT_AFTER_S)
        cut_at = time.monotonic()
        proxy.cut()
        time.sleep(CUT_FOR_S)
        restored_at = time.monotonic()
        proxy.restore()
        time.sleep(RUN_AFTER_S)
        stop.set()
        for thread in threads:
            thread.join(timeout=30)
        log = (tmp_path / "gunicorn.log").read_text()
    proxy.cut()

    statuses = Counter(status for *_, status, _ in results)
    assert set(statuses) <= {204, 503}, (statuses, log[-3000:])
    during = [r for r in results if cut_at + 0.2 < r[0] and r[0] + r[4] < restored_at]
    assert during and all(r[3] == 503 for r in during), [(r[0] - cut_at, r[1:]) for r in during if r[3] != 503]
    assert max(elapsed for *_, elapsed in results) < 5.0, "an answer took longer than 5 s"
    # Ingestion resumes by itself: the last second is all 204s.
    last = [r for r in results if r[0] > restored_at + RUN_AFTER_S - 1.0]
    assert last and all(r[3] == 204 for r in last), (Counter(r[3] for r in last), log[-4000:])

    import psycopg

    with psycopg.connect(database_url, autocommit=True) as db:
        stored = {
            (device, int(epoch)): readings
            for device, epoch, readings in db.execute(
                "SELECT d.sigfox_id, EXTRACT(EPOCH FROM m.time), COUNT(r.id) FROM readings_message m "
                "JOIN readings_device d ON d.id = m.device_id "
                "LEFT JOIN readings_reading r ON r.message_id = m.id GROUP BY 1, 2"
            )
        }
    acknowledged = {(device, 1_700_000_000 + number * 600) for _, device, number, status, _ in results
                    if status == 204}
    # Every 204 was committed; nothing is half-stored (each message has both readings).
    assert acknowledged <= set(stored)
    assert set(stored.values()) == {2}
