"""The storage status page for staff (GET /status/storage/) and what it
shows: sizes per table, partitions, the oldest and newest data kept, the
retention policy and runs (storage/status.py)."""

from datetime import UTC, datetime, timedelta

import pytest
from django.conf import settings
from django.utils import timezone

from readings.models import Rollup, RollupResolution
from storage import status as storage_status_module
from storage.models import RetentionRun
from storage.partitions import PARTITIONED_TABLES, partitions_list
from storage.status import storage_status
from tests.helpers import T0, minutes, store

pytestmark = pytest.mark.django_db

URL = "/status/storage/"
ON_POSTGRES = settings.DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql"
postgres_only = pytest.mark.skipif(
    not ON_POSTGRES, reason="partitions exist on PostgreSQL only; CI runs the suite again on PostgreSQL")
sqlite_only = pytest.mark.skipif(ON_POSTGRES, reason="SQLite's way of measuring tables")


@pytest.fixture
def readings_stored():
    """Two devices: the oldest reading (T0 - 40 days) and the newest (T0 + 2 h) on different ones."""
    store("1A2B3C", minutes(120, start=T0))
    store("4D5E6F", [(T0 - timedelta(days=40), 1.0), (T0 - timedelta(days=39), 2.0)], quantity="hum")
    return T0 - timedelta(days=40), T0 + timedelta(minutes=119)


def rollup(resolution: RollupResolution, start: datetime, device) -> Rollup:
    epoch = start.timestamp()
    return Rollup.objects.create(device=device, sensor="1", quantity="temp", resolution_s=resolution,
                                 start=start, count=1, sum=1.0, first_epoch_s=epoch, first=1.0,
                                 min_epoch_s=epoch, min=1.0, max_epoch_s=epoch, max=1.0,
                                 last_epoch_s=epoch, last=1.0)


@pytest.fixture
def retention_runs():
    started = timezone.now() - timedelta(hours=1)
    RetentionRun.objects.create(started_at=started - timedelta(days=1), finished_at=started - timedelta(days=1),
                                trigger="prunereadings")
    return RetentionRun.objects.create(
        started_at=started, finished_at=started + timedelta(seconds=90), trigger="runworker",
        partitions_dropped=["readings_reading_p20250101", "readings_message_p20250101"],
        readings_deleted=123456, messages_deleted=41152, bodies_cleared=7, rollups_deleted=3,
        error="could not lock the partitioned tables",
    )


# Who may see it


def test_it_sends_a_visitor_to_the_login_page(client):
    response = client.get(URL)
    assert response.status_code == 302
    assert response["Location"] == f"/accounts/login/?next={URL}"


def test_it_refuses_a_user_who_is_not_staff(client, django_user_model):
    client.force_login(django_user_model.objects.create_user("reader"))
    assert client.get(URL).status_code == 403


def test_staff_who_are_not_superusers_see_it(client, django_user_model):
    client.force_login(django_user_model.objects.create_user("ops", is_staff=True))
    assert client.get(URL).status_code == 200


def test_the_admin_index_links_to_it(admin_client):
    page = admin_client.get("/admin/").content.decode()
    assert f'href="{URL}"' in page
    assert "app-readings" in page  # the apps are still listed below it


# What it shows


def test_it_shows_the_tables_sizes_data_kept_and_last_retention_run(admin_client, readings_stored,
                                                                    retention_runs):
    response = admin_client.get(URL)
    assert response.status_code == 200
    page = response.content.decode()
    for table in ("readings_reading", "readings_message", "readings_rollup", "storage_retentionrun",
                  "alerts_devicehealth"):
        assert f'data-table="{table}"' in page
    assert "auth_user" not in page  # Django's own tables are not the project's
    oldest, newest = readings_stored
    assert timezone.localtime(oldest).strftime("%Y-%m-%d %H:%M:%S") in page
    assert timezone.localtime(newest).strftime("%Y-%m-%d %H:%M:%S") in page
    # The last run, what it removed and its error; the one before it too.
    assert "123456 readings, 41152 messages, 3 rollups, 7 bodies cleared" in page
    assert "readings_reading_p20250101, readings_message_p20250101" in page
    assert "could not lock the partitioned tables" in page
    assert "1 min 30 s" in page
    assert "prunereadings" in page
    assert "ago" in page.split('id="retention-last"')[1].split("</dd>")[0]


def test_it_says_when_retention_never_ran(admin_client):
    page = admin_client.get(URL).content.decode()
    assert 'id="retention-runs-none"' in page
    assert "never" in page.split('id="retention-last"')[1].split("</dd>")[0]


