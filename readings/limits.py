"""What one client may cost: where callbacks may come from, and how often."""

import ipaddress
from functools import lru_cache

from django.conf import settings
from rest_framework.exceptions import PermissionDenied
from rest_framework.permissions import BasePermission
from rest_framework.throttling import SimpleRateThrottle


@lru_cache(maxsize=8)
def _networks(cidrs: tuple[str, ...]):
    return tuple(ipaddress.ip_network(cidr, strict=False) for cidr in cidrs)


class FromAllowedNetwork(BasePermission):
    """With SIGFOX_CALLBACK_NETWORKS set (the Sigfox range is 185.110.96.0/22),
    refuse callbacks from any other address."""

    message = "Callbacks are not accepted from this address."

    def has_permission(self, request, view):
        cidrs = tuple(settings.SIGFOX_CALLBACK_NETWORKS)
        if not cidrs:
            return True
        # Raised here rather than returning False: DRF would answer an
        # unauthenticated request 401, and no token fixes a wrong address.
        try:
            address = ipaddress.ip_address(client_address(request))
        except ValueError:
            raise PermissionDenied(self.message) from None
        if not any(address in network for network in _networks(cidrs)):
            raise PermissionDenied(self.message)
        return True


def client_address(request) -> str:
    """The client's address; behind a TLS proxy, the one the proxy reports."""
    if settings.BEHIND_TLS_PROXY:
        forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
        if forwarded:
            # The proxy appends the address it saw: the last entry is the one to trust.
            return forwarded.split(",")[-1].strip()
    return request.META.get("REMOTE_ADDR", "")


class CallbackRateThrottle(SimpleRateThrottle):
    """SIGFOX_CALLBACK_RATE (e.g. "600/min") per source address; off when empty.

    Counts live in Django's cache: per process with the default local-memory
    cache, shared between workers with a shared cache (CACHE_URL).
    """

    scope = "callbacks"

    def get_rate(self):
        return settings.SIGFOX_CALLBACK_RATE or None

    def get_cache_key(self, request, view):
        return self.cache_format % {"scope": self.scope, "ident": client_address(request)}
