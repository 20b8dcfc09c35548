"""Stand-ins for the Sigfox API, served over real HTTP in a thread.

`cloud`: readings.simulation.cloud.SigfoxCloud, strict per API.md, that also
records each request: for `manage.py sigfox setup` and `callbacks`.

`scripted_api`: answers each request with the next scripted answer (status,
JSON body, headers, a delay) and records what arrived: for the client's
retries, timeouts and errors.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from readings.simulation.cloud import SigfoxCloud


@dataclass
class Arrived:
    """One request as the stand-in received it."""

    method: str
    path: str  # without the query
    query: dict[str, str]
    headers: dict[str, str]
    body: Any  # parsed JSON, or None


@dataclass
class Answer:
    status: int = 200
    body: Any = None  # JSON-encoded when not None; bytes are sent as they are
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def _any(self):
        self.server.owner.handle(self)

    do_GET = do_POST = do_PUT = do_DELETE = _any

    def log_message(self, *args):  # keep the test output clean
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    owner: HTTPStandIn


class HTTPStandIn:
    """A threaded HTTP server on 127.0.0.1; subclasses decide the answers.

    `url` is its root with the API's /v2 prefix; `arrived` lists requests.
    """

    prefix = "/v2"

    def __init__(self):
        self.arrived: list[Arrived] = []
        self.release = threading.Event()  # ends delayed answers at teardown
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.owner = self
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.01},
                                        daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}{self.prefix}"

    def start(self) -> HTTPStandIn:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.release.set()
        self._server.shutdown()
        self._server.server_close()

    def handle(self, handler: BaseHTTPRequestHandler) -> None:
        parts = urlsplit(handler.path)
        length = int(handler.headers.get("Content-Length") or 0)
        raw = handler.rfile.read(length) if length else b""
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode(errors="replace")
        arrived = Arrived(
            method=handler.command,
            path=parts.path,
            query={k: v[-1] for k, v in parse_qs(parts.query).items()},
            headers=dict(handler.headers.items()),
            body=body,
        )
        self.arrived.append(arrived)
        answer = self.answer(arrived)
        if answer.delay_s:
            self.release.wait(answer.delay_s)
        payload = b""
        if isinstance(answer.body, bytes):
            payload = answer.body
        elif answer.body is not None:
            payload = json.dumps(answer.body).encode()
        try:
            handler.send_response(answer.status)
            if answer.body is not None and not isinstance(answer.body, bytes):
                handler.send_header("Content-Type", "application/json")
            for name, value in answer.headers.items():
                handler.send_header(name, value)
            handler.send_header("Content-Length", str(len(payload)))
            handler.end_headers()
            handler.wfile.write(payload)
        except OSError:  # the client gave up (timeout) and closed
            pass

    def answer(self, arrived: Arrived) -> Answer:
        raise NotImplementedError


class ScriptedAPI(HTTPStandIn):
    """Answers requests in turn from `script`; an unscripted request gets a
    599 that no test expects."""

    def __init__(self):
        super().__init__()
        self.script: list[Answer] = []
        self._lock = threading.Lock()

    def then(self, status: int = 200, body: Any = None, *, headers: dict | None = None,
             delay_s: float = 0.0) -> ScriptedAPI:
        self.script.append(Answer(status, body, headers or {}, delay_s))
        return self

    def answer(self, arrived: Arrived) -> Answer:
        with self._lock:
            if self.script:
                return self.script.pop(0)
        return Answer(599, {"message": f"unscripted request {arrived.method} {arrived.path}"})


@pytest.fixture
def scripted_api():
    api = ScriptedAPI().start()
    yield api
    api.stop()


# --- The strict stand-in of the API (readings.simulation.cloud), recording requests ----

API_LOGIN = "api-user"
API_PASSWORD = "api-Pa55word-secret"
CALLBACK_TOKEN = "callback-token-0123456789abcdef"
DEVICE_TYPE = "5f0a1b2c3d4e5f60718293a4"


class RecordingCloud(SigfoxCloud):
    """SigfoxCloud that also keeps (method, path) of each request it answers."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.arrived: list[tuple[str, str]] = []

    def handle(self, method, target, headers, body):
        self.arrived.append((method, urlsplit(target).path))
        return super().handle(method, target, headers, body)

    def writes(self) -> list[tuple[str, str]]:
        return [(method, path) for method, path in self.arrived if method != "GET"]


@pytest.fixture
def cloud(settings):
    """The API stand-in serving one device type, and the settings that point at it."""
    with RecordingCloud(login=API_LOGIN, password=API_PASSWORD) as running:
        running.add_device_type(DEVICE_TYPE)
        settings.SIGFOX_API_URL = running.url
        settings.SIGFOX_API_LOGIN = API_LOGIN
        settings.SIGFOX_API_PASSWORD = API_PASSWORD
        settings.SIGFOX_CALLBACK_TOKEN = CALLBACK_TOKEN
        settings.SIGFOX_SITE_URL = "https://sigfox.example.org"
        yield running
