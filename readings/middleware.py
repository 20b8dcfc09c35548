"""Turn a database outage into a quick 503 instead of a 500."""

import logging

from django.db import InterfaceError, OperationalError, connections
from django.http import JsonResponse

log = logging.getLogger(__name__)


class DatabaseUnavailableMiddleware:
    """Answer 503 with Retry-After when the database cannot be reached.

    The Sigfox backend retries a callback that failed, so a 503 loses
    nothing: the message comes again once the database is back. Broken
    connections are closed so that the next request opens a fresh one.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_exception(self, request, exception):
        if not isinstance(exception, OperationalError | InterfaceError):
            return None
        log.warning("database unavailable for %s %s: %s", request.method, request.path, exception)
        for connection in connections.all(initialized_only=True):
            connection.close_if_unusable_or_obsolete()
            if connection.connection is not None and not connection.is_usable():
                connection.close()
        response = JsonResponse({"detail": "Database unavailable, try again later."}, status=503)
        response["Retry-After"] = "60"
        return response
