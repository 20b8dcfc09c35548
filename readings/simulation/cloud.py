"""The simulated Sigfox cloud: what its backend received, and a stand-in of its REST API.

Standard library only, no Django: `manage.py simulate --sigfox-api PORT` and
the tests run it in a thread of their own process. The API follows
../shared/sigfox/API.md (Sigfox REST API v2); where that page marks a fact
*(unconfirmed)*, the choice made here is named in the docstring of
`SigfoxCloud`.

State (thread-safe, one lock):

- messages: one per frame, keyed by (device id, reception time in seconds);
  each reception by a base station is one `rinfos` entry, and each callback
  attempt about it one `cbStatus` entry of that reception ("Reading messages
  back").
- device types and their devices, the device each frame came from.
- callbacks-not-delivered items: one per callback the backend gave up on
  ("Callbacks that failed").
- callback definitions per device type, created and changed through the API
  ("Setting callbacks up"); the simulated backend does not read them.

Times: the API speaks milliseconds since the Unix epoch (`*_ms`); the
recording methods take seconds (`*_s`), as the fleet does. `clock` gives the
simulated now in epoch seconds: what the backend has not received by then is
not visible.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import re
import secrets
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol, Self
from urllib.parse import parse_qsl, urlencode, urlsplit

API_PREFIX = "/v2"
LIMIT_MAX = 100
# Radio repetitions of each frame (API.md: nbFrames is 1 or 3); Akeru sends 3.
NB_FRAMES = 3
# lqi when nothing is known (API.md: 4 NA); the simulated fleet has no repeaters.
LQI_NA = 4
DEVICE_TYPE_ID = re.compile(r"[0-9a-f]{24}")
CALLBACK_ID = re.compile(r"[0-9a-f]{24}")
DEVICE_ID = re.compile(r"[0-9A-F]{1,8}")
# A BIDIR callback (API.md, "Setting callbacks up"): DATA (0), BIDIR (3).
BIDIR = (0, 3)
MAX_BODY_BYTES = 64 * 1024


class FrameLike(Protocol):
    """What the cloud reads of a frame (readings.simulation.fleet.Frame has it)."""

    device: str
    time_s: int
    seq_number: int
    station: str
    rssi_dbm: float
    snr_db: float

    def payload_hex(self) -> str: ...


class ApiError(Exception):
    """An answer other than 2xx: its status and the `message` of its JSON body."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}


# --- Callback definitions: the body of POST/PUT .../callbacks (API.md table) ----------


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _one_of(*choices):
    def check(value) -> str | None:
        return None if value in choices and type(value) is type(choices[0]) else (
            "must be one of " + ", ".join(json.dumps(choice) for choice in choices))
    return check


def _boolean(value) -> str | None:
    return None if isinstance(value, bool) else "must be a boolean"


def _text(value) -> str | None:
    return None if isinstance(value, str) and len(value) <= 10_000 else "must be a string"


def _headers(value) -> str | None:
    if isinstance(value, dict) and all(isinstance(k, str) and isinstance(v, str)
                                       for k, v in value.items()):
        return None
    return "must be an object of header name to string value"


def _integer_in(values: range):
    def check(value) -> str | None:
        if _is_int(value) and value in values:
            return None
        return f"must be an integer from {values.start} to {values.stop - 1}"
    return check


