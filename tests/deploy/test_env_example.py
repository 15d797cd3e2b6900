""".env.example documents every variable Gnomon reads: settings.py, the compose files, the entrypoint, gunicorn's config."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# Variables set by the platform, not by an operator.
NOT_OPERATOR_SETTINGS = {"DJANGO_SETTINGS_MODULE", "HOSTNAME", "PATH", "HOME"}


def documented() -> set[str]:
    text = (ROOT / ".env.example").read_text()
    return set(re.findall(r"^#?\s?([A-Z][A-Z0-9_]+)=", text, flags=re.M))


def read_by_python(path: Path) -> set[str]:
    text = path.read_text()
    patterns = [
        r"os\.environ\.get\(\s*\"([A-Z][A-Z0-9_]+)\"",
        r"os\.environ\[\s*\"([A-Z][A-Z0-9_]+)\"\s*\]",
        r"os\.getenv\(\s*\"([A-Z][A-Z0-9_]+)\"",
        r"env_(?:bool|list|int|float)\(\s*\"([A-Z][A-Z0-9_]+)\"",
        r"\"([A-Z][A-Z0-9_]+)\" (?:not )?in os\.environ",
    ]
    return {name for pattern in patterns for name in re.findall(pattern, text)}


def test_every_settings_variable_is_documented():
    names = read_by_python(ROOT / "gnomon" / "settings.py") - NOT_OPERATOR_SETTINGS
    assert {"SECRET_KEY", "DATABASE_URL", "GNOMON_DEBUG", "GNOMON_LOG_FORMAT"} <= names  # the scan works
    assert not names - documented(), f"add to .env.example: {sorted(names - documented())}"


def test_every_container_variable_is_documented():
    names: set[str] = set()
    for compose_file in ("compose.yaml", "compose.worker.yaml"):
        names |= set(re.findall(r"\$\{([A-Z][A-Z0-9_]+)", (ROOT / "docker" / compose_file).read_text()))
    names |= set(re.findall(r"\$\{([A-Z][A-Z0-9_]+)", (ROOT / "docker" / "entrypoint.sh").read_text()))
    names |= read_by_python(ROOT / "docker" / "entrypoint.sh") | read_by_python(ROOT / "docker" / "gunicorn.conf.py")
    names -= NOT_OPERATOR_SETTINGS
    assert {"POSTGRES_PASSWORD", "REDIS_PASSWORD", "GNOMON_MIGRATE_ON_START", "GNOMON_WEB_WORKERS"} <= names
    assert not names - documented(), f"add to .env.example: {sorted(names - documented())}"


def test_only_secrets_are_uncommented():
    """Uncommented lines are the values an operator must fill in; everything else shows its default, commented."""
    text = (ROOT / ".env.example").read_text()
    active = dict(re.findall(r"^([A-Z][A-Z0-9_]+)=(.*)$", text, flags=re.M))
    assert set(active) == {"SECRET_KEY", "ALLOWED_HOSTS", "POSTGRES_PASSWORD", "REDIS_PASSWORD", "CSRF_TRUSTED_ORIGINS"}
    assert all(value == "" for value in active.values()), "no secret is shipped"
