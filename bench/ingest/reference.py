"""The least a durable receiver can do, as the yardstick for the project.

A bare WSGI app: parse the tutorial's JSON callback, one INSERT (autocommit,
so the row is committed before the answer), answer 204. Each worker thread
keeps its own connection open for the life of the process: what any server
can do cheaply. Whatever the project spends beyond this is framework,
validation, extra queries and bookkeeping.

    DATABASE_URL=postgres://... gunicorn --chdir bench/ingest reference:application

run.py creates the table (reference_callback) before starting it.
"""

import json
import os
import threading

import psycopg

INSERT = (
    "INSERT INTO reference_callback (device, time, temp, body_raw) "
    "VALUES (%s, to_timestamp(%s), %s, %s)"
)
TABLE = """
CREATE TABLE reference_callback (
    id bigserial PRIMARY KEY,
    device varchar(8) NOT NULL,
    time timestamptz NOT NULL,
    temp double precision NOT NULL,
    body_raw text NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now()
)
"""

# One connection per thread, opened after gunicorn forks the worker.
_local = threading.local()


def connection() -> psycopg.Connection:
    if getattr(_local, "connection", None) is None or _local.connection.closed:
        _local.connection = psycopg.connect(os.environ["DATABASE_URL"], autocommit=True)
    return _local.connection


def application(environ, start_response):
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(min(length, 65536))
        data = json.loads(body)
        device, time_s, temp = str(data["device"]).upper(), int(data["time"]), float(data["temp"])
    except (ValueError, KeyError, TypeError):
        start_response("400 Bad Request", [("Content-Type", "text/plain")])
        return [b"could not parse the callback\n"]
    try:
        connection().execute(INSERT, (device, time_s, temp, body.decode()))
    except psycopg.OperationalError:
        _local.connection = None  # reconnect on the next request
        start_response("503 Service Unavailable", [("Content-Type", "text/plain")])
        return [b"database unavailable\n"]
    start_response("204 No Content", [])
    return []
