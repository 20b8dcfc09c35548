"""The callback token: Bearer, Basic password or ?token=, on every callback endpoint."""

import base64
import logging

import pytest

from readings.checks import warn_if_open
from readings.models import Message, Reading

pytestmark = pytest.mark.django_db

TOKEN = "s3cret-Token_42"

UPLINK = {"device": "1A2B3C", "time": 1700000000, "seqNumber": 1, "temp": 21}
ACKNOWLEDGE = {"device": "1A2B3C", "time": 1700000000, "infoCode": 0}


@pytest.fixture(autouse=True)
def token(settings):
    settings.SIGFOX_CALLBACK_TOKEN = TOKEN
    return TOKEN


@pytest.fixture(params=["uplink", "acknowledge"])
def endpoint(request):
    paths = {"uplink": ("/data/1", UPLINK), "acknowledge": ("/sigfox/acknowledge", ACKNOWLEDGE)}
    return paths[request.param]


def basic(credentials: str) -> str:
    return "Basic " + base64.b64encode(credentials.encode()).decode()


def assert_accepted(response):
    assert response.status_code == 204, response.content


def assert_refused(response, stored_rows):
    assert response.status_code == 401, response.content
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert not any(stored_rows().values())


@pytest.mark.parametrize(
    "authorization",
    [
        f"Bearer {TOKEN}",
        f"bearer {TOKEN}",
        basic(f"sigfox:{TOKEN}"),
        basic(f"any-name-at-all:{TOKEN}"),
        basic(f":{TOKEN}"),
    ],
)
def test_it_accepts_the_token_in_the_authorization_header(send_callback, endpoint, authorization):
    path, variables = endpoint
    assert_accepted(send_callback(path, variables, headers={"Authorization": authorization}))


def test_it_accepts_the_token_in_the_query_string(send_callback, endpoint, callback_encoding):
    path, variables = endpoint
    assert_accepted(send_callback(path, variables, callback_encoding, query=f"token={TOKEN}"))


def test_it_accepts_a_token_holding_a_colon_as_basic_password(send_callback, settings):
    settings.SIGFOX_CALLBACK_TOKEN = "pass:word"
    response = send_callback("/data/1", UPLINK, headers={"Authorization": basic("user:pass:word")})
    assert_accepted(response)


def test_it_accepts_a_url_escaped_token(send_callback, settings):
    settings.SIGFOX_CALLBACK_TOKEN = "a+b/c=d&e"
    assert_accepted(send_callback("/data/1", UPLINK, query="token=a%2Bb%2Fc%3Dd%26e"))


def test_it_stores_the_callback_once_accepted(send_callback):
    send_callback("/data/1", UPLINK, headers={"Authorization": f"Bearer {TOKEN}"})
    assert Reading.objects.get().value == 21.0


@pytest.mark.parametrize(
    "authorization",
    [
        "",
        "Bearer",
        "Bearer ",
        "Bearer wrong",
        f"Bearer {TOKEN.upper()}",
        f"Bearer {TOKEN.lower()}",
        f"Bearer {TOKEN[:-1]}",
        f"Bearer {TOKEN[:1]}",
        f"Bearer {TOKEN}x",
        f"Bearer x{TOKEN}",
        f"Token {TOKEN}",
        TOKEN,
        basic(f"{TOKEN}:"),
        basic(f"{TOKEN}:wrong"),
        basic(TOKEN),
        basic(f"sigfox:{TOKEN[:-1]}"),
        basic(f"sigfox:{TOKEN.upper()}"),
        f"Basic {TOKEN}",
        "Basic not*base64!",
        "Basic " + base64.b64encode(b"sigfox:\xff" + TOKEN.encode()).decode(),
        "Basic ",
    ],
)
def test_it_refuses_anything_else_in_the_authorization_header(
    send_callback, stored_rows, endpoint, authorization
):
    path, variables = endpoint
    headers = {"Authorization": authorization} if authorization else {}
    assert_refused(send_callback(path, variables, headers=headers), stored_rows)


@pytest.mark.parametrize("encoding", ["json", "form", "text-form", "put-json", "get"])
@pytest.mark.parametrize(
    "query",
    [
        "",
        "token=",
        "token=wrong",
        f"token={TOKEN[:-1]}",
        f"token={TOKEN.upper()}",
        f"TOKEN={TOKEN}",
    ],
)
def test_it_refuses_a_wrong_token_in_the_query_string(
    send_callback, stored_rows, endpoint, encoding, query
):
    path, variables = endpoint
    assert_refused(send_callback(path, variables, encoding, query=query), stored_rows)


def test_it_refuses_the_token_in_the_body(send_callback, stored_rows, endpoint):
    path, variables = endpoint
    assert_refused(send_callback(path, {**variables, "token": TOKEN}, "form"), stored_rows)


def test_it_refuses_before_reading_the_body(client, stored_rows):
    response = client.post("/data/1", "{not json", content_type="application/json")
    assert_refused(response, stored_rows)


def test_it_refuses_before_looking_at_the_content_type(client, stored_rows):
    response = client.post("/data/1", "<xml/>", content_type="application/xml")
    assert_refused(response, stored_rows)


def test_it_answers_a_refusal_with_json(send_callback):
    response = send_callback("/data/1", UPLINK)
    assert response["Content-Type"] == "application/json"
    assert response.json() == {"detail": "Missing or wrong callback token."}


def test_it_accepts_callbacks_without_a_token_when_none_is_set(send_callback, settings, endpoint):
    settings.SIGFOX_CALLBACK_TOKEN = ""
    path, variables = endpoint
    assert_accepted(send_callback(path, variables))


def test_it_ignores_credentials_when_no_token_is_set(send_callback, settings):
    settings.SIGFOX_CALLBACK_TOKEN = ""
    response = send_callback("/data/1", UPLINK, headers={"Authorization": "Bearer whatever"})
    assert_accepted(response)


@pytest.mark.parametrize("encoding", ["json", "form", "get"])
def test_it_makes_no_reading_of_the_token(send_callback, encoding):
    send_callback("/data/1", UPLINK, encoding, query=f"token={TOKEN}")
    assert list(Reading.objects.values_list("quantity", flat=True)) == ["temp"]


def test_it_makes_no_reading_of_a_token_field_when_none_is_set(send_callback, settings):
    settings.SIGFOX_CALLBACK_TOKEN = ""
    send_callback("/data/1", {**UPLINK, "token": "12345"}, "form")
    assert list(Reading.objects.values_list("quantity", flat=True)) == ["temp"]


def test_it_keeps_one_message_when_a_retry_authenticates_differently(send_callback):
    send_callback("/data/1", UPLINK, headers={"Authorization": f"Bearer {TOKEN}"})
    send_callback("/data/1", UPLINK, query=f"token={TOKEN}")
    assert Message.objects.count() == 1


def test_it_warns_in_the_log_when_no_token_is_set(settings, caplog):
    settings.SIGFOX_CALLBACK_TOKEN = ""
    with caplog.at_level(logging.WARNING, logger="readings"):
        warn_if_open()
    assert [record.levelname for record in caplog.records] == ["WARNING"]
    assert "SIGFOX_CALLBACK_TOKEN is not set" in caplog.text


def test_it_does_not_warn_when_a_token_is_set(caplog):
    with caplog.at_level(logging.WARNING, logger="readings"):
        warn_if_open()
    assert caplog.records == []


def test_it_warns_in_the_server_log_at_start(server):
    # The `server` fixture runs gunicorn without a token.
    log = server.log_path.read_text()
    assert "WARNING readings: SIGFOX_CALLBACK_TOKEN is not set" in log
