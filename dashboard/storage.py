"""Static files as served in production: hashed names, compressed copies."""

from whitenoise.storage import CompressedManifestStaticFilesStorage


class StaticFilesStorage(CompressedManifestStaticFilesStorage):
    """Also rewrites the imports between the chart pages' JavaScript modules
    (static/dashboard/js/) to hashed names, as it does for url() in CSS: a
    browser caches a module forever, so its address must change with it."""

    support_js_module_import_aggregation = True
