"""Production settings (GNOMON_DEBUG=0): `check --deploy` clean, secrets and hosts only from the environment, HTTPS."""

from __future__ import annotations

import json

import pytest

from tests.deploy.conftest import production_env, run_manage, run_python

DUMP_SETTINGS = """
import json, django
django.setup()
from django.conf import settings as s
print(json.dumps({name: getattr(s, name, None) for name in [
    "DEBUG", "ALLOWED_HOSTS", "CSRF_TRUSTED_ORIGINS", "SECURE_SSL_REDIRECT", "SECURE_PROXY_SSL_HEADER",
    "SESSION_COOKIE_SECURE", "CSRF_COOKIE_SECURE", "SECURE_HSTS_SECONDS", "SECURE_HSTS_INCLUDE_SUBDOMAINS",
    "SECURE_HSTS_PRELOAD", "GNOMON_LOG_FORMAT"]} | {"SECRET_KEY": s.SECRET_KEY,
    "formatter": s.LOGGING["formatters"]["gnomon"]}))
"""


def dump(env: dict[str, str]) -> dict:
    result = run_python(DUMP_SETTINGS, env)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_check_deploy_is_clean_with_production_environment():
    result = run_manage("check", "--deploy", "--fail-level", "WARNING", env=production_env())
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout


def test_check_deploy_notices_a_disabled_https_redirect():
    """The clean result above is not vacuous: turning a protection off is reported."""
    result = run_manage(
        "check", "--deploy", "--fail-level", "WARNING", env=production_env(GNOMON_SECURE_SSL_REDIRECT="0")
    )
    assert result.returncode != 0
    assert "security.W008" in result.stdout + result.stderr


def test_production_values_come_from_the_environment():
    env = production_env(ALLOWED_HOSTS="gnomon.example.org, .lab.example.org")
    values = dump(env)
    assert values["DEBUG"] is False
    assert values["SECRET_KEY"] == env["SECRET_KEY"]
    assert values["ALLOWED_HOSTS"] == ["gnomon.example.org", ".lab.example.org"]
    assert values["CSRF_TRUSTED_ORIGINS"] == ["https://gnomon.example.org"]
    assert values["SECURE_SSL_REDIRECT"] is True
    assert values["SECURE_PROXY_SSL_HEADER"] == ["HTTP_X_FORWARDED_PROTO", "https"]
    assert values["SESSION_COOKIE_SECURE"] is values["CSRF_COOKIE_SECURE"] is True
    assert values["SECURE_HSTS_SECONDS"] >= 31536000
    assert values["SECURE_HSTS_INCLUDE_SUBDOMAINS"] is values["SECURE_HSTS_PRELOAD"] is True
    assert values["GNOMON_LOG_FORMAT"] == "json"
    assert values["formatter"] == {"()": "gnomon.logging.JsonFormatter"}


def test_production_knobs_are_configurable():
    values = dump(
        production_env(
            GNOMON_SECURE_SSL_REDIRECT="0",
            GNOMON_BEHIND_PROXY="0",
            GNOMON_HSTS_SECONDS="600",
            GNOMON_HSTS_PRELOAD="0",
            GNOMON_LOG_FORMAT="text",
        )
    )
    assert values["SECURE_SSL_REDIRECT"] is False
    assert values["SECURE_PROXY_SSL_HEADER"] is None
    assert values["SECURE_HSTS_SECONDS"] == 600
    assert values["SECURE_HSTS_PRELOAD"] is False
    assert values["GNOMON_LOG_FORMAT"] == "text"


def test_development_defaults_stay_convenient():
    env = production_env(GNOMON_DEBUG=None, SECRET_KEY=None, ALLOWED_HOSTS=None, CSRF_TRUSTED_ORIGINS=None)
    values = dump(env)
    assert values["DEBUG"] is True
    assert values["SECURE_SSL_REDIRECT"] is False
    assert values["GNOMON_LOG_FORMAT"] == "text"
    assert "localhost" in values["ALLOWED_HOSTS"]


@pytest.mark.parametrize(
    ("missing", "message"),
    [
        ("SECRET_KEY", "SECRET_KEY must be set"),
        ("ALLOWED_HOSTS", "ALLOWED_HOSTS must be set"),
        ("DATABASE_URL", "DATABASE_URL must be set"),
        ("CELERY_BROKER_URL", "CELERY_BROKER_URL must be set"),
    ],
)
def test_production_refuses_to_start_without_its_secrets_and_servers(missing, message):
    """No dev secret, no wildcard host, no embedded PostgreSQL/Redis behind an operator's back."""
    result = run_python("import django; django.setup()", production_env(**{missing: None}))
    assert result.returncode != 0
    assert message in result.stderr


def test_unknown_log_format_is_rejected():
    result = run_python("import django; django.setup()", production_env(GNOMON_LOG_FORMAT="xml"))
    assert result.returncode != 0
    assert "GNOMON_LOG_FORMAT must be one of json, text" in result.stderr


HTTP_PROBE = """
import json, django
django.setup()
from django.test import Client
c = Client()
out = {}
r = c.get("/healthz", HTTP_HOST="10.1.2.3:8000")
out["healthz_any_host_plain_http"] = [r.status_code, r.json()["status"]]
r = c.get("/admin/login/", HTTP_HOST="evil.example.com", HTTP_X_FORWARDED_PROTO="https")
out["unknown_host"] = r.status_code
r = c.get("/admin/login/", HTTP_HOST="gnomon.example.org")
out["plain_http"] = [r.status_code, r.get("Location")]
r = c.get("/admin/login/", HTTP_HOST="gnomon.example.org", HTTP_X_FORWARDED_PROTO="https")
out["https"] = [r.status_code, r.get("Strict-Transport-Security"), r.get("X-Request-ID") is not None]
out["csrf_cookie_secure"] = bool(r.cookies["csrftoken"]["secure"]) if "csrftoken" in r.cookies else None
print(json.dumps(out))
"""


def test_production_http_behaviour():
    result = run_python(HTTP_PROBE, production_env())
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert out["healthz_any_host_plain_http"] == [200, "ok"]  # probes need neither a known Host nor HTTPS
    assert out["unknown_host"] == 400
    assert out["plain_http"] == [301, "https://gnomon.example.org/admin/login/"]
    status, hsts, has_request_id = out["https"]
    assert status == 200
    assert hsts == "max-age=31536000; includeSubDomains; preload"
    assert has_request_id
    assert out["csrf_cookie_secure"] is True
