"""Serving the project for tests the way `make run` does: gunicorn over real HTTP."""

import os
import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
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


def migrate(env: dict[str, str]) -> None:
    subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v0"],
                   cwd=ROOT, env=env, check=True, timeout=120)


@contextmanager
def gunicorn(env: dict[str, str], log_path: Path, *, workers: int = 2, access_log: bool = False):
    """Run gunicorn on a free port until the block ends; yields its base URL.

    With `access_log`, gunicorn writes its access log to the log file, as
    `make run` does to its output.
    """
    port = free_port()
    executable = Path(sys.executable).with_name("gunicorn")
    command = [str(executable), "sigfoxsite.wsgi", "--config", str(ROOT / "gunicorn.conf.py"),
               "--bind", f"127.0.0.1:{port}", "--workers", str(workers)]
    if access_log:
        command += ["--access-logfile", "-"]
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
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
