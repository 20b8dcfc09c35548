"""A small load generator: send groups of requests, each when it falls due, and
count the answers.

Only the standard library talks HTTP: one keep-alive http.client connection
per worker thread, which is enough to load a server on this machine without
adding a dependency. No Django: the caller prints the results.
"""

from __future__ import annotations

import http.client
import math
import queue
import threading
import time
from array import array
from collections import Counter
from collections.abc import Callable, Iterable

from readings.simulation.fleet import Callback

# Called by the workers after each answer: the request, its status, its latency.
Log = Callable[[Callback, str, float], None]


class Stats:
    """Answers by kind and status, and every latency, shared by the workers."""

    def __init__(self):
        self.lock = threading.Lock()
        self.counts: Counter[tuple[str, str]] = Counter()
        self.latencies_s = array("d")
        self.sent = 0  # callbacks answered (or failed)
        self.messages = 0  # groups handed to the workers, one per frame

    def record(self, kind: str, status: str, latency_s: float) -> None:
        with self.lock:
            self.counts[kind, status] += 1
            self.latencies_s.append(latency_s)
            self.sent += 1

    def failed(self) -> int:
        return sum(n for (_, status), n in self.counts.items() if not status.startswith("2"))


def error_label(exc: BaseException) -> str:
    """The status recorded for a request that got no HTTP answer."""
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, TimeoutError):
        return "timeout"
    if isinstance(exc, ConnectionError | http.client.RemoteDisconnected):
        return "connection lost"
    if isinstance(exc, http.client.HTTPException):
        return "bad HTTP answer"
    return "connection error"


class Sender(threading.Thread):
    """A worker with one keep-alive connection: sends each group's callbacks in order."""

    def __init__(self, *, scheme: str, host: str, port: int, timeout_s: float, headers: dict,
                 jobs: queue.Queue, stats: Stats, log: Log | None = None):
        super().__init__(daemon=True)
        https = scheme == "https"
        connection_class = http.client.HTTPSConnection if https else http.client.HTTPConnection
        self.connection = connection_class(host, port, timeout=timeout_s)
        self.headers = headers
        self.jobs = jobs
        self.stats = stats
        self.log = log

    def run(self) -> None:
        try:
            while (group := self.jobs.get()) is not None:
                for callback in group:
                    status, latency_s = self.send(callback)
                    self.stats.record(callback.kind, status, latency_s)
                    if self.log is not None:
                        self.log(callback, status, latency_s)
        finally:
            self.connection.close()

    def send(self, callback: Callback) -> tuple[str, float]:
        """The answer's status (or error_label) and how long it took."""
        headers = {**self.headers, **callback.headers}
        for attempt in (1, 2):
            # http.client opens a connection when it has none (first use, or the
            # server said Connection: close, as gunicorn's sync workers do).
            reused = self.connection.sock is not None
            started = time.perf_counter()
            try:
                self.connection.request(callback.method, callback.target, body=callback.body,
                                        headers=headers)
                response = self.connection.getresponse()
                response.read()
                return str(response.status), time.perf_counter() - started
            except (OSError, http.client.HTTPException) as exc:
                self.connection.close()
                # A server may close an idle keep-alive connection just as we
                # reuse it; that request never reached it, so send it once more.
                stale = reused and isinstance(
                    exc, http.client.RemoteDisconnected | BrokenPipeError | ConnectionResetError
                )
                if not stale or attempt == 2:
                    return error_label(exc), time.perf_counter() - started
        raise AssertionError("unreachable")


class Progress:
    """A one-line progress bar, redrawn at most five times a second.

    `write` puts text on the terminal as it is (no newline added) and flushes.
    """

    WIDTH = 30

    def __init__(self, write: Callable[[str], None], *, enabled: bool, total: int | None,
                 duration_s: float | None):
        self.write = write
        self.enabled = enabled
        self.total = total
        self.duration_s = duration_s
        self.started = time.monotonic()
        self.drawn_at = 0.0

    def update(self, stats: Stats, *, force: bool = False) -> None:
        now = time.monotonic()
        if not self.enabled or (not force and now - self.drawn_at < 0.2):
            return
        self.drawn_at = now
        elapsed_s = now - self.started
        fractions = []
        if self.total:
            fractions.append(stats.messages / self.total)
        if self.duration_s:
            fractions.append(elapsed_s / self.duration_s)
        rate = stats.sent / elapsed_s if elapsed_s > 0 else 0.0
        text = f"{stats.sent} callbacks, {rate:.0f}/s, {stats.failed()} failed, {elapsed_s:.0f} s"
        if fractions:
            done = min(1.0, max(fractions))
            filled = round(done * self.WIDTH)
            text = f"[{'#' * filled}{'.' * (self.WIDTH - filled)}] {done:4.0%} " + text
        self.write("\r" + text.ljust(79))

    def close(self) -> None:
        if self.enabled:
            self.write("\r" + " " * 79 + "\r")


def percentile(ordered: list[float], fraction: float) -> float:
    """Nearest-rank percentile of a sorted list."""
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]


def send_all(schedule: Iterable[tuple[float, list[Callback]]], *, scheme: str, host: str,
             port: int, timeout_s: float, headers: dict, concurrency: int, stats: Stats,
             progress: Progress, log: Log | None = None) -> tuple[float, bool]:
    """Send each (due_s, group) of `schedule` once time.time() reaches due_s,
    each group's callbacks in order on one of `concurrency` connections.

    Returns the seconds it took and whether Ctrl-C cut it short; the answers
    are in `stats`.
    """
    # A short queue keeps the producer in step with what the server takes.
    jobs: queue.Queue = queue.Queue(maxsize=2 * concurrency)
    senders = [
        Sender(scheme=scheme, host=host, port=port, timeout_s=timeout_s, headers=headers,
               jobs=jobs, stats=stats, log=log)
        for _ in range(concurrency)
    ]
    for sender in senders:
        sender.start()
    started = time.monotonic()
    interrupted = False
    try:
        for due_s, group in schedule:
            while (wait_s := due_s - time.time()) > 0:
                progress.update(stats)
                time.sleep(min(wait_s, 0.2))
            jobs.put(group)
            stats.messages += 1
            progress.update(stats)
    except KeyboardInterrupt:
        interrupted = True
        # Drop what is queued; the callbacks in flight finish.
        while True:
            try:
                jobs.get_nowait()
            except queue.Empty:
                break
    for _ in senders:
        jobs.put(None)
    for sender in senders:
        while sender.is_alive():
            sender.join(timeout=0.2)
            progress.update(stats)
    progress.update(stats, force=True)
    progress.close()
    return time.monotonic() - started, interrupted