CALLBACK_FIELDS: dict[str, Callable[[Any], str | None]] = {
    "channel": _one_of("URL", "BATCH_URL", "EMAIL"),
    # 0 DATA, 1 SERVICE, 2 ERROR (2 is unconfirmed, accepted).
    "callbackType": _integer_in(range(3)),
    "callbackSubtype": _integer_in(range(7)),
    "payloadConfig": _text,
    "enabled": _boolean,
    "sendDuplicate": _boolean,
    "url": _text,
    "httpMethod": _one_of("GET", "POST", "PUT"),
    "headers": _headers,
    "sendSni": _boolean,
    "bodyTemplate": _text,
    "contentType": _one_of("application/json", "application/x-www-form-urlencoded",
                           "text/plain"),
    "downlinkHook": _boolean,
}
CALLBACK_REQUIRED = ("channel", "callbackType", "callbackSubtype")
CALLBACK_DEFAULTS = {
    "payloadConfig": "",
    "enabled": True,
    "sendDuplicate": False,
    "url": "",
    "httpMethod": "POST",
    "headers": {},
    "sendSni": True,
    "bodyTemplate": "",
    # The backend's default for POST and PUT (CALLBACKS.md section 1).
    "contentType": "application/x-www-form-urlencoded",
    "downlinkHook": False,
}


def check_callback_fields(body) -> dict:
    """The fields of a callback body, each checked against CALLBACK_FIELDS.

    Raises ApiError(400) naming the first unknown field (in sorted order) or
    the first bad value.
    """
    if not isinstance(body, dict):
        raise ApiError(400, "the body must be a JSON object")
    unknown = sorted(set(body) - set(CALLBACK_FIELDS))
    if unknown:
        raise ApiError(400, f"unknown field {unknown[0]!r}")
    for name, value in body.items():
        problem = CALLBACK_FIELDS[name](value)
        if problem:
            raise ApiError(400, f"field {name!r} {problem}")
    return dict(body)


def check_callback(definition: dict) -> None:
    """Checks across fields of a whole definition: what a URL callback needs, a
    downlink hook being BIDIR."""
    if definition["channel"] in ("URL", "BATCH_URL") and not definition["url"]:
        raise ApiError(400, f"field 'url' is required for the {definition['channel']} channel")
    if definition["downlinkHook"] and (definition["callbackType"],
                                       definition["callbackSubtype"]) != BIDIR:
        raise ApiError(400, "only a BIDIR callback (callbackType 0, callbackSubtype 3) "
                            "can be the downlink callback")


# --- Query parameters ------------------------------------------------------------------


def _epoch_ms(name: str, text: str) -> int:
    if not re.fullmatch(r"[0-9]{1,16}", text):
        raise ApiError(400, f"parameter {name!r} must be an integer number of milliseconds "
                            f"since the epoch, got {text!r}")
    return int(text)


def _paging(params: dict[str, str]) -> tuple[int, int]:
    """(limit, offset) of a list request; limit 1 to 100, default 100 (API.md, "Access")."""
    limit_text = params.get("limit", str(LIMIT_MAX))
    if not re.fullmatch(r"[0-9]{1,4}", limit_text) or not 1 <= int(limit_text) <= LIMIT_MAX:
        raise ApiError(400, f"parameter 'limit' must be an integer from 1 to {LIMIT_MAX}, "
                            f"got {limit_text!r}")
    offset_text = params.get("offset", "0")
    if not re.fullmatch(r"[0-9]{1,9}", offset_text):
        raise ApiError(400, f"parameter 'offset' must be a non-negative integer, "
                            f"got {offset_text!r}")
    return int(limit_text), int(offset_text)


def _span(params: dict[str, str]) -> tuple[int, int | None]:
    """(since_ms, before_ms) of a request: since included, before excluded."""
    since_ms = _epoch_ms("since", params["since"]) if "since" in params else 0
    before_ms = _epoch_ms("before", params["before"]) if "before" in params else None
    if before_ms is not None and since_ms > before_ms:
        raise ApiError(400, f"parameter 'since' ({since_ms}) is after 'before' ({before_ms})")
    return since_ms, before_ms


def lqi(rssi_dbm: float) -> int:
    """Link quality from the best reception's RSSI: 0 LIMIT to 3 EXCELLENT (API.md)."""
    if rssi_dbm >= -110:
        return 3
    if rssi_dbm >= -120:
        return 2
    if rssi_dbm >= -130:
        return 1
    return 0


