"""Secrets stay out of logs: the ?token= of a callback and the Authorization
header, in gunicorn's access and error logs and in Django's logging."""

import base64
import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest

from sigfoxsite.redact import redact, redact_atoms
from tests.serving import ROOT, gunicorn, migrate, served_env

SECRET = "s3cret-callback-token-0123456789"
# Every atom of gunicorn's access log that can hold a secret, asked for on purpose.
LOG_FORMAT = ('%(h)s "%(r)s" %(s)s q=%(q)s ref=%(f)s user=%(u)s auth=%({authorization}i)s '
              'cookie=%({cookie}i)s env-auth=%({http_authorization}e)s raw=%({raw_uri}e)s')


def test_it_masks_the_token_of_a_query():
    assert redact("GET /data/1?token=abc HTTP/1.1") == "GET /data/1?token=*** HTTP/1.1"
    assert redact("/data/1?device=1A&token=abc&temp=2") == "/data/1?device=1A&token=***&temp=2"
    assert redact("token=abc") == "token=***"


def test_it_masks_a_token_however_its_name_is_spelled():
    assert redact("/data/1?%74oken=abc") == "/data/1?%74oken=***"
    assert redact("/data/1?TOKEN=abc") == "/data/1?TOKEN=***"


def test_it_masks_the_whole_value_django_reads():
    assert redact("/data/1?token=a;b/c%26d&x=1") == "/data/1?token=***&x=1"


def test_it_masks_a_token_inside_another_value():
    assert redact("/accounts/login/?next=/data/1?token=abc") == "/accounts/login/?next=/data/1?token=***"
    assert redact("a=1;token=abc") == "a=1;token=***"


def test_it_leaves_other_parameters_alone():
    text = "/api/readings/?device=1A2B3C&since=2026-01-01&x_token=public&tokens=1"
    assert redact(text) == text


def test_it_drops_credential_headers_from_the_access_log_atoms():
    atoms = redact_atoms({
        "r": "GET /data/1?token=abc HTTP/1.1", "q": "token=abc", "s": 204, "B": None,
        "{authorization}i": "Bearer abc", "{cookie}i": "sessionid=abc",
        "{set-cookie}o": "sessionid=abc", "{http_authorization}e": "Bearer abc",
        "{raw_uri}e": "/data/1?token=abc", "{user-agent}i": "curl/8",
    })
    assert atoms == {
        "r": "GET /data/1?token=*** HTTP/1.1", "q": "token=***", "s": 204, "B": None,
        "{authorization}i": "***", "{cookie}i": "***", "{set-cookie}o": "***",
        "{http_authorization}e": "***", "{raw_uri}e": "/data/1?token=***", "{user-agent}i": "curl/8",
    }


def request(url: str, body: str | None = None, headers: dict | None = None) -> int:
    req = urllib.request.Request(url, data=body.encode() if body is not None else None,
                                 headers=headers or {})
    if body is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


@pytest.fixture(scope="module")
def logged(tmp_path_factory):
    """gunicorn with a callback token and its access log on, as `make run` serves."""
    tmp_dir = tmp_path_factory.mktemp("logs")
    env = served_env(f"sqlite:///{tmp_dir / 'logs.sqlite3'}", SIGFOX_CALLBACK_TOKEN=SECRET,
                     GUNICORN_CMD_ARGS=f"--access-logformat='{LOG_FORMAT}'")
    migrate(env)
    log_path = tmp_dir / "gunicorn.log"
    with gunicorn(env, log_path, workers=1, access_log=True) as url:
        yield url, log_path


def log_text(log_path, needle: str) -> str:
    """The log once `needle` is in it (a worker writes its lines as it answers)."""
    deadline = time.monotonic() + 10
    while needle not in (text := log_path.read_text()) and time.monotonic() < deadline:
        time.sleep(0.1)
    return text


