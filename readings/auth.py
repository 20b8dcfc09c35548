"""The shared secret that Sigfox callbacks carry when SIGFOX_CALLBACK_TOKEN is set."""

import base64
import binascii
import hmac

from django.conf import settings
from rest_framework.authentication import BaseAuthentication
from rest_framework.exceptions import AuthenticationFailed


def presented_tokens(request) -> list[str]:
    """Every place the backend can put the token: the Authorization header
    (Bearer, or Basic with the token as password) and ?token= in the URL."""
    tokens = []
    header = request.META.get("HTTP_AUTHORIZATION", "")
    scheme, _, credentials = header.partition(" ")
    if scheme.lower() == "bearer":
        tokens.append(credentials.strip())
    elif scheme.lower() == "basic":
        try:
            decoded = base64.b64decode(credentials.strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            decoded = ""
        tokens.append(decoded.partition(":")[2])
    if "token" in request.GET:
        tokens.append(request.GET["token"])
    return tokens


class CallbackTokenAuthentication(BaseAuthentication):
    """Accepts the request when a presented token matches, compared in constant time."""

    def authenticate(self, request):
        expected = settings.SIGFOX_CALLBACK_TOKEN
        if not expected:
            return None
        expected_bytes = expected.encode()
        # Compare every presented token, so timing does not tell which was tried.
        matched = False
        for token in presented_tokens(request):
            matched |= hmac.compare_digest(token.encode(), expected_bytes)
        if not matched:
            raise AuthenticationFailed("Missing or wrong callback token.")
        return (None, "sigfox-callback")

    def authenticate_header(self, request):
        return 'Bearer realm="sigfox-callbacks"'
