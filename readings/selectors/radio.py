"""Radio statistics of a device over time: RSSI, SNR, lost messages, counter resets.

Not Sigfox's {linkQuality} variable (LIMIT to EXCELLENT, stored per message as
Message.link_quality): these are figures computed from every message received.
"""

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db import connection

from readings import db
from readings.models import Device, Message, SequenceGap
from readings.selectors.series import SERIES_DEFAULT_POINTS


_RADIO_SQL = """
SELECT bucket, COUNT(*), MIN(rssi), AVG(rssi), MAX(rssi), MIN(snr), AVG(snr), MAX(snr)
FROM (SELECT {bucket} AS bucket, rssi, snr FROM ({timed}) AS timed) AS bucketed
GROUP BY bucket ORDER BY bucket
"""

_GAPS_SQL = """
SELECT bucket, SUM(missing), SUM(CASE WHEN reset THEN 1 ELSE 0 END)
FROM (SELECT {bucket} AS bucket, missing, reset FROM ({timed}) AS timed) AS bucketed
GROUP BY bucket ORDER BY bucket
"""


@dataclass
class RadioBucket:
    """One bucket of time; times are epoch milliseconds, RSSI in dBm, SNR in dB
    (None when the bucket has no message)."""

    start: int
    end: int  # excluded
    messages: int = 0
    rssi_min: float | None = None
    rssi_avg: float | None = None
    rssi_max: float | None = None
    snr_min: float | None = None
    snr_avg: float | None = None
    snr_max: float | None = None
    lost: int = 0  # messages lost: jumps in seqNumber
    resets: int = 0  # counter resets: jumps too large for the time between


@dataclass
class RadioStats:
    """Rendered by readings.api.serializers.RadioStatsSerializer."""

    device: str  # the Sigfox id
    since: datetime | None
    until: datetime
    buckets: list[RadioBucket] = field(default_factory=list)


def _round(value: float | None, digits: int = 2) -> float | None:
    return None if value is None else round(value, digits)


def radio_stats(
    *, device: Device, since: datetime | None = None, until: datetime | None = None,
    buckets: int = SERIES_DEFAULT_POINTS, now: datetime,
) -> RadioStats:
    """RSSI and SNR (lowest, mean, highest), lost messages and counter resets per
    bucket of time over [since, until); buckets with neither messages nor losses
    are left out. Without since, from the first message; without until, to now
    or just after the last message, whichever is later."""
    messages = Message.objects.filter(device=device).order_by()
    if since is None:
        since = messages.order_by("time").values_list("time", flat=True).first()
    if until is None:
        last = messages.order_by("-time").values_list("time", flat=True).first()
        until = max(now, last + timedelta(microseconds=1)) if last else now
    stats = RadioStats(device.sigfox_id, since, until)
    if since is None or until <= since:
        return stats
    cut = db.TimeBuckets(since, until, buckets)
    in_range = {"time__gte": since, "time__lt": until}
    message_rows = messages.filter(**in_range).values_list("time", "rssi", "snr")
    gap_rows = SequenceGap.objects.filter(device=device, **in_range).order_by()
    gap_rows = gap_rows.values_list("time", "missing", "reset")
    by_bucket: dict[int, RadioBucket] = {}

    def bucket(index: int) -> RadioBucket:
        if index not in by_bucket:
            by_bucket[index] = RadioBucket(*cut.edges_ms(index))
        return by_bucket[index]

    with connection.cursor() as cursor:
        cursor.execute(*cut.aggregate(_RADIO_SQL, message_rows, "rssi, snr"))
        for index, count, rmin, ravg, rmax, smin, savg, smax in cursor.fetchall():
            b = bucket(index)
            b.messages = count
            b.rssi_min, b.rssi_avg, b.rssi_max = _round(rmin), _round(ravg), _round(rmax)
            b.snr_min, b.snr_avg, b.snr_max = _round(smin), _round(savg), _round(smax)
        cursor.execute(*cut.aggregate(_GAPS_SQL, gap_rows, "missing, reset"))
        for index, missing, resets in cursor.fetchall():
            b = bucket(index)
            b.lost, b.resets = int(missing), int(resets)
    stats.buckets = [by_bucket[i] for i in sorted(by_bucket)]
    return stats
