"""manage.py simulate: play the Sigfox backend against a running server.

A fleet of simulated devices sends frames on a timeline: device i's k-th
frame has the reception time time_start + (k + i/devices) * interval, so the
devices are spread evenly over each interval. A frame whose time is in the
past (--backfill, a past --time-start) is sent at once; one whose time is
still to come is sent when it falls due, so a live run fills the chart as a
real fleet would.

The fleet and its callbacks are modelled in readings.simulation.fleet (pure,
repeatable from a seed); readings.simulation.load sends them over keep-alive
connections. This command checks the options, wires the two and reports.
"""

from __future__ import annotations

import argparse
import math
import random
import re
import socket
import threading
import time
from datetime import UTC, datetime
from urllib.parse import urlsplit

from django.core.management.base import BaseCommand, CommandError

from readings.sigfox import DEVICE_ID_MAX_CHARS, SENSOR_MAX_CHARS, SENSOR_PATTERN
from readings.simulation.fleet import (
    DEFAULT_DEVICE_BASE,
    DEVICE_ID_MAX,
    ENCODINGS,
    KINDS,
    RAW_PAYLOAD_CONFIG,
    Callback,
    Fleet,
    callbacks_for,
)
from readings.simulation.load import Progress, Stats, percentile, send_all

DEFAULT_INTERVAL_S = 60
KIND_LABELS = {"first": "first sends", "retry": "retries", "duplicate": "duplicates"}
SENSOR = re.compile(SENSOR_PATTERN)


# --- Option types: argparse names the option in their errors ---------------------------


def bounded(kind: type[int | float], minimum: float, maximum: float):
    """An argparse type= for a number from `minimum` to `maximum`."""
    noun = "a whole number" if kind is int else "a number"

    def parse(text: str) -> int | float:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expects {noun}, got {text!r}") from None
        if not minimum <= value <= maximum:  # also refuses nan
            raise argparse.ArgumentTypeError(
                f"must be between {minimum:g} and {maximum:g}, got {text}")
        return value

    return parse


def base_url(text: str) -> str:
    url = urlsplit(text)
    if url.scheme not in ("http", "https") or not url.hostname:
        raise argparse.ArgumentTypeError(f"must be an http:// or https:// URL, got {text!r}")
    if url.query or url.fragment:
        raise argparse.ArgumentTypeError(
            f"must be the server's base URL, without a query string, got {text!r}")
    try:
        url.port  # noqa: B018 (urlsplit checks the port only when asked for it)
    except ValueError:
        raise argparse.ArgumentTypeError(f"has an invalid port: {text!r}") from None
    return text


def sensor_name(text: str) -> str:
    if not SENSOR.fullmatch(text):
        raise argparse.ArgumentTypeError(
            f"must be 1 to {SENSOR_MAX_CHARS} letters, digits, _ . or -, got {text!r}")
    return text


def device_id(text: str) -> int:
    try:
        value = int(text, 16)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be hexadecimal, got {text!r}") from None
    if not 0 <= value <= DEVICE_ID_MAX:
        raise argparse.ArgumentTypeError(
            f"must be between 0 and {DEVICE_ID_MAX:X} (Sigfox ids have at most "
            f"{DEVICE_ID_MAX_CHARS} hex characters), got {text}")
    return value


# --- The command -----------------------------------------------------------------------


