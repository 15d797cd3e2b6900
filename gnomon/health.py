"""``/healthz``: is this process able to serve? Checks the database and the Celery broker.

200 ``{"status": "ok", "checks": {...}}`` when every dependency answers; 503 ``{"status": "unavailable", "failing":
["broker"], ...}`` naming the dependencies that do not. Error details go to the log, not to the (public) response.

:class:`HealthCheckMiddleware` sits before Django's SecurityMiddleware and answers ``/healthz`` itself, so that
container and load-balancer probes work over plain HTTP with any Host header (no HTTPS redirect, no ALLOWED_HOSTS
rejection); the URL route in ``gnomon.urls`` serves the same view for ``reverse("healthz")``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from django.conf import settings
from django.db import connections
from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache

logger = logging.getLogger("gnomon.health")
HEALTHZ_PATH = "/healthz"


def check_database() -> None:
    """A round trip to the default database."""
    with connections["default"].cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()


def check_broker() -> None:
    """A connection to the Celery broker (settings.CELERY_BROKER_URL), one attempt, bounded by the timeout."""
    from gnomon.celery import app

    timeout = settings.GNOMON_HEALTHZ_TIMEOUT
    with app.connection_for_write(settings.CELERY_BROKER_URL, connect_timeout=timeout) as conn:
        conn.transport_options = {
            **conn.transport_options,
            "socket_connect_timeout": timeout,
            "socket_timeout": timeout,
            "max_retries": 0,
        }
        conn.ensure_connection(max_retries=1, interval_start=0, interval_step=0, timeout=timeout)
        channel = conn.default_channel
        client = getattr(channel, "client", None)
        if client is not None and hasattr(client, "ping"):  # Redis: prove the server answers commands (auth, db)
            client.ping()


CHECKS: dict[str, Callable[[], None]] = {"database": check_database, "broker": check_broker}


def run_checks() -> tuple[bool, dict[str, dict]]:
    results: dict[str, dict] = {}
    for name, check in CHECKS.items():
        started = time.perf_counter()
        try:
            check()
        except Exception as exc:  # noqa: BLE001 - any failure means the dependency is unavailable
            logger.warning("health check %s failed: %s: %s", name, type(exc).__name__, exc, extra={"check": name})
            results[name] = {"ok": False, "error": type(exc).__name__}
        else:
            results[name] = {"ok": True}
        results[name]["duration_ms"] = round((time.perf_counter() - started) * 1000, 1)
    return all(result["ok"] for result in results.values()), results


@never_cache
def healthz(request: HttpRequest) -> JsonResponse:
    ok, results = run_checks()
    body: dict = {"status": "ok" if ok else "unavailable", "checks": results}
    if not ok:
        body["failing"] = [name for name, result in results.items() if not result["ok"]]
    return JsonResponse(body, status=200 if ok else 503)


class HealthCheckMiddleware:
    """Answers GET/HEAD /healthz before host validation and the HTTPS redirect (probes speak plain HTTP to the pod)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest):
        if request.path.rstrip("/") == HEALTHZ_PATH and request.method in ("GET", "HEAD"):
            return healthz(request)
        return self.get_response(request)