def base_station(station: str) -> dict:
    """A reception's base station, placed deterministically around Toulouse."""
    number = int(station, 16)
    return {
        "baseStation": {"id": station, "name": f"Simulated station {station}"},
        "lat": round(43.0 + (number % 1000) / 1000, 3),
        "lng": round(1.0 + (number // 1000 % 1000) / 1000, 3),
        "delay": round(0.5 + (number % 200) / 100, 2),
        "rep": NB_FRAMES,
    }


# --- The cloud -------------------------------------------------------------------------


class SigfoxCloud:
    """The simulated Sigfox cloud's state, and its REST API served over HTTP.

    Use: `cloud = SigfoxCloud(login=..., password=..., clock=...)`, then
    `cloud.start()` (port 0: a free one), `cloud.url` (".../v2"), the
    `add_device_type`/`record_*` methods as the backend works, `given_up()`
    for what it gave up, `cloud.close()`. Also a context manager.

    Choices where API.md is silent or marks a fact unconfirmed:
    - lists are newest first (time, then device id, descending); paging by
      `offset`, `paging.next` repeats the query with the next offset;
    - `since` is included, `before` excluded, both in milliseconds; a message
      is visible once its reception time is <= the simulated now;
    - callbacks-not-delivered items are filtered on `time`, the message's
      reception time; an item appears when the backend gives up (the last
      retry, 7 minutes after the first attempt), not before;
    - `cbStatus[].status` is the HTTP status as an integer, or null when no
      answer came (`info` then says why: "connection refused", "timeout"...);
    - POST answers 201 `{"id"}`, PUT and DELETE 204 without a body; PUT of a
      callback takes a partial body: only the fields given change;
    - every list endpoint takes `limit` and `offset`; an unknown parameter,
      a repeated one, or a body where none is expected is a 400.
    """

    def __init__(self, *, login: str, password: str, clock: Callable[[], float] = time.time,
                 host: str = "127.0.0.1", port: int = 0):
        self.login = login
        self.password = password
        self.clock = clock
        self.host = host
        self.port = port
        self.lock = threading.Lock()
        self.device_types: dict[str, dict] = {}  # id -> {"id", "name", "description"}
        self.devices: dict[str, str] = {}  # device id -> device type id
        self.messages: dict[tuple[str, int], dict] = {}  # (device, time_s) -> message
        self.not_delivered: list[dict] = []
        self.callbacks: dict[str, dict[str, dict]] = {}  # type id -> callback id -> definition
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # --- Serving

    @property
    def url(self) -> str:
        """The API's base URL, `/v2` included (what SIGFOX_API_URL names)."""
        if self._httpd is None:
            raise RuntimeError("the cloud is not serving: call start() first")
        return f"http://{self.host}:{self._httpd.server_address[1]}{API_PREFIX}"

    def start(self) -> Self:
        """Serve the API in a daemon thread; returns self."""
        self._httpd = _Server((self.host, self.port), _Handler, self)
        self._thread = threading.Thread(target=self._httpd.serve_forever,
                                        kwargs={"poll_interval": 0.05}, daemon=True,
                                        name="sigfox-api-stand-in")
        self._thread.start()
        return self

    def close(self) -> None:
        """Stop serving and free the port."""
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()

    # --- What the backend records

    def add_device_type(self, device_type_id: str, *, name: str = "",
                        devices: tuple[str, ...] | list[str] = ()) -> None:
        """A device type (24 hex characters) and the ids of its devices."""
        type_id = device_type_id.lower()
        if not DEVICE_TYPE_ID.fullmatch(type_id):
            raise ValueError(f"a device type id is 24 hex characters, got {device_type_id!r}")
        with self.lock:
            self.device_types.setdefault(type_id, {
                "id": type_id, "name": name or f"Simulated fleet {type_id[-6:]}",
                "description": "Devices of manage.py simulate",
            })
            self.callbacks.setdefault(type_id, {})
            for device in devices:
                self.devices[device.upper()] = type_id

    def record_frame(self, frame: FrameLike, *, device_type_id: str) -> None:
        """The backend received `frame` from a base station: a new message, or
        one more reception (another station's copy) of a known one."""
        self.add_device_type(device_type_id, devices=(frame.device,))
        key = (frame.device.upper(), frame.time_s)
        with self.lock:
            message = self.messages.get(key)
            if message is None:
                message = self.messages[key] = {
                    "device": key[0],
                    "time_s": frame.time_s,
                    "data": frame.payload_hex(),
                    "seq_number": frame.seq_number,
                    "best_rssi_dbm": frame.rssi_dbm,
                    "rinfos": {},
                }
            message["best_rssi_dbm"] = max(message["best_rssi_dbm"], frame.rssi_dbm)
            message["rinfos"].setdefault(frame.station, [])

    def record_attempt(self, frame: FrameLike, *, status: int | None, info: str, time_s: float,
                       cb_def: str) -> None:
        """One callback attempt about `frame` (its station's reception): its HTTP
        status (None without an answer) and `info` ("connection refused"...)."""
        key = (frame.device.upper(), frame.time_s)
        with self.lock:
            message = self.messages.get(key)
            if message is None:
                raise KeyError(f"no frame {key} recorded")
            message["rinfos"].setdefault(frame.station, []).append({
                "status": status, "info": info, "cbDef": cb_def, "time": round(time_s * 1000),
            })

    def record_not_delivered(self, frame: FrameLike, *, device_type_id: str, callback: dict,
                             status: int | None, message: str, parameters: dict) -> None:
        """The backend gave up on a callback about `frame`.

        `callback`: the request as tried, `{"url", "headers", "body",
        "contentType", "method"}`; `message` ("connection refused", "HTTP
        500") becomes its `error` too. `parameters`: the callback's variables.
        """
        item = {
            "device": frame.device.upper(),
            "deviceType": device_type_id.lower(),
            "time": frame.time_s * 1000,
            "data": frame.payload_hex(),
            "snr": frame.snr_db,
            "status": status,
            "message": message,
            "callback": {**callback, "error": message},
            "parameters": dict(parameters),
        }
        with self.lock:
            self.not_delivered.append(item)

    def given_up(self) -> list[dict]:
        """Copies of the callbacks-not-delivered items, in the order they were given up."""
        with self.lock:
            return json.loads(json.dumps(self.not_delivered))

    # --- The API

    def handle(self, method: str, target: str, headers: dict[str, str],
               body: bytes) -> tuple[int, dict | None, dict[str, str]]:
        """Answer one request: (status, JSON body or None, extra headers).

        `target` is the request line's path and query string; header names
        are matched whatever their case.
        """
        try:
            lowered = {name.lower(): value for name, value in headers.items()}
            self._authenticate(lowered.get("authorization", ""))
            url = urlsplit(target)
            pairs = parse_qsl(url.query, keep_blank_values=True)
            params = dict(pairs)
            if len(params) < len(pairs):
                seen = [name for name, _ in pairs]
                repeated = next(name for name in seen if seen.count(name) > 1)
                raise ApiError(400, f"parameter {repeated!r} is given more than once")
            status, payload = self._route(method, url.path, params, body)
            return status, payload, {}
        except ApiError as exc:
            return exc.status, {"message": exc.message}, exc.headers

    def _authenticate(self, authorization: str) -> None:
        scheme, _, encoded = authorization.partition(" ")
        try:
            login, sep, password = base64.b64decode(encoded, validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            sep = ""
        if scheme.lower() != "basic" or not sep or not (
                hmac.compare_digest(login.encode(), self.login.encode())
                & hmac.compare_digest(password.encode(), self.password.encode())):
            raise ApiError(401, "HTTP Basic authentication with the API login and password "
                                "is required",
                           {"WWW-Authenticate": 'Basic realm="Sigfox API stand-in"'})

    ROUTES: tuple[tuple[re.Pattern, dict[str, str]], ...] = tuple(
        (re.compile(pattern), methods) for pattern, methods in (
            (r"/device-types/?", {"GET": "device_types"}),
            (r"/device-types/(?P<type_id>[^/]+)/messages", {"GET": "type_messages"}),
            (r"/device-types/(?P<type_id>[^/]+)/callbacks-not-delivered",
             {"GET": "type_not_delivered"}),
            (r"/device-types/(?P<type_id>[^/]+)/callbacks",
             {"GET": "callbacks_list", "POST": "callback_create"}),
            (r"/device-types/(?P<type_id>[^/]+)/callbacks/(?P<callback_id>[^/]+)",
             {"PUT": "callback_update", "DELETE": "callback_delete"}),
            (r"/device-types/(?P<type_id>[^/]+)/callbacks/(?P<callback_id>[^/]+)/enable",
             {"PUT": "callback_enable"}),
            (r"/device-types/(?P<type_id>[^/]+)/callbacks/(?P<callback_id>[^/]+)/downlink",
             {"PUT": "callback_downlink"}),
            (r"/devices/?", {"GET": "devices_list"}),
            (r"/devices/(?P<device_id>[^/]+)", {"GET": "device_get"}),
            (r"/devices/(?P<device_id>[^/]+)/messages", {"GET": "device_messages"}),
            (r"/devices/(?P<device_id>[^/]+)/callbacks-not-delivered",
             {"GET": "device_not_delivered"}),
        )
    )

    def _route(self, method: str, path: str, params: dict[str, str],
               body: bytes) -> tuple[int, dict | None]:
        if not path.startswith(API_PREFIX + "/"):
            raise ApiError(404, f"no such path {path!r} (the API is under {API_PREFIX}/)")
        relative = path[len(API_PREFIX):]
        for pattern, methods in self.ROUTES:
            match = pattern.fullmatch(relative)
            if match is None:
                continue
            if method not in methods:
                raise ApiError(405, f"method {method} not allowed on {path}",
                               {"Allow": ", ".join(sorted(methods))})
            handler = getattr(self, "_" + methods[method])
            if method in ("GET", "DELETE") or methods[method] in ("callback_enable",
                                                                   "callback_downlink"):
                if body:
                    raise ApiError(400, f"{method} {path} takes no body")
                return handler(params, **match.groupdict())
            return handler(params, self._json(body), **match.groupdict())
        raise ApiError(404, f"no such path {path!r}")

    @staticmethod
    def _json(body: bytes):
        try:
            return json.loads(body)
        except (UnicodeDecodeError, ValueError):
            raise ApiError(400, "the body is not JSON") from None

    @staticmethod
    def _allow(params: dict[str, str], *names: str) -> None:
        unknown = sorted(set(params) - set(names))
        if unknown:
            raise ApiError(400, f"unknown parameter {unknown[0]!r}")

    def _device_type(self, type_id: str) -> str:
        type_id = type_id.lower()
        if type_id not in self.device_types:
            raise ApiError(404, f"device type {type_id!r} not found")
        return type_id

    def _page(self, items: list, params: dict[str, str], path: str) -> tuple[int, dict]:
        """One page of `items` (already filtered and ordered) as API.md's paging."""
        limit, offset = _paging(params)
        page = {"data": items[offset:offset + limit], "paging": {}}
        if offset + limit < len(items):
            following = {**params, "limit": str(limit), "offset": str(offset + limit)}
            page["paging"]["next"] = f"{self.url}{path}?{urlencode(following)}"
        return 200, page

    # Messages

    def _visible_messages(self, params: dict[str, str], wanted: Callable[[dict], bool]) -> list:
        since_ms, before_ms = _span(params)
        now_ms = self.clock() * 1000
        found = []
        for message in self.messages.values():
            time_ms = message["time_s"] * 1000
            if (time_ms <= now_ms and time_ms >= since_ms
                    and (before_ms is None or time_ms < before_ms) and wanted(message)):
                found.append(self._message_item(message))
        found.sort(key=lambda item: (item["time"], item["device"]["id"]), reverse=True)
        return found

    @staticmethod
    def _message_item(message: dict) -> dict:
        rinfos = [{**base_station(station), "cbStatus": list(statuses)}
                  for station, statuses in message["rinfos"].items()]
        return {
            "device": {"id": message["device"]},
            "time": message["time_s"] * 1000,
            "data": message["data"],
            "ackRequired": False,
            "seqNumber": message["seq_number"],
            "nbFrames": NB_FRAMES,
            "lqi": lqi(message["best_rssi_dbm"]),
            "lqiRepeaters": LQI_NA,
            "computedLocation": [],
            "rinfos": rinfos,
        }

    def _type_messages(self, params, type_id):
        self._allow(params, "since", "before", "limit", "offset")
        with self.lock:
            type_id = self._device_type(type_id)
            items = self._visible_messages(
                params, lambda m: self.devices.get(m["device"]) == type_id)
        return self._page(items, params, f"/device-types/{type_id}/messages")

    def _device_messages(self, params, device_id):
        self._allow(params, "since", "before", "limit", "offset")
        with self.lock:
            device_id = self._device(device_id)
            items = self._visible_messages(params, lambda m: m["device"] == device_id)
        return self._page(items, params, f"/devices/{device_id}/messages")

    # Callbacks not delivered

    def _not_delivered(self, params, wanted: Callable[[dict], bool]) -> list:
        since_ms, before_ms = _span(params)
        found = [json.loads(json.dumps(item)) for item in self.not_delivered
                 if item["time"] >= since_ms and (before_ms is None or item["time"] < before_ms)
                 and wanted(item)]
        found.sort(key=lambda item: (item["time"], item["device"]), reverse=True)
        return found

    def _type_not_delivered(self, params, type_id):
        self._allow(params, "since", "before", "limit", "offset")
        with self.lock:
            type_id = self._device_type(type_id)
            items = self._not_delivered(params, lambda item: item["deviceType"] == type_id)
        return self._page(items, params, f"/device-types/{type_id}/callbacks-not-delivered")

    def _device_not_delivered(self, params, device_id):
        self._allow(params, "since", "before", "limit", "offset")
        with self.lock:
            device_id = self._device(device_id)
            items = self._not_delivered(params, lambda item: item["device"] == device_id)
        return self._page(items, params, f"/devices/{device_id}/callbacks-not-delivered")

    # Device types and devices

    def _device_types(self, params):
        self._allow(params, "limit", "offset")
        with self.lock:
            items = [dict(t) for _, t in sorted(self.device_types.items())]
        return self._page(items, params, "/device-types/")

    def _device_item(self, device_id: str) -> dict:
        item = {"id": device_id, "name": f"Simulated {device_id}",
                "deviceType": {"id": self.devices[device_id]}}
        now_s = self.clock()
        seen = [m for m in self.messages.values()
                if m["device"] == device_id and m["time_s"] <= now_s]
        if seen:
            last = max(seen, key=lambda m: m["time_s"])
            item["lastCom"] = last["time_s"] * 1000
            item["sequenceNumber"] = last["seq_number"]
        return item

    def _devices_list(self, params):
        self._allow(params, "deviceTypeId", "limit", "offset")
        with self.lock:
            type_id = params.get("deviceTypeId")
            if type_id is not None:
                type_id = self._device_type(type_id)
            items = [self._device_item(device) for device in sorted(self.devices)
                     if type_id is None or self.devices[device] == type_id]
        return self._page(items, params, "/devices/")

    def _device(self, device_id: str) -> str:
        device_id = device_id.upper()
        if not DEVICE_ID.fullmatch(device_id) or device_id not in self.devices:
            raise ApiError(404, f"device {device_id!r} not found")
        return device_id

    def _device_get(self, params, device_id):
        self._allow(params)
        with self.lock:
            return 200, self._device_item(self._device(device_id))

    # Callback definitions

    def _callback(self, type_id: str, callback_id: str) -> dict:
        type_id = self._device_type(type_id)
        found = self.callbacks[type_id].get(callback_id.lower())
        if found is None:
            raise ApiError(404, f"callback {callback_id!r} not found in device type {type_id!r}")
        return found

    def _set_downlink_hook(self, type_id: str, callback: dict) -> None:
        for other in self.callbacks[type_id].values():
            other["downlinkHook"] = other is callback

    def _callbacks_list(self, params, type_id):
        self._allow(params, "limit", "offset")
        with self.lock:
            type_id = self._device_type(type_id)
            items = [dict(c, headers=dict(c["headers"])) for c in self.callbacks[type_id].values()]
        return self._page(items, params, f"/device-types/{type_id}/callbacks")

    def _callback_create(self, params, body, type_id):
        self._allow(params)
        fields = check_callback_fields(body)
        missing = [name for name in CALLBACK_REQUIRED if name not in fields]
        if missing:
            raise ApiError(400, f"field {missing[0]!r} is required")
        definition = {**CALLBACK_DEFAULTS, **fields}
        check_callback(definition)
        with self.lock:
            type_id = self._device_type(type_id)
            callback_id = secrets.token_hex(12)
            created = self.callbacks[type_id][callback_id] = {"id": callback_id, **definition}
            if created["downlinkHook"]:
                self._set_downlink_hook(type_id, created)
        return 201, {"id": callback_id}

    def _callback_update(self, params, body, type_id, callback_id):
        self._allow(params)
        fields = check_callback_fields(body)
        with self.lock:
            callback = self._callback(type_id, callback_id)
            updated = {**callback, **fields}
            check_callback(updated)
            callback.update(fields)
            if fields.get("downlinkHook"):
                self._set_downlink_hook(type_id.lower(), callback)
        return 204, None

    def _callback_delete(self, params, type_id, callback_id):
        self._allow(params)
        with self.lock:
            callback = self._callback(type_id, callback_id)
            del self.callbacks[type_id.lower()][callback["id"]]
        return 204, None

    def _callback_enable(self, params, type_id, callback_id):
        self._allow(params, "enabled")
        if params.get("enabled") not in ("true", "false"):
            raise ApiError(400, "parameter 'enabled' must be true or false")
        with self.lock:
            self._callback(type_id, callback_id)["enabled"] = params["enabled"] == "true"
        return 204, None

    def _callback_downlink(self, params, type_id, callback_id):
        self._allow(params)
        with self.lock:
            callback = self._callback(type_id, callback_id)
            check_callback({**callback, "downlinkHook": True})
            self._set_downlink_hook(type_id.lower(), callback)
        return 204, None


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address, handler, cloud: SigfoxCloud):
        self.cloud = cloud
        super().__init__(address, handler)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out in two writes: without this, Nagle's algorithm
    # holds the body until the client's delayed ACK, ~40 ms per request.
    disable_nagle_algorithm = True
    server: _Server

    def _answer(self) -> None:
        length_text = self.headers.get("Content-Length") or "0"
        if not length_text.isdigit() or int(length_text) > MAX_BODY_BYTES:
            status, payload, headers = 400, {"message": "bad or too large Content-Length"}, {}
            self.close_connection = True
        else:
            body = self.rfile.read(int(length_text))
            status, payload, headers = self.server.cloud.handle(
                self.command, self.path, dict(self.headers), body)
        content = b"" if payload is None else json.dumps(payload).encode()
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        if payload is not None:
            self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(content)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(content)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = _answer

    def log_message(self, format, *args) -> None:
        pass
