"""Helpers for the deployment tests: settings are read at import time, so production variants run in a subprocess."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# Variables that change what settings.py does; subprocesses start from a clean slate for these.
SETTINGS_VARIABLES = (
    "GNOMON_DEBUG",
    "SECRET_KEY",
    "ALLOWED_HOSTS",
    "CSRF_TRUSTED_ORIGINS",
    "GNOMON_LOG_FORMAT",
    "GNOMON_BEHIND_PROXY",
    "GNOMON_SECURE_SSL_REDIRECT",
    "GNOMON_HSTS_SECONDS",
    "GNOMON_HSTS_INCLUDE_SUBDOMAINS",
    "GNOMON_HSTS_PRELOAD",
)


def production_env(**overrides: str | None) -> dict[str, str]:
    """The environment of a production process: DEBUG off, a strong secret, real hosts, this test run's servers."""
    # DJANGO_ALLOW_ASYNC_UNSAFE: the browser tests set it in this process; a production process never has it
    env = {key: value for key, value in os.environ.items()
           if key not in SETTINGS_VARIABLES and key != "DJANGO_ALLOW_ASYNC_UNSAFE"}
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "gnomon.settings",
            "GNOMON_DEBUG": "0",
            "SECRET_KEY": secrets.token_urlsafe(50),
            "ALLOWED_HOSTS": "gnomon.example.org",
            "CSRF_TRUSTED_ORIGINS": "https://gnomon.example.org",
            "DATABASE_URL": os.environ["DATABASE_URL"],  # settings.py put the embedded one here when it was unset
            "CELERY_BROKER_URL": os.environ.get("CELERY_BROKER_URL", "redis://127.0.0.1:6379/0"),
        }
    )
    for key, value in overrides.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    return env


def run_python(code: str, env: dict[str, str], timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout
    )


def run_manage(*args: str, env: dict[str, str], timeout: float = 180) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout
    )


@pytest.fixture
def prod_env():
    return production_env
