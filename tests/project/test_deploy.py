"""Production settings: `manage.py check --deploy` is clean, and DEBUG off needs a key."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

PRODUCTION = {
    "SECRET_KEY": "k" * 20 + "-production-like-secret-key-with-enough-entropy-4f9a",
    "DEBUG": "false",
    "ALLOWED_HOSTS": "sigfox.example.org",
    # Whole-domain HSTS is the deployer's decision; .env.example shows it.
    "SECURE_HSTS_SECONDS": "31536000",
    "SECURE_HSTS_INCLUDE_SUBDOMAINS": "true",
    "SECURE_HSTS_PRELOAD": "true",
    "SIGFOX_CALLBACK_TOKEN": "a-long-random-callback-token",
}


def run_manage(*args, env_extra: dict, cwd=ROOT) -> subprocess.CompletedProcess:
    # A clean environment: only what production would set, nothing from a
    # developer's .env (DJANGO_READ_DOT_ENV=false keeps it out).
    env = {k: v for k, v in os.environ.items() if k in {"PATH", "HOME", "LANG", "DATABASE_URL"}}
    env.update(env_extra, SIGFOXSITE_READ_DOT_ENV="false")
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120
    )


def test_it_passes_the_deploy_check_with_production_settings():
    result = run_manage("check", "--deploy", "--fail-level", "WARNING", env_extra=PRODUCTION)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_it_refuses_to_start_without_a_secret_key_when_debug_is_off():
    result = run_manage("check", env_extra={"DEBUG": "false"})
    assert result.returncode != 0
    assert "Set the SECRET_KEY environment variable" in result.stderr


def test_it_starts_without_a_secret_key_in_debug():
    result = run_manage("check", env_extra={"DEBUG": "true"})
    assert result.returncode == 0, result.stderr


def test_it_warns_in_the_deploy_check_when_callbacks_need_no_token():
    settings = {k: v for k, v in PRODUCTION.items() if k != "SIGFOX_CALLBACK_TOKEN"}
    result = run_manage("check", "--deploy", env_extra=settings)
    assert "(readings.W001) SIGFOX_CALLBACK_TOKEN is not set" in result.stderr + result.stdout


def test_it_rejects_a_bad_site_payload_config():
    result = run_manage("check", env_extra={**PRODUCTION, "SIGFOX_PAYLOAD_CONFIG": "temp::int:99"})
    assert result.returncode != 0
    assert "(readings.E001) SIGFOX_PAYLOAD_CONFIG is not valid" in result.stderr
