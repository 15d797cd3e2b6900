"""REST API views: thin translations between HTTP and ``catalog.selectors`` / ``discovery.services``."""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.http import FileResponse, Http404, StreamingHttpResponse
from django.shortcuts import get_object_or_404
from django.urls import reverse
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, OpenApiResponse, extend_schema, inline_serializer
from rest_framework import generics, permissions, serializers, status
from rest_framework.exceptions import NotFound, PermissionDenied, ValidationError
from rest_framework.parsers import JSONParser
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response
from rest_framework.views import APIView

from api import params
from api.dumps import published
from api.export import EXPORT_FIELDS, EXPORT_FORMATS, parse_export_fields, stream_export
from api.filters import MaterialFilterSet, search_from_params
from api.pagination import DEFAULT_LIMIT, MAX_LIMIT, KeysetPage
from api.renderers import (
    CIFRenderer,
    CIFZipRenderer,
    CSVRenderer,
    ExtXYZRenderer,
    ExtXYZStreamRenderer,
    JSONLinesRenderer,
    POSCARRenderer,
)
from api.serializers import (
    ALL_MATERIAL_FIELDS,
    LIST_DEFAULT_FIELDS,
    CampaignLaunchSerializer,
    CampaignRoundSerializer,
    CampaignSerializer,
    HullSerializer,
    MaterialDetailSerializer,
    MaterialFieldsSerializer,
    MaterialSerializer,
    material_values,
    parse_fields,
    represent_materials,
)
from api.throttling import EXPORT_THROTTLES, READ_THROTTLES
from catalog.models import Material
from catalog.selectors import hull_entries, hull_for
from catalog.verdicts import material_verdict
from discovery.models import Campaign
from discovery.services.campaigns import CampaignConfigError, create_campaign

ERROR_400 = OpenApiResponse(
    inline_serializer(
        "ValidationError",
        {"parameter": serializers.ListField(child=serializers.CharField(), required=False)},
    ),
    description="A parameter is invalid; each key names one, with what is wrong with it.",
    examples=[OpenApiExample("bad element", value={"elements": ["malformed value 'Xx'; expected e.g. 'Li,Fe,O'"]})],
)
DETAIL = inline_serializer("Detail", {"detail": serializers.CharField()})
ERROR_404 = OpenApiResponse(DETAIL, description="No such object.")
ERROR_429 = OpenApiResponse(DETAIL, description="Too many requests; retry after the `Retry-After` header's seconds.")
ERROR_401 = OpenApiResponse(DETAIL, description="No or invalid token.")
ERROR_403 = OpenApiResponse(DETAIL, description="The token's user is not staff.")

