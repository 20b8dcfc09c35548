"""Messages the callbacks missed, fetched back through the Sigfox API and stored
through the same idempotent ingest as a callback.

The Sigfox backend retries a failed callback three times, about 1, 2 and 4
minutes later (CALLBACKS.md section 5), then gives up: an outage longer than
that loses the messages sent meanwhile unless they are read back through the
API (API.md, "Reading messages back" and "Callbacks that failed").

A message is its device and time (CALLBACKS.md section 5). The API stamps it
in milliseconds, the callback's `{time}` in whole seconds: the backend
truncates, so `time_ms // 1000` is the callback's time (API.md: "API ms ÷ 1000
= callback {time} seconds"). Rounding would store a message received in the
second half of a second twice.

For each message of the span, newest first as the API pages them:
- one already stored (by a callback or an earlier run) is counted and left alone;
- one whose callback failed and is in the callbacks-not-delivered list is
  replayed from that request's body, which keeps the sensor of the URL path
  and every variable of the user's template (recovered = "replay");
- any other is stored from the API's fields (recovered = "api"): the payload
  `data` decoded with the device's, type's or site's payload config, the
  sequence number, the receptions (`rinfos`) and the computed location. It
  has no URL path, so it takes the sensor of the device's latest callback,
  else "1".
The request of a failed callback carries our token (header, query string,
sometimes the body): only its body is used, with any token masked
(sigfoxsite.redact), and none of it is logged.
"""

from __future__ import annotations

import dataclasses
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qsl, urlencode, urlsplit

from django.db import transaction
from django.utils import timezone
from rest_framework.exceptions import ParseError, ValidationError

from readings import sigfox
from readings.models import Device, Message, MessageRecovery
from readings.parsers import parse_callback_body
from readings.serializers import FUTURE_SLACK_S, MIN_EPOCH_S, uplink_callback
from readings.services.ingest import message_ingest
from sigfoxapi.client import (
    CallBudgetExhausted,
    SigfoxAPI,
    SigfoxAPIError,
    SigfoxUnavailableError,
)
from sigfoxapi.models import BackfillReason, BackfillRun, BackfillScope
from sigfoxsite.redact import redact

log = logging.getLogger(__name__)

DEFAULT_SENSOR = "1"
ONE_SECOND = timedelta(seconds=1)
# A run stopped by an API that could not be reached, or kept answering 429 or
# 5xx through the client's retries, is tried again this much later.
RETRY_UNAVAILABLE = timedelta(minutes=15)
# The path of an uplink callback of this server, at the end of a failed
# request's URL (a server may sit under a prefix): /data/<sensor>.
_UPLINK_PATH = re.compile(rf"/data/(?P<sensor>{sigfox.SENSOR_PATTERN})/?$")


