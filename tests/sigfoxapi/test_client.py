"""sigfoxapi.client.SigfoxAPI against a real HTTP server scripted per test."""

import base64
import logging
import socket
import time

import pytest
from django.core.exceptions import ImproperlyConfigured

from sigfoxapi.client import (
    CallBudgetExhausted,
    SigfoxAPI,
    SigfoxAPIError,
    SigfoxAuthError,
    SigfoxForbiddenError,
    SigfoxNotFoundError,
    SigfoxUnavailableError,
)

PASSWORD = "s3cret-Pa55word"


def client(api, **kwargs) -> SigfoxAPI:
    options = {"base_url": api.url, "login": "api-user", "password": PASSWORD,
               "timeout_s": 2.0, "retries": 2, "backoff_s": 0.001}
    options.update(kwargs)
    return SigfoxAPI(**options)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_it_sends_basic_auth(scripted_api):
    scripted_api.then(200, {"id": "ABC"})
    client(scripted_api).get("/device-types/ABC")
    expected = "Basic " + base64.b64encode(f"api-user:{PASSWORD}".encode()).decode()
    assert scripted_api.arrived[0].headers["Authorization"] == expected


def test_it_gets_a_path_under_the_base_url_with_params(scripted_api):
    scripted_api.then(200, {"id": "ABC"})
    answer = client(scripted_api).get("/device-types/ABC", {"fields": "name"})
    assert answer == {"id": "ABC"}
    arrived = scripted_api.arrived[0]
    assert (arrived.method, arrived.path, arrived.query) == (
        "GET", "/v2/device-types/ABC", {"fields": "name"})


def test_it_posts_json(scripted_api):
    scripted_api.then(200, {"id": "cb1"})
    assert client(scripted_api).post("/device-types/ABC/callbacks", {"channel": "URL"}) == {
        "id": "cb1"}
    arrived = scripted_api.arrived[0]
    assert arrived.method == "POST"
    assert arrived.headers["Content-Type"] == "application/json"
    assert arrived.body == {"channel": "URL"}


def test_it_puts_and_returns_none_on_an_empty_answer(scripted_api):
    scripted_api.then(204)
    api = client(scripted_api)
    assert api.put("/device-types/ABC/callbacks/cb1/enable", params={"enabled": "true"}) is None
    arrived = scripted_api.arrived[0]
    assert (arrived.method, arrived.query, arrived.body) == ("PUT", {"enabled": "true"}, None)


def test_it_deletes(scripted_api):
    scripted_api.then(204)
    assert client(scripted_api).delete("/device-types/ABC/callbacks/cb1") is None
    assert scripted_api.arrived[0].method == "DELETE"


def test_it_follows_paging_to_the_end(scripted_api):
    base = scripted_api.url
    scripted_api.then(200, {"data": [{"seqNumber": 1}, {"seqNumber": 2}],
                            "paging": {"next": f"{base}/device-types/ABC/messages?offset=2"
                                               "&since=1700000000000&before=1700003600000"}})
    scripted_api.then(200, {"data": [{"seqNumber": 3}],
                            "paging": {"next": f"{base}/device-types/ABC/messages?offset=3"}})
    scripted_api.then(200, {"data": [{"seqNumber": 4}], "paging": {}})
    api = client(scripted_api)
    items = list(api.messages(device_type="ABC", since_ms=1_700_000_000_000,
                              before_ms=1_700_003_600_000))
    assert [item["seqNumber"] for item in items] == [1, 2, 3, 4]
    assert [a.query for a in scripted_api.arrived] == [
        {"since": "1700000000000", "before": "1700003600000", "limit": "100"},
        {"offset": "2", "since": "1700000000000", "before": "1700003600000"},
        {"offset": "3"},
    ]
    assert {a.path for a in scripted_api.arrived} == {"/v2/device-types/ABC/messages"}
    assert api.calls == 3