FIELDS_PARAM = OpenApiParameter(
    "fields",
    {"type": "string", "pattern": params.names_pattern(ALL_MATERIAL_FIELDS)},
    description="Comma-separated fields to return, from: " + ", ".join(ALL_MATERIAL_FIELDS),
)
PAGE_PARAMS = [
    OpenApiParameter(
        "limit",
        {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT},
        description=f"Page size (default {DEFAULT_LIMIT}).",
    ),
    OpenApiParameter("cursor", str, description="Opaque position from the previous page's `next` link."),
]
FILTER_PARAMS = [
    OpenApiParameter(
        "elements",
        {"type": "string", "pattern": params.ELEMENT_LIST},
        examples=[OpenApiExample("lithium iron oxides", value="Li,Fe,O")],
    ),
    OpenApiParameter("exclude_elements", {"type": "string", "pattern": params.ELEMENT_LIST}),
    OpenApiParameter(
        "chemsys",
        {"type": "string", "pattern": params.CHEMSYS},
        examples=[OpenApiExample("exact", value="Fe-Li-O"), OpenApiExample("wildcard", value="Li-*-O")],
    ),
    OpenApiParameter(
        "formula",
        {"type": "string", "pattern": params.FORMULA},
        examples=[OpenApiExample("reduced", value="LiFePO4"), OpenApiExample("anonymous", value="ABO3")],
    ),
    OpenApiParameter("origin", {"type": "string", "pattern": params.ORIGIN}),
    OpenApiParameter(
        "ordering",
        {"type": "string", "pattern": params.ORDERING},
        examples=[OpenApiExample("most stable first", value="energy_above_hull")],
    ),
    OpenApiParameter("nelements", {"type": "integer", "minimum": 1, "maximum": 118}),
    OpenApiParameter("nelements_min", {"type": "integer", "minimum": 1, "maximum": 118}),
    OpenApiParameter("nelements_max", {"type": "integer", "minimum": 1, "maximum": 118}),
    OpenApiParameter("spacegroup_number", {"type": "integer", "minimum": 1, "maximum": 230}),
    OpenApiParameter("campaign", {"type": "integer", "minimum": 1, "maximum": 2**31 - 1}),
]
MATERIAL_EXAMPLE = {
    "public_id": "gn-000042",
    "formula_reduced": "SrTiO3",
    "formula_anonymous": "ABC3",
    "chemsys": "O-Sr-Ti",
    "elements": ["O", "Sr", "Ti"],
    "nelements": 3,
    "nsites": 5,
    "volume": 59.55,
    "density": 5.12,
    "spacegroup_number": 221,
    "spacegroup_symbol": "Pm-3m",
    "crystal_system": "cubic",
    "formation_energy_per_atom": -3.52,
    "energy_above_hull": 0.0,
    "is_stable": True,
    "hull_scheme": "MP2020",
    "origins": [{"kind": "dataset", "dataset": "perov_5", "source_id": "1234", "licence": "MIT"}],
    "created_at": "2026-11-25T06:00:00Z",
    "updated_at": "2026-11-25T06:00:00Z",
}


class JSONErrorsMixin:
    """Errors are always JSON (whatever file format was asked for), and an unknown ``format`` is a 400."""

    def perform_content_negotiation(self, request, force=False):
        if not force and request.query_params.get("format") == "":
            raise ValidationError({"format": ["must not be empty; leave it out for the default"]})
        try:
            return super().perform_content_negotiation(request, force=force)
        except Http404 as exc:
            formats = ", ".join(r.format for r in self.get_renderers())
            raise ValidationError({"format": [f"unknown format; choose from {formats}"]}) from exc

    def finalize_response(self, request, response, *args, **kwargs):
        if getattr(response, "exception", False):
            request.accepted_renderer = JSONRenderer()
            request.accepted_media_type = JSONRenderer.media_type
        return super().finalize_response(request, response, *args, **kwargs)


class MaterialListView(JSONErrorsMixin, generics.GenericAPIView):
    """Search the catalog with Materials-Project-style filters; keyset (cursor) pagination."""

    queryset = Material.objects.all()
    serializer_class = MaterialSerializer
    filter_backends = [DjangoFilterBackend]
    filterset_class = MaterialFilterSet
    pagination_class = None
    throttle_classes = READ_THROTTLES
    renderer_classes = [JSONRenderer]

    @extend_schema(
        operation_id="materials_list",
        parameters=[*FILTER_PARAMS, FIELDS_PARAM, *PAGE_PARAMS],
        responses={
            200: OpenApiResponse(
                inline_serializer(
                    "MaterialPage",
                    {
                        "next": serializers.URLField(allow_null=True),
                        "results": MaterialFieldsSerializer(many=True),
                    },
                ),
                examples=[OpenApiExample("one page", value={"next": None, "results": [MATERIAL_EXAMPLE]})],
            ),
            400: ERROR_400,
            404: OpenApiResponse(DETAIL, description="The cursor is not a position in this list."),
            429: ERROR_429,
        },
    )
    def get(self, request):
        fields = parse_fields(request.query_params.get("fields"), LIST_DEFAULT_FIELDS)
        query, queryset = search_from_params(request.query_params)
        ordering_keys = tuple(key.lstrip("-") for key in query.ordering)
        page = KeysetPage(
            request, queryset, query.ordering, fetch=lambda qs: material_values(qs, fields, ordering_keys)
        )
        return page.response(represent_materials(page.rows, fields))


