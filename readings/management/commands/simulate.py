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

Simulated time: frames and retries fall due on a clock running --speed times
as fast as the real one. Above 1, the simulated clock starts (speed - 1) x
the run's real duration behind the real one and catches up with it when the
run ends, so that no frame is ever dated in the server's future.

With --sigfox-api the command also plays the Sigfox cloud
(readings.simulation.cloud): it serves a stand-in of the REST API
(../shared/sigfox/API.md) for the simulated fleet, and its backend retries a
failed callback 1, 2 and 4 minutes (simulated) apart and then gives up, as
../shared/sigfox/CALLBACKS.md section 5 tells; what it gave up is listed by
GET /device-types/{id}/callbacks-not-delivered.
"""

from __future__ import annotations

import argparse
import math
import random
import re
import signal
import socket
import threading
import time
from datetime import UTC, datetime
from urllib.parse import urlsplit

from django.core.management.base import BaseCommand, CommandError

from readings.management.options import sensor_name
from readings.sigfox import DEVICE_ID_MAX_CHARS
from readings.simulation.cloud import SigfoxCloud
from readings.simulation.fleet import (
    DEFAULT_DEVICE_BASE,
    DEFAULT_DEVICE_TYPE_ID,
    DEVICE_ID_MAX,
    ENCODINGS,
    KINDS,
    RAW_PAYLOAD_CONFIG,
    Callback,
    Fleet,
    callbacks_for,
)
from readings.simulation.load import (
    RETRY_DELAYS_S,
    Backend,
    Progress,
    SimulatedClock,
    Stats,
    percentile,
    send_all,
)

DEFAULT_INTERVAL_S = 60
KIND_LABELS = {"first": "first sends", "retry": "retries", "duplicate": "duplicates",
               "redelivery": "redeliveries"}
# The API stand-in's credentials unless --api-login/--api-password say
# otherwise: it serves 127.0.0.1 only, and a simulated fleet.
DEFAULT_API_LOGIN = "simulate"
DEFAULT_API_PASSWORD = "simulate"


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


def device_type_id(text: str) -> str:
    if not re.fullmatch(r"[0-9A-Fa-f]{24}", text):
        raise argparse.ArgumentTypeError(f"must be 24 hexadecimal characters, got {text!r}")
    return text.lower()


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
                            help="Stop after this many (real) seconds. Without --count or "
                                 "--duration, "
                                 "a run that starts in the past stops when it reaches the present, "
                                 "and a live run goes on until interrupted (Ctrl-C).")
        start = parser.add_mutually_exclusive_group()
        start.add_argument("--time-start", metavar="EPOCH", type=bounded(int, 0, 2**40),
                           help="Reception time of the first message, Unix epoch seconds "
                                "(default: now; with --speed above 1, the simulated start).")
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
                                 "backend retries a callback whose answer it did not get "
                                 "(at once, whatever the answer; --sigfox-api adds the "
                                 "backend's retries of the callbacks that failed).")
        parser.add_argument("--duplicates", default="0", metavar="P", type=bounded(float, 0, 1),
                            help="Probability (0 to 1) that another base station's copy "
                                 "(duplicate=true) follows a message.")
        parser.add_argument("--quiet", default="0", metavar="N", type=bounded(int, 0, 10**6),
                            help="This many devices (the last ones) stop sending --quiet-after "
                                 "seconds into the run, so that the worker marks them late, "
                                 "then down, and alerts.")
        parser.add_argument("--quiet-after", default="300", metavar="SECONDS",
                            type=bounded(float, 0, 10**9),
                            help="When the --quiet devices stop, in simulated seconds from the "
                                 "start (default 300).")
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
        parser.add_argument("--speed", default="1", metavar="N", type=bounded(float, 1, 10**5),
                            help="Simulated seconds per real second (default 1): frames and the "
                                 "backend's retries fall due on the simulated clock, so at 60 "
                                 "fifteen simulated minutes take fifteen real seconds. Above 1 "
                                 "the run needs --duration or --count (or a past start without "
                                 "either, sent at once), and the simulated clock starts "
                                 "(N - 1) x the run's real duration (--duration, or the time "
                                 "--count frames take at this speed) before now, so that it "
                                 "reaches the real now as the run ends: no frame is dated in "
                                 "the future. The default start of the timeline is that "
                                 "simulated start.")
        api = parser.add_argument_group(
            "Sigfox API stand-in",
            "Also play the Sigfox cloud: serve its REST API for the simulated fleet, and "
            "retry each failed callback 1, 2 and 4 simulated minutes apart (+60, +180 and +420 s "
            "after its first attempt), then give it up: it then shows in "
            "callbacks-not-delivered, with the request as it was tried. Answers not 2xx are then expected "
            "and do not make the command fail.")
        api.add_argument("--sigfox-api", metavar="PORT", type=bounded(int, 0, 65535),
                         help="Serve the stand-in on 127.0.0.1:PORT (0: a free port); its URL "
                              "(SIGFOX_API_URL) is printed as 'Sigfox API stand-in: "
                              "http://127.0.0.1:PORT/v2 (login ..., password ...)'. Once the "
                              "last frame is sent and the retries have settled, it serves until "
                              "interrupted (Ctrl-C, SIGTERM) unless --exit-when-done.")
        api.add_argument("--api-login", metavar="LOGIN",
                         help=f"HTTP Basic login of the stand-in (default {DEFAULT_API_LOGIN}).")
        api.add_argument("--api-password", metavar="PASSWORD",
                         help="HTTP Basic password of the stand-in (default "
                              f"{DEFAULT_API_PASSWORD}; a development value, the stand-in "
                              "listens on 127.0.0.1 only).")
        api.add_argument("--device-type", metavar="HEX", type=device_type_id,
                         help="The fleet's Sigfox device type id, 24 hex characters (default "
                              f"{DEFAULT_DEVICE_TYPE_ID}); each callback then carries it as "
                              "deviceTypeId, as it always does with --sigfox-api.")
        api.add_argument("--exit-when-done", action="store_true",
                         help="With --sigfox-api: exit once the retries have settled instead of "
                              "serving the API until interrupted.")

    def handle(self, *args, **options):
        plan = self.plan(options)
        fleet = Fleet(devices=plan["devices"], device_base=plan["device_base"],
                      interval_s=plan["interval_s"], time_start_s=plan["time_start_s"],
                      seed=plan["seed"], quiet=plan["quiet"], quiet_from_s=plan["quiet_from_s"])
        cloud = self.start_cloud(plan, fleet) if plan["api_port"] is not None else None
        restore = self.interrupt_on_sigterm()
        try:
            if cloud is None:
                self.check_reachable(plan)
            else:
                self.warn_unreachable(plan)
            self.describe(plan, fleet)
            stats, elapsed_s, interrupted = self.run(plan, fleet, cloud)
            self.summarize(stats, elapsed_s, interrupted, api=cloud is not None)
            if cloud is not None and not interrupted and not plan["exit_when_done"]:
                self.serve_until_interrupted(cloud, stats)
        finally:
            restore()
            if cloud is not None:
                cloud.close()

    def start_cloud(self, plan, fleet: Fleet) -> SigfoxCloud:
        """The Sigfox API stand-in, serving; its URL printed for whoever started us."""
        cloud = SigfoxCloud(login=plan["api_login"], password=plan["api_password"],
                            clock=plan["clock"].now_s, port=plan["api_port"])
        cloud.add_device_type(plan["device_type_id"],
                              devices=[device.sigfox_id for device in fleet.devices])
        try:
            cloud.start()
        except OSError as exc:
            raise CommandError(f"Cannot serve the Sigfox API stand-in on 127.0.0.1:"
                               f"{plan['api_port']}: {exc.strerror or exc}.") from None
        self.stdout.write(f"Sigfox API stand-in: {cloud.url} (login {plan['api_login']}, "
                          f"password {plan['api_password']})")
        self.stdout.write(f"Sigfox device type of the fleet: {plan['device_type_id']}")
        self.stdout.flush()
        return cloud

    def interrupt_on_sigterm(self):
        """Make SIGTERM stop the run as Ctrl-C does; returns what undoes it."""
        if threading.current_thread() is not threading.main_thread():
            return lambda: None

        def interrupt(signum, frame):
            raise KeyboardInterrupt

        previous = signal.signal(signal.SIGTERM, interrupt)
        return lambda: signal.signal(signal.SIGTERM, previous)

    def serve_until_interrupted(self, cloud: SigfoxCloud, stats: Stats) -> None:
        self.stdout.write(f"Serving the Sigfox API stand-in at {cloud.url} until interrupted "
                          "(Ctrl-C).")
        self.stdout.flush()
        try:
            while True:
                time.sleep(0.5)
        except KeyboardInterrupt:
            pass
        self.stdout.write(f"Stopped: {stats.messages} messages, {stats.sent} callbacks, "
                          f"{sum(stats.given_up.values())} given up.")

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
        speed = options["speed"]
        past_start = options["time_start"] is not None or options["backfill"] is not None
        if duration_s is not None:
            run_real_s = duration_s
        elif count is not None:
            # The frames' span on the timeline: the last is device i's k-th.
            k, i = divmod(count - 1, devices)
            run_real_s = (k + i / devices) * interval_s / speed
        elif speed > 1 and not past_start:
            raise CommandError(f"--speed {speed:g} needs --duration or --count: a live run "
                               "faster than real time would date frames in the future")
        else:
            run_real_s = 0.0
        # Simulated time catches up with the real clock as the run ends.
        clock = SimulatedClock(speed=speed, meets_real_s=now_s + run_real_s)
        simulated_start_s = clock.at_real_s(now_s)
        if options["time_start"] is not None:
            time_start_s = options["time_start"]
        elif options["backfill"] is not None:
            time_start_s = now_s - options["backfill"] * 86_400
        else:
            time_start_s = simulated_start_s
        until_s = clock.at_real_s(now_s + duration_s) if duration_s is not None else math.inf
        # Without a bound, a run that starts in the past ends in the present.
        until_now = count is None and duration_s is None and time_start_s < now_s - 1
        if until_now:
            until_s = min(until_s, now_s)
        if speed > 1:
            until_s = min(until_s, clock.meets_real_s + 1e-6)
        api_mode = options["sigfox_api"] is not None
        for name in ("api_login", "api_password", "exit_when_done"):
            if options[name] and not api_mode:
                raise CommandError(f"--{name.replace('_', '-')} goes with --sigfox-api")
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
            "until_now": until_now,
            "until_s": until_s,
            "speed": speed,
            "clock": clock,
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
            "quiet_from_s": (simulated_start_s + options["quiet_after"] if options["quiet"]
                             else math.inf),
            "api_port": options["sigfox_api"],
            "api_login": options["api_login"] or DEFAULT_API_LOGIN,
            "api_password": options["api_password"] or DEFAULT_API_PASSWORD,
            "exit_when_done": options["exit_when_done"],
            # The callbacks carry {deviceTypeId} in the API mode, or when asked.
            "device_type_id": (options["device_type"] or DEFAULT_DEVICE_TYPE_ID
                               if api_mode or options["device_type"] else None),
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
        if plan["speed"] > 1:
            clock = plan["clock"]
            self.stdout.write(
                f"Simulated time runs {plan['speed']:g} times as fast as real time, from "
                f"{datetime.fromtimestamp(clock.now_s(), tz=UTC):%Y-%m-%d %H:%M:%SZ}; it reaches "
                f"the real clock at {datetime.fromtimestamp(clock.meets_real_s, tz=UTC):%H:%M:%SZ}."
            )
        if plan["api_port"] is not None:
            delays = ", ".join(f"+{delay_s:g}" for delay_s in RETRY_DELAYS_S)
            self.stdout.write(f"A callback that fails is retried at {delays} simulated seconds "
                              "after its first attempt, then given up.")
        self.stdout.flush()

    def warn_unreachable(self, plan) -> None:
        """In the API mode a server that is down is part of the story: say so, go on."""
        try:
            self.check_reachable(plan)
        except CommandError as exc:
            self.stdout.write(f"Warning: {exc} The backend will retry, then give up.")

    def run(self, plan, fleet: Fleet, cloud: SigfoxCloud | None) -> tuple[Stats, float, bool]:
        token_headers = {"Authorization": f"Bearer {plan['token']}"} if plan["token"] else {}
        headers = {"User-Agent": "sigfoxsite-simulate", **token_headers}
        # Separate from the fleet's, so that these choices leave the readings alone.
        rng = random.Random(f"{plan['seed']}:sends")
        schedule = (
            (frame.due_s, callbacks_for(
                frame, encoding=plan["encoding"], path=plan["path"], raw=plan["raw"],
                metadata=plan["metadata"], retry_probability=plan["retries"],
                duplicate_probability=plan["duplicates"], rng=rng,
                device_type_id=plan["device_type_id"],
            ))
            for frame in fleet.frames(count=plan["count"], until_s=plan["until_s"])
        )
        backend = None
        if cloud is not None:
            backend = Backend(
                cloud=cloud, clock=plan["clock"], device_type_id=plan["device_type_id"],
                base_url=f"{plan['scheme']}://{urlsplit(plan['url']).netloc}",
                headers=token_headers,
                on_give_up=self.give_up_logger() if plan["verbosity"] > 1 else None,
            )
        stats = Stats()
        progress = Progress(self.draw, enabled=plan["progress"], total=plan["count"],
                            duration_s=plan["duration_s"])
        elapsed_s, interrupted = send_all(
            schedule, scheme=plan["scheme"], host=plan["host"], port=plan["port"],
            timeout_s=plan["timeout_s"], headers=headers, concurrency=plan["concurrency"],
            stats=stats, progress=progress, log=self.logger() if plan["verbosity"] > 1 else None,
            clock=plan["clock"], backend=backend,
        )
        return stats, elapsed_s, interrupted

    def give_up_logger(self):
        lock = threading.Lock()

        def log(callback: Callback, status: str) -> None:
            with lock:
                self.stdout.write(f"Given up after {len(RETRY_DELAYS_S)} retries: "
                                  f"{callback.method} {callback.target} -> {status}")

        return log

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

    def summarize(self, stats: Stats, elapsed_s: float, interrupted: bool, *,
                  api: bool = False) -> None:
        """Counts by kind and status, latencies, one line of totals.

        Without the API mode, any answer not 2xx makes the command fail; with
        it, failures are what the backend's retries and its not-delivered list
        are for, and are only reported.
        """
        lines = [(KIND_LABELS[kind], {status: n for (k, status), n in sorted(stats.counts.items())
                                      if k == kind}) for kind in KINDS]
        lines.append(("given up", dict(sorted(stats.given_up.items()))))
        for label, by_status in lines:
            if by_status:
                answers = ", ".join(f"{status} x {n}" for status, n in by_status.items())
                self.stdout.write(f"  {label:<12} {sum(by_status.values()):>8}: {answers}")
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
        given_up = (f", {sum(stats.given_up.values())} given up to callbacks-not-delivered"
                    if api else "")
        self.stdout.write(
            f"{'Interrupted: ' if interrupted else ''}{stats.messages} messages, "
            f"{stats.sent} callbacks in {elapsed_s:.1f} s ({rate:.0f}/s): "
            f"{stats.sent - failed} answered 2xx, {failed} failed{given_up}{latency}."
        )
        self.stdout.flush()
        if failed and not api:
            raise CommandError(f"{failed} of {stats.sent} callbacks were not answered 2xx.")
