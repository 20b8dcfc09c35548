"""The project with the series endpoint's rollups bypassed: every answer is
drawn from the readings, over the same buckets (the rollups' grid) as the
project's own answer from the rollups.

There is no setting for it, and the API has no such parameter: this URL
conf, loaded by bench/series/raw_settings.py once Django's apps are ready,
makes readings.selectors.series.rollups_watermark answer None, which is what
the selector does by itself when the rollups lag too far behind (the worker
stopped, a database fresh from an upgrade). Nothing else changes.
"""

from readings.selectors import series

if not hasattr(series, "rollups_watermark"):
    raise ImportError("readings.selectors.series.rollups_watermark is gone: bench/series/raw.py needs "
                      "another way to bypass the rollups")
series.rollups_watermark = lambda: None

from sigfoxsite.urls import urlpatterns  # noqa: F401
