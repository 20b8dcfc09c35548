"""bench/ingest/serial.py: what one callback costs, one at a time, without HTTP.

Calls the project's WSGI application (or the reference's) in process, N
times in a row, and reports per callback: the wall time, the CPU time of
this process, the CPU time of its PostgreSQL backend, and the queries Django
sent. Unlike run.py's callbacks/s, CPU time hardly moves when other programs
load the machine, so this is the measure to compare two versions of the code.

    .venv/bin/python bench/ingest/serial.py [project|reference] [--count 3000]

It uses the database that run.py creates (BENCH_DATABASE_URL, default
postgres://root@127.0.0.1:5432/sigfoxsite_bench): run run.sh once first.
"""

import argparse
import io
import json
import os
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent


def application(which: str):
    if which == "reference":
        import reference

        return reference.application, lambda: reference.connection().execute(
            "SELECT pg_backend_pid()").fetchone()[0]
    sys.path.insert(0, str(ROOT))
    os.environ.update({"SIGFOXSITE_READ_DOT_ENV": "false", "DEBUG": "false",
                       "SECURE_SSL_REDIRECT": "false", "SECRET_KEY": "bench-serial-" + "x" * 40})
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "sigfoxsite.settings")
    from django.core.wsgi import get_wsgi_application
    from django.db import connection

    app = get_wsgi_application()

    def backend_pid():
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_backend_pid()")
            return cursor.fetchone()[0]

    return app, backend_pid


def environ(body: bytes) -> dict:
    return {
        "REQUEST_METHOD": "POST", "PATH_INFO": "/data/1", "SCRIPT_NAME": "", "QUERY_STRING": "",
        "CONTENT_TYPE": "application/json", "CONTENT_LENGTH": str(len(body)),
        "SERVER_NAME": "127.0.0.1", "SERVER_PORT": "8000", "SERVER_PROTOCOL": "HTTP/1.1",
        "HTTP_HOST": "127.0.0.1:8000", "wsgi.input": io.BytesIO(body), "wsgi.url_scheme": "http",
        "wsgi.errors": sys.stderr, "wsgi.multithread": False, "wsgi.multiprocess": True,
        "wsgi.run_once": False, "wsgi.version": (1, 0),
    }


def cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("which", nargs="?", default="project", choices=["project", "reference"])
    parser.add_argument("--count", type=int, default=3000, help="callbacks measured (default 3000)")
    args = parser.parse_args()
    os.environ.setdefault("DATABASE_URL", os.environ.get(
        "BENCH_DATABASE_URL", "postgres://root@127.0.0.1:5432/sigfoxsite_bench"))
    app, backend_pid = application(args.which)

    queries = [0]
    if args.which == "project":
        from django.db import connection

        def count(execute, sql, params, many, context):
            queries[0] += 1
            return execute(sql, params, many, context)

        connection.ensure_connection()
        connection.execute_wrappers.append(count)

    statuses = []
    first_device = int(time.time()) % 100_000 * 16  # new devices each run
    base_s = int(time.time()) - 86_400

    def send(n: int, offset: int) -> None:
        # 100 devices, so that most callbacks come from a known device.
        for i in range(offset, offset + n):
            body = json.dumps({"device": f"{first_device + i % 100:X}", "time": str(base_s + i),
                               "temp": 20}).encode()
            app(environ(body), lambda status, headers, exc_info=None: statuses.append(status))

    send(200, 0)  # warm-up: imports, connection, the 100 devices
    pid = backend_pid()
    queries[0] = 0
    statuses.clear()
    wall, cpu, pg = time.perf_counter(), time.process_time(), cpu_s(pid)
    send(args.count, 200)
    wall, cpu, pg = time.perf_counter() - wall, time.process_time() - cpu, cpu_s(pid) - pg
    if backend_pid() != pid:
        sys.exit("the database connection changed during the run: PostgreSQL CPU not measured")
    failed = sum(not status.startswith("2") for status in statuses)
    per = 1000 / args.count
    print(f"{args.which}: {args.count} callbacks one at a time: wall {wall * per:.2f} ms, "
          f"python CPU {cpu * per:.2f} ms, postgres CPU {pg * per:.2f} ms, "
          f"total CPU {(cpu + pg) * per:.2f} ms per callback"
          + (f", {queries[0] / args.count:.1f} Django queries" if args.which == "project" else "")
          + (f"; {failed} not 2xx" if failed else ""))
    if failed:
        sys.exit(1)


if __name__ == "__main__":
    main()
