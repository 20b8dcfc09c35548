#!/usr/bin/env bash
# bench/fleet: the pages and the callbacks of a fleet of 100,000 devices and
# 50,000 series, on PostgreSQL. Options: bench/fleet/run.sh --help; what it
# measures and the results: bench/README.md.
set -euo pipefail
cd "$(dirname "$0")/../.."
command -v wrk >/dev/null || { echo "wrk is missing: apt-get install wrk" >&2; exit 1; }
make --no-print-directory .venv/.installed >/dev/null
exec .venv/bin/python bench/fleet/run.py "$@"