class MaterialDetailView(JSONErrorsMixin, generics.GenericAPIView):
    """One material with its structure; `?format=cif|poscar|extxyz` (or `Accept`) for the structure file."""

    serializer_class = MaterialDetailSerializer
    throttle_classes = READ_THROTTLES
    renderer_classes = [JSONRenderer, CIFRenderer, POSCARRenderer, ExtXYZRenderer]
    lookup_field = "public_id"

    def get_queryset(self):
        return Material.objects.all()

    @extend_schema(
        operation_id="materials_retrieve",
        parameters=[
            OpenApiParameter(
                "format",
                {"type": "string", "enum": ["json", "cif", "poscar", "extxyz"]},
                description="`json` (default): the material with its structure; else the structure file.",
            ),
        ],
        responses={
            (200, "application/json"): OpenApiResponse(
                MaterialDetailSerializer,
                examples=[OpenApiExample("SrTiO3", value={**MATERIAL_EXAMPLE, "structure": {"@class": "Structure"},
                                                          "stability_verdict": None})],
            ),
            (200, "chemical/x-cif"): OpenApiTypes.STR,
            (200, "text/plain"): OpenApiTypes.STR,
            (200, "chemical/x-extxyz"): OpenApiTypes.STR,
            (400, "application/json"): ERROR_400,
            (404, "application/json"): ERROR_404,
            (429, "application/json"): ERROR_429,
        },
    )
    def get(self, request, public_id: str):
        rows = material_values(Material.objects.filter(public_id=public_id), ALL_MATERIAL_FIELDS)
        if not rows:
            raise NotFound(f"no material '{public_id[:40]}'")
        data = represent_materials(rows, ALL_MATERIAL_FIELDS)[0]
        fmt = request.accepted_renderer.format
        if fmt in ("cif", "poscar", "extxyz"):
            name = f"{public_id}.{'vasp' if fmt == 'poscar' else fmt}"
            return Response(data, headers={"Content-Disposition": f'inline; filename="{name}"'})
        data["stability_verdict"] = material_verdict(Material.objects.get(public_id=public_id))
        return Response(data)


class HullView(JSONErrorsMixin, APIView):
    """The convex hull of one chemical system in one scheme: every entry's e_above_hull and decomposition."""

    throttle_classes = READ_THROTTLES
    renderer_classes = [JSONRenderer]

    @extend_schema(
        operation_id="chemsys_hull",
        parameters=[
            OpenApiParameter(
                "chemsys",
                {"type": "string", "pattern": params.CHEMSYS_EXACT},
                OpenApiParameter.PATH,
                description="e.g. `Fe-Li-O` (any order)",
            ),
            OpenApiParameter(
                "scheme",
                {"type": "string", "minLength": 1, "maxLength": 64, "pattern": r"^[^\x00]+$"},
                description="Scheme name (default: the preferred scheme that has this hull).",
            ),
        ],
        responses={200: HullSerializer, 400: ERROR_400, 404: ERROR_404, 429: ERROR_429},
    )
    def get(self, request, chemsys: str):
        if not params.matches(params.CHEMSYS_EXACT, chemsys):
            raise NotFound(f"'{chemsys[:60]}' is not a chemical system like 'Fe-Li-O'")
        elements = sorted(set(chemsys.split("-")))
        scheme = request.query_params.get("scheme")
        if scheme is not None and (not scheme or "\x00" in scheme or len(scheme) > 64):
            raise ValidationError({"scheme": ["a scheme name: 1 to 64 characters, no NUL"]})
        hull = hull_for(chemsys, scheme or "")
        if hull is None:
            raise NotFound(f"no hull for {'-'.join(elements)}" + (f" in scheme '{scheme}'" if scheme else ""))
        entries = hull_entries(hull)
        data = {
            "chemsys": hull.chemsys,
            "scheme": hull.scheme.name,
            "revision": hull.revision,
            "n_entries": hull.n_entries,
            "n_stable": hull.n_stable,
            "updated_at": hull.updated_at,
            "entries": [
                {
                    "material": entry.material.public_id if entry.material_id else None,
                    "composition": entry.energy_record.composition,
                    "formation_energy_per_atom": entry.formation_energy_per_atom,
                    "energy_above_hull": entry.e_above_hull,
                    "is_stable": entry.is_stable,
                    "decomposition_energy": entry.decomposition_energy,
                    "decomposition": entry.decomposition,
                    "status": entry.status,
                }
                for entry in entries
            ],
        }
        return Response(HullSerializer(data).data)