def test_it_reads_a_device_s_messages(scripted_api):
    scripted_api.then(200, {"data": []})
    assert list(client(scripted_api).messages(device="1A2B3C", since_ms=0, before_ms=1000)) == []
    assert scripted_api.arrived[0].path == "/v2/devices/1A2B3C/messages"


def test_it_reads_callbacks_not_delivered(scripted_api):
    scripted_api.then(200, {"data": [{"device": "1A2B3C", "time": 1_700_000_000_000}]})
    items = list(client(scripted_api).callbacks_not_delivered(
        device_type="ABC", since_ms=1, before_ms=2))
    assert items == [{"device": "1A2B3C", "time": 1_700_000_000_000}]
    arrived = scripted_api.arrived[0]
    assert arrived.path == "/v2/device-types/ABC/callbacks-not-delivered"
    assert arrived.query == {"since": "1", "before": "2", "limit": "100"}


@pytest.mark.parametrize("owners", [{}, {"device_type": "ABC", "device": "1A2B3C"}])
def test_it_wants_exactly_one_of_device_type_and_device(scripted_api, owners):
    with pytest.raises(ValueError, match="exactly one"):
        client(scripted_api).messages(**owners, since_ms=0, before_ms=1)
    assert scripted_api.arrived == []


def test_it_quotes_ids_into_paths(scripted_api):
    scripted_api.then(200, {"data": []})
    list(client(scripted_api).messages(device="../x", since_ms=0, before_ms=1))
    assert scripted_api.arrived[0].path == "/v2/devices/..%2Fx/messages"


def test_it_refuses_paging_next_on_another_host(scripted_api):
    other = type(scripted_api)().start()
    try:
        scripted_api.then(200, {"data": [{"n": 1}],
                                "paging": {"next": f"{other.url}/device-types/ABC/messages"}})
        items = client(scripted_api).items("/device-types/ABC/messages")
        assert next(items) == {"n": 1}
        with pytest.raises(SigfoxAPIError, match="another host"):
            next(items)
        assert other.arrived == []
    finally:
        other.stop()


def test_it_refuses_a_page_that_names_itself_again(scripted_api):
    page = {"data": [], "paging": {"next": f"{scripted_api.url}/devices/A/messages?offset=1"}}
    scripted_api.then(200, page).then(200, page)
    with pytest.raises(SigfoxAPIError, match="already read"):
        list(client(scripted_api).items("/devices/A/messages"))
    assert len(scripted_api.arrived) == 2


def test_it_retries_a_429_and_counts_each_attempt(scripted_api):
    scripted_api.then(429, {"message": "Too many requests"}).then(200, {"ok": True})
    api = client(scripted_api)
    assert api.get("/devices/1A2B3C") == {"ok": True}
    assert api.calls == 2
    assert len(scripted_api.arrived) == 2


def test_it_honours_retry_after_up_to_its_bound(scripted_api):
    scripted_api.then(429, headers={"Retry-After": "30"}).then(200, {})
    api = client(scripted_api, max_sleep_s=0.3)
    started = time.monotonic()
    api.get("/devices/1A2B3C")
    elapsed_s = time.monotonic() - started
    assert 0.3 <= elapsed_s < 2


def test_it_bounds_retry_after_by_backoff_s_by_default(scripted_api):
    scripted_api.then(503, headers={"Retry-After": "30"}).then(200, {})
    started = time.monotonic()
    client(scripted_api, backoff_s=0.002).get("/devices/1A2B3C")
    assert time.monotonic() - started < 1


def test_it_gives_up_on_5xx_after_the_retries(scripted_api):
    for _ in range(3):
        scripted_api.then(500, {"message": "Internal error"})
    api = client(scripted_api, retries=2)
    with pytest.raises(SigfoxUnavailableError) as caught:
        api.get("/device-types/ABC/messages")
    assert caught.value.status == 500
    assert caught.value.api_message == "Internal error"
    assert api.calls == 3


@pytest.mark.parametrize("method", ["put", "delete"])
def test_it_retries_put_and_delete_on_5xx(scripted_api, method):
    scripted_api.then(502).then(204)
    api = client(scripted_api)
    getattr(api, method)("/device-types/ABC/callbacks/cb1")
    assert [a.method for a in scripted_api.arrived] == [method.upper()] * 2


