"""`make run` then `make test` in one clone: the trial .env never reaches the suite."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

TRIAL_ENV = "SECRET_KEY=trial\nBEHIND_TLS_PROXY=true\nSECURE_SSL_REDIRECT=false\n"


def settings_value(module: str, name: str, dot_env: Path) -> str:
    code = f"import django; django.setup(); from django.conf import settings; print(settings.{name})"
    env = {k: v for k, v in os.environ.items() if k in {"PATH", "HOME", "LANG"}}
    env.update(DJANGO_SETTINGS_MODULE=module, SIGFOXSITE_DOT_ENV=str(dot_env), SECRET_KEY="x")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_it_reads_a_dot_env_for_a_local_run(tmp_path):
    (tmp_path / ".env").write_text(TRIAL_ENV)
    assert settings_value("sigfoxsite.settings", "BEHIND_TLS_PROXY", tmp_path / ".env") == "True"


def test_it_never_reads_a_dot_env_in_the_test_settings(tmp_path):
    (tmp_path / ".env").write_text(TRIAL_ENV)
    assert settings_value("sigfoxsite.settings_test", "BEHIND_TLS_PROXY", tmp_path / ".env") == "False"


def test_it_runs_this_suite_without_the_dot_env():
    assert os.environ.get("SIGFOXSITE_READ_DOT_ENV") == "false"


def test_it_writes_a_trial_env_that_trusts_no_forwarded_header():
    # --always-make prints the recipe of .env without writing a developer's file.
    result = subprocess.run(["make", "--dry-run", "--always-make", ".env"], cwd=ROOT,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "SECURE_SSL_REDIRECT=false" in result.stdout
    assert "BEHIND_TLS_PROXY" not in result.stdout
