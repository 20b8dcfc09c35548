"""GET /api/series/: one series over a range, downsampled in the database."""

import math
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from tests.helpers import T0, minutes, store

pytestmark = pytest.mark.django_db

MS = 1000
T0_MS = int(T0.timestamp() * MS)


def series(client, query: str, status=200) -> dict:
    response = client.get("/api/series/?" + query)
    assert response.status_code == status, response.content
    return response.json()


def wave(i: int) -> float:
    """A smooth daily-ish wave with two spikes a downsampler must not lose."""
    if i == 1234:
        return 1000.0
    if i == 7777:
        return -500.0
    return round(20 + 5 * math.sin(i / 50), 3)


@pytest.fixture(scope="class")
def long_series(django_db_setup, django_db_blocker):
    """10,000 readings, stored once for the tests of a class that only read them:
    a transaction around the class holds them and is rolled back after its last
    test; each test still runs in a savepoint of its own inside it."""
    with django_db_blocker.unblock(), transaction.atomic():
        store("1A2B3C", minutes(10_000, values=wave))
        yield [(T0_MS + i * 60 * MS, wave(i)) for i in range(10_000)]
        transaction.set_rollback(True)


def test_it_answers_a_short_range_with_every_reading(admin_client):
    store("1A2B3C", minutes(5, values=lambda i: 20.0 + i))
    body = series(admin_client, "device=1A2B3C&quantity=temp")
    assert body["method"] == "raw"
    assert body["count"] == 5
    assert body["points"] == [[T0_MS + i * 60 * MS, 20.0 + i] for i in range(5)]
    assert body["buckets"] == []
    assert (body["device"], body["sensor"], body["quantity"]) == ("1A2B3C", None, "temp")
    assert (body["unit"], body["label"]) == ("°C", "1A2B3C · temp (°C)")
    assert body["since"] == "2026-01-01T00:00:00Z"


class TestALongSeries:
    """Read-only tests of one long series, stored once for all of them."""

    def test_it_downsamples_a_long_range_to_at_most_n_points(self, admin_client, long_series):
        body = series(admin_client, "device=1A2B3C&quantity=temp&points=100")
        assert body["method"] == "m4"
        assert body["count"] == 10_000
        assert len(body["points"]) <= 100
        # 9,999 minutes widened to 167 whole hours, in buckets of 7 hours: 24 of them, not 25.
        assert len(body["buckets"]) == 24
        times = [t for t, _ in body["points"]]
        assert times == sorted(times)

    def test_it_keeps_the_spikes(self, admin_client, long_series):
        body = series(admin_client, "device=1A2B3C&quantity=temp&points=40")
        assert [T0_MS + 1234 * 60 * MS, 1000.0] in body["points"]
        assert [T0_MS + 7777 * 60 * MS, -500.0] in body["points"]
        assert max(v for _, v in body["points"]) == 1000.0
        assert min(v for _, v in body["points"]) == -500.0

    def test_it_keeps_first_min_max_last_of_every_bucket(self, admin_client, long_series):
        body = series(admin_client, "device=1A2B3C&quantity=temp&points=200"
                                    "&since=2026-01-01T00:00:00Z&until=2026-01-07T22:40:00Z")
        # Until widened to 23:00, 167 hours in buckets of 4 hours.
        assert len(body["buckets"]) == 42
        assert body["until"] == "2026-01-08T00:00:00Z"
        for bucket in body["buckets"]:
            inside = [(t, v) for t, v in long_series if bucket["start"] <= t < bucket["end"]]
            assert bucket["count"] == len(inside)
            low = min(inside, key=lambda p: (p[1], p[0]))
            high = max(inside, key=lambda p: (p[1], -p[0]))
            assert (bucket["min_time"], bucket["min"]) == low
            assert (bucket["max_time"], bucket["max"]) == high
            assert (bucket["first_time"], bucket["first"]) == inside[0]
            assert (bucket["last_time"], bucket["last"]) == inside[-1]
        assert sum(b["count"] for b in body["buckets"]) == 10_000

    def test_it_cuts_the_range_into_equal_buckets(self, admin_client, long_series):
        body = series(admin_client, "device=1A2B3C&quantity=temp&points=40"
                                    "&since=2026-01-01T00:00:00Z&until=2026-01-01T02:00:00Z")
        edges = [(b["start"], b["end"]) for b in body["buckets"]]
        assert edges == [(T0_MS + i * 720 * MS, T0_MS + (i + 1) * 720 * MS) for i in range(10)]
        assert body["count"] == 120

    def test_it_cuts_buckets_of_an_hour_or_more_on_whole_hours(self, admin_client, long_series):
        # 10 buckets of a day would be 2.4 hours each: 3 hours, 8 buckets.
        body = series(admin_client, "device=1A2B3C&quantity=temp&points=40"
                                    "&since=2026-01-01T00:00:00Z&until=2026-01-02T00:00:00Z")
        edges = [(b["start"], b["end"]) for b in body["buckets"]]
        assert edges == [(T0_MS + i * 3 * 3600 * MS, T0_MS + (i + 1) * 3 * 3600 * MS) for i in range(8)]
        assert body["count"] == 1440

    def test_it_downsamples_in_the_database_not_in_python(self, admin_client, long_series):
        with CaptureQueriesContext(connection) as queries:
            body = series(admin_client, "device=1A2B3C&quantity=temp&points=100"
                                        "&since=2026-01-01T00:00:00Z&until=2026-01-08T00:00:00Z")
        assert body["count"] == 10_000
        grouped = [q["sql"] for q in queries if "PARTITION BY bucket" in q["sql"] or "GROUP BY bucket" in q["sql"]]
        assert len(grouped) == 1
        # The only other read of readings is the probe for a short range (LIMIT points + 1).
        plain = [q["sql"] for q in queries if "readings_reading" in q["sql"] and q["sql"] not in grouped]
        assert all("LIMIT" in sql for sql in plain), plain


