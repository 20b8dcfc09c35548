"""manage.py simulate: play the Sigfox backend against a running server.

A fleet of simulated devices sends uplinks on a timeline: device i's k-th
message has the reception time time_start + (k + i/devices) * interval, so the
devices are spread evenly over each interval. A message whose time is in the
past (--backfill, a past --time-start) is sent at once; one whose time is
still to come is sent when it falls due, so a live run fills the chart as a
real fleet would.

Only the standard library talks HTTP: one keep-alive http.client connection
per worker thread, which is enough to load a server on this machine without
adding a dependency.
"""

from __future__ import annotations

import http.client
import itertools
import dataclasses
import json
import math
import queue
import random
import re
import socket
import struct
import threading
import time
from array import array
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import urlencode, urlsplit

from django.core.management.base import BaseCommand, CommandError

from readings.urls import SensorConverter

ENCODINGS = ("json", "form", "text", "get")
# What a device of the raw mode sends, and the config that decodes it on the
# server. Akeru's toHex() dumps AVR memory, which is little-endian: a float is
# 4 bytes, an unsigned int 2.
RAW_PAYLOAD_CONFIG = "temp::float:32:little-endian battery_mv::uint:16:little-endian"
# Device ids are hex(device_base + i); this base makes them easy to tell apart
# from real devices ("5F" for "simulated fleet").
DEFAULT_DEVICE_BASE = 0x5F0000
MAX_DEVICE_ID = 0xFFFFFFFF  # Sigfox ids are at most 8 hex characters
KINDS = ("first", "retry", "duplicate")
KIND_LABELS = {"first": "first sends", "retry": "retries", "duplicate": "duplicates"}
SENSOR = re.compile(SensorConverter.regex)


# --- The fleet: what each device measures and when ---------------------------------


@dataclass(slots=True)
class DeviceState:
    sigfox_id: str
    base_temp_c: float
    drift_c: float
    battery_mv: float
    seq_number: int
    station: str
    rssi_dbm: float
    snr_db: float


@dataclass(frozen=True, slots=True)
class Uplink:
    """One message of one device, as the backend knows it."""

    device: str
    time_s: int
    due_s: float
    seq_number: int
    temp_c: float
    battery_mv: int
    station: str
    rssi_dbm: float
    snr_db: float

    def payload_hex(self) -> str:
        """The 6 bytes RAW_PAYLOAD_CONFIG decodes, as lower-case hex like the backend's {data}."""
        return struct.pack("<fH", self.temp_c, self.battery_mv).hex()

    def variables(self, *, raw: bool, metadata: bool, duplicate: bool = False) -> dict:
        """The callback's variables, in the order a user's template would list them."""
        variables: dict = {"device": self.device, "time": str(self.time_s)}
        if raw:
            variables["data"] = self.payload_hex()
            variables["seqNumber"] = self.seq_number
        else:
            # The tutorial's template: values decoded by the backend (customData).
            variables["temp"] = self.temp_c
            variables["battery_mv"] = self.battery_mv
        if metadata:
            variables.update(
                duplicate=duplicate,
                station=self.station,
                rssi=self.rssi_dbm,
                snr=self.snr_db,
            )
        return variables


