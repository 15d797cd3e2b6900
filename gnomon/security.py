"""Request hygiene that no single view should have to remember."""

from __future__ import annotations

import json
import re

from django.conf import settings
from django.http import HttpRequest, HttpResponse

_ENCODED_NUL = re.compile(r"%00", re.IGNORECASE)
NUL_MESSAGE = "the URL contains a NUL character (%00), which no identifier or filter value can hold; remove it"


class RequestSizeLimitMiddleware:
    """413 for a declared body larger than ``GNOMON_MAX_REQUEST_BYTES``, before CSRF or a view reads it.

    Django's DATA_UPLOAD_MAX_MEMORY_SIZE stops oversized form fields and JSON, but multipart *file* parts are streamed
    to a temporary file whatever their size, and CsrfViewMiddleware parses any POST body to look for its token, so
    anyone could fill the disk. (A body without Content-Length is read as empty by Django's WSGI handler.)
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        limit = settings.GNOMON_MAX_REQUEST_BYTES
        if length > limit:
            message = f"request body of {length} bytes is larger than the {limit} bytes this server accepts"
            return error_response(request, 413, "Payload Too Large", message)
        return self.get_response(request)


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
            return error_response(request, 400, "Bad Request", NUL_MESSAGE)
        return self.get_response(request)


def error_response(request: HttpRequest, status: int, title: str, message: str) -> HttpResponse:
    """The error in the shape each part of the site speaks: JSON:API for OPTIMADE, DRF's for the REST API."""
    path = request.path
    if path.startswith("/optimade/"):
        from api.optimade.responses import OptimadeError
        from api.optimade.responses import error_response as optimade_error

        return optimade_error(request, OptimadeError(status, title, message))
    if path.startswith("/api/"):
        return HttpResponse(json.dumps({"detail": message}), status=status, content_type="application/json")
    return HttpResponse(message, status=status, content_type="text/plain; charset=utf-8")
