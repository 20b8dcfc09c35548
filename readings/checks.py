"""System checks: warn when callbacks are open to anyone or a proxy hides every client,
refuse a bad payload config or address list."""

import ipaddress
import logging

from django.conf import settings
from django.core import checks

from readings import payload

log = logging.getLogger("readings")

OPEN_CALLBACKS = (
    "SIGFOX_CALLBACK_TOKEN is not set: anyone who knows the URL can post readings. "
    "Set it and add the token to the Sigfox callback (see README, 'Authentication')."
)


@checks.register(checks.Tags.security, deploy=True)
def check_callback_token(app_configs=None, **kwargs):
    if settings.SIGFOX_CALLBACK_TOKEN:
        return []
    return [checks.Warning(OPEN_CALLBACKS, id="readings.W001")]


@checks.register()
def check_payload_config(app_configs=None, **kwargs):
    config = settings.SIGFOX_PAYLOAD_CONFIG
    if not config.strip():
        return []
    try:
        payload.parse_config(config)
    except payload.PayloadError as exc:
        return [checks.Error(f"SIGFOX_PAYLOAD_CONFIG is not valid: {exc}", id="readings.E001")]
    found = []
    changed = payload.legacy_meaning_changed(config)
    if changed:
        found.append(checks.Warning(
            f"SIGFOX_PAYLOAD_CONFIG reads differently since the payload grammar follows the "
            f"Sigfox backend (bitOffset): {changed}",
            hint="Check the config with manage.py decodepayload, then run manage.py redecode.",
            id="readings.W002",
        ))
    wide = payload.wide_fields(config)
    if wide:
        found.append(checks.Warning(
            f"SIGFOX_PAYLOAD_CONFIG: {', '.join(wide)} can exceed 2^53; readings hold the nearest "
            "float and the exact integer is kept with each message.",
            id="readings.W003",
        ))
    return found


@checks.register()
def check_networks(app_configs=None, **kwargs):
    """A typo in an address list would answer every request 500 at run time."""
    found = []
    for name in ("SIGFOX_TRUSTED_PROXIES", "SIGFOX_CALLBACK_NETWORKS"):
        for entry in getattr(settings, name):
            try:
                ipaddress.ip_network(entry.strip(), strict=False)
            except ValueError:
                found.append(checks.Error(
                    f"{name}: {entry!r} is not an IP address or network (CIDR).",
                    id="readings.E002",
                ))
    return found


@checks.register(checks.Tags.security, deploy=True)
def check_proxy_trust(app_configs=None, **kwargs):
    if settings.BEHIND_TLS_PROXY and not settings.SIGFOX_TRUSTED_PROXIES:
        return [checks.Warning(
            "BEHIND_TLS_PROXY is set but SIGFOX_TRUSTED_PROXIES is empty: every client has the "
            "proxy's address, so one client's failed logins lock everyone out and the callback "
            "rate limit and networks apply to the proxy.",
            hint="Set SIGFOX_TRUSTED_PROXIES to the proxy's address (README, 'Running in "
                 "production').",
            id="readings.W004",
        )]
    return []


def warn_if_open() -> None:
    """Say it in the server log at start, where whoever runs the server looks."""
    if not settings.SIGFOX_CALLBACK_TOKEN:
        log.warning(OPEN_CALLBACKS)
