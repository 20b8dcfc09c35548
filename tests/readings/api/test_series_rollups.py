"""GET /api/series/ from the rollups: buckets of an hour or more lie on whole
UTC hours or days, and the rollups answer exactly what the readings answer
for the same buckets, the hours not rolled up yet included."""

import json
import math
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from rest_framework.renderers import JSONRenderer

from readings import db
from readings.api.serializers import SeriesSerializer
from readings.models import Device, Reading, RollupProgress
from readings.selectors import series as series_module
from readings.selectors.series import series_downsampled
from readings.services.rollups import rollups_invalidate, rollups_refresh
from tests.helpers import T0, store

pytestmark = pytest.mark.django_db

NOW = T0 + timedelta(days=40)
FIRST = T0 + timedelta(minutes=7, seconds=30, milliseconds=250)  # off the hour
DAYS = 35


def value(i: int) -> float:
    """A wave in steps of 0.5 (values tie), with a spike and a dip."""
    if i == 1234:
        return 1000.0
    if i == 3333:
        return -500.0
    return round(2 * (20 + 5 * math.sin(i / 40))) / 2


def refresh() -> None:
    """Everything stored so far into the rollups (PostgreSQL takes a candidate
    at the pass after the one that notes it)."""
    for _ in range(2 if db.is_postgresql() else 1):
        rollups_refresh(now=NOW)


@pytest.fixture(scope="class")
def rolled_up(django_db_setup, django_db_blocker):
    """Five weeks of a sensor every 10 minutes, and a second sensor every 30
    minutes at the same times (ties in time, often in value), rolled up;
    stored once for the class, each test in a savepoint of its own."""
    with django_db_blocker.unblock(), transaction.atomic():
        one = [(FIRST + timedelta(minutes=10 * i), value(i)) for i in range(DAYS * 144)]
        store("1A2B3C", one, sensor="1")
        two = [(t, v if i % 2 else v + 0.5) for i, (t, v) in enumerate(one[::3])]
        store("1A2B3C", two, sensor="2")
        refresh()
        yield
        transaction.set_rollback(True)


def api(client, query: str) -> dict:
    response = client.get("/api/series/?device=1A2B3C&quantity=temp&" + query)
    assert response.status_code == 200, response.content
    return response.json()


def raw_answer(query: dict) -> dict:
    """The answer of the readings alone (rollups not used), rendered as the API renders it."""
    series = series_downsampled(device=Device.objects.get(sigfox_id="1A2B3C"), quantity="temp",
                                now=NOW, rollups=False, **query)
    return json.loads(JSONRenderer().render(SeriesSerializer(series).data))


def as_query(query: dict) -> str:
    parts = {"points": query.get("max_points"), "sensor": query.get("sensor"),
             "since": query.get("since"), "until": query.get("until")}
    return "&".join(f"{k}={v.strftime('%Y-%m-%dT%H:%M:%S.%fZ') if isinstance(v, datetime) else v}"
                    for k, v in parts.items() if v is not None)


def assert_same_as_raw(client, query: dict, source: str) -> dict:
    body = api(client, as_query(query))
    raw = raw_answer(query)
    assert (body["method"], body["source"], raw["source"]) == ("m4", source, "raw")
    assert {**body, "source": "raw"} == raw
    return body


def python_m4(body: dict, sensors: list[str]) -> list[dict]:
    """The buckets of `body` computed in Python from the readings."""
    readings = Reading.objects.filter(device__sigfox_id="1A2B3C", quantity="temp", sensor__in=sensors)
    rows = [(db.ms(t.timestamp()), v) for t, v in readings.values_list("time", "value")]
    buckets = []
    for b in body["buckets"]:
        inside = [(t, v) for t, v in rows if b["start"] <= t < b["end"]]
        first, last = min(inside), max(inside)
        low = min(inside, key=lambda r: (r[1], r[0]))
        high = max(inside, key=lambda r: (r[1], -r[0]))
        buckets.append({"start": b["start"], "end": b["end"], "count": len(inside),
                        "first_time": first[0], "first": first[1],
                        "min_time": low[0], "min": low[1], "max_time": high[0], "max": high[1],
                        "last_time": last[0], "last": last[1]})
    return buckets


