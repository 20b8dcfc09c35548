"""The project's settings with /api/series/ answered by the naive reference."""

from sigfoxsite.settings import *

ROOT_URLCONF = "bench.series.naive"
