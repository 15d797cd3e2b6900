"""GNOMON_CACHE_URL gives every web process one cache, so throttle counters hold across gunicorn workers."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from django.conf import settings

ROOT = Path(__file__).resolve().parents[2]


def _django(code: str, env: dict[str, str]) -> str:
    script = "import django; django.setup(); from django.core.cache import cache; " + code
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=120, check=True)
    return done.stdout.strip()


def test_two_processes_share_one_cache_when_the_cache_url_is_set():
    if not settings.CELERY_BROKER_URL.startswith(("redis://", "rediss://")):
        pytest.skip("needs a Redis URL to point the cache at")
    key = f"gnomon-test-shared-{uuid.uuid4().hex}"
    base = {**os.environ, "DJANGO_SETTINGS_MODULE": "gnomon.settings", "PYTHONPATH": str(ROOT)}
    shared = {**base, "GNOMON_CACHE_URL": settings.CELERY_BROKER_URL}
    private = {k: v for k, v in base.items() if k != "GNOMON_CACHE_URL"}
    try:
        _django(f"cache.set({key!r}, 'seen', 60)", shared)
        assert _django(f"print(cache.get({key!r}))", shared) == "seen"  # another process, same cache
        assert _django(f"print(cache.get({key!r}))", private) == "None"  # per-process memory: not shared
        assert _django("from django.core.cache import caches; print(type(caches['default']).__name__)", shared) == "RedisCache"
    finally:
        _django(f"cache.delete({key!r})", shared)