def test_it_shows_the_sites_policy(admin_client, settings):
    settings.SIGFOX_RAW_RETENTION_DAYS, settings.SIGFOX_BODY_RETENTION_DAYS = 365, 30
    page = admin_client.get(URL).content.decode()
    policy = page.split('id="retention-policy"')[1].split("</dl>")[0]
    assert "365 days" in policy and "30 days" in policy and "forever" in policy  # rollups: forever


def test_the_sizes_of_tables_with_rows_are_numbers_above_zero(readings_stored):
    status = storage_status()
    tables = {t.table: t for t in status.tables}
    for table in ("readings_reading", "readings_message", "readings_device"):
        assert isinstance(tables[table].bytes, int) and tables[table].bytes > 0
        assert tables[table].index_bytes > 0
    assert status.database_bytes >= sum(t.bytes for t in status.tables)
    assert status.tables_bytes > 0


def test_the_oldest_and_newest_data_kept_are_those_stored(readings_stored):
    oldest, newest = readings_stored
    device = store("777777", [])
    for start in (datetime(2025, 3, 1, 5, tzinfo=UTC), datetime(2025, 3, 2, 7, tzinfo=UTC)):
        rollup(RollupResolution.HOUR, start, device)
    rollup(RollupResolution.DAY, datetime(2025, 3, 1, tzinfo=UTC), device)
    spans = {s.kind: s for s in storage_status().spans}
    assert (spans["readings"].oldest, spans["readings"].newest) == (oldest, newest)
    assert (spans["messages"].oldest, spans["messages"].newest) == (oldest, newest)
    assert spans["hourly rollups"].oldest == datetime(2025, 3, 1, 5, tzinfo=UTC)
    assert spans["hourly rollups"].newest == datetime(2025, 3, 2, 7, tzinfo=UTC)
    assert spans["daily rollups"].oldest == spans["daily rollups"].newest == datetime(2025, 3, 1, tzinfo=UTC)


def test_with_no_data_there_is_no_oldest(admin_client):
    spans = storage_status().spans
    assert all(s.oldest is None and s.newest is None for s in spans)
    assert admin_client.get(URL).status_code == 200


def test_it_reads_no_table_whole(readings_stored, django_assert_max_num_queries):
    # A fixed number of statements whatever the data: catalogues, index ends, the runs.
    with django_assert_max_num_queries(60 if not ON_POSTGRES else 20):
        storage_status()


@postgres_only
def test_it_lists_the_partitions_on_postgresql(admin_client, readings_stored):
    page = admin_client.get(URL).content.decode()
    status = storage_status()
    names = [p.name for table in PARTITIONED_TABLES for p in partitions_list(table)]
    assert names and [p.name for p in status.partitions] == names
    for name in names:
        assert f'data-partition="{name}"' in page
    default = next(p for p in status.partitions if p.name == "readings_reading_default")
    assert default.kind == "default"
    # T0 (2026-01-01) has no partition of its own in a fresh test database: its rows are in
    # the default partition, which therefore holds bytes.
    assert default.bytes > 0
    assert 'data-partition="readings_reading_default" data-kind="default"' in page
    assert {t.table: t.partitioned for t in status.tables}["readings_reading"] is True


@sqlite_only
def test_on_sqlite_it_counts_rows_and_measures_tables_with_dbstat(readings_stored):
    status = storage_status()
    tables = {t.table: t for t in status.tables}
    assert status.per_table and not status.partitions
    assert (tables["readings_reading"].rows, tables["readings_reading"].rows_capped) == (122, False)
    assert tables["readings_device"].rows == 2


@sqlite_only
def test_on_sqlite_a_database_too_large_for_dbstat_shows_its_size_only(admin_client, readings_stored,
                                                                       monkeypatch):
    monkeypatch.setattr(storage_status_module, "SQLITE_DBSTAT_MAX_BYTES", 0)
    monkeypatch.setattr(storage_status_module, "SQLITE_COUNT_CAP", 100)
    status = storage_status()
    assert not status.per_table and status.tables_bytes is None
    assert all(t.bytes is None for t in status.tables)
    reading = next(t for t in status.tables if t.table == "readings_reading")
    assert (reading.rows, reading.rows_capped) == (100, True)
    page = admin_client.get(URL).content.decode()
    assert 'id="sizes-note"' in page and "only its size is given" in page
    assert "more than 100" in page
