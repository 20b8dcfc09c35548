"""Upgrading an installation made by the release before time partitions and
rollups: its database, filled through its own server with weeks of history,
migrates to this schema with every row kept, then takes callbacks, builds
rollups and applies retention.

The old release is taken from this repository's history (git archive) and
served by gunicorn from its own tree, as a user's installation would be.
It runs in the suite's PostgreSQL pass, on a database of its own, where the
tables become partitioned with the history in the legacy partition; with
UPGRADE_TEST_SQLITE=1 also on a SQLite file (it passes there too).
"""

import json
import os
import subprocess
import sys
import io
import tarfile
import time
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.conftest import Server, missing_dependency
from tests.serving import ROOT, drop_postgres_database, gunicorn, postgres_database, served_env

pytestmark = pytest.mark.http

# The last commit of main before issue 13 (partitions, rollups, retention).
UPGRADE_FROM = "d029936"


def manage(root: Path, env: dict[str, str], *args: str) -> str:
    done = subprocess.run([sys.executable, "manage.py", *args], cwd=root, env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


@pytest.fixture
def old_release(tmp_path) -> Path:
    archive = subprocess.run(["git", "archive", "--format=tar", UPGRADE_FROM], cwd=ROOT,
                             capture_output=True, timeout=60)
    if archive.returncode != 0:
        missing_dependency(f"git history with {UPGRADE_FROM} (a full clone): "
                           + archive.stderr.decode()[-300:])
    tree = tmp_path / "old"
    with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
        tar.extractall(tree, filter="data")
    return tree


@pytest.fixture
def database_url(tmp_path):
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith(("postgres://", "postgresql://")):
        if not os.environ.get("UPGRADE_TEST_SQLITE"):
            # Twenty seconds of subprocesses; the suite's PostgreSQL pass runs it,
            # where the tables change most. UPGRADE_TEST_SQLITE=1 runs it here.
            pytest.skip("runs in the PostgreSQL pass (or with UPGRADE_TEST_SQLITE=1)")
        yield f"sqlite:///{tmp_path / 'installed.sqlite3'}"
        return
    installed = postgres_database(url, f"sigfoxsite_upgrade_{os.getpid()}")
    yield installed
    drop_postgres_database(url, installed)


def test_an_installation_of_the_previous_release_upgrades_with_its_history(
        old_release, database_url, tmp_path):
    env = served_env(database_url)
    manage(old_release, env, "migrate", "--noinput", "-v0")
    with gunicorn(env, tmp_path / "old.log", workers=1, root=old_release) as url:
        # Six weeks of two devices every four hours: history across months.
        manage(ROOT, env, "simulate", "--url", url, "--devices", "2", "--interval", "14400",
               "--backfill", "42", "--seed", "7", "--concurrency", "4")
    db = Server(url="", database_url=database_url, log_path=tmp_path / "old.log")
    before = db.query("SELECT count(*) FROM readings_message"), db.query("SELECT count(*) FROM readings_reading")
    assert before[0] >= 2 * 6 * 41 and before[1] >= before[0]
    readings_before = db.query(
        "SELECT d.sigfox_id, r.sensor, r.quantity, r.value, r.time FROM readings_reading r "
        "JOIN readings_device d ON d.id = r.device_id ORDER BY d.sigfox_id, r.time, r.quantity")

    manage(ROOT, env, "migrate", "--noinput", "-v0")

    assert db.query("SELECT count(*) FROM readings_message") == before[0]
    assert db.query(
        "SELECT d.sigfox_id, r.sensor, r.quantity, r.value, r.time FROM readings_reading r "
        "JOIN readings_device d ON d.id = r.device_id ORDER BY d.sigfox_id, r.time, r.quantity"
    ) == readings_before
    if database_url.startswith("postgres"):
        for table, rows in zip(("readings_message", "readings_reading"), before):
            assert db.query(f"SELECT relkind FROM pg_class WHERE relname = '{table}'") == "p"
            # The history stays where it was, as the legacy partition.
            assert db.query(f"SELECT count(*) FROM ONLY {table}_legacy") == rows

    # The upgraded installation takes callbacks, rolls its history up, and keeps
    # to a retention policy of 30 days: what goes was rolled up first.
    env = {**env, "PUBLIC_DASHBOARD": "true", "SIGFOX_RAW_RETENTION_DAYS": "30",
           "SIGFOX_RETENTION_INTERVAL_S": "0.1"}
    with gunicorn(env, tmp_path / "new.log", workers=1) as url:
        request = urllib.request.Request(
            f"{url}/data/1", data=json.dumps({"device": "5F0000", "time": str(int(time.time())), "temp": 4.5}).encode(),
            headers={"Content-Type": "application/json"}, method="POST")
        with urllib.request.urlopen(request, timeout=10) as answer:
            assert answer.status == 204
        for _ in range(3):  # the rollups take new readings one pass after they are seen
            manage(ROOT, env, "runworker", "--once")
        # Times as each database writes them: text in UTC on SQLite, compared as text.
        cutoff = f"{datetime.now(UTC) - timedelta(days=30, minutes=5):%Y-%m-%d %H:%M:%S}"
        cutoff = cutoff + "+00" if database_url.startswith("postgres") else cutoff
        for table in ("readings_message", "readings_reading"):
            assert db.query(f"SELECT count(*) FROM {table} WHERE time < '{cutoff}'") == 0
        assert 0 < db.query("SELECT count(*) FROM readings_reading") < before[1]
        # Every reading ever stored is in the rollups, those retention removed included.
        for resolution_s in (3600, 86400):
            assert db.query(f"SELECT sum(count) FROM readings_rollup WHERE resolution_s = {resolution_s}") \
                == before[1] + 1
        assert db.query("SELECT count(*) FROM storage_retentionrun WHERE error = ''") >= 1
        with urllib.request.urlopen(
                f"{url}/api/series/?device=5F0001&quantity=temp&since=2026-01-01T00:00:00Z", timeout=10) as answer:
            series = json.load(answer)
        assert series["source"].startswith("rollup"), series["source"]
        assert series["count"] == db.query(
            "SELECT sum(count) FROM readings_rollup r JOIN readings_device d ON d.id = r.device_id "
            "WHERE d.sigfox_id = '5F0001' AND r.quantity = 'temp' AND r.resolution_s = 3600")