class Fleet:
    """Devices with plausible readings: a daily temperature cycle plus a random
    walk, a battery draining slowly, radio levels with noise."""

    def __init__(self, *, devices: int, device_base: int, interval_s: float, time_start_s: float,
                 seed: int):
        # Its own generator, so that the readings depend only on the seed and
        # the fleet, not on how the messages are sent (encoding, retries...).
        self.rng = random.Random(f"{seed}:fleet")
        self.interval_s = interval_s
        self.time_start_s = time_start_s
        self.devices = [self._new_device(device_base + i) for i in range(devices)]

    def _new_device(self, number: int) -> DeviceState:
        rng = self.rng
        return DeviceState(
            sigfox_id=f"{number:X}",
            base_temp_c=rng.uniform(16.0, 24.0),
            drift_c=0.0,
            battery_mv=rng.uniform(3150.0, 3300.0),
            seq_number=rng.randrange(4096),
            station=f"{rng.randrange(0x10000):04X}",
            rssi_dbm=rng.uniform(-135.0, -95.0),
            snr_db=rng.uniform(5.0, 30.0),
        )

    def uplinks(self) -> Iterator[Uplink]:
        """Every device's messages in order of time, without end."""
        count = len(self.devices)
        for k in itertools.count():
            for i, device in enumerate(self.devices):
                # interval >= 1 s, so one device's whole-second times never repeat.
                due_s = self.time_start_s + (k + i / count) * self.interval_s
                yield self._next(device, due_s)

    def _next(self, device: DeviceState, due_s: float) -> Uplink:
        rng = self.rng
        time_s = math.floor(due_s)
        # Warmest mid-afternoon UTC; the drift is a mean-reverting walk.
        daily_c = 3.0 * math.sin(2 * math.pi * ((time_s % 86_400) / 86_400 - 0.375))
        device.drift_c = 0.9 * device.drift_c + rng.gauss(0.0, 0.3)
        # Sixteenths of a degree (a DS18B20's resolution) survive float32 and
        # decimal text exactly, so every encoding stores the very same value.
        temp_c = round((device.base_temp_c + daily_c + device.drift_c) * 16) / 16
        device.battery_mv = max(2700.0, device.battery_mv - rng.uniform(0.0, 0.1))
        uplink = Uplink(
            device=device.sigfox_id,
            time_s=time_s,
            due_s=due_s,
            seq_number=device.seq_number,
            temp_c=temp_c,
            battery_mv=round(device.battery_mv + rng.gauss(0.0, 2.0)),
            station=device.station,
            rssi_dbm=round(device.rssi_dbm + rng.gauss(0.0, 3.0), 2),
            snr_db=round(max(0.0, device.snr_db + rng.gauss(0.0, 2.0)), 2),
        )
        device.seq_number = (device.seq_number + 1) % 4096  # 12 bits on the radio
        return uplink


def duplicate_copy(uplink: Uplink, rng: random.Random) -> Uplink:
    """The same message heard by another base station, a little weaker."""
    return dataclasses.replace(
        uplink,
        station=f"{(int(uplink.station, 16) + rng.randrange(1, 0x100)) % 0x10000:04X}",
        rssi_dbm=round(uplink.rssi_dbm - rng.uniform(1.0, 10.0), 2),
        snr_db=round(max(0.0, uplink.snr_db - rng.uniform(0.0, 5.0)), 2),
    )


# --- Callbacks: the HTTP requests ---------------------------------------------------


@dataclass(frozen=True, slots=True)
class Callback:
    kind: str  # "first", "retry" or "duplicate"
    method: str
    target: str  # path and query string
    body: bytes | None
    content_type: str | None


def as_text(value) -> str:
    """A variable as the backend substitutes it into a form or query string."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def build_callback(*, kind: str, encoding: str, path: str, variables: dict) -> Callback:
    if encoding == "get":
        query = urlencode({name: as_text(value) for name, value in variables.items()})
        return Callback(kind, "GET", f"{path}?{query}", None, None)
    if encoding == "form":
        body = urlencode({name: as_text(value) for name, value in variables.items()})
        return Callback(kind, "POST", path, body.encode(), "application/x-www-form-urlencoded")
    body = json.dumps(variables, separators=(",", ":")).encode()
    content_type = "application/json" if encoding == "json" else "text/plain"
    return Callback(kind, "POST", path, body, content_type)


# --- Sending ------------------------------------------------------------------------


class Stats:
    """Answers by kind and status, and every latency, shared by the workers."""

    def __init__(self):
        self.lock = threading.Lock()
        self.counts: Counter[tuple[str, str]] = Counter()
        self.latencies_s = array("d")
        self.sent = 0  # callbacks answered (or failed)
        self.sent_first = 0  # messages handed to the workers

    def record(self, kind: str, status: str, latency_s: float) -> None:
        with self.lock:
            self.counts[kind, status] += 1
            self.latencies_s.append(latency_s)
            self.sent += 1

    def failed(self) -> int:
        return sum(n for (_, status), n in self.counts.items() if not status.startswith("2"))


def error_label(exc: BaseException) -> str:
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
    """A worker with one keep-alive connection: sends each message's callbacks in order."""

    def __init__(self, *, scheme: str, host: str, port: int, timeout_s: float, headers: dict,
                 jobs: queue.Queue, stats: Stats, log=None):
        super().__init__(daemon=True)
        connection_class = http.client.HTTPSConnection if scheme == "https" else http.client.HTTPConnection
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
        headers = dict(self.headers)
        if callback.content_type:
            headers["Content-Type"] = callback.content_type
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
    """A one-line progress bar on stderr, redrawn at most five times a second."""

    WIDTH = 30

    def __init__(self, stream, *, enabled: bool, total: int | None, duration_s: float | None):
        self.stream = stream
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
            fractions.append(stats.sent_first / self.total)
        if self.duration_s:
            fractions.append(elapsed_s / self.duration_s)
        rate = stats.sent / elapsed_s if elapsed_s > 0 else 0.0
        text = f"{stats.sent} callbacks, {rate:.0f}/s, {stats.failed()} failed, {elapsed_s:.0f} s"
        if fractions:
            done = min(1.0, max(fractions))
            filled = round(done * self.WIDTH)
            text = f"[{'#' * filled}{'.' * (self.WIDTH - filled)}] {done:4.0%} " + text
        self.stream.write("\r" + text.ljust(79), ending="")
        self.stream.flush()

    def close(self) -> None:
        if self.enabled:
            self.stream.write("\r" + " " * 79 + "\r", ending="")
            self.stream.flush()


