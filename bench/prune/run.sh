#!/usr/bin/env bash
# bench/prune: a month's partition dropped and a shorter retention applied in
# batches while callbacks arrive at a steady rate, on PostgreSQL. Options:
# bench/prune/run.sh --help; what it measures and the results: bench/README.md.
set -euo pipefail
cd "$(dirname "$0")/../.."
make --no-print-directory .venv/.installed >/dev/null
exec .venv/bin/python bench/prune/run.py "$@"
