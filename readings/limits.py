"""What one client may cost: where callbacks may come from, how often, and
how many wrong passwords an account or an address may try."""

import ipaddress
from datetime import timedelta
from functools import lru_cache

from django.conf import settings
from django.shortcuts import render
from rest_framework.exceptions import PermissionDenied
from rest_framework.permissions import BasePermission
from rest_framework.throttling import SimpleRateThrottle

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


@lru_cache(maxsize=8)
def _networks(cidrs: tuple[str, ...]):
    return tuple(ipaddress.ip_network(cidr.strip(), strict=False) for cidr in cidrs if cidr.strip())


def _parse_address(text: str) -> IPAddress | None:
    """An address as a socket or a proxy reports it; None when it is not one.
    IPv4 seen through an IPv6 socket (::ffff:192.0.2.1) is the IPv4 address."""
    try:
        address = ipaddress.ip_address(text.strip())
    except ValueError:
        return None
    if address.version == 6 and address.ipv4_mapped:
        return address.ipv4_mapped
    return address


def _is_trusted_proxy(address: IPAddress, proxies) -> bool:
    return any(address in network for network in proxies)


def client_address(request) -> str:
    """The address of the client, the one every per-address rule uses (the
    callback allowlist, the callback rate limit, the login lockout).

    It is the socket's peer (REMOTE_ADDR), unless the peer is one of
    SIGFOX_TRUSTED_PROXIES: then X-Forwarded-For is read from the right,
    where each trusted proxy appended the address it saw, and the first
    address that is not a trusted proxy is the client. Entries to the left
    of it were written by the client and prove nothing. If every entry is a
    trusted proxy, the left-most is the client; a malformed entry stops the
    walk, and the last good hop (or the peer) is the client.
    """
    peer_text = request.META.get("REMOTE_ADDR", "")
    peer = _parse_address(peer_text)
    proxies = _networks(tuple(settings.SIGFOX_TRUSTED_PROXIES))
    if peer is None or not proxies or not _is_trusted_proxy(peer, proxies):
        return str(peer) if peer is not None else peer_text
    client = peer
    for hop in reversed(request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")):
        address = _parse_address(hop)
        if address is None:
            break
        client = address
        if not _is_trusted_proxy(address, proxies):
            break
    return str(client)


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
        address = _parse_address(client_address(request))
        if address is None or not any(address in network for network in _networks(cidrs)):
            raise PermissionDenied(self.message)
        return True


class CallbackRateThrottle(SimpleRateThrottle):
    """SIGFOX_CALLBACK_RATE (e.g. "600/min") per source address; off when empty.

    Counts live in Django's cache: per process with the default local-memory
    cache, shared between workers with a shared cache (CACHE_URL).
    """

    scope = "callbacks"

    def get_rate(self):
        return settings.SIGFOX_CALLBACK_RATE or None

    def get_ident(self, request):
        # Not DRF's own, which trusts X-Forwarded-For by NUM_PROXIES alone.
        return client_address(request)

    def get_cache_key(self, request, view):
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}


def login_lockout_response(request, original_response=None, credentials=None):
    """What django-axes answers a refused login (AXES_LOCKOUT_CALLABLE): a page
    that says why and for how long, 429 with Retry-After."""
    from axes.helpers import get_cool_off, get_failure_limit

    cool_off = get_cool_off(request)
    context = {
        "failure_limit": get_failure_limit(request, credentials),
        "cool_off_minutes": max(1, round(cool_off / timedelta(minutes=1))) if cool_off else None,
    }
    response = render(request, "registration/locked_out.html", context, status=429)
    if cool_off:
        response["Retry-After"] = str(int(cool_off.total_seconds()))
    return response
