"""`manage.py sigfox setup` and `manage.py sigfox callbacks`: this server's
callbacks on a Sigfox device type, set up and checked through the API.

Sources: /work/shared/sigfox/API.md ("Setting callbacks up": the endpoints,
the fields of a callback, callbackType and callbackSubtype numbers),
CALLBACKS.md sections 1, 2 and 7 (kinds and variables), and the README's
"Pointing a Sigfox callback at the server" (the URL and body this server
expects for each kind).

`setup` wants five callbacks, each POST application/json with the header
`Authorization: Bearer <SIGFOX_CALLBACK_TOKEN>`: DATA UPLINK (or BIDIR) and
DATA ADVANCED to <url>/data/<sensor>, SERVICE ACKNOWLEDGE to
<url>/sigfox/acknowledge, SERVICE STATUS to <url>/sigfox/status, ERROR to
<url>/sigfox/error. A callback already there with the same channel, type,
subtype and URL (the query string aside) is ours: left alone when it is as
wanted, updated (PUT) when not; the others are created (POST). Nothing is
ever deleted. The token is never printed.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import hmac
from dataclasses import dataclass
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import BaseCommand, CommandError

from readings.management.options import device_type_id, sensor_name
from sigfoxapi.client import SigfoxAPI, SigfoxAPIError

CHANNEL = "URL"
CONTENT_TYPE = "application/json"
METHOD = "POST"
# API.md: callbackType 0 DATA, 1 SERVICE; 2 ERROR is *unconfirmed*: it is not
# in the published model, only the number that follows. Setup uses it and says so.
DATA, SERVICE, ERROR = 0, 1, 2
ERROR_UNCONFIRMED = ("ERROR as callbackType 2 is unconfirmed by the published API model: "
                     "check in the Sigfox portal that this callback shows as ERROR")

# (callbackType, callbackSubtype) -> name, as API.md numbers them.
KINDS: dict[tuple[int, int], str] = {
    (DATA, 2): "DATA UPLINK",
    (DATA, 3): "DATA BIDIR",
    (DATA, 6): "DATA ADVANCED",
    (DATA, 5): "DATA REPEATER",
    (SERVICE, 0): "SERVICE STATUS",
    (SERVICE, 1): "SERVICE GEOLOC",
    (SERVICE, 4): "SERVICE ACKNOWLEDGE",
    (SERVICE, 5): "SERVICE REPEATER",
}
DATA_SUBTYPES = {2, 3, 6}  # the callbacks that carry an uplink's payload

# Bodies: the README's, with CALLBACKS.md's variable names. Variables are
# replaced as plain text, so the quotes below decide the JSON types; those that
# may come as text (`N/A`, an lqi name) are quoted.
RADIO = '"station":"{station}","rssi":{rssi},"snr":{snr}'
UPLINK_BODY = ('{"device":"{device}","time":{time},"seqNumber":{seqNumber},"data":"{data}",'
               '"deviceTypeId":"{deviceTypeId}",' + RADIO + '}')
# {ack} and {longPolling} exist for BIDIR only (CALLBACKS.md section 2).
BIDIR_BODY = ('{"device":"{device}","time":{time},"seqNumber":{seqNumber},"data":"{data}",'
              '"deviceTypeId":"{deviceTypeId}","ack":{ack},"longPolling":{longPolling},'
              + RADIO + '}')
ADVANCED_BODY = ('{"device":"{device}","time":{time},"seqNumber":{seqNumber},"data":"{data}",'
                 '"deviceTypeId":"{deviceTypeId}","lqi":"{lqi}","linkQuality":{linkQuality},'
                 '"operatorName":"{operatorName}","countryCode":"{countryCode}",'
                 '"fixedLat":"{fixedLat}","fixedLng":"{fixedLng}",'
                 '"computedLocation":{computedLocation},"duplicates":{duplicates}}')
ACKNOWLEDGE_BODY = ('{"device":"{device}","time":{time},"infoCode":{infoCode},'
                    '"infoMessage":"{infoMessage}","downlinkAck":{downlinkAck},'
                    '"downlinkOverusage":{downlinkOverusage}}')
STATUS_BODY = ('{"device":"{device}","time":{time},"temp":{temp},"batt":{batt},'
               '"seqNumber":{seqNumber},"duplicate":{duplicate},"station":"{station}",'
               '"rssi":{rssi},"snr":{snr},"avgSnr":{avgSnr}}')
ERROR_BODY = '{"device":"{device}","time":{time},"severity":"{severity}","info":"{info}"}'

TOKEN_MASK = "***"


@dataclass(frozen=True)
class Wanted:
    """One callback setup wants: its kind, where it goes (a path under --url)
    and its body template; `downlink`: it is to be the BIDIR downlink one."""

    kind: str
    callback_type: int
    subtype: int
    path: str
    body: str
    downlink: bool = False


def wanted_callbacks(*, sensor: str, bidir: bool, downlink: bool) -> list[Wanted]:
    """The five callbacks of `setup`, in the order they are set up."""
    data_path = f"/data/{sensor}"
    data = (Wanted("DATA BIDIR", DATA, 3, data_path, BIDIR_BODY, downlink)
            if bidir or downlink else Wanted("DATA UPLINK", DATA, 2, data_path, UPLINK_BODY))
    return [
        data,
        Wanted("DATA ADVANCED", DATA, 6, data_path, ADVANCED_BODY),
        Wanted("SERVICE ACKNOWLEDGE", SERVICE, 4, "/sigfox/acknowledge", ACKNOWLEDGE_BODY),
        Wanted("SERVICE STATUS", SERVICE, 0, "/sigfox/status", STATUS_BODY),
        Wanted("ERROR", ERROR, 0, "/sigfox/error", ERROR_BODY),
    ]


# --- Arguments ------------------------------------------------------------------------


def _server_url(text: str) -> str:
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.query \
            or parts.fragment or parts.username or parts.password:
        raise argparse.ArgumentTypeError(
            f"must be this server's root URL such as https://example.org (no query, no "
            f"credentials), got {text!r}")
    return text.rstrip("/")


def add_arguments(subparsers) -> None:
    """Add the `setup` and `callbacks` subcommands to `manage.py sigfox`."""
    setup = subparsers.add_parser(
        "setup", help="Create or update this server's callbacks on a device type.",
        description="Create, through the Sigfox API, the callbacks this server wants on a "
                    "device type (DATA UPLINK or BIDIR, DATA ADVANCED, SERVICE ACKNOWLEDGE, "
                    "SERVICE STATUS, ERROR), each with the SIGFOX_CALLBACK_TOKEN; update those "
                    "already there that differ. Never deletes a callback.")
    setup.add_argument("--device-type", required=True, metavar="ID", type=device_type_id,
                       help="Sigfox id of the device type (hex, up to 24 characters).")
    setup.add_argument("--url", required=True, type=_server_url, metavar="URL",
                       help="This server's root URL as the Sigfox backend reaches it, e.g. "
                            "https://sigfox.example.org (HTTPS with a CA-signed certificate).")
    setup.add_argument("--sensor", default="1", type=sensor_name,
                       help="The <sensor> of /data/<sensor> for the DATA callbacks (default 1).")
    setup.add_argument("--bidir", action="store_true",
                       help="A DATA BIDIR callback instead of DATA UPLINK (devices that ask "
                            "for downlinks).")
    setup.add_argument("--downlink", action="store_true",
                       help="Make the DATA BIDIR callback the device type's downlink callback "
                            "(implies --bidir).")
    setup.add_argument("--dry-run", action="store_true",
                       help="Say what would be created or updated; only read the API.")
    listing = subparsers.add_parser(
        "callbacks", help="List a device type's callbacks and check those aimed at this server.",
        description="List the callbacks of a device type and flag those pointing at this "
                    "server that lack the token or have a body or content type it cannot use.")
    listing.add_argument("--device-type", required=True, metavar="ID", type=device_type_id,
                         help="Sigfox id of the device type (hex, up to 24 characters).")
    listing.add_argument("--url", type=_server_url, metavar="URL",
                         help="This server's root URL (default SIGFOX_SITE_URL): callbacks "
                              "whose URL starts with it are checked.")


# --- The command ----------------------------------------------------------------------


def handle(command: BaseCommand, options: dict) -> None:
    """Run `setup` or `callbacks` (options["action"]), writing to command.stdout.

    Raises CommandError for a missing setting or token and for any API error
    (its message: method, path, status and what the API said).
    """
    action = options["action"]
    if action == "setup":
        token = settings.SIGFOX_CALLBACK_TOKEN
        if not token:
            raise CommandError(
                "SIGFOX_CALLBACK_TOKEN is empty: set it first (python -c \"import secrets; "
                "print(secrets.token_urlsafe(32))\"). Every callback setup creates carries it, "
                "so that this server can refuse callbacks that do not come from your Sigfox "
                "account.")
    try:
        api = SigfoxAPI.from_settings()
    except ImproperlyConfigured as exc:
        raise CommandError(str(exc)) from None
    try:
        if action == "setup":
            setup(command, api, device_type=options["device_type"], url=options["url"],
                  sensor=options["sensor"], bidir=options["bidir"],
                  downlink=options["downlink"], dry_run=options["dry_run"], token=token)
        elif action == "callbacks":
            list_callbacks(command, api, device_type=options["device_type"],
                           url=options.get("url") or settings.SIGFOX_SITE_URL.rstrip("/"),
                           token=settings.SIGFOX_CALLBACK_TOKEN)
        else:
            raise CommandError(f"unknown action {action!r}")
    except SigfoxAPIError as exc:
        raise CommandError(str(exc)) from None


def _callbacks_path(device_type: str) -> str:
    return f"/device-types/{quote(device_type, safe='')}/callbacks"


def _without_query(url: str) -> str:
    """A URL as compared: without credentials, query or fragment; scheme and host
    in lower case."""
    parts = urlsplit(url)
    try:
        port = f":{parts.port}" if parts.port else ""
    except ValueError:  # a port that is not a number: compared as written
        port = ""
    host = (parts.hostname or "") + port
    return urlunsplit((parts.scheme.lower(), host, parts.path, "", ""))


def _desired_fields(wanted: Wanted, url: str, token: str, existing: dict | None) -> dict:
    """The fields of a callback as setup wants them. The headers of an existing
    callback are kept, but for Authorization, which becomes ours."""
    headers = {name: value for name, value in ((existing or {}).get("headers") or {}).items()
               if name.lower() != "authorization"}
    headers["Authorization"] = f"Bearer {token}"
    return {
        "url": url + wanted.path,
        "httpMethod": METHOD,
        "headers": headers,
        "bodyTemplate": wanted.body,
        # contentType as a field of the create body is unconfirmed (API.md); it
        # is one of the callback as reported back, and the stand-in takes it.
        "contentType": CONTENT_TYPE,
        "enabled": True,
    }


# The type of each field of a callback as the API reports it, for reading a
# list the API answered: it is input, and a field of another type is refused.
_FIELD_TYPES = {
    "id": str, "channel": str, "url": str, "httpMethod": str, "bodyTemplate": str,
    "contentType": str, "payloadConfig": str, "headers": dict, "callbackType": int,
    "callbackSubtype": int, "enabled": bool, "sendDuplicate": bool, "sendSni": bool,
    "downlinkHook": bool,
}


def _readable(value, kind: type) -> bool:
    """True when a field holds what the API's model says: absent, or of `kind`
    (not a boolean for a number; text to text for headers)."""
    if value is None:
        return True
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        return False
    return kind is not dict or all(isinstance(k, str) and isinstance(v, str)
                                   for k, v in value.items())


def _callbacks_of(api: SigfoxAPI, device_type: str) -> list[dict]:
    """The device type's callbacks. Raises SigfoxAPIError when one of them has
    a field of another type than the API's model says, rather than guessing
    what it means."""
    path = _callbacks_path(device_type)
    callbacks = list(api.items(path))
    for callback in callbacks:
        for name, kind in _FIELD_TYPES.items():
            if not _readable(callback.get(name), kind):
                raise SigfoxAPIError(
                    f"the API's callback {str(callback.get('id'))[:24]!r} has a {name} this "
                    f"command cannot read", method="GET", path=path)
    return callbacks


def _differences(existing: dict, desired: dict) -> list[str]:
    """The names of the fields that differ (values not said: they may hold the token)."""
    return [name for name, value in desired.items() if existing.get(name) != value]


def setup(command: BaseCommand, api: SigfoxAPI, *, device_type: str, url: str, sensor: str,
          bidir: bool, downlink: bool, dry_run: bool, token: str) -> dict[str, int]:
    """Create or update the wanted callbacks on `device_type`; one line each on
    command.stdout, then a summary. Returns the count per outcome."""
    path = _callbacks_path(device_type)
    existing = _callbacks_of(api, device_type)
    counts = {"created": 0, "updated": 0, "unchanged": 0}
    taken: set[str] = set()
    for wanted in wanted_callbacks(sensor=sensor, bidir=bidir, downlink=downlink):
        target = url + wanted.path
        matches = [cb for cb in existing
                   if cb.get("channel") == CHANNEL
                   and (cb.get("callbackType"), cb.get("callbackSubtype"))
                   == (wanted.callback_type, wanted.subtype)
                   and _without_query(cb.get("url") or "") == _without_query(target)
                   and cb.get("id") not in taken]
        match = matches[0] if matches else None
        desired = _desired_fields(wanted, url, token, match)
        notes = []
        if wanted.callback_type == ERROR:
            notes.append(ERROR_UNCONFIRMED)
        if match is None:
            outcome = "created"
            if not dry_run:
                body = {"channel": CHANNEL, "callbackType": wanted.callback_type,
                        "callbackSubtype": wanted.subtype, "sendDuplicate": False,
                        "sendSni": True, **desired}
                try:
                    answer = api.post(path, body)
                except SigfoxAPIError as exc:
                    if wanted.callback_type == ERROR and exc.status == 400:
                        raise CommandError(f"{exc}. {ERROR_UNCONFIRMED}; the API refused it: "
                                           "set the ERROR callback up in the portal") from None
                    raise
                if wanted.downlink:
                    api.put(f"{path}/{quote(str(answer['id']), safe='')}/downlink")
        else:
            taken.add(match.get("id"))
            changed = _differences(match, desired)
            to_downlink = wanted.downlink and not match.get("downlinkHook")
            if to_downlink:
                changed.append("downlinkHook")
            outcome = "updated" if changed else "unchanged"
            if changed:
                notes.append("changed: " + ", ".join(changed))
            if not dry_run:
                callback_path = f"{path}/{quote(str(match['id']), safe='')}"
                if any(name != "downlinkHook" for name in changed):
                    api.put(callback_path, desired)
                if to_downlink:
                    api.put(f"{callback_path}/downlink")
            if len(matches) > 1:
                notes.append(f"{len(matches) - 1} more like it left as they are")
        counts[outcome] += 1
        shown = outcome if not dry_run or outcome == "unchanged" else (
            "would create" if outcome == "created" else "would update")
        line = f"{shown:<12} {wanted.kind:<20} {target}"
        if wanted.downlink:
            line += " (downlink)"
        command.stdout.write(line + "".join(f"\n             note: {note}" for note in notes))
    data = wanted_callbacks(sensor=sensor, bidir=bidir, downlink=downlink)[0]
    other_subtype, other_kind = (2, "DATA UPLINK") if data.subtype == 3 else (3, "DATA BIDIR")
    if any(cb.get("callbackType") == DATA and cb.get("callbackSubtype") == other_subtype
           and _without_query(cb.get("url") or "") == _without_query(url + data.path)
           for cb in existing):
        command.stdout.write(
            f"note: a {other_kind} callback to {url}{data.path} is there too, left as it is; "
            f"each frame is stored once, but disable it if {data.kind} replaces it")
    would = "would be " if dry_run else ""
    command.stdout.write(
        f"Device type {device_type}: {counts['created']} {would}created, {counts['updated']} "
        f"{would}updated, {counts['unchanged']} unchanged; {api.calls} API requests"
        + (" (dry run: nothing was changed)." if dry_run else "."))
    return counts


# --- Checking callbacks ---------------------------------------------------------------


def presented_tokens(callback: dict) -> list[str]:
    """Every token a callback would present to this server: an Authorization
    header (Bearer, or Basic with the token as password), ?token= in the URL,
    or a password in the URL (user:token@host). As readings.auth reads them."""
    tokens = []
    for name, value in (callback.get("headers") or {}).items():
        if name.lower() != "authorization" or not isinstance(value, str):
            continue
        scheme, _, credentials = value.strip().partition(" ")
        if scheme.lower() == "bearer":
            tokens.append(credentials.strip())
        elif scheme.lower() == "basic":
            try:
                tokens.append(base64.b64decode(credentials.strip(), validate=True)
                              .decode().partition(":")[2])
            except (binascii.Error, UnicodeDecodeError):
                pass
    parts = urlsplit(callback.get("url") or "")
    tokens += [value for name, value in parse_qsl(parts.query) if name == "token"]
    if parts.password:
        tokens.append(parts.password)
    return tokens


def token_state(callback: dict, token: str) -> str:
    """"ok", "none" (no token presented) or "wrong" (none matches `token`),
    compared in constant time."""
    presented = presented_tokens(callback)
    if not presented:
        return "none"
    matched = False
    for candidate in presented:  # every one compared, so timing does not tell which
        matched |= hmac.compare_digest(candidate.encode(), token.encode())
    return "ok" if matched else "wrong"


def body_problems(callback: dict) -> list[str]:
    """What makes a callback's body unusable by this server: the variables it
    must carry (device and time; for uplinks data and seqNumber too) and a
    content type that does not fit the body."""
    method = (callback.get("httpMethod") or "").upper()
    # A GET callback carries its variables in the URL's query string.
    template = (callback.get("url") if method == "GET" else callback.get("bodyTemplate")) or ""
    needed = ["device", "time"]
    if callback.get("callbackType") == DATA and callback.get("callbackSubtype") in DATA_SUBTYPES:
        needed += ["data", "seqNumber"]
    problems = [f"the body has no {{{name}}}" for name in needed if f"{{{name}}}" not in template]
    if method in ("POST", "PUT"):
        content_type = callback.get("contentType") or ""
        looks_json = template.lstrip().startswith("{")
        if looks_json and content_type != CONTENT_TYPE:
            problems.append(f"content type {content_type or 'unset'} for a JSON body: "
                            f"use {CONTENT_TYPE}")
        elif not looks_json and content_type == CONTENT_TYPE:
            problems.append(f"content type {CONTENT_TYPE} for a body that is not JSON")
    return problems


def masked_url(url: str) -> str:
    """A callback URL fit to print: the value of ?token= and a password in it masked."""
    parts = urlsplit(url)
    netloc = parts.netloc
    if parts.password is not None:
        netloc = f"{parts.username or ''}:{TOKEN_MASK}@" + netloc.rpartition("@")[2]
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        if any(name == "token" for name, _ in pairs):
            query = urlencode([(n, TOKEN_MASK if n == "token" else v) for n, v in pairs],
                              safe="{}#*")
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def kind_of(callback: dict) -> str:
    key = (callback.get("callbackType"), callback.get("callbackSubtype"))
    if key[0] == ERROR:
        return "ERROR"
    return KINDS.get(key, f"type {key[0]} subtype {key[1]}")


def list_callbacks(command: BaseCommand, api: SigfoxAPI, *, device_type: str, url: str,
                   token: str) -> list[tuple[dict, list[str]]]:
    """One line per callback of `device_type`, each callback aimed at `url`
    followed by its problems; then a summary. Returns (callback, problems)."""
    found = []
    ours = flagged = 0
    prefix = _without_query(url).rstrip("/")
    for callback in _callbacks_of(api, device_type):
        cb_url = callback.get("url") or ""
        aimed = _without_query(cb_url) == prefix or _without_query(cb_url).startswith(prefix + "/")
        problems: list[str] = []
        if aimed:
            ours += 1
            problems = body_problems(callback)
            if token:
                state = token_state(callback, token)
                if state == "none":
                    problems.append("no token: add the header Authorization: Bearer "
                                    "<SIGFOX_CALLBACK_TOKEN>")
                elif state == "wrong":
                    problems.append("its token is not SIGFOX_CALLBACK_TOKEN")
        flagged += bool(problems)
        found.append((callback, problems))
        command.stdout.write(" ".join([
            f"{kind_of(callback):<20}",
            f"{'enabled' if callback.get('enabled') else 'disabled':<8}",
            f"{callback.get('httpMethod') or '-':<4}",
            masked_url(cb_url) if callback.get("channel") != "EMAIL" else "(e-mail)",
            callback.get("contentType") or "-",
            "downlink" if callback.get("downlinkHook") else "",
        ]).rstrip())
        for problem in problems:
            command.stdout.write(f"    ! {problem}")
    if not token and ours:
        command.stdout.write("note: SIGFOX_CALLBACK_TOKEN is empty here: this server accepts "
                             "callbacks from anyone, and tokens were not checked.")
    command.stdout.write(f"Device type {device_type}: {len(found)} callbacks, {ours} pointing at "
                         f"{url}, {flagged} with problems.")
    return found
