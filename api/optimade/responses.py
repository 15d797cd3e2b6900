"""OPTIMADE response documents: the ``meta`` block, JSON:API bodies and error documents.

Kept apart from the views so that the site's middleware (``gnomon.security``) can answer an OPTIMADE path in the
specification's error shape without importing a view.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

from django.conf import settings
from django.http import HttpResponse
from optimade import __api_version__

from api.optimade.fields import PROVIDER_PREFIX

SCHEMA_URL = f"https://schemas.optimade.org/openapi/v{__api_version__}/optimade.json"
JSONAPI = "application/vnd.api+json"


class OptimadeError(Exception):
    def __init__(self, status: int, title: str, detail: str):
        super().__init__(detail)
        self.status, self.title, self.detail = status, title, detail


def meta(
    request, data_returned: int | None = None, data_available: int | None = None, more_data_available: bool = False
) -> dict:
    provider = {
        "name": settings.GNOMON_OPTIMADE_PROVIDER_NAME,
        "description": "A self-hosted, living catalog for materials discovery",
        "prefix": PROVIDER_PREFIX,
        "homepage": settings.GNOMON_OPTIMADE_HOMEPAGE,
    }
    block = {
        "query": {
            "representation": request.get_full_path().split("/optimade/", 1)[-1].split("/", 1)[-1]
            if "/optimade/" in request.path
            else request.get_full_path()
        },
        "api_version": __api_version__,
        "time_stamp": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "more_data_available": more_data_available,
        "provider": provider,
        "implementation": {"name": "Gnomon", "version": "0.1.0"},
        "schema": SCHEMA_URL,
    }
    block["query"]["representation"] = "/" + block["query"]["representation"].lstrip("/")
    if data_returned is not None:
        block["data_returned"] = data_returned
    if data_available is not None:
        block["data_available"] = data_available
    return block


def json_response(payload: dict, status: int = 200) -> HttpResponse:
    return HttpResponse(json.dumps(payload), status=status, content_type=JSONAPI)


def error_response(request, error: OptimadeError) -> HttpResponse:
    return json_response(
        {
            "errors": [{"status": str(error.status), "title": error.title, "detail": error.detail}],
            "meta": meta(request),
        },
        status=error.status,
    )