def callback_time(time_ms: int) -> datetime:
    """The callback's `{time}` for an API time: whole seconds, truncated (API.md)."""
    return datetime.fromtimestamp(time_ms // 1000, tz=UTC)


def epoch_ms(moment: datetime) -> int:
    """A datetime as the API's milliseconds since the epoch."""
    return int(moment.timestamp() * 1000)


@dataclass
class Progress:
    """How far a run has come, for a progress bar: the API pages newest first,
    so the part of the span read is from the oldest time seen to `until`."""

    since: datetime
    until: datetime
    oldest: datetime | None = None
    fetched: int = 0
    # The run has ended: read to the end, or stopped by an API error.
    done: bool = False
    stopped: bool = False

    @property
    def fraction(self) -> float:
        span_s = (self.until - self.since).total_seconds()
        if self.done and not self.stopped:
            return 1.0
        if self.oldest is None or span_s <= 0:
            return 0.0
        return min(1.0, max(0.0, (self.until - self.oldest).total_seconds() / span_s))


@dataclass
class Replay:
    """A failed callback's request, as far as storing it needs: never its headers."""

    sensor: str
    data: dict
    body_raw: str
    content_type: str


@dataclass
class Outcome:
    """What one run did, message by message (BackfillRun holds the same counts)."""

    fetched: int = 0
    stored: int = 0
    replayed: int = 0
    already: int = 0
    failed: int = 0
    # Why a message was refused, one line each.
    errors: list[str] = field(default_factory=list)
    # The API error that ended the run early, if one did.
    api_error: str = ""


def replay_of(item: dict) -> Replay | None:
    """The uplink a callbacks-not-delivered item tried to deliver to this server,
    or None when it was not an uplink callback of ours (another URL, another
    kind) or its body cannot be read.

    item: an element of `data` of GET .../callbacks-not-delivered (API.md):
    `callback` is {"url", "headers", "body", "contentType", "method", ...}.
    """
    request = item.get("callback")
    if not isinstance(request, dict) or not isinstance(request.get("url"), str):
        return None
    try:
        url = urlsplit(request["url"])
    except ValueError:  # not a URL urlsplit can read
        return None
    matched = _UPLINK_PATH.search(url.path)
    if matched is None:
        return None
    method = str(request.get("method") or "POST").upper()
    content_type = str(request.get("contentType") or "").split(";")[0].strip()[:100]
    try:
        if method == "GET":
            # Stored as a GET callback is: the query string, less the token.
            pairs = [(k, v) for k, v in parse_qsl(url.query, keep_blank_values=True) if k != "token"]
            data, body_raw = dict(pairs), urlencode(pairs)
        else:
            body = request.get("body")
            if not isinstance(body, str):
                return None
            data, body_raw = parse_callback_body(body, content_type), redact(body)
    except ParseError:
        return None
    return Replay(sensor=matched["sensor"], data=data, body_raw=body_raw,
                  content_type="" if method == "GET" else content_type)


def uplink_variables(item: dict, *, device_type_id: str = "") -> dict:
    """An API message item (API.md, "Reading messages back") as the variables
    of the DATA ADVANCED callback the backend would have sent for it.

    Shapes: `device` {"id"}, `time` ms, `data` hex, `seqNumber`, `ackRequired`,
    `lqi` 0..4, `computedLocation` [{"lat", "lng", "radius" (m), "source"}],
    `rinfos` [{"baseStation": {"id"}, "lat", "lng", "rep", ...}].
    """
    device = item.get("device")
    device_id = device.get("id") if isinstance(device, dict) else device
    variables: dict = {"device": device_id, "time": item["time"] // 1000}
    for name, target in (("data", "data"), ("seqNumber", "seqNumber"), ("ackRequired", "ack"),
                         ("lqi", "linkQuality")):
        if item.get(name) is not None:
            variables[target] = item[name]
    if device_type_id:
        variables["deviceTypeId"] = device_type_id
    places = item.get("computedLocation")
    locations = [place for place in places if isinstance(place, dict)
                 and place.get("lat") is not None and place.get("lng") is not None
                 ] if isinstance(places, list) else []
    if locations:
        place = locations[0]
        variables["computedLocation"] = {
            "lat": place["lat"], "lng": place["lng"], "radius": place.get("radius"),
            "source": place.get("source"), "status": 1,
        }
    rinfos = item.get("rinfos")
    receptions = [r for r in rinfos if isinstance(r, dict)] if isinstance(rinfos, list) else []
    stations = []
    for reception in receptions:
        station = reception.get("baseStation")
        station_id = station.get("id") if isinstance(station, dict) else None
        if isinstance(station_id, str) and station_id:
            stations.append({"bsId": station_id, "nbRep": reception.get("rep"),
                             "lat": reception.get("lat"), "lng": reception.get("lng")})
    if stations:
        variables["duplicates"] = stations
        first = stations[0]
        variables["station"] = first["bsId"]
        if first["lat"] is not None and first["lng"] is not None:
            variables["lat"], variables["lng"] = first["lat"], first["lng"]
    return variables


def latest_sensor(device_id: str) -> str:
    """The sensor path of the device's latest callback, else "1"."""
    sensor = (Message.objects.filter(device__sigfox_id=device_id, recovered="")
              .order_by("-time").values_list("sensor", flat=True).first())
    return sensor or DEFAULT_SENSOR


def _stored(device_id: str, time: datetime) -> bool:
    return Message.objects.filter(device__sigfox_id=device_id, time=time).exists()


def _store(*, variables: dict, sensor: str, body_raw: str, content_type: str,
           recovered: str, now: datetime) -> bool:
    """Store one recovered message; True when it was new. Raises ValidationError
    when the variables cannot identify a frame."""
    # Its downlink window closed long ago: its ack is kept, nothing answered.
    uplink = dataclasses.replace(
        uplink_callback(variables, sensor=sensor, body_raw=body_raw, content_type=content_type,
                        now=now),
        answerable=False)
    with transaction.atomic():
        result = message_ingest(uplink=uplink, now=now)
        if result.created:
            Message.objects.filter(device__sigfox_id=uplink.device_id, time=uplink.time).update(
                recovered=recovered)
    return result.created


def backfill(*, api: SigfoxAPI, since: datetime, until: datetime, device_type: str = "",
             device: str = "", dry_run: bool = False, reason: str = BackfillReason.MANUAL,
             on_progress: Callable[[Progress], None] | None = None,
             now: datetime | None = None) -> tuple[BackfillRun, Outcome]:
    """Fetch the messages of [since, until) of one device type (its Sigfox id,
    either case) or one device, and store those not stored yet, as a new run.

    Returns the run (saved unless `dry_run`) and its outcome. An API error
    ends the run early: it is recorded in the run's `error`, and what was
    stored stays stored (each message commits on its own). Raises ValueError
    for a bad scope.
    """
    if bool(device_type) == bool(device):
        raise ValueError("Give one device type or one device.")
    now = now or timezone.now()
    # The API writes device type ids in lower case, this server in upper case.
    scope = BackfillScope.DEVICE_TYPE if device_type else BackfillScope.DEVICE
    sigfox_id = (device_type or device).upper()
    run = BackfillRun.of(scope, sigfox_id, since=since, until=until, reason=reason,
                         dry_run=dry_run, started_at=now)
    if not dry_run:
        run.save()
    return run, backfill_run(api=api, run=run, on_progress=on_progress, now=now)


def backfill_run(*, api: SigfoxAPI, run: BackfillRun,
                 on_progress: Callable[[Progress], None] | None = None,
                 now: datetime | None = None) -> Outcome:
    """Run (or go on with) a backfill: read what is left of its span, store what
    is missing, and record the counts, adding to those of earlier attempts.

    The run is saved at the end whatever happens (unless a dry run); an API
    error leaves it incomplete, with `retry_after` set when trying again later
    may help (the API unreachable or busy, the request budget spent) and
    `resume_before` where what is left to read ends, when the API paged
    newest first as far as read.
    """
    now = now or timezone.now()
    since, until = run.since, run.resume_before or run.until
    if run.scope == BackfillScope.DEVICE_TYPE:
        scope = {"device_type": run.sigfox_id.lower()}
        type_id = run.sigfox_id
    else:
        scope = {"device": run.sigfox_id}
        type_id = getattr(Device.objects.filter(sigfox_id=run.sigfox_id)
                          .select_related("device_type").first(), "device_type", None)
        type_id = type_id.sigfox_id if type_id is not None else ""
    outcome = Outcome()
    calls_before = api.calls
    progress = Progress(since=since, until=until)
    sensors: dict[str, str] = {}
    newest_first, previous = True, None
    try:
        not_delivered = api.callbacks_not_delivered(
            **scope, since_ms=epoch_ms(since), before_ms=epoch_ms(until))
        replays = _replays_by_frame(list(not_delivered), now=now)
        for item in api.messages(**scope, since_ms=epoch_ms(since), before_ms=epoch_ms(until)):
            outcome.fetched += 1
            try:
                time, variables, device_id = _read_item(item, type_id=type_id, now=now)
            except ValueError as exc:
                outcome.failed += 1
                outcome.errors.append(f"A message the API returned could not be read: {exc}")
                continue
            newest_first &= previous is None or time <= previous
            previous = time
            progress.fetched, progress.oldest = outcome.fetched, time
            if _stored(device_id, time):
                outcome.already += 1
            elif run.dry_run:
                outcome.stored += 1
            else:
                _store_one(outcome, variables, replays.get((device_id, time)), sensors, device_id,
                           now=now)
            if on_progress is not None:
                on_progress(progress)
    except SigfoxAPIError as exc:
        outcome.api_error = str(exc)
        _stopped(run, exc, now=now,
                 resume_before=progress.oldest + ONE_SECOND
                 if newest_first and progress.oldest else None)
    finally:
        run.fetched += outcome.fetched
        run.stored += outcome.stored
        run.replayed += outcome.replayed
        run.already += outcome.already
        run.failed += outcome.failed
        run.api_calls += api.calls - calls_before
        run.attempts += 1
        if not outcome.api_error:
            run.complete, run.retry_after, run.resume_before = True, None, None
        run.error = "\n".join(filter(None, [outcome.api_error, *outcome.errors]))[:5000]
        run.finished_at = timezone.now()
        if not run.dry_run:
            run.save()
    if on_progress is not None:
        progress.done, progress.stopped = True, bool(outcome.api_error)
        on_progress(progress)
    log.info("backfill %s %s..%s: fetched %d, stored %d (%d replayed), already %d, failed %d%s",
             run.sigfox_id, since.isoformat(), until.isoformat(), outcome.fetched,
             outcome.stored, outcome.replayed, outcome.already, outcome.failed,
             f", stopped: {outcome.api_error}" if outcome.api_error else "")
    return outcome


def _stopped(run: BackfillRun, exc: SigfoxAPIError, *, now: datetime,
             resume_before: datetime | None) -> None:
    """Mark a run an API error cut short: when to try again, from where."""
    run.complete = False
    if resume_before is not None and run.since < resume_before < (run.resume_before or run.until):
        run.resume_before = resume_before
    if isinstance(exc, CallBudgetExhausted):
        run.retry_after = now  # the next pass, if the hour's budget allows
    elif isinstance(exc, SigfoxUnavailableError):
        run.retry_after = now + RETRY_UNAVAILABLE
    else:
        run.retry_after = None  # credentials, rights, an unknown id: the operator's to fix


def frame_of(item: dict, *, now: datetime) -> tuple[str, datetime]:
    """(device id, callback time) of an item of the API: a message (`device`
    as {"id"}) or a callback not delivered (`device` a plain id), `time` in
    ms. ValueError naming what is wrong: the API's answers are input."""
    time_ms = item.get("time")
    if isinstance(time_ms, bool) or not isinstance(time_ms, int) or not (
            MIN_EPOCH_S * 1000 <= time_ms <= (now.timestamp() + FUTURE_SLACK_S) * 1000):
        raise ValueError(f"time {time_ms!r} is not a time in milliseconds")
    device = item.get("device")
    device_id = _device_id(device.get("id") if isinstance(device, dict) else device)
    if device_id is None:
        raise ValueError(f"the message at {time_ms} ms names no device")
    return device_id, callback_time(time_ms)


def _read_item(item: dict, *, type_id: str, now: datetime) -> tuple[datetime, dict, str]:
    """(callback time, uplink variables, device id) of an API message item, or
    ValueError naming what is wrong with it."""
    device_id, time = frame_of(item, now=now)
    return time, uplink_variables(item, device_type_id=type_id), device_id


def _device_id(value) -> str | None:
    try:
        return sigfox.normalize_device_id(str(value))
    except ValueError:
        return None


def _replays_by_frame(items: list[dict], *, now: datetime) -> dict[tuple[str, datetime], Replay]:
    """The replayable uplinks of the not-delivered items, by frame."""
    replays = {}
    for item in items:
        try:
            frame = frame_of(item, now=now)
        except ValueError:
            continue
        replay = replay_of(item)
        if replay is not None:
            replays.setdefault(frame, replay)
    return replays


def _store_one(outcome: Outcome, variables: dict, replay: Replay | None, sensors: dict,
               device_id: str, *, now: datetime) -> None:
    if replay is not None:
        try:
            created = _store(variables=replay.data, sensor=replay.sensor, body_raw=replay.body_raw,
                             content_type=replay.content_type, recovered=MessageRecovery.REPLAY,
                             now=now)
        except ValidationError:
            created = None  # the body no longer makes a frame: store the API's copy
        if created is not None:
            outcome.stored += created
            outcome.replayed += created
            outcome.already += not created
            return
    if device_id not in sensors:
        sensors[device_id] = latest_sensor(device_id)
    try:
        created = _store(variables=variables, sensor=sensors[device_id], body_raw="",
                         content_type="", recovered=MessageRecovery.API, now=now)
    except ValidationError as exc:
        outcome.failed += 1
        outcome.errors.append(f"{device_id} at {variables.get('time')}: {exc.detail}")
        return
    outcome.stored += created
    outcome.already += not created
