#!/usr/bin/env bash
# bench/ingest: the project against a minimal reference receiver, on PostgreSQL,
# loaded by wrk at 16 and 64 connections. Options: bench/ingest/run.sh --help;
# what it measures and the results: bench/README.md.
set -euo pipefail
cd "$(dirname "$0")/../.."
command -v wrk >/dev/null || { echo "wrk is missing: apt-get install wrk" >&2; exit 1; }
make --no-print-directory .venv/.installed >/dev/null
exec .venv/bin/python bench/ingest/run.py "$@"
