"""What each page shows, gathered with a bounded number of queries (the views stay thin)."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from django.core.cache import cache
from django.db.models import Count, Q

from catalog.formats import structure_to_format
from catalog.models import EnergyRecord, HullEntry, Material, MaterialOrigin
from catalog.selectors import by_preferred_scheme, search_materials
from catalog.verdicts import ON_HULL_TOLERANCE_EV, stability_verdict
from discovery.models import Campaign
from discovery.selectors import campaign_jobs, campaign_trails, int_or_none

logger = logging.getLogger(__name__)

HOME_CACHE_SECONDS = 60
MAX_SITES_SHOWN = 200
ACTIVE_CAMPAIGN_STATES = (Campaign.Status.QUEUED, Campaign.Status.RUNNING, Campaign.Status.PAUSED)


# ---------------------------------------------------------------- home
def home_counts() -> dict:
    """Catalog counts; one pass over the material table, cached briefly (the home page is not per keystroke)."""
    counts = cache.get("frontend:home-counts")
    if counts is None:
        counts = Material.objects.aggregate(
            materials=Count("id"),
            stable=Count("id", filter=Q(is_stable=True)),
            on_hull=Count("id", filter=Q(e_above_hull__lte=ON_HULL_TOLERANCE_EV)),
        )
        counts["discovered"] = (
            MaterialOrigin.objects.filter(kind=MaterialOrigin.Kind.CAMPAIGN).values("material").distinct().count()
        )
        cache.set("frontend:home-counts", counts, HOME_CACHE_SECONDS)
    return counts


def stable_chart() -> dict | None:
    from frontend.plots import stable_over_time_figure

    figure = cache.get("frontend:stable-chart", "missing")
    if figure == "missing":
        figure = stable_over_time_figure()
        cache.set("frontend:stable-chart", figure, HOME_CACHE_SECONDS)
    return figure


def latest_discoveries(limit: int = 10) -> list[Material]:
    """Newest campaign discoveries: read from the (few) campaign origins, not by scanning materials by date.

    Cached like the counts: with many campaign origins the sort costs tens of ms (61 ms for 5,000 at 100k materials,
    measured by benchmarks/load_test.py), on every home page view.
    """
    key = f"frontend:latest-discoveries:{limit}"
    cached = cache.get(key)
    if cached is None:
        cached = _latest_discoveries(limit)
        cache.set(key, cached, HOME_CACHE_SECONDS)
    return cached


def _latest_discoveries(limit: int) -> list[Material]:
    origins = (
        MaterialOrigin.objects.filter(kind=MaterialOrigin.Kind.CAMPAIGN)
        .select_related("material")
        .defer("material__structure")
        .order_by("-created_at", "-id")[: limit * 2]
    )
    materials: dict[int, Material] = {}
    for origin in origins:
        materials.setdefault(origin.material_id, origin.material)
    return list(materials.values())[:limit]


# ---------------------------------------------------------------- catalog browser
@dataclass
class ResultPage:
    materials: list[Material]
    page: int
    page_size: int
    has_next: bool

    @property
    def has_previous(self) -> bool:
        return self.page > 1

    @property
    def first_index(self) -> int:
        return (self.page - 1) * self.page_size + 1

    @property
    def last_index(self) -> int:
        return self.first_index + len(self.materials) - 1


def search_page(query, page: int, page_size: int) -> ResultPage:
    """One page of results without counting the whole result: fetch ``page_size + 1`` rows to know if more follow."""
    offset = (page - 1) * page_size
    rows = list(search_materials(query).defer("structure").prefetch_related("origins")[offset : offset + page_size + 1])
    return ResultPage(rows[:page_size], page, page_size, has_next=len(rows) > page_size)


def origin_choices() -> list[str]:
    from catalog.selectors import origin_names

    names = cache.get("frontend:origin-names")
    if names is None:
        names = sorted(n for n in origin_names() if not n.startswith("campaign"))
        cache.set("frontend:origin-names", names, 300)
    return names


# ---------------------------------------------------------------- material page


def symmetry_and_sites(material: Material, structure) -> tuple[dict, list[dict]]:
    symmetry = {
        "spacegroup_symbol": material.spacegroup_symbol,
        "spacegroup_number": material.spacegroup_number,
        "crystal_system": material.crystal_system,
        "symprec": material.symprec,
    }
    wyckoffs: dict[int, str] = {}
    try:
        from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

        analyzer = SpacegroupAnalyzer(structure, symprec=material.symprec or 0.1)
        symmetry["point_group"] = analyzer.get_point_group_symbol()
        symmetry["hall"] = analyzer.get_hall()
        if len(structure) <= MAX_SITES_SHOWN:
            symmetrized = analyzer.get_symmetrized_structure()
            for indices, symbol in zip(symmetrized.equivalent_indices, symmetrized.wyckoff_symbols, strict=True):
                for i in indices:
                    wyckoffs[i] = symbol
    except Exception as exc:  # noqa: BLE001 - spglib fails on degenerate cells; the page still renders
        logger.warning("symmetry of %s failed: %s", material.public_id, exc)
    sites = [
        {
            "index": i + 1,
            "species": site.species_string,
            "a": site.frac_coords[0],
            "b": site.frac_coords[1],
            "c": site.frac_coords[2],
            "wyckoff": wyckoffs.get(i, ""),
        }
        for i, site in enumerate(structure.sites[:MAX_SITES_SHOWN])
    ]
    return symmetry, sites


def preferred_hull_entry(material: Material, energies: list[EnergyRecord]) -> HullEntry | None:
    """The hull entry of the material's denormalised scheme, else of the highest-priority scheme that has one."""
    with_hull = [e for e in energies if getattr(e, "hull_entry", None) is not None and e.scheme.builds_hull]
    for record in with_hull:
        if record.scheme_id == material.hull_scheme_id:
            return record.hull_entry
    return with_hull[0].hull_entry if with_hull else None  # energies come in by_preferred_scheme order


