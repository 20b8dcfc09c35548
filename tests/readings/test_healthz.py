import pytest
from django.db import connections
from django.db.utils import load_backend


@pytest.mark.django_db
def test_it_answers_200_with_the_database_up(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok"}


@pytest.fixture
def unreachable_database():
    """Swap the default connection for one to a database that cannot be opened:
    a real failure to connect, not a mocked one."""
    original = connections["default"]
    broken = original.settings_dict.copy()
    if original.vendor == "sqlite":
        broken["NAME"] = "/nonexistent/dir/db.sqlite3"
    else:
        broken["PORT"] = "1"
    connections["default"] = load_backend(broken["ENGINE"]).DatabaseWrapper(broken, "default")
    try:
        yield
    finally:
        connections["default"].close()
        connections["default"] = original


@pytest.mark.django_db
def test_it_answers_503_without_the_database(client, unreachable_database):
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json() == {"status": "error", "database": "unreachable"}
