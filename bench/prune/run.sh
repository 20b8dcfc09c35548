#!/usr/bin/env bash
# bench/prune: prunereadings deleting a million old readings while wrk sends
# callbacks, on PostgreSQL. Options: bench/prune/run.sh --help; what it
# measures and the results: bench/README.md.
set -euo pipefail
cd "$(dirname "$0")/../.."
command -v wrk >/dev/null || { echo "wrk is missing: apt-get install wrk" >&2; exit 1; }
make --no-print-directory .venv/.installed >/dev/null
exec .venv/bin/python bench/prune/run.py "$@"
