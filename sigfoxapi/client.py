"""A client for the Sigfox REST API (v2), the parts the receiver uses.

Source: /work/shared/sigfox/API.md (HTTP Basic with an API user's login and
password, JSON in and out, errors as `{"message": "..."}`, 429 when rate
limited, lists paged through `paging.next`, times in milliseconds).

`SigfoxAPI` makes every request itself, one attempt at a time, so that each
attempt is counted (`calls`) and can be refused by a budget (`max_calls`).
Whether and how long to wait before trying again is urllib3's `Retry`:
429 and 5xx answers, connection failures and (for requests that are safe to
repeat) read timeouts are retried, honouring `Retry-After`. A POST is retried
only on 429 or when the connection was never made: a POST that got a 5xx or
timed out may have created what it asked for.

The password is given to requests' HTTP Basic auth and kept nowhere else:
not in `repr()`, exceptions or logs.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from itertools import pairwise
from typing import Any
from urllib.parse import quote, urlsplit

import requests
from urllib3.exceptions import HTTPError as Urllib3Error
from urllib3.exceptions import InvalidHeader, MaxRetryError
from urllib3.util.retry import Retry

logger = logging.getLogger(__name__)

# Statuses worth asking again after a pause (API.md: 429 when rate limited;
# a 5xx is the API's own trouble).
RETRY_STATUSES = frozenset({429, *range(500, 600)})
# A connection that is not made in this long will not be made (seconds); the
# read timeout is the caller's `timeout_s`.
CONNECT_TIMEOUT_S = 10.0
# The longest pause between two attempts, Retry-After included, as a multiple
# of backoff_s (60 s with the default backoff_s of 1 s).
MAX_SLEEP_BACKOFFS = 60
# How much of a non-JSON error body is kept in a message (characters).
MESSAGE_CHARS = 200

AUTH_HINT = "the API login or password is wrong (SIGFOX_API_LOGIN / SIGFOX_API_PASSWORD)"
FORBIDDEN_HINT = (
    "the API user may not do this: give it a profile (Sigfox portal: group -> API access) "
    "with the rights this request needs, on the group that owns the device type or device"
)


class SigfoxAPIError(Exception):
    """A request to the Sigfox API failed.

    `status` is the HTTP status (None when no answer came), `api_message` the
    API's `{"message": ...}` (or the start of its body; "" when none);
    `method` and `path` name the request (the path is relative to the base
    URL, never with credentials). `str()` says all of it in one line.
    """

    def __init__(self, detail: str, *, method: str = "", path: str = "",
                 status: int | None = None, api_message: str = ""):
        self.detail = detail
        self.method = method
        self.path = path
        self.status = status
        self.api_message = api_message
        parts = [f"{method} {path}".strip()] if method or path else []
        if status is not None:
            parts.append(f"HTTP {status}")
        parts.append(detail)
        text = ": ".join(parts)
        if api_message:
            text += f" (the API says: {api_message})"
        super().__init__(text)


class SigfoxAuthError(SigfoxAPIError):
    """401: the API refused the login and password."""


class SigfoxForbiddenError(SigfoxAPIError):
    """403: the API user lacks the profile or group rights for this request."""


class SigfoxNotFoundError(SigfoxAPIError):
    """404: no such device, device type or callback (the message names the id)."""


class SigfoxUnavailableError(SigfoxAPIError):
    """The API could not be reached or kept failing: 429 or 5xx after the
    retries, connection refused, timeout."""


class CallBudgetExhausted(SigfoxAPIError):
    """`max_calls` requests have been made; the next one was not."""


class _Backoff(Retry):
    """urllib3's Retry whose first retry waits too (backoff_factor, then twice
    as long each time, at most backoff_max): an API that answered 429 is not
    asked again at once. urllib3's own schedule starts at 0."""

    def get_backoff_time(self) -> float:
        retried = len(self.history)
        if not retried:
            return 0.0
        return float(min(self.backoff_max, self.backoff_factor * 2 ** (retried - 1)))


def _ids_in(path: str) -> str:
    """The ids a path names, said in words: "/device-types/AB/callbacks/12" →
    "device type AB, callback 12"."""
    names = {"device-types": "device type", "devices": "device", "callbacks": "callback"}
    segments = [s for s in urlsplit(path).path.split("/") if s]
    found = [f"{names[a]} {b}" for a, b in pairwise(segments) if a in names]
    return ", ".join(found)


