"""What one client may cost: allowed networks, the client address behind proxies, rate limit,
field count, size, depth."""

import json

import pytest
from django.core.cache import cache

from readings.limits import client_address
from readings.models import Message
from tests.conftest import TUTORIAL_BODY

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fresh_counters():
    cache.clear()
    yield
    cache.clear()


def body(n: int) -> str:
    return json.dumps({"device": "1A2B3C", "time": str(1700000000 + 600 * n), "temp": n})


def test_it_accepts_callbacks_from_the_sigfox_range(post_json, settings):
    settings.SIGFOX_CALLBACK_NETWORKS = ["185.110.96.0/22"]
    assert post_json(TUTORIAL_BODY, REMOTE_ADDR="185.110.97.12").status_code == 204


def test_it_refuses_callbacks_from_elsewhere(post_json, settings, stored):
    settings.SIGFOX_CALLBACK_NETWORKS = ["185.110.96.0/22"]
    response = post_json(TUTORIAL_BODY, REMOTE_ADDR="203.0.113.9")
    assert response.status_code == 403
    assert response.json() == {"detail": "Callbacks are not accepted from this address."}
    assert stored() == (0, 0, 0)


def test_it_ignores_forwarded_headers_without_a_proxy(post_json, settings):
    settings.SIGFOX_CALLBACK_NETWORKS = ["185.110.96.0/22"]
    response = post_json(TUTORIAL_BODY, REMOTE_ADDR="203.0.113.9", HTTP_X_FORWARDED_FOR="185.110.99.1")
    assert response.status_code == 403


def test_it_trusts_no_forwarded_header_for_behind_tls_proxy_alone(post_json, settings):
    # The forged-header bypass: BEHIND_TLS_PROXY used to make X-Forwarded-For trusted.
    settings.SIGFOX_CALLBACK_NETWORKS = ["185.110.96.0/22"]
    settings.BEHIND_TLS_PROXY = True
    response = post_json(TUTORIAL_BODY, REMOTE_ADDR="203.0.113.9", HTTP_X_FORWARDED_FOR="185.110.99.1")
    assert response.status_code == 403


def test_it_reads_the_client_address_from_a_trusted_proxy(post_json, settings):
    settings.SIGFOX_CALLBACK_NETWORKS = ["185.110.96.0/22"]
    settings.SIGFOX_TRUSTED_PROXIES = ["127.0.0.1"]
    ok = post_json(body(1), REMOTE_ADDR="127.0.0.1", HTTP_X_FORWARDED_FOR="185.110.99.1")
    elsewhere = post_json(body(2), REMOTE_ADDR="127.0.0.1", HTTP_X_FORWARDED_FOR="203.0.113.9")
    assert (ok.status_code, elsewhere.status_code) == (204, 403)


def test_it_refuses_a_forged_entry_left_of_the_proxys(post_json, settings, stored):
    # The client wrote the first entry; the proxy appended the address it saw.
    settings.SIGFOX_CALLBACK_NETWORKS = ["185.110.96.0/22"]
    settings.SIGFOX_TRUSTED_PROXIES = ["127.0.0.1"]
    response = post_json(TUTORIAL_BODY, REMOTE_ADDR="127.0.0.1",
                         HTTP_X_FORWARDED_FOR="185.110.99.1, 203.0.113.9")
    assert response.status_code == 403
    assert stored() == (0, 0, 0)


def test_it_ignores_forwarded_headers_from_an_untrusted_peer(post_json, settings, stored):
    settings.SIGFOX_CALLBACK_NETWORKS = ["185.110.96.0/22"]
    settings.SIGFOX_TRUSTED_PROXIES = ["10.0.0.0/8"]
    response = post_json(TUTORIAL_BODY, REMOTE_ADDR="203.0.113.9", HTTP_X_FORWARDED_FOR="185.110.99.1")
    assert response.status_code == 403
    assert stored() == (0, 0, 0)


def test_it_does_not_limit_the_rate_by_a_forged_header(post_json, settings):
    settings.SIGFOX_CALLBACK_RATE = "2/min"
    answers = [post_json(body(n), REMOTE_ADDR="203.0.113.9",
                         HTTP_X_FORWARDED_FOR=f"198.51.100.{n}").status_code for n in range(4)]
    assert answers == [204, 204, 429, 429]
    assert Message.objects.count() == 2


def test_it_limits_the_rate_per_client_behind_a_trusted_proxy(post_json, settings):
    settings.SIGFOX_CALLBACK_RATE = "2/min"
    settings.SIGFOX_TRUSTED_PROXIES = ["127.0.0.1"]
    one = [post_json(body(n), REMOTE_ADDR="127.0.0.1", HTTP_X_FORWARDED_FOR="185.110.97.1").status_code
           for n in range(3)]
    other = post_json(body(9), REMOTE_ADDR="127.0.0.1", HTTP_X_FORWARDED_FOR="185.110.97.2").status_code
    forged = post_json(body(10), REMOTE_ADDR="127.0.0.1",
                       HTTP_X_FORWARDED_FOR="185.110.97.3, 185.110.97.1").status_code
    assert (one, other, forged) == ([204, 204, 429], 204, 429)


