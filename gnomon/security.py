"""Request hygiene that no single view should have to remember."""

from __future__ import annotations

import json
import re

from django.http import HttpRequest, HttpResponse

_ENCODED_NUL = re.compile(r"%00", re.IGNORECASE)
NUL_MESSAGE = "the URL contains a NUL character (%00), which no identifier or filter value can hold; remove it"


class RejectNulBytesMiddleware:
    """Answer 400 to any URL holding a NUL byte, in the path or the query string.

    PostgreSQL text cannot hold NUL, so psycopg refuses such a value with DataError, and every view that looks a path
    segment or parameter up in the database (a material id, an OPTIMADE entry id, a filter string) would turn it into
    a 500. Forms and DRF serializers already refuse NUL in bodies; this covers URLs. Found by tests/api/test_fuzz.py.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if "\x00" in request.path or _ENCODED_NUL.search(request.META.get("QUERY_STRING", "")):
            return nul_response(request)
        return self.get_response(request)


def nul_response(request: HttpRequest) -> HttpResponse:
    """The error in the shape each part of the site speaks: JSON:API for OPTIMADE, DRF's for the REST API."""
    path = request.path
    if path.startswith("/optimade/"):
        from catalog.optimade.views import OptimadeError, error_response

        return error_response(request, OptimadeError(400, "Bad Request", NUL_MESSAGE))
    if path.startswith("/api/"):
        return HttpResponse(json.dumps({"detail": NUL_MESSAGE}), status=400, content_type="application/json")
    return HttpResponse(NUL_MESSAGE, status=400, content_type="text/plain; charset=utf-8")