def _campaign_id(raw: str) -> int:
    """Campaign ids in URLs: anything that is not a positive integer is simply not found (a JSON 404)."""
    if not (raw.isascii() and raw.isdigit()) or not 0 < int(raw) < 2**63:  # "¹".isdigit() is True; int() refuses it
        raise NotFound(f"no campaign '{raw[:40]}'")
    return int(raw)


class IsStaffOrReadOnly(permissions.BasePermission):
    message = "launching a campaign needs the token of a staff user"

    def has_permission(self, request, view):
        if request.method in permissions.SAFE_METHODS:
            return True
        return bool(request.user and request.user.is_authenticated and request.user.is_staff)


class CampaignListView(JSONErrorsMixin, generics.ListCreateAPIView):
    """Campaigns, newest first; POST (staff token) queues a new one."""

    queryset = Campaign.objects.select_related("launched_by").order_by("-created_at", "-id")
    serializer_class = CampaignSerializer
    parser_classes = [JSONParser]
    permission_classes = [permissions.IsAuthenticatedOrReadOnly, IsStaffOrReadOnly]
    throttle_classes = READ_THROTTLES
    renderer_classes = [JSONRenderer]
    filter_backends: list = []

    @extend_schema(operation_id="campaigns_list", responses={200: CampaignSerializer(many=True), 429: ERROR_429})
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    @extend_schema(
        operation_id="campaigns_create",
        request=CampaignLaunchSerializer,
        responses={201: CampaignSerializer, 400: ERROR_400, 401: ERROR_401, 403: ERROR_403, 429: ERROR_429},
        examples=[
            OpenApiExample(
                "Li-Fe-O search",
                request_only=True,
                value={"name": "li-fe-o-1", "elements": ["Li", "Fe", "O"], "max_elements": 3,
                       "pipelines": ["structural", "compositional"]},
            )
        ],
    )
    def post(self, request, *args, **kwargs):
        if not isinstance(request.data, dict):
            raise ValidationError({"non_field_errors": ["send a JSON object with the campaign's settings"]})
        try:
            campaign = create_campaign(dict(request.data), user=request.user, launch=True)
        except DjangoPermissionDenied as exc:
            raise PermissionDenied(str(exc)) from exc
        except CampaignConfigError as exc:
            raise ValidationError({field: [message] for field, message in exc.errors.items()}) from exc
        campaign.refresh_from_db()  # launching moved it on (queued) through a locked copy of the row
        return Response(CampaignSerializer(campaign).data, status=status.HTTP_201_CREATED)


class CampaignDetailView(JSONErrorsMixin, generics.RetrieveAPIView):
    queryset = Campaign.objects.select_related("launched_by")
    serializer_class = CampaignSerializer
    throttle_classes = READ_THROTTLES
    renderer_classes = [JSONRenderer]

    @extend_schema(
        operation_id="campaigns_retrieve", responses={200: CampaignSerializer, 404: ERROR_404, 429: ERROR_429}
    )
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)


class CampaignRoundsView(JSONErrorsMixin, generics.ListAPIView):
    serializer_class = CampaignRoundSerializer
    throttle_classes = READ_THROTTLES
    renderer_classes = [JSONRenderer]
    filter_backends: list = []

    def get_queryset(self):
        campaign = get_object_or_404(Campaign, pk=_campaign_id(self.kwargs["pk"]))
        return campaign.rounds.order_by("index")

    @extend_schema(
        operation_id="campaigns_rounds",
        responses={200: CampaignRoundSerializer(many=True), 404: ERROR_404, 429: ERROR_429},
    )
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)