def test_it_does_not_repeat_a_post_answered_5xx(scripted_api):
    scripted_api.then(500, {"message": "oops"}).then(200, {"id": "cb2"})
    api = client(scripted_api)
    with pytest.raises(SigfoxUnavailableError):
        api.post("/device-types/ABC/callbacks", {"channel": "URL"})
    assert api.calls == 1


def test_it_does_not_repeat_a_post_answered_503_with_retry_after(scripted_api):
    scripted_api.then(503, headers={"Retry-After": "0"}).then(200, {"id": "cb2"})
    with pytest.raises(SigfoxUnavailableError):
        client(scripted_api).post("/device-types/ABC/callbacks", {"channel": "URL"})
    assert len(scripted_api.arrived) == 1


def test_it_repeats_a_post_answered_429(scripted_api):
    scripted_api.then(429).then(200, {"id": "cb2"})
    assert client(scripted_api).post("/device-types/ABC/callbacks", {}) == {"id": "cb2"}
    assert len(scripted_api.arrived) == 2


def test_a_401_says_which_settings_to_check(scripted_api):
    scripted_api.then(401, {"message": "Unauthorized"})
    api = client(scripted_api)
    with pytest.raises(SigfoxAuthError) as caught:
        api.get("/device-types/ABC/callbacks")
    text = str(caught.value)
    assert "GET /device-types/ABC/callbacks" in text
    assert "401" in text
    assert "SIGFOX_API_LOGIN / SIGFOX_API_PASSWORD" in text
    assert "Unauthorized" in text
    assert api.calls == 1


def test_a_403_says_the_user_lacks_rights(scripted_api):
    scripted_api.then(403, {"message": "Forbidden"})
    with pytest.raises(SigfoxForbiddenError, match="profile") as caught:
        client(scripted_api).post("/device-types/ABC/callbacks", {})
    assert caught.value.status == 403
    assert len(scripted_api.arrived) == 1


def test_a_404_names_the_id(scripted_api):
    scripted_api.then(404, {"message": "Device type not found"})
    with pytest.raises(SigfoxNotFoundError) as caught:
        list(client(scripted_api).messages(device_type="5f0aBC", since_ms=0, before_ms=1))
    assert "device type 5f0aBC" in str(caught.value)
    assert caught.value.api_message == "Device type not found"
    assert len(scripted_api.arrived) == 1


def test_a_400_is_an_api_error_with_the_api_s_message(scripted_api):
    scripted_api.then(400, {"message": "limit must be at most 100"})
    with pytest.raises(SigfoxAPIError, match="limit must be at most 100") as caught:
        client(scripted_api).get("/devices/A/messages", {"limit": 1000})
    assert type(caught.value) is SigfoxAPIError
    assert caught.value.status == 400


def test_an_answer_that_is_not_json_is_an_error(scripted_api):
    scripted_api.then(200, b"<html>maintenance</html>")
    with pytest.raises(SigfoxAPIError, match="not JSON"):
        client(scripted_api).get("/devices/A")


def test_a_redirect_is_not_followed(scripted_api):
    scripted_api.then(302, headers={"Location": "http://elsewhere.invalid/"})
    with pytest.raises(SigfoxAPIError, match="redirected"):
        client(scripted_api).get("/devices/A")
    assert len(scripted_api.arrived) == 1


def test_a_read_timeout_is_retried_for_a_get(scripted_api):
    scripted_api.then(200, {}, delay_s=5).then(200, {"ok": True})
    api = client(scripted_api, timeout_s=0.2)
    assert api.get("/devices/A") == {"ok": True}
    assert api.calls == 2


def test_a_read_timeout_ends_a_post(scripted_api):
    scripted_api.then(200, {}, delay_s=5).then(200, {"id": "cb2"})
    api = client(scripted_api, timeout_s=0.2)
    with pytest.raises(SigfoxUnavailableError, match="no answer in time"):
        api.post("/device-types/ABC/callbacks", {})
    assert api.calls == 1


