"""The admin reads the big tables (readings, messages) through indexes, never whole.

Every admin page is requested with its queries captured: the lists with each
filter, sort, search, date drill-down and page they offer, and the change
pages. Each SELECT that touches a big table is then EXPLAINed, and fails the
test if its plan reads that table whole:

- PostgreSQL: a Seq Scan of it, with sequential scans disabled. The planner
  reads a table of a few rows whole anyway; disabled, it still does when no
  index can answer the query (a filter or a sort by a column no index holds).
- SQLite: a SCAN of it (a read of the table or of an index from end to end,
  as opposed to a SEARCH) in a statement that no LIMIT stops, or that sorts
  every row before its LIMIT ("USE TEMP B-TREE FOR ORDER BY"). A LIMIT on the
  walk down an ordered index is what lists a page of a big table. SQLite has
  no statistics unless ANALYZE runs, so its plans here are its plans at scale:
  they catch what PostgreSQL's plans for tiny tables hide (a DISTINCT over a
  whole index, MIN and MAX together).

A LIMIT does not stop an OFFSET: no query may skip more than COUNT_CAP rows.
"""

import json
import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from readings import admin as readings_admin
from readings.models import Message, Reading

pytestmark = pytest.mark.django_db

BIG_TABLES = {"readings_reading", "readings_message"}


def big_table(relation: str | None) -> str | None:
    """The big table `relation` is, or is a partition of (on PostgreSQL, storage.partitions)."""
    for table in BIG_TABLES:
        if relation == table or (relation or "").startswith(f"{table}_"):
            return table
    return None


def pg_full_scans(sql: str) -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN (FORMAT JSON) {sql}")
        plan = cursor.fetchone()[0]
    plan = json.loads(plan) if isinstance(plan, str) else plan
    found, nodes = [], [plan[0]["Plan"]]
    while nodes:
        node = nodes.pop()
        if node["Node Type"] == "Seq Scan" and big_table(node.get("Relation Name")):
            found.append(f"Seq Scan on {node['Relation Name']}")
        nodes.extend(node.get("Plans", []))
    return found


def sqlite_full_scans(sql: str) -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN QUERY PLAN {sql}")
        details = [row[3] for row in cursor.fetchall()]
    sorts_everything = any(
        d.startswith("USE TEMP B-TREE") and "RIGHT PART" not in d for d in details
    )
    limited = re.search(r"\bLIMIT\b", sql, re.IGNORECASE) and not sorts_everything
    return [d for d in details if (scan := re.match(r"SCAN (?:TABLE )?(\w+)", d))
            and scan[1] in BIG_TABLES and not limited]


def full_scans(sql: str) -> list[str]:
    if connection.vendor == "postgresql":
        return pg_full_scans(sql)
    return sqlite_full_scans(sql)


def offsets(sql: str) -> list[int]:
    return [int(n) for n in re.findall(r"\bOFFSET\s+(\d+)", sql, re.IGNORECASE)]


def big_table_selects(queries) -> list[str]:
    return [q["sql"] for q in queries if q["sql"].lstrip().upper().startswith("SELECT")
            and BIG_TABLES & set(re.findall(r"\w+", q["sql"]))]


@pytest.fixture
def fleet(post_json, monkeypatch):
    """Two devices, two sensors, three quantities; lists of 2 rows a page so
    that every list has pages (and LIMITs, as on a big table)."""
    for n in range(6):
        post_json(f'{{"device":"1A2B3C","time":"{1700000000 + 600 * n}","temp":{n},"hum":40}}')
        post_json(f'{{"device":"BF1327","time":"{1700000000 + 600 * n}","vbat":3.{n}}}', sensor="2")
    for admin_class in (readings_admin.ReadingAdmin, readings_admin.MessageAdmin):
        monkeypatch.setattr(admin_class, "list_per_page", 2)
    return Message.objects.first()