def body(n: int) -> str:
    return json.dumps({"device": "1A2B3C", "time": 1700000000 + 600 * n, "temp": n})


@pytest.mark.http
def test_it_keeps_the_query_token_out_of_the_access_log(logged):
    url, log_path = logged
    assert request(f"{url}/data/1?token={SECRET}", body(1)) == 204
    assert request(f"{url}/data/1?device=1A2B3C&time=1700001200&temp=2&token={SECRET}") == 204
    assert request(f"{url}/data/1?%74oken={SECRET}&device=1A2B3C&time=1700001800&temp=3") == 204
    assert request(f"{url}/data/1?token={SECRET}-wrong", body(4)) == 401
    text = log_text(log_path, '"POST /data/1?token=*** HTTP/1.1" 401')
    assert '"POST /data/1?token=*** HTTP/1.1" 204' in text
    assert "raw=/data/1?device=1A2B3C&time=1700001200&temp=2&token=***" in text
    assert "q=%74oken=***&device=1A2B3C" in text
    assert SECRET not in text


@pytest.mark.http
def test_it_never_writes_the_authorization_header(logged):
    url, log_path = logged
    basic = base64.b64encode(f"sigfox:{SECRET}".encode()).decode()
    assert request(f"{url}/data/1", body(5), {"Authorization": f"Bearer {SECRET}"}) == 204
    assert request(f"{url}/data/1", body(6), {"Authorization": f"Basic {basic}",
                                              "Cookie": f"sessionid={SECRET}"}) == 204
    text = log_text(log_path, "user=sigfox")
    assert "auth=*** cookie=*** env-auth=***" in text
    assert SECRET not in text and basic not in text


@pytest.mark.http
def test_it_masks_the_token_of_a_referer(logged):
    url, log_path = logged
    referer = f"https://example.org/data/1?token={SECRET}"
    assert request(f"{url}/healthz", headers={"Referer": referer}) == 200
    text = log_text(log_path, "ref=https://example.org/data/1?token=***")
    assert SECRET not in text


@pytest.mark.http
def test_it_keeps_djangos_warnings_in_the_same_log(logged):
    url, log_path = logged
    assert request(f"{url}/data/1?token={SECRET}-again", body(7)) == 401
    text = log_text(log_path, "WARNING django.request: Unauthorized: /data/1")
    assert SECRET not in text


@pytest.mark.parametrize("debug", ["false", "true"])
def test_it_masks_tokens_in_djangos_logging(debug):
    """Every logger the settings configure, with DEBUG off and on (Django's own
    console handler for "django" writes only with DEBUG on)."""
    code = (
        "import django, logging; django.setup()\n"
        f"logging.getLogger('django.request').warning('Not Found: %s', '/data/1?token={SECRET}')\n"
        f"logging.getLogger('django.server').info('\"GET /data/1?token={SECRET} HTTP/1.1\" 204 0')\n"
        f"logging.getLogger('readings').warning('callback %s', {{'token': '{SECRET}', 'q': 'token={SECRET}'}})\n"
        "try:\n"
        f"    raise ValueError('bad URL /data/1?token={SECRET}')\n"
        "except ValueError:\n"
        "    logging.getLogger('django.request').exception('Internal Server Error: /data/1')\n"
    )
    env = {k: v for k, v in os.environ.items() if k in {"PATH", "HOME", "LANG"}}
    env.update(DJANGO_SETTINGS_MODULE="sigfoxsite.settings", SIGFOXSITE_READ_DOT_ENV="false",
               SECRET_KEY="x" * 50, DEBUG=debug)
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "Not Found: /data/1?token=***" in result.stderr
    assert '"GET /data/1?token=*** HTTP/1.1" 204 0' in result.stderr
    assert "ValueError: bad URL /data/1?token=***" in result.stderr
    assert result.stderr.count("Not Found: /data/1") == 1  # written once, by the masking handler
    assert SECRET not in result.stderr + result.stdout
