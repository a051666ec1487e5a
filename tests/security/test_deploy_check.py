"""The production settings documented in the README pass Django's deployment checks at WARNING level."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def _check(**env: str) -> subprocess.CompletedProcess:
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "TUTOR_"))}
    environment.update(env)
    return subprocess.run([sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
                          cwd=REPO, env=environment, capture_output=True, text=True, timeout=120)


def test_production_settings_pass_check_deploy():
    result = _check(TUTOR_PRODUCTION="1", DJANGO_SECRET_KEY=secrets.token_urlsafe(50),
                    DJANGO_ALLOWED_HOSTS="tutor.example.edu",
                    DJANGO_CSRF_TRUSTED_ORIGINS="https://tutor.example.edu")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_production_refuses_to_start_without_a_secret_key():
    result = _check(TUTOR_PRODUCTION="1", DJANGO_ALLOWED_HOSTS="tutor.example.edu")
    assert result.returncode != 0 and "DJANGO_SECRET_KEY" in result.stderr


def test_development_settings_are_flagged_by_check_deploy():
    result = _check()  # the laptop defaults: the check must notice
    assert result.returncode != 0