def ident(settings, remote_addr: str, forwarded: str | None = None, proxies=("127.0.0.1",)) -> str:
    from django.test import RequestFactory

    settings.SIGFOX_TRUSTED_PROXIES = list(proxies)
    extra = {"REMOTE_ADDR": remote_addr}
    if forwarded is not None:
        extra["HTTP_X_FORWARDED_FOR"] = forwarded
    return client_address(RequestFactory().get("/", **extra))


def test_it_takes_the_peer_without_trusted_proxies(settings):
    assert ident(settings, "203.0.113.9", "185.110.99.1", proxies=()) == "203.0.113.9"


def test_it_takes_the_right_most_untrusted_hop(settings):
    assert ident(settings, "10.0.0.2", "185.110.99.1, 198.51.100.7, 10.0.0.1",
                 proxies=("10.0.0.0/8",)) == "198.51.100.7"


def test_it_takes_the_left_most_hop_when_every_hop_is_trusted(settings):
    assert ident(settings, "10.0.0.2", "10.0.0.5, 10.0.0.1", proxies=("10.0.0.0/8",)) == "10.0.0.5"


def test_it_stops_at_a_malformed_hop(settings):
    assert ident(settings, "10.0.0.2", "198.51.100.7, bogus, 10.0.0.1",
                 proxies=("10.0.0.0/8",)) == "10.0.0.1"
    assert ident(settings, "127.0.0.1", "185.110.99.1, not-an-address") == "127.0.0.1"
    assert ident(settings, "127.0.0.1", "185.110.99.1,") == "127.0.0.1"
    assert ident(settings, "127.0.0.1", "185.110.99.1:4711") == "127.0.0.1"


def test_it_takes_the_peer_when_a_trusted_proxy_sends_no_header(settings):
    assert ident(settings, "127.0.0.1") == "127.0.0.1"
    assert ident(settings, "127.0.0.1", "") == "127.0.0.1"


def test_it_reads_ipv6_and_ipv4_mapped_addresses(settings):
    assert ident(settings, "::1", "2001:db8::7", proxies=("::1",)) == "2001:db8::7"
    assert ident(settings, "::ffff:127.0.0.1", "185.110.99.1") == "185.110.99.1"


def test_it_refuses_a_bad_proxy_list_in_the_checks(settings):
    from readings.checks import check_networks

    settings.SIGFOX_TRUSTED_PROXIES = ["127.0.0.1", "10.0.0.0/33"]
    assert [error.id for error in check_networks()] == ["readings.E002"]


def test_it_warns_when_a_tls_proxy_hides_every_client(settings):
    from readings.checks import check_proxy_trust

    settings.BEHIND_TLS_PROXY = True
    assert [warning.id for warning in check_proxy_trust()] == ["readings.W004"]
    settings.SIGFOX_TRUSTED_PROXIES = ["127.0.0.1"]
    assert check_proxy_trust() == []


def test_it_limits_the_rate_per_source(post_json, settings):
    settings.SIGFOX_CALLBACK_RATE = "3/min"
    answers = [post_json(body(n), REMOTE_ADDR="185.110.97.1").status_code for n in range(5)]
    assert answers == [204, 204, 204, 429, 429]
    assert Message.objects.count() == 3
    assert post_json(body(9), REMOTE_ADDR="185.110.97.2").status_code == 204


def test_it_says_when_to_retry_after_the_limit(post_json, settings):
    settings.SIGFOX_CALLBACK_RATE = "1/min"
    post_json(body(1))
    response = post_json(body(2))
    assert response.status_code == 429
    assert int(response["Retry-After"]) > 0


def test_it_has_no_rate_limit_by_default(post_json):
    assert {post_json(body(n)).status_code for n in range(30)} == {204}


def test_it_refuses_too_many_fields(post_json, stored):
    fields = {"device": "1A2B3C", "time": "1700000000", **{f"f{i}": i for i in range(300)}}
    response = post_json(json.dumps(fields))
    assert response.status_code == 400
    assert "Too many fields" in response.json()["detail"]
    assert stored() == (0, 0, 0)


def test_it_refuses_too_many_form_fields(client, stored):
    form = "device=1A2B3C&time=1700000000&" + "&".join(f"f{i}={i}" for i in range(300))
    response = client.post("/data/1", form, content_type="application/x-www-form-urlencoded")
    assert response.status_code == 400
    assert stored() == (0, 0, 0)


def test_it_refuses_too_many_query_fields(client, stored):
    query = "device=1A2B3C&time=1700000000&" + "&".join(f"f{i}={i}" for i in range(1200))
    response = client.get(f"/data/1?{query}")
    assert response.status_code == 400
    assert "number of GET/POST parameters exceeded" in response.json()["detail"]
    assert stored() == (0, 0, 0)