def percentile(ordered: list[float], fraction: float) -> float:
    """Nearest-rank percentile of a sorted list."""
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]


# --- The command --------------------------------------------------------------------


def number(text: str, *, name: str, minimum: float, maximum: float, whole: bool = False):
    try:
        value = int(text) if whole else float(text)
    except ValueError:
        kind = "a whole number" if whole else "a number"
        raise CommandError(f"{name} expects {kind}, got {text!r}") from None
    if not minimum <= value <= maximum:  # also refuses nan
        raise CommandError(f"{name} must be between {minimum:g} and {maximum:g}, got {text}")
    return value


class Command(BaseCommand):
    help = (
        "Act as the Sigfox backend: send the callbacks of a simulated fleet of devices to a "
        "running server (make run) and report the answers and their latency. Messages dated in "
        "the past (--backfill, --time-start) are sent at once, later ones when they fall due."
    )

    def add_arguments(self, parser):
        parser.add_argument("--url", default="http://127.0.0.1:8000",
                            help="Base URL of the server (default http://127.0.0.1:8000); "
                                 "callbacks go to <url>/data/<sensor>.")
        parser.add_argument("--sensor", default="1",
                            help="The <sensor> part of the callback URL (default 1).")
        parser.add_argument("--devices", default="3", metavar="N",
                            help="Number of devices (default 3).")
        parser.add_argument("--device-base", default=f"{DEFAULT_DEVICE_BASE:X}", metavar="HEX",
                            help="Id of the first device, hex; the others follow it "
                                 f"(default {DEFAULT_DEVICE_BASE:X}: {DEFAULT_DEVICE_BASE:X}, "
                                 f"{DEFAULT_DEVICE_BASE + 1:X}, ...).")
        pace = parser.add_mutually_exclusive_group()
        pace.add_argument("--interval", metavar="SECONDS",
                          help="Seconds between two messages of one device (default 60; a real "
                               "device sends at most every ~10 minutes).")
        pace.add_argument("--rate", metavar="PER_SECOND",
                          help="Messages per second from the whole fleet, instead of --interval "
                               "(each device then sends every devices/rate seconds).")
        parser.add_argument("--count", metavar="N",
                            help="Stop after N messages (retries and duplicates not counted).")
        parser.add_argument("--duration", metavar="SECONDS",
                            help="Stop after this many seconds. Without --count or --duration, "
                                 "a run that starts in the past stops when it reaches the present, "
                                 "and a live run goes on until interrupted (Ctrl-C).")
        start = parser.add_mutually_exclusive_group()
        start.add_argument("--time-start", metavar="EPOCH",
                           help="Reception time of the first message, Unix epoch seconds "
                                "(default: now).")
        start.add_argument("--backfill", metavar="DAYS",
                           help="Start DAYS days ago: the history is sent as fast as the "
                                "server takes it, then the run goes on live if --count or "
                                "--duration ask for more.")
        parser.add_argument("--encoding", default="json", choices=[*ENCODINGS, "mixed"],
                            help="POST application/json (default), POST form-urlencoded, POST "
                                 "text/plain holding JSON, GET with a query string, or a random "
                                 "mix of these.")
        parser.add_argument("--raw", "--payload-config-demo", dest="raw", action="store_true",
                            help="Send the raw payload as {data} (hex) with {seqNumber}, instead "
                                 "of the tutorial's decoded values; the server needs the payload "
                                 f"config '{RAW_PAYLOAD_CONFIG}'.")
        parser.add_argument("--metadata", action="store_true",
                            help="Also send the network variables duplicate, station, rssi and "
                                 "snr (implied by --duplicates).")
        parser.add_argument("--retries", default="0", metavar="P",
                            help="Probability (0 to 1) that a message is sent again, as the "
                                 "backend retries a callback whose answer it did not get.")
        parser.add_argument("--duplicates", default="0", metavar="P",
                            help="Probability (0 to 1) that another base station's copy "
                                 "(duplicate=true) follows a message.")
        parser.add_argument("--token",
                            help="Send 'Authorization: Bearer TOKEN' with every callback.")
        parser.add_argument("--concurrency", default="4", metavar="N",
                            help="Callbacks in flight at once, one connection each (default 4).")
        parser.add_argument("--timeout", default="10", metavar="SECONDS",
                            help="Give up on an answer after this long (default 10, the "
                                 "backend's limit).")
        parser.add_argument("--seed", metavar="N",
                            help="Seed of the random values, to repeat a run exactly "
                                 "(default: a new one, printed).")
        parser.add_argument("--progress", action="store_true",
                            help="Draw the progress bar on stderr even when it is not a terminal.")

    def handle(self, *args, **options):
        plan = self.plan(options)
        fleet = Fleet(devices=plan["devices"], device_base=plan["device_base"],
                      interval_s=plan["interval_s"], time_start_s=plan["time_start_s"],
                      seed=plan["seed"])
        self.check_reachable(plan)
        self.describe(plan, fleet)
        stats, elapsed_s, interrupted = self.run(plan, fleet)
        self.summarize(stats, elapsed_s, interrupted)

    def plan(self, options) -> dict:
        """The options checked and turned into numbers; CommandError for anything wrong."""
        url = urlsplit(options["url"])
        if url.scheme not in ("http", "https") or not url.hostname:
            raise CommandError(f"--url must be an http:// or https:// URL, got {options['url']!r}")
        if url.query or url.fragment:
            raise CommandError("--url is the server's base URL, without a query string")
        try:
            port = url.port or (443 if url.scheme == "https" else 80)
        except ValueError:
            raise CommandError(f"--url has an invalid port: {options['url']!r}") from None
        sensor = options["sensor"]
        if not SENSOR.fullmatch(sensor):
            raise CommandError(f"--sensor must be 1 to 64 letters, digits, _ . or -, got {sensor!r}")

        devices = number(options["devices"], name="--devices", minimum=1, maximum=1_000_000, whole=True)
        try:
            device_base = int(options["device_base"], 16)
        except ValueError:
            raise CommandError(f"--device-base must be hexadecimal, got {options['device_base']!r}") from None
        if not 0 <= device_base <= MAX_DEVICE_ID - devices + 1:
            raise CommandError(f"--device-base {options['device_base']} with {devices} devices goes "
                               "past FFFFFFFF (Sigfox ids have at most 8 hex characters)")
        if options["rate"] is not None:
            rate = number(options["rate"], name="--rate", minimum=1e-6, maximum=1e6)
            interval_s = devices / rate
            if interval_s < 1:
                raise CommandError(
                    f"--rate {options['rate']} with {devices} devices is more than one message per "
                    f"device per second, and Sigfox times are whole seconds: give --devices "
                    f"{math.ceil(rate)} or more"
                )
        else:
            interval_s = number(options["interval"] or "60", name="--interval", minimum=1,
                                maximum=86_400 * 365)

        count = duration_s = None
        if options["count"] is not None:
            count = number(options["count"], name="--count", minimum=1, maximum=10**9, whole=True)
        if options["duration"] is not None:
            duration_s = number(options["duration"], name="--duration", minimum=1e-3, maximum=10**7)

        now_s = time.time()
        if options["time_start"] is not None:
            time_start_s = number(options["time_start"], name="--time-start", minimum=0,
                                  maximum=2**40, whole=True)
        elif options["backfill"] is not None:
            days = number(options["backfill"], name="--backfill", minimum=1e-3, maximum=3650)
            time_start_s = now_s - days * 86_400
        else:
            time_start_s = now_s

        seed = (number(options["seed"], name="--seed", minimum=0, maximum=2**63, whole=True)
                if options["seed"] is not None else random.SystemRandom().randrange(10**6))
        duplicates = number(options["duplicates"], name="--duplicates", minimum=0, maximum=1)
        path = f"{url.path.rstrip('/')}/data/{sensor}"
        return {
            "scheme": url.scheme,
            "host": url.hostname,
            "port": port,
            "url": options["url"],
            "callback_url": f"{url.scheme}://{url.netloc}{path}",
            "path": path,
            "devices": devices,
            "device_base": device_base,
            "interval_s": interval_s,
            "count": count,
            "duration_s": duration_s,
            "time_start_s": time_start_s,
            # Without a bound, a run that starts in the past ends in the present.
            "until_now": count is None and duration_s is None and time_start_s < now_s - 1,
            "encoding": options["encoding"],
            "raw": options["raw"],
            "retries": number(options["retries"], name="--retries", minimum=0, maximum=1),
            "duplicates": duplicates,
            # A duplicate is told apart by its station: send the network variables.
            "metadata": options["metadata"] or duplicates > 0,
            "token": options["token"],
            "concurrency": number(options["concurrency"], name="--concurrency", minimum=1,
                                  maximum=256, whole=True),
            "timeout_s": number(options["timeout"], name="--timeout", minimum=0.01, maximum=600),
            "seed": seed,
            "progress": options["progress"] or self.stderr.isatty(),
            "verbosity": options["verbosity"],
        }

    def check_reachable(self, plan) -> None:
        """A clear error, not a traceback per worker, when no server listens."""
        where = f"{plan['host']}:{plan['port']}"
        try:
            socket.create_connection((plan["host"], plan["port"]), timeout=plan["timeout_s"]).close()
        except ConnectionRefusedError:
            raise CommandError(f"Cannot reach {plan['url']}: connection refused on {where}. "
                               "Is the server running (make run)?") from None
        except socket.gaierror as exc:
            raise CommandError(f"Cannot reach {plan['url']}: unknown host ({exc.strerror}).") from None
        except OSError as exc:
            reason = "timed out" if isinstance(exc, TimeoutError) else exc.strerror or exc
            raise CommandError(f"Cannot reach {plan['url']}: {reason} on {where}.") from None

    def describe(self, plan, fleet: Fleet) -> None:
        first, last = fleet.devices[0].sigfox_id, fleet.devices[-1].sigfox_id
        start = datetime.fromtimestamp(plan["time_start_s"], tz=UTC).strftime("%Y-%m-%d %H:%M:%SZ")
        bounds = []
        if plan["count"] is not None:
            bounds.append(f"{plan['count']} messages")
        if plan["duration_s"] is not None:
            bounds.append(f"{plan['duration_s']:g} s")
        if plan["until_now"]:
            bounds.append("until now")
        extras = [name for name in ("retries", "duplicates") if plan[name]]
        self.stdout.write(
            f"Sending to {plan['callback_url']} "
            f"as {plan['encoding']}{' (raw data + seqNumber)' if plan['raw'] else ''}: "
            f"{plan['devices']} device{'s' if plan['devices'] > 1 else ''} "
            f"({first}{'..' + last if last != first else ''}), one message each every "
            f"{plan['interval_s']:g} s from {start}, "
            f"{' or '.join(bounds) or 'until interrupted'}"
            + (", with " + " and ".join(f"{name} p={plan[name]:g}" for name in extras) if extras else "")
            + f", {plan['concurrency']} connections, seed {plan['seed']}."
        )
        if plan["raw"]:
            self.stdout.write(f"The server decodes these payloads with the config: {RAW_PAYLOAD_CONFIG}")

    def run(self, plan, fleet: Fleet) -> tuple[Stats, float, bool]:
        stats = Stats()
        headers = {"User-Agent": "sigfoxsite-simulate"}
        if plan["token"]:
            headers["Authorization"] = f"Bearer {plan['token']}"
        log = self.logger() if plan["verbosity"] > 1 else None
        # A short queue keeps the producer in step with what the server takes.
        jobs: queue.Queue = queue.Queue(maxsize=2 * plan["concurrency"])
        senders = [
            Sender(scheme=plan["scheme"], host=plan["host"], port=plan["port"],
                   timeout_s=plan["timeout_s"], headers=headers, jobs=jobs, stats=stats, log=log)
            for _ in range(plan["concurrency"])
        ]
        for sender in senders:
            sender.start()
        progress = Progress(self.stderr, enabled=plan["progress"], total=plan["count"],
                            duration_s=plan["duration_s"])
        # Separate from the fleet's, so that these choices leave the readings alone.
        rng = random.Random(f"{plan['seed']}:sends")
        started_wall_s, started = time.time(), time.monotonic()
        deadline_wall_s = started_wall_s + plan["duration_s"] if plan["duration_s"] else math.inf
        interrupted = False
        try:
            for uplink in fleet.uplinks():
                if plan["count"] is not None and stats.sent_first >= plan["count"]:
                    break
                if uplink.due_s > deadline_wall_s or (plan["until_now"] and uplink.due_s > started_wall_s):
                    break
                while (wait_s := uplink.due_s - time.time()) > 0:
                    progress.update(stats)
                    time.sleep(min(wait_s, 0.2))
                jobs.put(self.callbacks(plan, uplink, rng))
                stats.sent_first += 1
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
        return stats, time.monotonic() - started, interrupted

    def callbacks(self, plan, uplink: Uplink, rng: random.Random) -> list[Callback]:
        """The requests one message causes, sent in order by one worker."""
        encoding = rng.choice(ENCODINGS) if plan["encoding"] == "mixed" else plan["encoding"]
        variables = uplink.variables(raw=plan["raw"], metadata=plan["metadata"])
        first = build_callback(kind="first", encoding=encoding, path=plan["path"], variables=variables)
        group = [first]
        if rng.random() < plan["retries"]:
            # A retry is the very same request again.
            group.append(Callback("retry", first.method, first.target, first.body, first.content_type))
        if rng.random() < plan["duplicates"]:
            copy = duplicate_copy(uplink, rng)
            group.append(build_callback(
                kind="duplicate", encoding=encoding, path=plan["path"],
                variables=copy.variables(raw=plan["raw"], metadata=True, duplicate=True),
            ))
        return group

    def logger(self):
        lock = threading.Lock()

        def log(callback: Callback, status: str, latency_s: float) -> None:
            body = callback.body.decode() if callback.body else ""
            with lock:
                self.stdout.write(f"{callback.method} {callback.target} {body} -> {status} "
                                  f"{latency_s * 1000:.1f} ms ({callback.kind})")

        return log

    def summarize(self, stats: Stats, elapsed_s: float, interrupted: bool) -> None:
        for kind in KINDS:
            by_status = {status: n for (k, status), n in sorted(stats.counts.items()) if k == kind}
            if by_status:
                answers = ", ".join(f"{status} x {n}" for status, n in by_status.items())
                self.stdout.write(f"  {KIND_LABELS[kind]:<12} {sum(by_status.values()):>8}: {answers}")
        ordered = sorted(stats.latencies_s)
        latency = ""
        if ordered:
            self.stdout.write(
                "  latency ms    " + ", ".join(
                    f"{name} {percentile(ordered, q) * 1000:.1f}"
                    for name, q in (("p50", 0.5), ("p90", 0.9), ("p99", 0.99), ("max", 1.0))
                )
            )
            latency = (f", p50 {percentile(ordered, 0.5) * 1000:.1f} ms, "
                       f"p99 {percentile(ordered, 0.99) * 1000:.1f} ms")
        failed = stats.failed()
        rate = stats.sent / elapsed_s if elapsed_s > 0 else 0.0
        self.stdout.write(
            f"{'Interrupted: ' if interrupted else ''}{stats.sent_first} messages, "
            f"{stats.sent} callbacks in {elapsed_s:.1f} s ({rate:.0f}/s): "
            f"{stats.sent - failed} answered 2xx, {failed} failed{latency}."
        )
        if failed:
            raise CommandError(f"{failed} of {stats.sent} callbacks were not answered 2xx.")
