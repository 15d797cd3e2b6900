"""Web UI views: parse the request, call catalog/discovery code, render. HTMX requests get the partial only."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from catalog.formats import FORMATS, structure_to_format
from catalog.models import Material, Scheme
from catalog.selectors import CRYSTAL_SYSTEMS, InvalidQuery, hull_schemes, normalize_elements
from catalog.verdicts import missing_competitors
from discovery import selectors as discovery_selectors
from discovery.models import Campaign
from frontend import pages
from frontend.params import PAGE_SIZES, ordering_of, page_of, query_from_params
from frontend.periodic import periodic_cells
from frontend.plots import phase_diagram

RESULT_COLUMNS = (
    ("public_id", "ID"),
    ("formula_reduced", "Formula"),
    ("spacegroup_number", "Space group"),
    ("nsites", "Sites"),
    ("formation_energy_per_atom", "Formation energy"),
    ("e_above_hull", "E above hull"),
)


def _is_partial(request) -> bool:
    return bool(request.htmx) and not request.htmx.history_restore_request


@require_GET
def home(request):
    return render(
        request,
        "frontend/home.html",
        {
            "counts": pages.home_counts(),
            "stable_chart": pages.stable_chart(),
            "latest": pages.latest_discoveries(),
            "active_campaigns": list(Campaign.objects.filter(status__in=pages.ACTIVE_CAMPAIGN_STATES)[:5]),
        },
    )


@require_GET
def material_list(request):
    params = request.GET
    error = None
    results = None
    try:
        query = query_from_params(params)
        page, page_size = page_of(params)
        results = pages.search_page(query, page, page_size)
    except InvalidQuery as exc:
        error = exc
    try:
        ordering = ordering_of(params)
    except InvalidQuery:
        ordering = "e_above_hull"
    columns = []
    for name, label in RESULT_COLUMNS:
        direction = "asc" if ordering == name else "desc" if ordering == f"-{name}" else ""
        columns.append({"name": name, "label": label, "direction": direction, "next": f"-{name}" if ordering == name else name})
    context = {"results": results, "error": error, "columns": columns, "ordering": ordering}
    if _is_partial(request):
        return render(request, "frontend/partials/material_results.html", context)

    def _safe_elements(name):
        try:
            return set(normalize_elements(",".join(params.getlist(name)), name))
        except InvalidQuery:
            return set()

    only = _safe_elements("only_elements")
    included = _safe_elements("elements") | only
    excluded = _safe_elements("exclude_elements")
    context.update(
        {
            "cells": periodic_cells(),
            "included": included,
            "excluded": excluded,
            "restrict": bool(only),
            "crystal_systems": CRYSTAL_SYSTEMS,
            "origins": pages.origin_choices(),
            "page_sizes": PAGE_SIZES,
            "form": params,
        }
    )
    return render(request, "frontend/material_list.html", context)


@require_GET
def material_detail(request, public_id: str):
    material = get_object_or_404(Material.objects.select_related("hull_scheme"), public_id=public_id)
    context = pages.material_page(material)
    context["formats"] = FORMATS
    return render(request, "frontend/material_detail.html", context)


@require_GET
def material_download(request, public_id: str, fmt: str):
    if fmt not in FORMATS:
        raise Http404(f"unknown format {fmt}")
    material = get_object_or_404(Material.objects.only("public_id", "formula_reduced", "structure"), public_id=public_id)
    content, content_type, extension = structure_to_format(material.to_structure(), fmt)
    response = HttpResponse(content, content_type=content_type)
    response["Content-Disposition"] = f'attachment; filename="{material.public_id}_{material.formula_reduced}.{extension}"'
    return response


def _chemsys_or_404(chemsys: str) -> list[str]:
    try:
        elements = list(normalize_elements(chemsys.split("-"), "chemsys"))
    except InvalidQuery as exc:
        raise Http404(str(exc)) from exc
    if not elements:
        raise Http404("empty chemical system")
    return elements


def _phase_diagram_context(request, elements: list[str]) -> dict:
    chemsys = "-".join(elements)
    schemes = hull_schemes(chemsys)  # preferred first
    wanted = request.GET.get("scheme", "")
    scheme = next((s for s in schemes if s.name == wanted), None)
    if scheme is None and wanted:
        scheme = Scheme.objects.filter(name=wanted).first()
    if scheme is None and schemes:
        scheme = schemes[0]
    try:
        show_unstable = min(1.0, max(0.0, float(request.GET.get("show_unstable", "0.1"))))
    except ValueError:
        show_unstable = 0.1
    highlight = request.GET.get("highlight", "")
    data = phase_diagram(elements, scheme, show_unstable, highlight) if scheme is not None else None
    shown = data.entries if data else []
    return {
        "missing_competitors": missing_competitors(chemsys, scheme) if scheme is not None else [],
        "chemsys": chemsys,
        "elements": elements,
        "schemes": schemes,
        "scheme": scheme,
        "show_unstable": show_unstable,
        "pd": data,
        "shown_entries": shown,
        "highlight": highlight,
    }


@require_GET
def phase_diagram_page(request, chemsys: str):
    elements = _chemsys_or_404(chemsys)
    if "-".join(elements) != chemsys:
        url = reverse("frontend:phase-diagram", args=["-".join(elements)])
        return redirect(f"{url}?{request.GET.urlencode()}" if request.GET else url)
    context = _phase_diagram_context(request, elements)
    template = "frontend/partials/phase_diagram.html" if _is_partial(request) else "frontend/phase_diagram.html"
    return render(request, template, context)


@require_GET
def campaign_list(request):
    return render(request, "frontend/campaign_list.html", {"campaigns": discovery_selectors.campaign_list()})


@require_GET
def campaign_detail(request, pk: int):
    campaign = get_object_or_404(Campaign, pk=pk)
    return render(request, "frontend/campaign_detail.html", pages.campaign_progress(campaign))


@require_GET
def campaign_progress(request, pk: int):
    campaign = get_object_or_404(Campaign, pk=pk)
    return render(request, "frontend/partials/campaign_progress.html", pages.campaign_progress(campaign))


def _campaign_action(request, pk: int, action):
    if not request.user.is_staff:
        raise PermissionDenied("staff only")
    campaign = get_object_or_404(Campaign, pk=pk)
    from discovery.services.campaigns import CampaignStateError

    try:
        action(campaign, user=request.user)
        messages.success(request, f"Campaign '{campaign.name}': {action.__name__.replace('_campaign', '')} requested.")
    except CampaignStateError as exc:
        messages.error(request, str(exc))
    return redirect("frontend:campaign-detail", pk=campaign.pk)


@require_POST
def campaign_launch(request, pk: int):
    from discovery.services.campaigns import launch_campaign, resume_campaign

    campaign = get_object_or_404(Campaign, pk=pk)
    paused = campaign.status in (Campaign.Status.PAUSED, Campaign.Status.FAILED)
    return _campaign_action(request, pk, resume_campaign if paused else launch_campaign)


@require_POST
def campaign_cancel(request, pk: int):
    from discovery.services.campaigns import cancel_campaign

    return _campaign_action(request, pk, cancel_campaign)
