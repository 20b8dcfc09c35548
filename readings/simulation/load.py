"""A small load generator: send groups of requests, each when it falls due, and
count the answers.

Only the standard library talks HTTP: one keep-alive http.client connection
per worker thread, which is enough to load a server on this machine without
adding a dependency. No Django: the caller prints the results.

Due times are on a `SimulatedClock` (epoch seconds, running `speed` times as
fast as the real clock; the real clock itself by default). With a `Backend`
(`simulate --sigfox-api`), the backend also records what it received in the
simulated cloud, retries each callback that failed 1, 2 and 4 minutes apart
(RETRY_DELAYS_S, after ../shared/sigfox/CALLBACKS.md section 5) and, when the
last retry fails too, gives up: the callback becomes an item of the cloud's
callbacks-not-delivered list (../shared/sigfox/API.md, "Callbacks that failed").
"""

from __future__ import annotations

import dataclasses
import heapq
import http.client
import itertools
import math
import queue
import threading
import time
from array import array
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import urlsplit

from readings.simulation.fleet import Callback, Frame, as_text

# Called by the workers after each answer: the request, its status, its latency.
Log = Callable[[Callback, str, float], None]
# The backend's retries of a failed callback, in simulated seconds after its
# first attempt: 1, 2 and 4 minutes apart (CALLBACKS.md section 5).
RETRY_DELAYS_S = (60.0, 180.0, 420.0)
# The kind of a callback the backend sends once more at random although it
# was answered (simulate --retries): its failure is not retried.
RANDOM_RESEND = "retry"


class SimulatedClock:
    """Simulated Unix epoch seconds, running `speed` times as fast as the real
    clock and equal to it at the real instant `meets_real_s` (default: now).

    With speed 1 it is the real clock. With a higher speed it is behind the
    real clock before `meets_real_s`, and ahead of it after.
    """

    def __init__(self, *, speed: float = 1.0, meets_real_s: float | None = None,
                 real: Callable[[], float] = time.time):
        if speed <= 0:
            raise ValueError("speed must be positive")
        self.speed = speed
        self.real = real
        self.meets_real_s = real() if meets_real_s is None else meets_real_s

    def now_s(self) -> float:
        """The simulated now, epoch seconds."""
        return self.meets_real_s + (self.real() - self.meets_real_s) * self.speed

    def at_real_s(self, real_s: float) -> float:
        """The simulated time at the real instant `real_s`."""
        return self.meets_real_s + (real_s - self.meets_real_s) * self.speed

    def real_wait_s(self, until_s: float) -> float:
        """Real seconds until the simulated clock reaches `until_s` (negative: past)."""
        return (until_s - self.now_s()) / self.speed


@dataclass(frozen=True, slots=True)
class Attempt:
    """One try of a callback: `number` 0 is the first, 1 to 3 the backend's
    retries; `first_s` is the simulated time of the first (None before it)."""

    callback: Callback
    number: int = 0
    first_s: float | None = None


class Cloud(Protocol):
    """What the Backend tells the simulated cloud (readings.simulation.cloud.SigfoxCloud)."""

    def record_frame(self, frame: Frame, *, device_type_id: str) -> None: ...

    def record_attempt(self, frame: Frame, *, status: int | None, info: str, time_s: float,
                       cb_def: str) -> None: ...

    def record_not_delivered(self, frame: Frame, *, device_type_id: str, callback: dict,
                             status: int | None, message: str, parameters: dict) -> None: ...


class Stats:
    """Answers by kind and status, and every latency, shared by the workers."""

    def __init__(self):
        self.lock = threading.Lock()
        self.counts: Counter[tuple[str, str]] = Counter()
        self.latencies_s = array("d")
        self.sent = 0  # callbacks answered (or failed)
        self.messages = 0  # groups handed to the workers, one per frame
        # Callbacks the backend gave up on, by the status of the last attempt.
        self.given_up: Counter[str] = Counter()

    def record(self, kind: str, status: str, latency_s: float) -> None:
        with self.lock:
            self.counts[kind, status] += 1
            self.latencies_s.append(latency_s)
            self.sent += 1

    def record_given_up(self, status: str) -> None:
        with self.lock:
            self.given_up[status] += 1

    def failed(self) -> int:
        return sum(n for (_, status), n in self.counts.items() if not status.startswith("2"))


