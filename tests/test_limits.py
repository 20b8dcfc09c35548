"""What one client may cost: allowed networks, rate limit, field count, size, depth."""

import json

import pytest
from django.core.cache import cache

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


def test_it_reads_the_client_address_from_a_trusted_proxy(post_json, settings):
    settings.SIGFOX_CALLBACK_NETWORKS = ["185.110.96.0/22"]
    settings.BEHIND_TLS_PROXY = True
    ok = post_json(body(1), REMOTE_ADDR="127.0.0.1", HTTP_X_FORWARDED_FOR="185.110.99.1")
    spoofed = post_json(body(2), REMOTE_ADDR="127.0.0.1",
                        HTTP_X_FORWARDED_FOR="185.110.99.1, 203.0.113.9")
    assert (ok.status_code, spoofed.status_code) == (204, 403)


def test_it_ignores_forwarded_headers_without_a_proxy(post_json, settings):
    settings.SIGFOX_CALLBACK_NETWORKS = ["185.110.96.0/22"]
    response = post_json(TUTORIAL_BODY, REMOTE_ADDR="203.0.113.9", HTTP_X_FORWARDED_FOR="185.110.99.1")
    assert response.status_code == 403


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