class Command(BaseCommand):
    help = (
        "Act as the Sigfox backend: send the callbacks of a simulated fleet of devices to a "
        "running server (make run) and report the answers and their latency. Messages dated in "
        "the past (--backfill, --time-start) are sent at once, later ones when they fall due."
    )

    def add_arguments(self, parser):
        # Defaults are text, as typed on the command line: argparse passes them
        # through type= too, and --help shows them as they were.
        parser.add_argument("--url", default="http://127.0.0.1:8000", type=base_url,
                            help="Base URL of the server (default http://127.0.0.1:8000); "
                                 "callbacks go to <url>/data/<sensor>.")
        parser.add_argument("--sensor", default="1", type=sensor_name,
                            help="The <sensor> part of the callback URL (default 1).")
        parser.add_argument("--devices", default="3", metavar="N", type=bounded(int, 1, 1_000_000),
                            help="Number of devices (default 3).")
        parser.add_argument("--device-base", default=f"{DEFAULT_DEVICE_BASE:X}", metavar="HEX",
                            type=device_id,
                            help="Id of the first device, hex; the others follow it "
                                 f"(default {DEFAULT_DEVICE_BASE:X}: {DEFAULT_DEVICE_BASE:X}, "
                                 f"{DEFAULT_DEVICE_BASE + 1:X}, ...).")
        pace = parser.add_mutually_exclusive_group()
        pace.add_argument("--interval", metavar="SECONDS", type=bounded(float, 1, 86_400 * 365),
                          help="Seconds between two messages of one device (default 60; a real "
                               "device sends at most every ~10 minutes).")
        pace.add_argument("--rate", metavar="PER_SECOND", type=bounded(float, 1e-6, 1e6),
                          help="Messages per second from the whole fleet, instead of --interval "
                               "(each device then sends every devices/rate seconds).")
        parser.add_argument("--count", metavar="N", type=bounded(int, 1, 10**9),
                            help="Stop after N messages (retries and duplicates not counted).")
        parser.add_argument("--duration", metavar="SECONDS", type=bounded(float, 1e-3, 10**7),
                            help="Stop after this many seconds. Without --count or --duration, "
                                 "a run that starts in the past stops when it reaches the present, "
                                 "and a live run goes on until interrupted (Ctrl-C).")
        start = parser.add_mutually_exclusive_group()
        start.add_argument("--time-start", metavar="EPOCH", type=bounded(int, 0, 2**40),
                           help="Reception time of the first message, Unix epoch seconds "
                                "(default: now).")
        start.add_argument("--backfill", metavar="DAYS", type=bounded(float, 1e-3, 3650),
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
        parser.add_argument("--retries", default="0", metavar="P", type=bounded(float, 0, 1),
                            help="Probability (0 to 1) that a message is sent again, as the "
                                 "backend retries a callback whose answer it did not get.")
        parser.add_argument("--duplicates", default="0", metavar="P", type=bounded(float, 0, 1),
                            help="Probability (0 to 1) that another base station's copy "
                                 "(duplicate=true) follows a message.")
        parser.add_argument("--quiet", default="0", metavar="N", type=bounded(int, 0, 10**6),
                            help="This many devices (the last ones) stop sending --quiet-after "
                                 "seconds into the run, so that the worker marks them late, "
                                 "then down, and alerts.")
        parser.add_argument("--quiet-after", default="300", metavar="SECONDS",
                            type=bounded(float, 0, 10**9),
                            help="When the --quiet devices stop, in seconds from now (default 300).")
        parser.add_argument("--token",
                            help="Send 'Authorization: Bearer TOKEN' with every callback.")
        parser.add_argument("--concurrency", default="4", metavar="N", type=bounded(int, 1, 256),
                            help="Callbacks in flight at once, one connection each (default 4).")
        parser.add_argument("--timeout", default="10", metavar="SECONDS",
                            type=bounded(float, 0.01, 600),
                            help="Give up on an answer after this long (default 10, the "
                                 "backend's limit).")
        parser.add_argument("--seed", metavar="N", type=bounded(int, 0, 2**63),
                            help="Seed of the random values, to repeat a run exactly "
                                 "(default: a new one, printed).")
        parser.add_argument("--progress", action="store_true",
                            help="Draw the progress bar on stderr even when it is not a terminal.")

    def handle(self, *args, **options):
        plan = self.plan(options)
        fleet = Fleet(devices=plan["devices"], device_base=plan["device_base"],
                      interval_s=plan["interval_s"], time_start_s=plan["time_start_s"],
                      seed=plan["seed"], quiet=plan["quiet"], quiet_from_s=plan["quiet_from_s"])
        self.check_reachable(plan)
        self.describe(plan, fleet)
        stats, elapsed_s, interrupted = self.run(plan, fleet)
        self.summarize(stats, elapsed_s, interrupted)

    def plan(self, options) -> dict:
        """The options, each already checked by its type=, checked together."""
        url = urlsplit(options["url"])
        devices = options["devices"]
        if options["quiet"] > devices:
            raise CommandError(f"--quiet {options['quiet']} is more than the {devices} devices")
        device_base = options["device_base"]
        if device_base + devices - 1 > DEVICE_ID_MAX:
            raise CommandError(f"--device-base {device_base:X} with {devices} devices goes past "
                               f"{DEVICE_ID_MAX:X} (Sigfox ids have at most "
                               f"{DEVICE_ID_MAX_CHARS} hex characters)")
        interval_s = options["interval"]
        if options["rate"] is not None:
            interval_s = devices / options["rate"]
            if interval_s < 1:
                raise CommandError(
                    f"--rate {options['rate']:g} with {devices} devices is more than one message "
                    f"per device per second, and Sigfox times are whole seconds: give --devices "
                    f"{math.ceil(options['rate'])} or more"
                )
        elif interval_s is None:
            interval_s = DEFAULT_INTERVAL_S

        count, duration_s = options["count"], options["duration"]
        now_s = time.time()
        if options["time_start"] is not None:
            time_start_s = options["time_start"]
        elif options["backfill"] is not None:
            time_start_s = now_s - options["backfill"] * 86_400
        else:
            time_start_s = now_s
        seed = options["seed"]
        if seed is None:
            seed = random.SystemRandom().randrange(10**6)
        path = f"{url.path.rstrip('/')}/data/{options['sensor']}"
        return {
            "scheme": url.scheme,
            "host": url.hostname,
            "port": url.port or (443 if url.scheme == "https" else 80),
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
            "retries": options["retries"],
            "duplicates": options["duplicates"],
            # A duplicate is told apart by its station: send the network variables.
            "metadata": options["metadata"] or options["duplicates"] > 0,
            "token": options["token"],
            "concurrency": options["concurrency"],
            "timeout_s": options["timeout"],
            "seed": seed,
            "quiet": options["quiet"],
            "quiet_from_s": now_s + options["quiet_after"] if options["quiet"] else math.inf,
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
            + (f" The last {plan['quiet']} device(s) go quiet at "
               f"{datetime.fromtimestamp(plan['quiet_from_s'], tz=UTC):%H:%M:%SZ}."
               if plan["quiet"] else "")
        )
        if plan["raw"]:
            self.stdout.write(f"The server decodes these payloads with the config: {RAW_PAYLOAD_CONFIG}")

    def run(self, plan, fleet: Fleet) -> tuple[Stats, float, bool]:
        headers = {"User-Agent": "sigfoxsite-simulate"}
        if plan["token"]:
            headers["Authorization"] = f"Bearer {plan['token']}"
        started_s = time.time()
        until_s = started_s + plan["duration_s"] if plan["duration_s"] else math.inf
        if plan["until_now"]:
            until_s = min(until_s, started_s)
        # Separate from the fleet's, so that these choices leave the readings alone.
        rng = random.Random(f"{plan['seed']}:sends")
        schedule = (
            (frame.due_s, callbacks_for(
                frame, encoding=plan["encoding"], path=plan["path"], raw=plan["raw"],
                metadata=plan["metadata"], retry_probability=plan["retries"],
                duplicate_probability=plan["duplicates"], rng=rng,
            ))
            for frame in fleet.frames(count=plan["count"], until_s=until_s)
        )
        stats = Stats()
        progress = Progress(self.draw, enabled=plan["progress"], total=plan["count"],
                            duration_s=plan["duration_s"])
        elapsed_s, interrupted = send_all(
            schedule, scheme=plan["scheme"], host=plan["host"], port=plan["port"],
            timeout_s=plan["timeout_s"], headers=headers, concurrency=plan["concurrency"],
            stats=stats, progress=progress, log=self.logger() if plan["verbosity"] > 1 else None,
        )
        return stats, elapsed_s, interrupted

    def draw(self, text: str) -> None:
        self.stderr.write(text, ending="")
        self.stderr.flush()

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
            f"{'Interrupted: ' if interrupted else ''}{stats.messages} messages, "
            f"{stats.sent} callbacks in {elapsed_s:.1f} s ({rate:.0f}/s): "
            f"{stats.sent - failed} answered 2xx, {failed} failed{latency}."
        )
        if failed:
            raise CommandError(f"{failed} of {stats.sent} callbacks were not answered 2xx.")