class Backend:
    """The simulated Sigfox backend's side of each send, in `simulate --sigfox-api`.

    - `received(group)`: as a frame falls due, the cloud records it, and the
      station of each duplicate as one more reception.
    - `answered(attempt, ...)`: each attempt becomes a cbStatus of its
      reception; a failure (no answer, or not 2xx) is tried again
      RETRY_DELAYS_S after the first attempt, and after the last retry the
      callback is given up: an item of callbacks-not-delivered carrying the
      request as it was tried (`base_url` + target, `headers`: those the
      backend adds, such as Authorization).
    - the retries wait in a heap for send_all to hand them to the workers when
      they fall due; `settled()` is true when none waits and no group is out.
    """

    def __init__(self, *, cloud: Cloud, clock: SimulatedClock, device_type_id: str, base_url: str,
                 headers: dict[str, str], retry_delays_s: tuple[float, ...] = RETRY_DELAYS_S,
                 on_give_up: Callable[[Callback, str], None] | None = None):
        self.cloud = cloud
        self.clock = clock
        self.device_type_id = device_type_id
        self.base_url = base_url.rstrip("/")
        self.headers = dict(headers)
        self.retry_delays_s = retry_delays_s
        self.on_give_up = on_give_up
        self.condition = threading.Condition()
        self.retries: list[tuple[float, int, Attempt]] = []  # (due_s, order, attempt)
        self.order = itertools.count()
        self.out = 0  # groups handed to the workers and not finished
        self.version = 0  # bumped by every change send_all waits for

    def received(self, group: list[Callback]) -> None:
        for callback in group:
            if callback.frame is not None and callback.kind != RANDOM_RESEND:
                self.cloud.record_frame(callback.frame, device_type_id=self.device_type_id)

    def answered(self, attempt: Attempt, status: str, sent_s: float, stats: Stats) -> None:
        """Record one attempt that started at simulated `sent_s`, and retry or give up."""
        callback = attempt.callback
        ok = status.startswith("2")
        http_status = int(status) if status.isdigit() else None
        message = "" if ok else (f"HTTP {status}" if http_status is not None else status)
        if callback.frame is not None:
            self.cloud.record_attempt(
                callback.frame, status=http_status, info=message, time_s=sent_s,
                cb_def=f"[{callback.method}] {self.base_url}{urlsplit(callback.target).path}",
            )
        if ok or callback.kind == RANDOM_RESEND:
            return
        first_s = sent_s if attempt.first_s is None else attempt.first_s
        if attempt.number < len(self.retry_delays_s):
            retry = Attempt(dataclasses.replace(callback, kind="redelivery"), attempt.number + 1,
                            first_s)
            with self.condition:
                heapq.heappush(self.retries, (first_s + self.retry_delays_s[attempt.number],
                                              next(self.order), retry))
                self.version += 1
                self.condition.notify_all()
            return
        stats.record_given_up(status)
        if callback.frame is not None:
            self.cloud.record_not_delivered(
                callback.frame, device_type_id=self.device_type_id,
                callback={
                    "url": self.base_url + callback.target,
                    "headers": dict(self.headers),
                    "body": callback.body.decode() if callback.body else "",
                    "contentType": callback.headers.get("Content-Type", ""),
                    "method": callback.method,
                },
                status=http_status, message=message,
                parameters={name: as_text(value)
                            for name, value in (callback.variables or {}).items()},
            )
        if self.on_give_up is not None:
            self.on_give_up(callback, status)

    def next_due_s(self) -> float | None:
        with self.condition:
            return self.retries[0][0] if self.retries else None

    def pop(self) -> Attempt:
        with self.condition:
            return heapq.heappop(self.retries)[2]

    def pending(self) -> int:
        """Retries waiting to fall due."""
        with self.condition:
            return len(self.retries)

    def dispatched(self) -> None:
        with self.condition:
            self.out += 1

    def group_done(self) -> None:
        with self.condition:
            self.out -= 1
            self.version += 1
            self.condition.notify_all()

    def settled(self) -> bool:
        with self.condition:
            return not self.retries and self.out == 0

    def wait(self, timeout_s: float, version: int) -> None:
        """Sleep up to `timeout_s` real seconds, or until something changed since `version`."""
        with self.condition:
            if self.version == version:
                self.condition.wait(timeout_s)


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
                 jobs: queue.Queue, stats: Stats, log: Log | None = None,
                 backend: Backend | None = None):
        super().__init__(daemon=True)
        self.backend = backend
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
                try:
                    for item in group:
                        attempt = item if isinstance(item, Attempt) else Attempt(item)
                        callback = attempt.callback
                        sent_s = self.backend.clock.now_s() if self.backend else 0.0
                        status, latency_s = self.send(callback)
                        self.stats.record(callback.kind, status, latency_s)
                        if self.log is not None:
                            self.log(callback, status, latency_s)
                        if self.backend is not None:
                            self.backend.answered(attempt, status, sent_s, self.stats)
                finally:
                    if self.backend is not None:
                        self.backend.group_done()
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
             progress: Progress, log: Log | None = None, clock: SimulatedClock | None = None,
             backend: Backend | None = None) -> tuple[float, bool]:
    """Send each (due_s, group) of `schedule` once `clock` (default: the real
    clock) reaches due_s, each group's callbacks in order on one of
    `concurrency` connections.

    With a `backend`, its retries are sent as they fall due too, and the send
    ends once the schedule is done and the backend has settled (every failed
    callback answered or given up).

    Returns the real seconds it took and whether Ctrl-C cut it short; the
    answers are in `stats`.
    """
    clock = clock or SimulatedClock()
    # A short queue keeps the producer in step with what the server takes.
    jobs: queue.Queue = queue.Queue(maxsize=2 * concurrency)
    senders = [
        Sender(scheme=scheme, host=host, port=port, timeout_s=timeout_s, headers=headers,
               jobs=jobs, stats=stats, log=log, backend=backend)
        for _ in range(concurrency)
    ]
    for sender in senders:
        sender.start()
    started = time.monotonic()
    interrupted = False
    try:
        frames = iter(schedule)
        upcoming = next(frames, None)
        while True:
            version = backend.version if backend else 0
            retry_due_s = backend.next_due_s() if backend else None
            if upcoming is None and retry_due_s is None:
                if backend is None or backend.settled():
                    break
                progress.update(stats)
                backend.wait(0.2, version)
                continue
            take_frame = upcoming is not None and (retry_due_s is None
                                                   or upcoming[0] <= retry_due_s)
            due_s = upcoming[0] if take_frame else retry_due_s
            if (wait_s := clock.real_wait_s(due_s)) > 0:
                progress.update(stats)
                if backend is None:
                    time.sleep(min(wait_s, 0.2))
                else:
                    # A retry may fall due before: wake up when one is added.
                    backend.wait(min(wait_s, 0.2), version)
                continue
            if take_frame:
                group = upcoming[1]
                if backend is not None:
                    backend.received(group)
                    backend.dispatched()
                jobs.put(group)
                stats.messages += 1
                upcoming = next(frames, None)
            else:
                backend.dispatched()
                jobs.put([backend.pop()])
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
