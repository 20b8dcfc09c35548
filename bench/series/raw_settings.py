"""The project's settings with /api/series/ answering from the readings only (bench/series/raw.py)."""

from sigfoxsite.settings import *

ROOT_URLCONF = "bench.series.raw"