def test_a_refused_connection_is_retried_then_unavailable():
    api = SigfoxAPI(base_url=f"http://127.0.0.1:{free_port()}/v2", login="api-user",
                    password=PASSWORD, retries=2, backoff_s=0.001)
    with pytest.raises(SigfoxUnavailableError, match="could not connect") as caught:
        api.post("/device-types/ABC/callbacks", {})
    assert caught.value.status is None
    assert api.calls == 3


def test_the_budget_stops_the_next_request(scripted_api):
    for _ in range(5):
        scripted_api.then(500)
    api = client(scripted_api, retries=4, max_calls=2)
    with pytest.raises(CallBudgetExhausted):
        api.get("/devices/A")
    assert api.calls == 2
    assert len(scripted_api.arrived) == 2


def test_the_budget_stops_paging(scripted_api):
    page = {"data": [{"n": 1}], "paging": {"next": f"{scripted_api.url}/devices/A/messages?o=1"}}
    scripted_api.then(200, page)
    api = client(scripted_api, max_calls=1)
    items = api.items("/devices/A/messages")
    assert next(items) == {"n": 1}
    with pytest.raises(CallBudgetExhausted):
        next(items)
    assert len(scripted_api.arrived) == 1


def test_a_spent_budget_sends_nothing(scripted_api):
    api = client(scripted_api, max_calls=0)
    with pytest.raises(CallBudgetExhausted):
        api.get("/devices/A")
    assert scripted_api.arrived == []


def test_the_password_is_never_shown(scripted_api, caplog):
    caplog.set_level(logging.DEBUG)
    scripted_api.then(429).then(401, {"message": "Unauthorized"})
    api = client(scripted_api)
    errors = []
    try:
        api.get("/devices/A")
    except SigfoxAPIError as exc:
        errors.append(exc)
    scripted_api.then(500, delay_s=5).then(500, delay_s=5).then(500, delay_s=5)
    try:
        client(scripted_api, timeout_s=0.1).get("/devices/A")
    except SigfoxAPIError as exc:
        errors.append(exc)
    try:
        SigfoxAPI(base_url=f"http://127.0.0.1:{free_port()}/v2", login="api-user",
                  password=PASSWORD, retries=0).get("/devices/A")
    except SigfoxAPIError as exc:
        errors.append(exc)
    assert len(errors) == 3
    shown = [repr(api), str(api), caplog.text] + [f"{e!s} {e!r} {e.__cause__!r}" for e in errors]
    encoded = base64.b64encode(f"api-user:{PASSWORD}".encode()).decode()
    for text in shown:
        assert PASSWORD not in text
        assert encoded not in text
    assert "api-user" in repr(api)


def test_base_url_may_not_carry_credentials():
    with pytest.raises(ValueError, match="credentials"):
        SigfoxAPI(base_url="https://u:p@api.sigfox.com/v2", login="u", password="p")


def test_from_settings_reads_the_settings(settings):
    settings.SIGFOX_API_URL = "https://api.example.test/v2"
    settings.SIGFOX_API_LOGIN = "api-user"
    settings.SIGFOX_API_PASSWORD = PASSWORD
    settings.SIGFOX_API_TIMEOUT_S = 7.0
    api = SigfoxAPI.from_settings(max_calls=10)
    assert (api.base_url, api.login, api.timeout_s, api.max_calls) == (
        "https://api.example.test/v2", "api-user", 7.0, 10)


@pytest.mark.parametrize("missing", ["SIGFOX_API_LOGIN", "SIGFOX_API_PASSWORD"])
def test_from_settings_names_a_missing_credential(settings, missing):
    settings.SIGFOX_API_LOGIN = "api-user"
    settings.SIGFOX_API_PASSWORD = PASSWORD
    setattr(settings, missing, "")
    with pytest.raises(ImproperlyConfigured, match=missing):
        SigfoxAPI.from_settings()
