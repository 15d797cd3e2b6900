"""/healthz: 200 with details when PostgreSQL and the broker answer; 503 naming whichever does not."""

from __future__ import annotations

import json

import pytest
from django.test import override_settings
from django.urls import reverse

from tests.deploy.conftest import production_env, run_python


@pytest.mark.django_db
def test_healthz_ok(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert body["checks"]["database"]["ok"] is True
    assert body["checks"]["broker"]["ok"] is True
    assert "no-cache" in response["Cache-Control"]
    assert reverse("healthz") == "/healthz"


@pytest.mark.django_db
def test_healthz_names_an_unreachable_broker(client):
    with override_settings(CELERY_BROKER_URL="redis://127.0.0.1:1/0"):  # nothing listens on port 1
        response = client.get("/healthz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    assert body["failing"] == ["broker"]
    assert body["checks"]["database"]["ok"] is True
    assert body["checks"]["broker"] == {
        "ok": False,
        "error": "OperationalError",
        "duration_ms": pytest.approx(0, abs=5000),
    }


def test_healthz_names_an_unreachable_database():
    code = """
import json, django
django.setup()
from django.test import Client
r = Client().get("/healthz")
print(json.dumps([r.status_code, r.json()]))
"""
    env = production_env(DATABASE_URL="postgres://postgres@127.0.0.1:1/nowhere", GNOMON_LOG_FORMAT="json")
    result = run_python(code, env)
    assert result.returncode == 0, result.stderr
    status, body = json.loads(result.stdout.strip().splitlines()[-1])
    assert status == 503
    assert body["failing"] == ["database"]
    assert body["checks"]["broker"]["ok"] is True
    assert body["checks"]["database"]["ok"] is False
    # The details (host, port) are logged for the operator, as JSON, not returned to the caller.
    logged = [json.loads(line) for line in result.stderr.splitlines() if line.startswith("{")]
    failure = next(line for line in logged if line["logger"] == "gnomon.health")
    assert failure["level"] == "WARNING" and failure["check"] == "database"
    assert "127.0.0.1" in failure["message"] and "127.0.0.1" not in json.dumps(body)
