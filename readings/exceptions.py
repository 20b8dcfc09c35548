"""Errors as JSON for every API view, including the ones DRF does not raise itself."""

from django.conf import settings
from django.core.exceptions import RequestDataTooBig, SuspiciousOperation
from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler


def body_limit_text() -> str:
    """The callback body limit as people read it: "64 KiB"."""
    return f"{settings.SIGFOX_MAX_BODY_BYTES // 1024} KiB"


def exception_handler(exc, context):
    if isinstance(exc, RequestDataTooBig):
        return Response(
            {"detail": f"Request body is larger than {body_limit_text()}."},
            status=status.HTTP_413_REQUEST_ENTITY_TOO_LARGE,
        )
    if isinstance(exc, SuspiciousOperation):
        # Too many fields, a malformed header: the client's fault, said plainly.
        return Response({"detail": f"Bad request: {exc}"}, status=status.HTTP_400_BAD_REQUEST)
    response = drf_exception_handler(exc, context)
    if response is not None:
        response.data = encodable(response.data)
    return response


def encodable(data):
    """The error as UTF-8 can carry it: a message that echoes the input (a name,
    a value) may hold a lone surrogate from JSON's "\\ud800", which the JSON
    renderer cannot encode (a 500 in place of the 400). Shown escaped instead."""
    if isinstance(data, str):
        try:
            data.encode("utf-8")
        except UnicodeEncodeError:
            return data.encode("utf-8", "backslashreplace").decode("utf-8")
        return data
    if isinstance(data, list):
        return [encodable(item) for item in data]
    if isinstance(data, dict):
        return {encodable(key): encodable(value) for key, value in data.items()}
    return data
