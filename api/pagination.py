"""Keyset ("cursor") pagination over the selector's ordering, stable under inserts and fast at any depth.

The cursor is the last row's sort-key values (opaque base64 JSON). The next page is every row strictly after it in the
same total order, with NULLs last as ``catalog.selectors`` sorts them; no OFFSET, so page 10,000 costs what page 1 does.
"""

from __future__ import annotations

import base64
import binascii
import json
from datetime import datetime

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import Q
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.response import Response
from rest_framework.utils.urls import replace_query_param

STALE_CURSOR = "this cursor is not a position in this list; follow the `next` link of a page with the same filters"
DEFAULT_LIMIT = 100
MAX_LIMIT = 1000


def sort_keys(ordering: tuple[str, ...]) -> list[tuple[str, bool]]:
    """(field, descending) pairs with the tie-breaker ``catalog.selectors`` appends."""
    keys = [(item.lstrip("-"), item.startswith("-")) for item in ordering]
    if not any(name in ("public_id", "id") for name, _ in keys):
        keys.append(("id", False))
    return keys


def _encode_value(value):
    return value.isoformat() if isinstance(value, datetime) else value


def encode_cursor(row, keys: list[tuple[str, bool]]) -> str:
    values = [_encode_value(row[name]) for name, _ in keys]
    return base64.urlsafe_b64encode(json.dumps(values, separators=(",", ":")).encode()).decode().rstrip("=")


def decode_cursor(cursor: str, keys: list[tuple[str, bool]], model) -> list:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        values = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (binascii.Error, ValueError, UnicodeDecodeError) as exc:
        raise NotFound(STALE_CURSOR) from exc
    if not isinstance(values, list) or len(values) != len(keys):
        raise NotFound(STALE_CURSOR)
    clean = []
    for (name, _), value in zip(keys, values, strict=True):
        try:
            clean.append(None if value is None else model._meta.get_field(name).clean(value, None))
        except (DjangoValidationError, TypeError, ValueError) as exc:
            raise NotFound(STALE_CURSOR) from exc
    return clean


def after_cursor(keys: list[tuple[str, bool]], values: list) -> Q:
    """Rows strictly after ``values`` in the order (k1, k2, ...), NULLs last for every key."""
    result = Q(pk__in=[])
    equal_so_far = Q()
    for (name, descending), value in zip(keys, values, strict=True):
        if value is None:
            after = Q(pk__in=[])  # nothing sorts after NULL on this key except via the later keys
            equal = Q(**{f"{name}__isnull": True})
        else:
            after = Q(**{f"{name}__{'lt' if descending else 'gt'}": value}) | Q(**{f"{name}__isnull": True})
            equal = Q(**{name: value})
        result |= equal_so_far & after
        equal_so_far &= equal
    return result


class KeysetPage:
    """Slice one page of an ordered queryset; the response has ``next`` (or null) and ``results``.

    ``fetch`` turns the sliced queryset into rows (dicts with the sort keys).
    """

    def __init__(self, request, queryset, ordering: tuple[str, ...], fetch=list):
        self.request = request
        self.keys = sort_keys(ordering)
        self.limit = self._limit(request)
        cursor = request.query_params.get("cursor")
        if cursor:
            queryset = queryset.filter(after_cursor(self.keys, decode_cursor(cursor, self.keys, queryset.model)))
        rows = fetch(queryset[: self.limit + 1])
        self.has_next = len(rows) > self.limit
        self.rows = rows[: self.limit]

    @staticmethod
    def _limit(request) -> int:
        raw = request.query_params.get("limit")
        if raw is None:
            return DEFAULT_LIMIT
        try:
            limit = int(raw)
        except ValueError as exc:
            raise ValidationError({"limit": [f"'{raw}' is not a whole number"]}) from exc
        if not 1 <= limit <= MAX_LIMIT:
            raise ValidationError({"limit": [f"must be between 1 and {MAX_LIMIT}"]})
        return limit

    def next_link(self) -> str | None:
        if not self.has_next:
            return None
        url = self.request.build_absolute_uri()
        return replace_query_param(url, "cursor", encode_cursor(self.rows[-1], self.keys))

    def response(self, data) -> Response:
        return Response({"next": self.next_link(), "results": data})