def decomposition_rows(hull_entry: HullEntry | None) -> list[dict]:
    """Decomposition products with links: the JSON holds material pks (or public ids) next to formulas."""
    if hull_entry is None or not hull_entry.decomposition:
        return []
    products = [p for p in hull_entry.decomposition if isinstance(p, dict)]
    pks = {int_or_none(p.get("material")) for p in products} - {None}
    public_ids = dict(Material.objects.filter(pk__in=pks).values_list("pk", "public_id")) if pks else {}
    rows = []
    for product in products:
        ref = product.get("material")
        public_id = ref if isinstance(ref, str) and ref.startswith("gn-") else public_ids.get(int_or_none(ref))
        rows.append({"formula": product.get("formula", ""), "fraction": product.get("fraction"), "public_id": public_id})
    return rows


def material_page(material: Material) -> dict:
    structure = material.to_structure()
    energies = list(
        EnergyRecord.objects.filter(material=material)
        .select_related("scheme", "hull_entry")
        .order_by(*by_preferred_scheme("scheme__"))
    )
    hull_entry = preferred_hull_entry(material, energies)
    origins = list(material.origins.all().order_by("created_at"))
    symmetry, sites = symmetry_and_sites(material, structure)
    lattice = structure.lattice
    hull_scheme = hull_entry.scheme if hull_entry is not None else None
    if hull_scheme is None:
        hull_scheme = next((e.scheme for e in energies if e.scheme.builds_hull), None)
    return {
        "material": material,
        "structure": structure,
        "lattice": {
            "a": lattice.a,
            "b": lattice.b,
            "c": lattice.c,
            "alpha": lattice.alpha,
            "beta": lattice.beta,
            "gamma": lattice.gamma,
            "matrix": lattice.matrix.tolist(),
        },
        "symmetry": symmetry,
        "sites": sites,
        "sites_truncated": len(structure) > MAX_SITES_SHOWN,
        "energies": energies,
        "hull_entry": hull_entry,
        "hull_scheme": hull_scheme,
        "verdict": stability_verdict(hull_entry) if hull_entry is not None and hull_entry.e_above_hull is not None
        else None,
        # a stable phase is its own "decomposition": list what it was judged against instead (the verdict's)
        "decomposition": [] if hull_entry is not None and hull_entry.is_stable else decomposition_rows(hull_entry),
        "origins": origins,
        "trails": campaign_trails(material, origins),
        "viewer_cif": structure_to_format(structure, "cif")[0].decode(),
    }


# ---------------------------------------------------------------- phase diagrams
# ---------------------------------------------------------------- campaigns
def campaign_progress(campaign: Campaign) -> dict:
    from frontend.plots import campaign_round_figures

    rounds = list(campaign.rounds.select_related("model_version").order_by("index"))
    jobs_qs = campaign_jobs(campaign)
    job_states = dict(jobs_qs.order_by().values_list("state").annotate(n=Count("id")))
    jobs = list(
        jobs_qs.select_related("candidate__round").defer("input_structure", "result", "candidate__structure")[:50]
    )
    totals = {
        name: sum(getattr(r, name) for r in rounds)
        for name in ("n_generated", "n_screened", "n_selected", "n_dft_done", "n_dft_failed", "n_new_stable")
    }
    current = rounds[-1] if rounds else None
    round_progress = None
    if current is not None and current.n_selected:
        round_progress = min(100, round(100 * (current.n_dft_done + current.n_dft_failed) / current.n_selected))
    planned = (campaign.config or {}).get("rounds")  # the validated config always holds it
    return {
        "campaign": campaign,
        "rounds": rounds,
        "current_round": current,
        "round_progress": round_progress,
        "planned_rounds": planned if isinstance(planned, int) else None,
        "totals": totals,
        "job_states": job_states,
        "jobs": jobs,
        "figures": campaign_round_figures(rounds) if rounds else {},
        "active": campaign.status in ACTIVE_CAMPAIGN_STATES,
    }
