import os
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import settings as hypothesis_settings

from readings.models import Device, Message, Reading
from tests.serving import (
    drop_postgres_database,
    gunicorn,
    migrate,
    postgres_database,
    served_env,
)

TUTORIAL_BODY = '{"device":"1A2B3C","time":"1700000000","temp":21}'

# Hypothesis profiles: "dev" is quick for a run by hand, "ci" (hypothesis's own
# CI profile: derandomized, no deadline) runs twice as many cases.
# HYPOTHESIS_PROFILE picks one; CI=true picks "ci". Tests that need more cases
# than most ask for a multiple of the profile's max_examples, so both scale.
# Loaded here, before the test modules build their settings from it.
hypothesis_settings.register_profile("dev", max_examples=50, deadline=None)
hypothesis_settings.register_profile("ci", hypothesis_settings.get_profile("ci"), max_examples=100)
hypothesis_settings.load_profile(
    os.environ.get("HYPOTHESIS_PROFILE") or ("ci" if os.environ.get("CI") == "true" else "dev")
)


def pytest_collection_modifyitems(items):
    # Whatever asks for the gunicorn `server` is served over HTTP, wherever it lives.
    for item in items:
        if "server" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.http)


@pytest.fixture(autouse=True)
def _plain_http(settings):
    # The test client speaks plain HTTP; production's HTTPS redirect is
    # covered by the deploy-check test.
    settings.SECURE_SSL_REDIRECT = False


@pytest.fixture(autouse=True)
def _static_files_found_on_request(settings):
    # Each test's client builds the middleware anew, and WhiteNoise would stat
    # and index every collected static file each time (a fifth of a second a
    # test). No in-process test fetches a static file; tests/project/test_server.py
    # checks WhiteNoise as production serves.
    settings.WHITENOISE_AUTOREFRESH = True


@pytest.fixture
def post_json(client):
    def post(body: str, sensor: str = "1", **extra):
        return client.post(f"/data/{sensor}", body, content_type="application/json", **extra)

    return post


@pytest.fixture
def stored():
    """Counts of what is in the database, to assert that nothing was stored."""

    def counts() -> tuple[int, int, int]:
        return Device.objects.count(), Message.objects.count(), Reading.objects.count()

    return counts


def missing_dependency(reason: str):
    """Skip on a user's machine that lacks a dependency; fail in CI, which must have it."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI must provide this: {reason}")
    pytest.skip(reason)


@dataclass
class Server:
    url: str
    database_url: str
    log_path: Path

    def query(self, sql: str):
        """Run SQL against the served database (its own, not the test database)."""
        if self.database_url.startswith("sqlite"):
            import sqlite3

            with sqlite3.connect(self.database_url.removeprefix("sqlite:///")) as db:
                rows = db.execute(sql).fetchall()
        else:
            import psycopg

            with psycopg.connect(self.database_url, autocommit=True) as db:
                rows = db.execute(sql).fetchall()
        return rows[0][0] if len(rows) == 1 and len(rows[0]) == 1 else rows


def _server_database(tmp_dir: Path) -> str:
    """A database of the server's own: a SQLite file, or a fresh PostgreSQL
    database beside the test one when the suite runs on PostgreSQL (named
    after this process, so that two runs on one server do not collide)."""
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith(("postgres://", "postgresql://")):
        return f"sqlite:///{tmp_dir / 'served.sqlite3'}"
    return postgres_database(url, f"sigfoxsite_served_{os.getpid()}")


@pytest.fixture(scope="session")
def server(tmp_path_factory):
    """gunicorn serving the project the way `make run` does, on a free port."""
    tmp_dir = tmp_path_factory.mktemp("served")
    env = served_env(_server_database(tmp_dir), PUBLIC_DASHBOARD="true", TIME_ZONE="Europe/Paris")
    migrate(env)
    log_path = tmp_dir / "gunicorn.log"
    with gunicorn(env, log_path) as url:
        yield Server(url=url, database_url=env["DATABASE_URL"], log_path=log_path)
    if env["DATABASE_URL"].startswith("postgres"):
        drop_postgres_database(os.environ["DATABASE_URL"], env["DATABASE_URL"])


# Sigfox callbacks as the backend sends them (issue 3): every encoding, every table.
@pytest.fixture(
    params=[
        "json",  # POST application/json, values as JSON types
        "json-strings",  # POST application/json, every scalar quoted ("true", "12", "null")
        "form",  # POST application/x-www-form-urlencoded (the backend's default)
        "text-json",  # POST text/plain holding JSON
        "text-form",  # POST text/plain holding form fields
        "put-json",
        "put-form",
        "put-text-form",
        "get",  # GET, variables in the query string
    ]
)
def callback_encoding(request):
    """Each way the Sigfox backend can deliver the same callback variables."""
    return request.param


@pytest.fixture
def send_callback(client):
    """send(path, variables, encoding="json", client=..., query="", **extra): the response.

    `variables` holds Python values; every encoding but "json" renders scalars
    as the backend substitutes them into a template: true/false, null, digits.
    Lists and dicts (duplicates, computedLocation) stay JSON in a JSON body and
    become JSON text in a form or query string. `query` is appended to the URL
    (?token=...), `extra` goes to the test client (headers=...).
    """
    import json
    from urllib.parse import urlencode

    from tests.fuzzing import as_text

    def as_json(variables: dict, quoted: bool) -> str:
        if not quoted:
            return json.dumps(variables)
        return json.dumps(
            {k: v if isinstance(v, list | dict) else as_text(v) for k, v in variables.items()}
        )

    def send(path, variables, encoding="json", *, client=client, query="", **extra):
        form = urlencode({k: as_text(v) for k, v in variables.items()})
        method = "PUT" if encoding.startswith("put-") else "POST"
        kind = encoding.removeprefix("put-")
        bodies = {
            "json": (as_json(variables, quoted=False), "application/json"),
            "json-strings": (as_json(variables, quoted=True), "application/json"),
            "form": (form, "application/x-www-form-urlencoded"),
            "text-json": (as_json(variables, quoted=False), "text/plain"),
            "text-form": (form, "text/plain"),
        }
        if encoding == "get":
            joined = "&".join(part for part in (form, query) if part)
            return client.get(f"{path}?{joined}", **extra)
        body, content_type = bodies[kind]
        url = f"{path}?{query}" if query else path
        return client.generic(method, url, body, content_type=content_type, **extra)

    return send


@pytest.fixture
def stored_rows():
    """Row counts of every table a callback writes, to assert that nothing was stored."""
    from readings.models import (
        Acknowledge,
        DeviceType,
        Downlink,
        Reception,
        SequenceGap,
    )

    models = (Device, DeviceType, Message, Reading, Reception, SequenceGap, Downlink, Acknowledge)

    def counts() -> dict[str, int]:
        return {model.__name__: model.objects.count() for model in models}

    return counts
