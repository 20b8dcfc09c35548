"""readings.simulation.load: the workers, their counts and the progress bar, against a
small local HTTP server (no project, no database)."""

import http.client
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from readings.simulation.fleet import Callback
from readings.simulation.load import Progress, Stats, error_label, percentile, send_all


class Server(ThreadingHTTPServer):
    """Answers 204 and notes each request with the client port it came from.

    With `hang_up`, it closes each connection after one answer without saying
    so (no Connection: close), as a server dropping idle keep-alive
    connections does.
    """

    daemon_threads = True

    def __init__(self, *, hang_up=False):
        self.requests: list[tuple[int, str, str, dict]] = []
        self.lock = threading.Lock()

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def handle_any(handler):
                length = int(handler.headers.get("Content-Length") or 0)
                handler.rfile.read(length)
                with self.lock:
                    self.requests.append((handler.client_address[1], handler.command,
                                          handler.path, dict(handler.headers)))
                handler.send_response(204)
                handler.end_headers()
                if hang_up:
                    handler.close_connection = True

            do_GET = do_POST = handle_any

            def log_message(handler, *args):
                pass

        super().__init__(("127.0.0.1", 0), Handler)
        self.port = self.server_address[1]


@pytest.fixture
def serve():
    servers = []

    def start(**kwargs) -> Server:
        server = Server(**kwargs)
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                         daemon=True).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def request(target: str, kind="first") -> Callback:
    return Callback(kind, "POST", target, {"Content-Type": "application/json"}, b"{}")


def run(schedule, *, port: int, concurrency=1, progress=None, log=None) -> Stats:
    stats = Stats()
    progress = progress or Progress(lambda text: None, enabled=False, total=None, duration_s=None)
    send_all(schedule, scheme="http", host="127.0.0.1", port=port, timeout_s=5,
             headers={"User-Agent": "test"}, concurrency=concurrency, stats=stats,
             progress=progress, log=log)
    return stats


def test_it_sends_each_group_in_order_on_one_keep_alive_connection(serve):
    server = serve()
    groups = [[request(f"/data/{i}"), request(f"/data/{i}", "retry")] for i in range(3)]
    stats = run([(0, group) for group in groups], port=server.port)
    assert [path for _, _, path, _ in server.requests] == [
        "/data/0", "/data/0", "/data/1", "/data/1", "/data/2", "/data/2"]
    assert len({port for port, *_ in server.requests}) == 1
    assert (stats.messages, stats.sent, stats.failed()) == (3, 6, 0)
    assert stats.counts == {("first", "204"): 3, ("retry", "204"): 3}


def test_it_adds_its_headers_to_the_requests(serve):
    server = serve()
    run([(0, [request("/data/1")])], port=server.port)
    [(_, method, _, headers)] = server.requests
    assert method == "POST"
    assert headers["User-Agent"] == "test" and headers["Content-Type"] == "application/json"


def test_it_sends_once_more_on_a_connection_the_server_dropped(serve):
    server = serve(hang_up=True)
    stats = run([(0, [request(f"/data/{i}")]) for i in range(4)], port=server.port)
    assert stats.counts == {("first", "204"): 4}
    assert len(server.requests) == 4 and len({port for port, *_ in server.requests}) == 4


def test_it_counts_a_refused_connection_as_failed():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    stats = run([(0, [request("/data/1")])], port=port)
    assert stats.counts == {("first", "connection refused"): 1}
    assert stats.failed() == 1


def test_it_waits_until_a_group_falls_due(serve):
    server = serve()
    started = time.time()
    run([(started + 0.3, [request("/data/1")])], port=server.port)
    assert time.time() - started >= 0.3
    assert len(server.requests) == 1


def test_it_logs_each_answer(serve):
    server = serve()
    logged = []
    run([(0, [request("/data/1")])], port=server.port,
        log=lambda callback, status, latency_s: logged.append((callback.target, status)))
    assert logged == [("/data/1", "204")]


def test_it_draws_a_progress_bar_and_clears_it(serve):
    server = serve()
    drawn = []
    progress = Progress(drawn.append, enabled=True, total=2, duration_s=None)
    run([(0, [request("/data/1")]), (0, [request("/data/2")])], port=server.port,
        progress=progress)
    assert "[" + "#" * 30 + "] 100% 2 callbacks" in drawn[-2]
    assert drawn[-1] == "\r" + " " * 79 + "\r"


def test_it_draws_nothing_unless_enabled():
    drawn = []
    progress = Progress(drawn.append, enabled=False, total=2, duration_s=None)
    progress.update(Stats(), force=True)
    progress.close()
    assert drawn == []


def test_it_takes_nearest_rank_percentiles():
    ordered = [float(n) for n in range(1, 11)]
    assert [percentile(ordered, q) for q in (0.5, 0.9, 0.99, 1.0)] == [5.0, 9.0, 10.0, 10.0]
    assert percentile([0.25], 0.5) == 0.25


def test_it_counts_every_answer_but_2xx_as_failed():
    stats = Stats()
    for kind, status in [("first", "204"), ("first", "200"), ("retry", "404"),
                         ("duplicate", "timeout")]:
        stats.record(kind, status, 0.01)
    assert (stats.sent, stats.failed()) == (4, 2)


@pytest.mark.parametrize(
    ("exc", "label"),
    [(ConnectionRefusedError(), "connection refused"), (TimeoutError(), "timeout"),
     (ConnectionResetError(), "connection lost"),
     (http.client.RemoteDisconnected(), "connection lost"),
     (http.client.BadStatusLine("x"), "bad HTTP answer"), (OSError(), "connection error")],
)
def test_it_labels_requests_without_an_answer(exc, label):
    assert error_label(exc) == label
