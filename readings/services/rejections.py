"""Refused callbacks: recorded and logged, but never so often that a flood
fills the disk or the database."""

import logging
import time
from datetime import datetime

from django.db import DatabaseError

from readings.models import (
    Rejection,
)

log = logging.getLogger(__name__)


_last_logged: dict[str, float] = {}


def log_limited(key: str, message: str, *args, every_s: float = 60.0) -> None:
    """A warning at most once every `every_s` seconds per key (per process), so
    that a flood cannot fill the disk with one line per request."""
    now_s = time.monotonic()
    if now_s - _last_logged.get(key, -every_s) < every_s:
        return
    if len(_last_logged) > 10_000:
        _last_logged.clear()
    _last_logged[key] = now_s
    log.warning(message, *args)


# The newest rejections kept; older ones are deleted as new ones come.
REJECTIONS_KEPT = 1000
REJECTION_WINDOW_S = 60.0
# Per process: (status, device or address) -> [start of its window, rejections suppressed].
_rejection_windows: dict[tuple[int, str], list] = {}
_rejections_written = 0


def rejection_record(
    *, status: int, reason: str, path: str, device_id: str = "", client_address: str = "",
    now: datetime,
) -> Rejection | None:
    """Record and log a refused callback, at most once a minute per device (or
    address) and status in each worker process; the rows recorded in between
    count the ones left out (`repeated`). Never raises: a database that cannot
    take the record leaves the log line only. Returns the row written, if any.
    """
    key = (status, device_id or client_address)
    now_s = time.monotonic()
    window = _rejection_windows.get(key)
    if window is not None and now_s - window[0] < REJECTION_WINDOW_S:
        window[1] += 1
        return None
    if len(_rejection_windows) > 10_000:
        _rejection_windows.clear()
    repeated = window[1] if window is not None else 0
    _rejection_windows[key] = [now_s, 0]
    log.warning("callback refused (%d) from %s%s: %s", status, client_address or "?",
                f", device {device_id}" if device_id else "", reason)
    global _rejections_written
    try:
        row = Rejection.objects.create(
            time=now, status=status, device_id=device_id[:8], reason=reason[:300], path=path[:200],
            client_address=client_address[:45], repeated=repeated,
        )
        _rejections_written += 1
        if _rejections_written % 50 == 1:
            Rejection.objects.filter(pk__lte=row.pk - REJECTIONS_KEPT).delete()
        return row
    except DatabaseError as exc:
        log.warning("rejection not recorded: %s", exc)
        return None
