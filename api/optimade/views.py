"""OPTIMADE v1.2 endpoints: versions, info, structures, links, references (JSON:API, ``application/vnd.api+json``).

Status codes follow the specification: 400 for a malformed filter or parameter, 404 for an unknown entry, 501 for a
valid but unsupported filter, 403 for ``page_limit`` above the maximum, 553 for an unsupported version prefix.
"""

from __future__ import annotations

from urllib.parse import urlencode

from django.db.models import F
from django.http import HttpResponse
from django.views.decorators.http import require_GET
from optimade import __api_version__
from optimade.models import DataType
from optimade.server.schemas import ENTRY_INFO_SCHEMAS, retrieve_queryable_properties

from api.optimade import fields as opt_fields
from api.optimade.entries import (
    PROVIDER_PROPERTIES,
    STANDARD_PROPERTIES,
    resource_queryset,
    structure_resource,
)
from api.optimade.filters import FilterError, FilterNotImplemented, parse_filter
from api.optimade.responses import OptimadeError, error_response
from api.optimade.responses import json_response as _json
from api.optimade.responses import meta as _meta
from catalog.models import Material

MAJOR = __api_version__.split(".")[0]
SERVED_VERSION_PREFIXES = {f"v{MAJOR}", "v" + ".".join(__api_version__.split(".")[:2]), f"v{__api_version__}"}
DEFAULT_PAGE_LIMIT = 20
MAX_PAGE_LIMIT = 500
ENTRY_TYPES = ("structures", "references")
KNOWN_QUERY_PARAMS = {
    "filter",
    "response_format",
    "email_address",
    "response_fields",
    "sort",
    "page_limit",
    "page_offset",
    "page_number",
    "page_cursor",
    "page_above",
    "page_below",
    "include",
    "api_hint",
}


def _base_url(request) -> str:
    """The versioned base URL as the client reached it (…/optimade/v1)."""
    path = request.path
    marker = "/optimade/"
    root = path[: path.index(marker) + len(marker)]
    version = path[len(root) :].split("/", 1)[0]
    return request.build_absolute_uri(root + version)


def optimade_view(func):
    """GET only; OptimadeError → JSON:API error document with its status."""

    @require_GET
    def wrapper(request, *args, **kwargs):
        try:
            return func(request, *args, **kwargs)
        except OptimadeError as error:
            return error_response(request, error)

    wrapper.__name__ = func.__name__
    wrapper.__doc__ = func.__doc__
    return wrapper


@require_GET
def versions(request):
    """``/optimade/versions``: the major versions served, newest first (text/csv; header=present)."""
    return HttpResponse(f"version\n{MAJOR}\n", content_type="text/csv; header=present")


@optimade_view
def unsupported_version(request, version: str, rest: str = ""):
    raise OptimadeError(
        553,
        "Version Not Supported",
        f"version prefix '{version}' is not served; use /v{MAJOR} (see /optimade/versions)",
    )


@optimade_view
def info(request):
    base = _base_url(request)
    data = {
        "id": "/",
        "type": "info",
        "attributes": {
            "api_version": __api_version__,
            "available_api_versions": [{"url": base.rsplit("/", 1)[0] + f"/v{MAJOR}", "version": __api_version__}],
            "formats": ["json"],
            "available_endpoints": ["info", "links", *ENTRY_TYPES],
            "entry_types_by_format": {"json": list(ENTRY_TYPES)},
            "is_index": False,
        },
    }
    return _json({"data": data, "meta": _meta(request, 1, 1)})


def _structure_properties() -> dict:
    standard = retrieve_queryable_properties(ENTRY_INFO_SCHEMAS["structures"], {"id", "type", "attributes"})
    properties = {}
    for name in STANDARD_PROPERTIES:
        spec = standard[name]
        entry = {
            "description": spec["description"],
            "type": DataType(spec["type"]).value,
            "sortable": name in opt_fields.SORTABLE,
        }
        if spec.get("unit"):
            entry["unit"] = spec["unit"]
        properties[name] = entry
    for name, (kind, unit, description) in PROVIDER_PROPERTIES.items():
        entry = {"description": description, "type": kind, "sortable": name in opt_fields.SORTABLE}
        if unit:
            entry["unit"] = unit
        properties[name] = entry
    return properties


def _reference_properties() -> dict:
    standard = retrieve_queryable_properties(ENTRY_INFO_SCHEMAS["references"], {"id", "type", "attributes"})
    return {
        name: {
            "description": standard[name]["description"],
            "type": DataType(standard[name]["type"]).value,
            "sortable": False,
        }
        for name in ("id", "type", "last_modified")
    }


@optimade_view
def entry_info(request, entry: str):
    if entry not in ENTRY_TYPES:
        raise OptimadeError(404, "Not Found", f"no entry type '{entry}'; choose from {', '.join(ENTRY_TYPES)}")
    properties = _structure_properties() if entry == "structures" else _reference_properties()
    schema = ENTRY_INFO_SCHEMAS[entry]
    data = {
        "id": entry,
        "type": "info",
        "formats": ["json"],
        "description": (schema.__doc__ or "Entry resources").strip(),
        "properties": properties,
        "output_fields_by_format": {"json": list(properties)},
    }
    return _json({"data": data, "meta": _meta(request, 1, 1)})


