"""Selectors and services called directly, with `now` passed in: no HTTP, no clock."""

from datetime import UTC, datetime, timedelta

import pytest

from readings import db, times
from readings.models import Device, SequenceGap
from readings.selectors.radio import radio_stats
from readings.selectors.series import series_downsampled
from readings.services.ingest import UplinkCallback, message_ingest

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
START = NOW - timedelta(hours=10)


def ingest(minutes: float, seq: int | None = None, **values) -> None:
    uplink = UplinkCallback(device_id="1A2B3C", time=START + timedelta(minutes=minutes), sensor="1",
                            values=values, values_raw=values, seq_number=seq, rssi=-100.0 - minutes,
                            snr=10.0)
    message_ingest(uplink=uplink, now=NOW)


def test_time_buckets_cut_a_range_into_equal_parts():
    buckets = db.TimeBuckets(START, START + timedelta(seconds=100), 4)
    start_ms = int(START.timestamp() * 1000)
    assert [buckets.edges_ms(i) for i in range(4)] == [
        (start_ms + 25_000 * i, start_ms + 25_000 * (i + 1)) for i in range(4)
    ]


@pytest.mark.django_db
def test_a_series_without_a_range_runs_from_the_first_to_just_after_the_last_reading():
    for minute in range(0, 60, 10):
        ingest(minute, temp=float(minute))
    series = series_downsampled(device=Device.objects.get(), quantity="temp", now=NOW)
    assert (series.since, series.until) == (START, START + timedelta(minutes=50, microseconds=1))
    assert series.method == "raw" and series.count == 6
    assert [value for _, value in series.points] == [0.0, 10.0, 20.0, 30.0, 40.0, 50.0]
    assert series.unit == "°C" and series.label == "1A2B3C · temp (°C)"


@pytest.mark.django_db
def test_a_series_given_only_a_start_runs_to_now():
    ingest(0, temp=1.0)
    series = series_downsampled(device=Device.objects.get(), quantity="temp",
                                since=START - timedelta(hours=1), now=NOW)
    assert series.until == NOW


@pytest.mark.django_db
def test_a_long_series_keeps_first_min_max_last_of_each_bucket():
    for minute in range(100):
        ingest(minute, temp=100.0 if minute == 37 else float(minute % 3))
    series = series_downsampled(device=Device.objects.get(), quantity="temp", since=START,
                                until=START + timedelta(minutes=100), max_points=20, now=NOW)
    assert series.method == "m4" and len(series.buckets) == 5 and series.count == 100
    assert max(b.max for b in series.buckets) == 100.0
    assert all(b.count == 20 for b in series.buckets)
    assert len(series.points) <= 20


@pytest.mark.django_db
def test_radio_stats_count_messages_and_losses_per_bucket():
    ingest(0, seq=1, temp=1.0)
    ingest(10, seq=2, temp=1.0)
    ingest(20, seq=5, temp=1.0)  # 3 and 4 lost
    assert SequenceGap.objects.get().missing == 2
    stats = radio_stats(device=Device.objects.get(), since=START,
                        until=START + timedelta(minutes=30), buckets=3, now=NOW)
    assert [(b.messages, b.lost, b.resets) for b in stats.buckets] == [(1, 0, 0), (1, 0, 0), (1, 2, 0)]
    assert stats.buckets[0].rssi_min == -100.0 and stats.buckets[2].rssi_max == -120.0


@pytest.mark.django_db
def test_radio_stats_of_a_silent_device_run_to_now():
    device = Device.objects.create(sigfox_id="ABC")
    stats = radio_stats(device=device, now=NOW)
    assert (stats.since, stats.until, stats.buckets) == (None, NOW, [])


@pytest.mark.parametrize("text, expected", [
    ("1700000000", datetime(2023, 11, 14, 22, 13, 20, tzinfo=UTC)),
    ("1700000000.25", datetime(2023, 11, 14, 22, 13, 20, 250000, tzinfo=UTC)),
    ("2026-01-31", datetime(2026, 1, 30, 23, tzinfo=UTC)),  # TIME_ZONE Europe/Paris, below
    ("2026-01-31T12:00:00Z", datetime(2026, 1, 31, 12, tzinfo=UTC)),
    ("2026-01-31T12:00:00 01:00", datetime(2026, 1, 31, 11, tzinfo=UTC)),  # "+" lost in a URL
])
def test_the_time_parser_reads_what_people_and_scripts_write(settings, text, expected):
    settings.TIME_ZONE = "Europe/Paris"
    assert times.parse_time(text) == expected


@pytest.mark.parametrize("text, error", [
    ("yesterday", ValueError), ("2026-02-30", ValueError), (" 12", ValueError),
    ("٣", ValueError), ("0001-01-01T00:00+01:00", times.TimeOutOfRange),
    ("999999999999", times.TimeOutOfRange),
])
def test_the_time_parser_refuses_what_is_no_time(text, error):
    with pytest.raises(error):
        times.parse_time(text)


@pytest.mark.django_db
def test_a_downsampled_peak_just_before_a_whole_second_keeps_its_time():
    """The database's epoch of 00:00:59.9995 is 59.9995 s, not 60.9995: SQLite's
    strftime would round the fraction up to the next second."""
    from tests.helpers import store

    peak = START + timedelta(seconds=59, microseconds=999_500)
    points = [(START + timedelta(seconds=i), 1.0) for i in range(40) if i != 59] + [(peak, 99.0)]
    device = store("1A2B3C", sorted(points))
    series = series_downsampled(device=device, quantity="temp", since=START,
                                until=START + timedelta(seconds=64), max_points=12, now=NOW)
    assert series.method == "m4"
    assert (db.ms(peak.timestamp()), 99.0) in series.points
