"""Helpers that tests in several folders share: bulk-stored series, the chart
page's embedded configuration, a plain HTTP request."""

import json
import re
import urllib.error
import urllib.request
from datetime import UTC, datetime, timedelta

from django.utils import timezone

from readings.models import Device, Message, Reading, Series

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def store(device_id: str, points, *, sensor="1", quantity="temp", rssi=None, snr=None,
          first_seq=None) -> Device:
    """Messages of one reading each, as ingest would leave them, in bulk.

    points: (time, value) pairs; rssi/snr: a value or a function of the index.
    """
    device, _ = Device.objects.get_or_create(sigfox_id=device_id)
    received = timezone.now()
    pick = lambda source, i: source(i) if callable(source) else source  # noqa: E731
    # One frame per device and time: a second series at the same times shares the frames.
    frames = {m.time: m for m in Message.objects.filter(device=device, time__in=[t for t, _ in points])}
    created = Message.objects.bulk_create(
        Message(
            device=device, time=time, sensor=sensor, received_at=received,
            rssi=pick(rssi, i), snr=pick(snr, i),
            seq_number=None if first_seq is None else first_seq + i,
        )
        for i, (time, _value) in enumerate(points) if time not in frames
    )
    frames.update((m.time, m) for m in created)
    Reading.objects.bulk_create(
        Reading(message=frames[time], device=device, sensor=sensor, quantity=quantity, value=value,
                time=time)
        for time, value in points
    )
    Series.objects.get_or_create(device=device, sensor=sensor, quantity=quantity,
                                 defaults={"created_at": received})
    times = [t for t, _ in points]
    if times:
        device.first_seen = min([t for t in [device.first_seen, *times] if t])
        device.last_seen = max([t for t in [device.last_seen, *times] if t])
        device.save()
    return device


def minutes(n: int, *, start=T0, values=None):
    """n (time, value) pairs a minute apart."""
    return [(start + timedelta(minutes=i), float(i) if values is None else values(i)) for i in range(n)]


def chart_data(response) -> dict:
    match = re.search(
        r'<script id="chart-data" type="application/json">(.*?)</script>', response.content.decode(), re.S
    )
    assert match, "the page embeds no chart data"
    return json.loads(match.group(1))


def request(url: str, body: str | bytes | None = None, content_type="application/json", method=None):
    data = body.encode() if isinstance(body, str) else body
    req = urllib.request.Request(url, data=data, method=method)
    if data is not None:
        req.add_header("Content-Type", content_type)
    try:
        with urllib.request.urlopen(req, timeout=10) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()