def test_it_keeps_a_flat_series_small(admin_client):
    store("1A2B3C", minutes(3000, values=lambda i: 1.0))
    body = series(admin_client, "device=1A2B3C&quantity=temp&points=100")
    assert body["count"] == 3000
    assert len(body["points"]) <= 100
    assert {v for _, v in body["points"]} == {1.0}


def test_it_uses_the_default_of_1000_points(admin_client):
    store("1A2B3C", minutes(2500))
    body = series(admin_client, "device=1A2B3C&quantity=temp")
    assert body["max_points"] == 1000
    assert len(body["buckets"]) == 250
    assert len(body["points"]) <= 1000


@pytest.mark.parametrize(("points", "error"), [
    ("9", "Ensure this value is greater than or equal to 10."),
    ("2001", "Ensure this value is less than or equal to 2000."),
    ("many", "A valid integer is required."),
])
def test_it_bounds_n(admin_client, points, error):
    store("1A2B3C", minutes(5))
    body = series(admin_client, f"device=1A2B3C&quantity=temp&points={points}", status=400)
    assert body == {"points": [error]}


def test_it_accepts_the_bounds_of_n(admin_client):
    store("1A2B3C", minutes(3000))
    assert len(series(admin_client, "device=1A2B3C&quantity=temp&points=10")["points"]) <= 10
    assert len(series(admin_client, "device=1A2B3C&quantity=temp&points=2000")["points"]) <= 2000


def test_it_needs_a_device_and_a_quantity(admin_client):
    body = series(admin_client, "", status=400)
    assert body == {"device": ["This field is required."], "quantity": ["This field is required."]}


def test_it_answers_404_for_an_unknown_device(admin_client):
    response = admin_client.get("/api/series/?device=ABCDEF&quantity=temp")
    assert response.status_code == 404


def test_it_answers_an_unknown_quantity_with_an_empty_series(admin_client):
    store("1A2B3C", minutes(5))
    body = series(admin_client, "device=1A2B3C&quantity=pressure")
    assert (body["count"], body["points"]) == (0, [])


def test_it_limits_the_series_to_the_range(admin_client):
    store("1A2B3C", minutes(10))
    since = int((T0 + timedelta(minutes=2)).timestamp())
    body = series(admin_client, f"device=1A2B3C&quantity=temp&since={since}&until=2026-01-01T00:05:00Z")
    assert [v for _, v in body["points"]] == [2.0, 3.0, 4.0]
    assert (body["since"], body["until"]) == ("2026-01-01T00:02:00Z", "2026-01-01T00:05:00Z")


def test_it_separates_sensors_when_asked(admin_client):
    store("1A2B3C", minutes(3, values=lambda i: 1.0), sensor="1")
    store("1A2B3C", minutes(3, start=T0 + timedelta(seconds=30), values=lambda i: 2.0), sensor="2")
    assert {v for _, v in series(admin_client, "device=1A2B3C&quantity=temp&sensor=2")["points"]} == {2.0}
    both = series(admin_client, "device=1A2B3C&quantity=temp")
    assert [v for _, v in both["points"]] == [1.0, 2.0, 1.0, 2.0, 1.0, 2.0]


def test_it_keeps_microseconds(admin_client):
    store("1A2B3C", [(datetime(2026, 1, 1, 0, 0, 0, 250_000, tzinfo=UTC), 1.0),
                     (datetime(2026, 1, 1, 0, 0, 1, 750_000, tzinfo=UTC), 2.0)])
    body = series(admin_client, "device=1A2B3C&quantity=temp")
    assert [t for t, _ in body["points"]] == [T0_MS + 250, T0_MS + 1750]


def test_it_ends_an_open_range_now(admin_client):
    store("1A2B3C", minutes(3))
    body = series(admin_client, "device=1A2B3C&quantity=temp&since=2026-01-01")
    until = datetime.fromisoformat(body["until"])
    assert abs(until - datetime.now(UTC)) < timedelta(minutes=1)
    assert body["count"] == 3
