#!/usr/bin/env bash
# bench/login: callbacks while 8 clients send wrong admin passwords, with and
# without the login lockout, on PostgreSQL. Options: bench/login/run.sh --help;
# what it measures and the results: bench/README.md.
set -euo pipefail
cd "$(dirname "$0")/../.."
command -v wrk >/dev/null || { echo "wrk is missing: apt-get install wrk" >&2; exit 1; }
make --no-print-directory .venv/.installed >/dev/null
exec .venv/bin/python bench/login/run.py "$@"