LIST_QUERIES = [
    "", "?p=2", "?p=3", "?q=1a2b", "?q=garden", "?_facets=1",
    "?time__gte=2023-11-14+00:00:00%2B00:00&time__lt=2023-11-15+00:00:00%2B00:00",
    "?device__id__exact=1", "?time__year=2023",
    "?time__year=2023&time__month=11&time__day=14", "?o=1", "?o=-1", "?o=2", "?o=3", "?o=4",
    "?o=5", "?o=-5", "?o=6", "?o=7", "?o=8", "?o=2.1", "?all=", "?time__year=2023&q=1a2b&o=1&p=2",
]
URLS = (
    [f"/admin/readings/reading/{q}" for q in LIST_QUERIES + [
        "?quantity=temp", "?quantity=vbat&p=2", "?sensor=1", "?sensor=2&quantity=vbat&o=1&p=2",
        "?message__id__exact=1",
    ]]
    + [f"/admin/readings/message/{q}" for q in LIST_QUERIES]
    + [f"/admin/readings/{model}/" for model in (
        "device", "devicetype", "downlink", "acknowledge", "sequencegap", "messageconflict",
        "rejection", "deviceevent", "devicelocation",
    )]
)


@pytest.fixture
def seqscans_off():
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            # LOCAL: until the test's transaction is rolled back.
            cursor.execute("SET LOCAL enable_seqscan = off")


@pytest.mark.parametrize("url", URLS)
def test_it_never_scans_a_big_table(admin_client, fleet, seqscans_off, url):
    with CaptureQueriesContext(connection) as queries:
        response = admin_client.get(url)
    assert response.status_code == 200, url
    selects = big_table_selects(queries)
    scans = {sql: found for sql in selects if (found := full_scans(sql))}
    assert not scans, scans
    assert all(n <= readings_admin.COUNT_CAP for sql in selects for n in offsets(sql))


def test_it_never_scans_a_big_table_to_show_one_row(admin_client, fleet, seqscans_off):
    reading = Reading.objects.filter(message=fleet).first()
    for url in [f"/admin/readings/message/{fleet.pk}/change/",
                f"/admin/readings/reading/{reading.pk}/change/",
                f"/admin/readings/device/{fleet.device_id}/change/"]:
        with CaptureQueriesContext(connection) as queries:
            response = admin_client.get(url)
        assert response.status_code == 200, url
        scans = {sql: found for sql in big_table_selects(queries) if (found := full_scans(sql))}
        assert not scans, scans


@pytest.mark.parametrize("url", [
    "/admin/readings/message/?sensor=1", "/admin/readings/message/?ack__exact=1",
    "/admin/readings/reading/?value__gt=3", "/admin/readings/reading/?device__name=Kitchen",
])
def test_it_refuses_a_filter_no_index_answers(admin_client, fleet, url):
    with CaptureQueriesContext(connection) as queries:
        response = admin_client.get(url)
    assert response.status_code == 400
    assert not big_table_selects(queries)


def test_the_check_sees_a_full_scan(fleet, seqscans_off):
    """The checks above assert something: they see the scans the admin used to make."""
    scans = [
        str(Message.objects.order_by("sensor").values_list("sensor").distinct().query),
        str(Reading.objects.order_by("value")[:50].query),
    ]
    if connection.vendor == "postgresql":
        # No index path: seen on PostgreSQL; SQLite's SCAN stops at the LIMIT like a walk.
        scans.append(str(Message.objects.filter(ack=True).order_by()[:50].query))
    else:
        # Whole-index reads, which PostgreSQL's plans for tiny tables do not tell apart.
        scans += [
            str(Reading.objects.order_by("quantity").values_list("quantity").distinct().query),
            'SELECT MIN("time"), MAX("time") FROM "readings_reading"',
        ]
    for sql in scans:
        assert full_scans(sql), sql
    assert not full_scans(str(Reading.objects.order_by("-time")[:50].query))