MAX_INT_PARAM = 2**63 - 1


def _int_param(request, name: str, default: int, low: int) -> int:
    raw = request.GET.get(name)
    if raw in (None, ""):
        return default
    try:
        value = int(raw)
    except ValueError:
        raise OptimadeError(400, "Bad Request", f"{name}='{raw}' is not an integer") from None
    if value < low:
        raise OptimadeError(400, "Bad Request", f"{name} must be at least {low}")
    if value > MAX_INT_PARAM:  # PostgreSQL's OFFSET is a bigint: a larger one used to end in a 500
        raise OptimadeError(400, "Bad Request", f"{name} must be at most {MAX_INT_PARAM}")
    return value


def _response_fields(request) -> tuple[str, ...] | None:
    raw = request.GET.get("response_fields")
    if raw is None:
        return None
    return tuple(name.strip() for name in raw.split(",") if name.strip() and name.strip() not in ("id", "type"))


def _sort(request) -> list:
    raw = request.GET.get("sort")
    if not raw:
        return [F("id").asc()]
    keys = []
    for item in raw.split(","):
        name = item.strip().lstrip("-")
        if name not in opt_fields.SORTABLE:
            raise OptimadeError(
                400, "Bad Request", f"cannot sort on '{name}'; sortable: {', '.join(opt_fields.SORTABLE)}"
            )
        expression = opt_fields.SORTABLE[name]
        keys.append(
            expression.desc(nulls_last=True) if item.strip().startswith("-") else expression.asc(nulls_last=True)
        )
    return [*keys, F("id").asc()]


def _check_params(request) -> None:
    if request.GET.get("response_format", "json") != "json":
        raise OptimadeError(400, "Bad Request", "response_format: only 'json' is served")
    for name in ("page_number", "page_cursor", "page_above", "page_below"):
        if request.GET.get(name):
            raise OptimadeError(501, "Not Implemented", f"{name}: paginate with page_offset and page_limit")


def _filtered_materials(request):
    queryset = Material.objects.all()
    text = request.GET.get("filter", "").strip()
    if text:
        try:
            q = parse_filter(text)
        except FilterNotImplemented as exc:
            raise OptimadeError(501, "Not Implemented", str(exc)) from exc
        except FilterError as exc:
            raise OptimadeError(400, "Bad Request", str(exc)) from exc
        used = {name: expr for name, expr in opt_fields.annotations().items() if name in repr(q)}
        queryset = queryset.annotate(**used).filter(q)
    return queryset


@optimade_view
def structures(request):
    _check_params(request)
    limit = _int_param(request, "page_limit", DEFAULT_PAGE_LIMIT, 1)
    if limit > MAX_PAGE_LIMIT:
        raise OptimadeError(403, "Forbidden", f"page_limit {limit} exceeds the maximum of {MAX_PAGE_LIMIT}")
    offset = _int_param(request, "page_offset", 0, 0)
    fields = _response_fields(request)
    queryset = _filtered_materials(request)
    data_returned = queryset.count()
    data_available = Material.objects.count() if request.GET.get("filter") else data_returned
    page = list(resource_queryset(queryset.order_by(*_sort(request)))[offset : offset + limit])
    more = offset + len(page) < data_returned
    base = _base_url(request)
    links = {"next": None}
    if more:
        params = {k: v for k, v in request.GET.items()}
        params["page_offset"] = str(offset + len(page))
        params["page_limit"] = str(limit)
        links["next"] = f"{base}/structures?{urlencode(params)}"
    return _json(
        {
            "data": [structure_resource(m, fields, base) for m in page],
            "links": links,
            "meta": _meta(request, data_returned, data_available, more),
        }
    )


@optimade_view
def structure(request, entry_id: str):
    _check_params(request)
    material = resource_queryset(Material.objects.filter(public_id=entry_id)).first()
    if material is None:
        raise OptimadeError(404, "Not Found", f"no structure with id '{entry_id}'")
    return _json(
        {
            "data": structure_resource(material, _response_fields(request), _base_url(request)),
            "links": {"next": None},
            "meta": _meta(request, 1, Material.objects.count()),
        }
    )


@optimade_view
def references(request):
    """Gnomon has no reference entries yet (dataset citations live with each origin); an empty, valid list."""
    _check_params(request)
    _int_param(request, "page_limit", DEFAULT_PAGE_LIMIT, 1)
    if request.GET.get("filter", "").strip():
        try:
            parse_filter(request.GET["filter"])
        except FilterNotImplemented as exc:
            raise OptimadeError(501, "Not Implemented", str(exc)) from exc
        except FilterError as exc:
            raise OptimadeError(400, "Bad Request", str(exc)) from exc
    return _json({"data": [], "links": {"next": None}, "meta": _meta(request, 0, 0)})


@optimade_view
def reference(request, entry_id: str):
    raise OptimadeError(404, "Not Found", f"no reference with id '{entry_id}'")


@optimade_view
def links(request):
    return _json({"data": [], "links": {"next": None}, "meta": _meta(request, 0, 0)})


@optimade_view
def not_found(request, rest: str = ""):
    raise OptimadeError(404, "Not Found", f"no OPTIMADE endpoint '{rest}'")