class ExportView(JSONErrorsMixin, generics.GenericAPIView):
    """Bulk export of any search as a stream (no Content-Length): JSON Lines, CSV, extended XYZ or a ZIP of CIFs."""

    queryset = Material.objects.all()
    filter_backends = [DjangoFilterBackend]
    filterset_class = MaterialFilterSet
    throttle_classes = EXPORT_THROTTLES
    renderer_classes = [JSONLinesRenderer, CSVRenderer, ExtXYZStreamRenderer, CIFZipRenderer]

    @extend_schema(
        operation_id="export",
        parameters=[
            *FILTER_PARAMS,
            OpenApiParameter(
                "format",
                {"type": "string", "enum": list(EXPORT_FORMATS)},
                description="jsonl (default), csv, extxyz, or cif (a ZIP with one CIF per material).",
            ),
            OpenApiParameter(
                "fields",
                {"type": "string", "pattern": params.names_pattern(EXPORT_FIELDS)},
                description="Columns for jsonl/csv, info keys for extxyz, from: " + ", ".join(EXPORT_FIELDS),
            ),
        ],
        responses={
            (200, "application/jsonl"): OpenApiTypes.BINARY,
            (200, "text/csv"): OpenApiTypes.BINARY,
            (200, "chemical/x-extxyz"): OpenApiTypes.BINARY,
            (200, "application/zip"): OpenApiTypes.BINARY,
            (400, "application/json"): ERROR_400,
            (429, "application/json"): ERROR_429,
        },
    )
    def get(self, request):
        fmt = request.accepted_renderer.format
        fields = parse_export_fields(request.query_params.get("fields"), fmt)
        _, queryset = search_from_params(request.query_params)
        content_type, extension = EXPORT_FORMATS[fmt]
        response = StreamingHttpResponse(stream_export(queryset, fmt, fields), content_type=content_type)
        response["Content-Disposition"] = f'attachment; filename="gnomon-export.{extension}"'
        response["X-Accel-Buffering"] = "no"  # let proxies pass chunks through as they come
        return response


class ApiRootView(APIView):
    """Where everything is: the REST endpoints, the published full dumps, OPTIMADE, the schema and its docs."""

    permission_classes = [permissions.AllowAny]
    throttle_classes = READ_THROTTLES
    renderer_classes = [JSONRenderer]

    @extend_schema(operation_id="api_root", responses={200: OpenApiTypes.OBJECT})
    def get(self, request):
        def url(name: str) -> str:
            return request.build_absolute_uri(reverse(name))

        return Response({
            "materials": url("api:material-list"),
            "export": url("api:export"),
            "dumps": url("api:dump-list"),
            "campaigns": url("api:campaign-list"),
            "optimade": request.build_absolute_uri("/optimade/v1/info"),
            "schema": url("schema"),
            "docs": url("swagger-ui"),
        })


DUMP_ENTRY = inline_serializer("Dump", many=True, fields={
    "name": serializers.CharField(), "kind": serializers.ChoiceField(choices=["catalog", "optimade"]),
    "bytes": serializers.IntegerField(), "sha256": serializers.CharField(), "created": serializers.DateTimeField(),
    "url": serializers.URLField(),
})


class DumpListView(APIView):
    """Published full dumps (``manage.py publish_dumps``), newest first: the catalog archive that ``import_catalog``
    reads, and every structure as OPTIMADE JSON Lines. Not throttled: this is the way to take everything."""

    permission_classes = [permissions.AllowAny]
    throttle_classes: list = []
    renderer_classes = [JSONRenderer]

    @extend_schema(operation_id="dumps_list", responses={200: DUMP_ENTRY})
    def get(self, request):
        entries = published(settings.GNOMON_DUMP_DIR)
        return Response([{**e, "url": request.build_absolute_uri(reverse("api:dump-file", args=[e["name"]]))}
                         for e in entries])


class DumpFileView(APIView):
    """One published dump file (gzip), by the name the list gives."""

    permission_classes = [permissions.AllowAny]
    throttle_classes: list = []

    @extend_schema(operation_id="dumps_file", responses={(200, "application/gzip"): OpenApiTypes.BINARY,
                                                         404: ERROR_404})
    def get(self, request, name: str):
        if name not in {e["name"] for e in published(settings.GNOMON_DUMP_DIR)}:
            raise NotFound(f"no published dump '{name[:80]}'; see /api/v1/dumps/")
        return FileResponse((settings.GNOMON_DUMP_DIR / name).open("rb"), as_attachment=True, filename=name,
                            content_type="application/gzip")