def body_source(query: dict) -> str:
    """The source of the queries below: 10 or 40 points are daily buckets."""
    return "rollup-daily" if query.get("max_points") in (10, 40) else "rollup-hourly"


HOURLY = {"sensor": "1", "since": datetime(2026, 1, 3, 5, 17, tzinfo=UTC),
          "until": datetime(2026, 1, 20, 13, 45, 10, tzinfo=UTC), "max_points": 400}
DAILY = {"since": datetime(2026, 1, 2, 3, tzinfo=UTC), "until": datetime(2026, 2, 4, tzinfo=UTC),
         "max_points": 40}


@pytest.mark.usefixtures("rolled_up")
class TestFromTheRollups:
    @pytest.mark.parametrize(("query", "source"), [
        (HOURLY, "rollup-hourly"),
        ({**HOURLY, "sensor": None}, "rollup-hourly"),
        (DAILY, "rollup-daily"),
        ({**DAILY, "sensor": "2"}, "rollup-daily"),
        ({}, "rollup-hourly"),  # the whole series, 1,000 points: buckets of 4 hours
        ({"max_points": 10}, "rollup-daily"),
        ({"sensor": "1", "since": datetime(2025, 12, 31, 23, 59, tzinfo=UTC), "until": NOW,
          "max_points": 100}, "rollup-daily"),  # past the first and the last reading
    ])
    def test_it_answers_what_the_readings_answer_for_the_same_buckets(self, admin_client, query,
                                                                        source):
        with CaptureQueriesContext(connection) as queries:
            body = assert_same_as_raw(admin_client, query, source)
        assert any("readings_rollup" in q["sql"] for q in queries)
        assert body["count"] == sum(b["count"] for b in body["buckets"]) > 0

    def test_its_buckets_lie_on_whole_hours_and_days(self, admin_client):
        body = api(admin_client, as_query(HOURLY))
        # 5:17 and 13:45:10 widened to 5:00 and 14:00: 417 hours, 84 buckets of 5 hours.
        assert (body["since"], body["until"]) == ("2026-01-03T05:00:00Z", "2026-01-20T17:00:00Z")
        hour_ms = 3_600_000
        assert {b["end"] - b["start"] for b in body["buckets"]} == {5 * hour_ms}
        assert len(body["buckets"]) == 84
        assert all(b["start"] % hour_ms == 0 for b in body["buckets"])
        daily = api(admin_client, as_query(DAILY))
        assert (daily["since"], daily["until"]) == ("2026-01-02T00:00:00Z", "2026-02-07T00:00:00Z")
        assert {b["end"] - b["start"] for b in daily["buckets"]} == {4 * 24 * hour_ms}

    def test_it_keeps_the_peaks_and_breaks_ties_as_the_readings_do(self, admin_client):
        body = api(admin_client, as_query({**HOURLY, "sensor": None,
                                           "since": FIRST, "until": NOW, "max_points": 100}))
        assert body["source"] == "rollup-daily"
        assert body["buckets"] == python_m4(body, ["1", "2"])
        assert [FIRST.timestamp() * 1000 + 1234 * 600_000, 1000.0] in body["points"]
        assert [FIRST.timestamp() * 1000 + 3333 * 600_000, -500.0] in body["points"]

    def test_it_reads_the_hours_not_rolled_up_yet_from_the_readings(self, admin_client):
        # A late reading into an old hour, a new one at the end: no refresh since.
        store("1A2B3C", [(T0 + timedelta(days=4, minutes=12, seconds=1), 700.0),
                         (FIRST + timedelta(days=DAYS, minutes=3), -7.0)], sensor="1")
        for query in (HOURLY, {**HOURLY, "sensor": None}, {}, DAILY):
            body = assert_same_as_raw(admin_client, query, body_source(query))
        assert [int((T0 + timedelta(days=4, minutes=12, seconds=1)).timestamp() * 1000), 700.0] in \
            api(admin_client, as_query(HOURLY))["points"]
        since = datetime(2026, 1, 2, tzinfo=UTC)
        assert body["count"] == Reading.objects.filter(time__gte=since).count()

    def test_it_reads_the_dirty_hours_from_the_readings(self, admin_client):
        spike = Reading.objects.filter(value=1000.0)
        rollups_invalidate(spike)
        spike.delete()
        for query in (HOURLY, DAILY, {}):
            body = assert_same_as_raw(admin_client, query, body_source(query))
            assert 1000.0 not in [v for _, v in body["points"]]

    def test_a_refresh_puts_the_new_readings_in_and_answers_the_same(self, admin_client):
        store("1A2B3C", [(T0 + timedelta(days=9, minutes=1), 321.0)], sensor="1")
        before = api(admin_client, as_query(HOURLY))
        refresh()
        with CaptureQueriesContext(connection) as queries:
            assert api(admin_client, as_query(HOURLY)) == before
        # Nothing left for the readings to fill in: the rollups alone answer.
        assert not any("UNION ALL" in q["sql"] for q in queries)

    def test_rollups_far_behind_leave_the_answer_to_the_readings(self, admin_client, monkeypatch):
        monkeypatch.setattr(series_module, "ROLLUP_TAIL_MAX_READINGS", 1)
        store("1A2B3C", [(T0 + timedelta(days=9, minutes=1), 321.0),
                         (T0 + timedelta(days=9, minutes=2), 322.0)], sensor="1")
        body = api(admin_client, as_query(HOURLY))
        assert (body["source"], body["since"]) == ("raw", "2026-01-03T05:00:00Z")
        assert body == raw_answer(HOURLY)

    def test_rollups_never_refreshed_leave_the_answer_to_the_readings(self, admin_client):
        RollupProgress.objects.all().delete()
        body = api(admin_client, as_query(DAILY))
        assert (body["source"], body["until"]) == ("raw", "2026-02-07T00:00:00Z")

    def test_a_range_past_the_raw_retention_draws_what_the_rollups_kept(self, admin_client,
                                                                          settings):
        before = api(admin_client, as_query(HOURLY))
        day = "sensor=1&since=2026-01-05T00:00:00Z&until=2026-01-06T00:00:00Z"
        assert api(admin_client, day)["method"] == "raw"  # 144 readings, as they are
        settings.SIGFOX_RAW_RETENTION_DAYS = 30
        # Gone as retention removes them: no rollup is marked.
        Reading.objects.filter(time__lt=datetime(2026, 1, 25, tzinfo=UTC)).delete()
        assert api(admin_client, as_query(HOURLY)) == before
        body = api(admin_client, day)
        assert (body["method"], body["source"], body["count"]) == ("m4", "rollup-hourly", 144)
        assert len(body["buckets"]) == 24

    def test_buckets_narrower_than_an_hour_cut_the_range_as_asked(self, admin_client):
        body = api(admin_client,
                   "sensor=1&since=2026-01-05T00:17:00Z&until=2026-01-06T00:17:00Z&points=100")
        assert (body["method"], body["source"]) == ("m4", "raw")
        assert body["since"] == "2026-01-05T00:17:00Z"
        assert body["buckets"][0]["end"] - body["buckets"][0]["start"] == 3_456_000

    def test_a_short_range_answers_with_its_readings(self, admin_client):
        body = api(admin_client, "sensor=1&since=2026-01-05T00:17:00Z&until=2026-01-05T03:00:00Z")
        assert (body["method"], body["source"], body["count"]) == ("raw", "raw", 17)
