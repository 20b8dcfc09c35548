"""WSGI entry point, as served by gunicorn (`gunicorn sigfoxsite.wsgi`)."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "sigfoxsite.settings")

application = get_wsgi_application()

from readings.checks import warn_if_open  # noqa: E402  (needs the app registry)

warn_if_open()
