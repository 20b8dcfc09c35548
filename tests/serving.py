"""Serving the project for tests the way `make run` does: gunicorn over real HTTP."""

import os
import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import closing, contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def served_env(database_url: str, **extra: str) -> dict[str, str]:
    """A production-like environment (DEBUG off), plain HTTP, nothing from .env."""
    return {
        **{k: v for k, v in os.environ.items() if k in {"PATH", "HOME", "LANG"}},
        "SIGFOXSITE_READ_DOT_ENV": "false",
        "SECRET_KEY": "served-by-the-test-suite-" + "x" * 30,
        "DATABASE_URL": database_url,
        "SECURE_SSL_REDIRECT": "false",
        "SECURE_COOKIES": "false",
        **extra,
    }


# The first SQLite database migrated in a run, copied for the servers after it:
# a migrate costs a couple of seconds, a copy a few milliseconds.
_migrated_sqlite: Path | None = None


def migrate(env: dict[str, str]) -> None:
    global _migrated_sqlite
    url = env["DATABASE_URL"]
    path = Path(url.removeprefix("sqlite:///")) if url.startswith("sqlite:///") else None
    if path is not None and _migrated_sqlite is not None and not path.exists():
        copy_sqlite(_migrated_sqlite, path)
        return
    subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v0"],
                   cwd=ROOT, env=env, check=True, timeout=120)
    if path is not None and _migrated_sqlite is None:
        _migrated_sqlite = path.with_name(f"{path.stem}-migrated{path.suffix}")
        copy_sqlite(path, _migrated_sqlite)


def copy_sqlite(source: Path, target: Path) -> None:
    """Through SQLite's backup API, which reads what is still in the WAL file."""
    import sqlite3

    with closing(sqlite3.connect(source)) as src, closing(sqlite3.connect(target)) as dst:
        src.backup(dst)


@contextmanager
def gunicorn(env: dict[str, str], log_path: Path, *, workers: int = 2, access_log: bool = False,
             root: Path = ROOT, port: int | None = None):
    """Run gunicorn on `port` (default: a free one) until the block ends; yields its base URL.

    `root`: the checkout to serve (another version's, for upgrade tests).
    `port`: to serve again where a server the test stopped was (the callbacks'
    URL stays the same).

    With `access_log`, gunicorn writes its access log to the log file, as
    `make run` does to its output.
    """
    port = free_port() if port is None else port
    executable = Path(sys.executable).with_name("gunicorn")
    command = [str(executable), "sigfoxsite.wsgi", "--config", str(root / "gunicorn.conf.py"),
               "--bind", f"127.0.0.1:{port}", "--workers", str(workers)]
    if access_log:
        command += ["--access-logfile", "-"]
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            command, cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT,
        )
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 30
            while True:
                try:
                    urllib.request.urlopen(f"{url}/healthz", timeout=2).close()
                    break
                except OSError:
                    if process.poll() is not None or time.monotonic() > deadline:
                        raise RuntimeError("gunicorn did not start: " + log_path.read_text()[-2000:])
                    time.sleep(0.2)
            yield url
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def postgres_database(url: str, name: str) -> str:
    """A fresh PostgreSQL database beside the one `url` names; returns its URL."""
    import psycopg

    base = url.rpartition("/")[0]
    with psycopg.connect(url, autocommit=True) as db:
        db.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        db.execute(f"CREATE DATABASE {name}")
    return f"{base}/{name}"


def drop_postgres_database(url: str, database_url: str) -> None:
    """Drop the database `database_url` names, connecting through `url`."""
    import psycopg

    name = database_url.rpartition("/")[2]
    with psycopg.connect(url, autocommit=True) as db:
        db.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