def _origin(url: str) -> tuple[str, str, int | None]:
    """(scheme, host, port) with the default port made explicit."""
    parts = urlsplit(url)
    port = parts.port or {"https": 443, "http": 80}.get(parts.scheme)
    return parts.scheme.lower(), (parts.hostname or "").lower(), port


class SigfoxAPI:
    """The Sigfox REST API as one API user.

    `base_url` is the API's root (`https://api.sigfox.com/v2`); paths given to
    the methods are relative to it ("/device-types/ABC/messages").
    `timeout_s` is how long one answer may take (seconds; connecting gets at
    most CONNECT_TIMEOUT_S of it). A failed attempt is tried again up to
    `retries` times, waiting `backoff_s`, then twice as long each time, or
    what the API's Retry-After asks, but never more than `max_sleep_s`
    (default 60 × backoff_s). `max_calls` caps the HTTP requests this client
    makes (retries included): the request past it raises CallBudgetExhausted
    instead of being sent. `calls` counts the requests made so far.

    Errors: every method raises SigfoxAPIError or one of its subclasses.
    """

    def __init__(self, *, base_url: str, login: str, password: str, timeout_s: float = 30.0,
                 retries: int = 4, backoff_s: float = 1.0, max_calls: int | None = None,
                 max_sleep_s: float | None = None):
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("base_url must be an http(s) URL such as https://api.sigfox.com/v2")
        if parts.username or parts.password:
            raise ValueError("base_url must not carry credentials: give login and password")
        self.base_url = base_url.rstrip("/")
        self.login = login
        self.timeout_s = timeout_s
        self.retries = retries
        self.backoff_s = backoff_s
        self.max_sleep_s = MAX_SLEEP_BACKOFFS * backoff_s if max_sleep_s is None else max_sleep_s
        self.max_calls = max_calls
        self.calls = 0
        self._session = requests.Session()
        self._session.auth = (login, password)
        self._session.headers.update({"Accept": "application/json"})

    @classmethod
    def from_settings(cls, **overrides: Any) -> SigfoxAPI:
        """A client from settings SIGFOX_API_URL, SIGFOX_API_LOGIN,
        SIGFOX_API_PASSWORD and SIGFOX_API_TIMEOUT_S; `overrides` are
        keyword arguments of SigfoxAPI (e.g. max_calls=60).

        Raises ImproperlyConfigured when the login or password is empty.
        """
        from django.conf import settings
        from django.core.exceptions import ImproperlyConfigured

        kwargs: dict[str, Any] = {
            "base_url": settings.SIGFOX_API_URL,
            "login": settings.SIGFOX_API_LOGIN,
            "password": settings.SIGFOX_API_PASSWORD,
            "timeout_s": settings.SIGFOX_API_TIMEOUT_S,
        }
        kwargs.update(overrides)
        missing = [name for name, key in (("SIGFOX_API_LOGIN", "login"),
                                          ("SIGFOX_API_PASSWORD", "password"))
                   if not kwargs[key]]
        if missing:
            raise ImproperlyConfigured(
                f"{' and '.join(missing)} must be set to call the Sigfox API: the login and "
                "password of an API user (Sigfox portal: group -> API access)")
        return cls(**kwargs)

    def __repr__(self) -> str:
        return f"<SigfoxAPI {self.base_url} login={self.login!r} calls={self.calls}>"

    # The four verbs.

    def get(self, path: str, params: dict | None = None) -> dict:
        """GET a path; its JSON object. Raises SigfoxAPIError (also when the
        answer is not a JSON object)."""
        answer = self._request("GET", path, params=params)
        if not isinstance(answer, dict):
            raise SigfoxAPIError("the answer is not a JSON object", method="GET", path=path)
        return answer

    def post(self, path: str, body: dict) -> dict:
        """POST a JSON body; the answer's JSON object ({} when empty; the API
        answers a created callback with its `id`)."""
        return self._request("POST", path, body=body) or {}

    def put(self, path: str, body: dict | None = None, params: dict | None = None) -> dict | None:
        """PUT a JSON body (or none); the answer's JSON, None when empty."""
        return self._request("PUT", path, body=body, params=params)

    def delete(self, path: str) -> None:
        """DELETE a path."""
        self._request("DELETE", path)

    # Lists.

    def items(self, path: str, params: dict | None = None) -> Iterator[dict]:
        """Every item of a list endpoint: `data` of the first page, then of
        each page `paging.next` (a full URL) names, to the last page.

        Items that are not JSON objects are skipped. Raises SigfoxAPIError
        when an answer is not a page, or `paging.next` points at another host
        than base_url (the credentials would go there) or repeats a page.
        """
        url: str = path
        seen: set[str] = set()
        while True:
            page = self.get(url, params=params)
            data, paging = page.get("data") or [], page.get("paging") or {}
            if not isinstance(data, list) or not isinstance(paging, dict):
                raise SigfoxAPIError("the answer is not a page (data: [...], paging: {...})",
                                     method="GET", path=path)
            yield from (item for item in data if isinstance(item, dict))
            next_url = paging.get("next")
            if not next_url:
                return
            if not isinstance(next_url, str):
                raise SigfoxAPIError("paging.next is not a URL", method="GET", path=path)
            try:
                elsewhere = _origin(next_url) != _origin(self.base_url)
            except ValueError:  # not a URL urlsplit can read
                raise SigfoxAPIError("paging.next is not a URL", method="GET", path=path) from None
            if elsewhere:
                raise SigfoxAPIError(
                    f"paging.next points at another host ({urlsplit(next_url).hostname}) "
                    "than SIGFOX_API_URL: not followed", method="GET", path=path)
            if next_url in seen:
                raise SigfoxAPIError("paging.next names a page already read: not followed",
                                     method="GET", path=path)
            seen.add(next_url)
            url, params = next_url, None

    def messages(self, *, device_type: str | None = None, device: str | None = None,
                 since_ms: int, before_ms: int) -> Iterator[dict]:
        """The messages of a device type or of a device (exactly one of
        them) received in [since_ms, before_ms), ms since the Unix epoch.
        Items as API.md "Reading messages back" (`time` in ms, `device` as
        {"id": ...}); order not to be relied on."""
        return self.items(self._owner_path(device_type, device, "messages"),
                          {"since": int(since_ms), "before": int(before_ms), "limit": 100})

    def callbacks_not_delivered(self, *, device_type: str | None = None,
                                device: str | None = None, since_ms: int,
                                before_ms: int) -> Iterator[dict]:
        """The callbacks the backend failed to deliver for a device type or a
        device (exactly one) in [since_ms, before_ms), ms since the epoch.
        Items as API.md "Callbacks that failed" (`callback` holds the
        request it tried, variables substituted)."""
        return self.items(self._owner_path(device_type, device, "callbacks-not-delivered"),
                          {"since": int(since_ms), "before": int(before_ms), "limit": 100})

    @staticmethod
    def _owner_path(device_type: str | None, device: str | None, tail: str) -> str:
        if (device_type is None) == (device is None):
            raise ValueError("give exactly one of device_type and device")
        if device_type is not None:
            return f"/device-types/{quote(device_type, safe='')}/{tail}"
        return f"/devices/{quote(str(device), safe='')}/{tail}"

    # One request, its attempts.

    def _url(self, path: str) -> str:
        if path.startswith(("http://", "https://")):
            return path
        return self.base_url + "/" + path.lstrip("/")

    def _shown_path(self, url: str) -> str:
        """The URL as errors and logs show it: relative to base_url."""
        base = urlsplit(self.base_url).path.rstrip("/")
        parts = urlsplit(url)
        shown = parts.path.removeprefix(base)
        return shown + (f"?{parts.query}" if parts.query else "")

    def _policy(self, method: str) -> Retry:
        # A POST creates: it is repeated only when it certainly was not acted
        # on (429, or no connection made); read=False re-raises a read timeout.
        post = method == "POST"
        return _Backoff(
            total=self.retries,
            read=False if post else None,
            redirect=0,
            status_forcelist={429} if post else RETRY_STATUSES,
            allowed_methods=None,
            backoff_factor=self.backoff_s,
            backoff_max=self.max_sleep_s,
            retry_after_max=self.max_sleep_s,
            raise_on_status=False,
        )

    def _request(self, method: str, path: str, *, body: dict | None = None,
                 params: dict | None = None) -> Any:
        url = self._url(path)
        shown = self._shown_path(url)
        retry = self._policy(method)
        timeout = (min(CONNECT_TIMEOUT_S, self.timeout_s), self.timeout_s)
        while True:
            if self.max_calls is not None and self.calls >= self.max_calls:
                raise CallBudgetExhausted(
                    f"the budget of {self.max_calls} API requests is spent; not sent",
                    method=method, path=shown)
            self.calls += 1
            try:
                response = self._session.request(
                    method, url, params=params, json=body, timeout=timeout,
                    allow_redirects=False)
            except (requests.ConnectionError, requests.Timeout) as exc:
                error = self._urllib3_error(exc)
                try:
                    retry = retry.increment(method, url, error=error)
                except (MaxRetryError, Urllib3Error, OSError):
                    raise self._unreachable(exc, method, shown) from None
                logger.warning("Sigfox API %s %s: %s; trying again", method, shown,
                               type(exc).__name__)
                retry.sleep()
                continue
            except requests.RequestException as exc:  # a bad URL, too many bytes...
                raise SigfoxAPIError(f"the request failed ({type(exc).__name__})",
                                     method=method, path=shown) from None
            # status_forcelist is checked first: Retry would also repeat a POST
            # answered 503 with a Retry-After.
            if response.status_code in retry.status_forcelist and retry.is_retry(
                    method, response.status_code, "Retry-After" in response.headers):
                try:
                    retry = retry.increment(method, url, response=response.raw)
                except MaxRetryError:
                    raise self._error(response, method, shown) from None
                logger.warning("Sigfox API %s %s: HTTP %s; trying again", method, shown,
                               response.status_code)
                try:
                    retry.sleep(response.raw)
                except InvalidHeader:  # a Retry-After that is neither seconds nor a date
                    retry.sleep()
                continue
            if not 200 <= response.status_code < 300:
                raise self._error(response, method, shown)
            if not response.content:
                return None
            try:
                return response.json()
            except ValueError:
                raise SigfoxAPIError("the answer is not JSON", method=method, path=shown,
                                     status=response.status_code) from None

    @staticmethod
    def _urllib3_error(exc: requests.RequestException) -> Exception:
        """The urllib3 error under a requests one, which Retry knows how to
        weigh (connect errors are always safe to repeat, read errors only
        for allowed methods)."""
        inner = exc.args[0] if exc.args and isinstance(exc.args[0], Exception) else exc
        if isinstance(inner, MaxRetryError) and inner.reason is not None:
            inner = inner.reason
        return inner

    @staticmethod
    def _unreachable(exc: requests.RequestException, method: str, shown: str) -> SigfoxAPIError:
        if isinstance(exc, requests.Timeout):
            detail = "no answer in time (SIGFOX_API_TIMEOUT_S)"
        elif isinstance(exc, requests.ConnectionError):
            detail = "could not connect to the API (SIGFOX_API_URL)"
        else:
            detail = f"the request failed ({type(exc).__name__})"
        return SigfoxUnavailableError(detail, method=method, path=shown)

    @staticmethod
    def _error(response: requests.Response, method: str, shown: str) -> SigfoxAPIError:
        status = response.status_code
        try:
            payload = response.json()
            api_message = str(payload.get("message", "")) if isinstance(payload, dict) else ""
        except ValueError:
            api_message = ""
        if not api_message:
            api_message = response.text.strip()[:MESSAGE_CHARS]
        common = {"method": method, "path": shown, "status": status, "api_message": api_message}
        if status == 401:
            return SigfoxAuthError(AUTH_HINT, **common)
        if status == 403:
            return SigfoxForbiddenError(FORBIDDEN_HINT, **common)
        if status == 404:
            ids = _ids_in(shown)
            return SigfoxNotFoundError(f"not found: {ids or shown}", **common)
        if status in RETRY_STATUSES:
            return SigfoxUnavailableError("the API kept failing; try again later", **common)
        if 300 <= status < 400:
            return SigfoxAPIError("the API redirected: not followed (check SIGFOX_API_URL)",
                                  **common)
        return SigfoxAPIError(f"refused ({response.reason or 'error'})", **common)
