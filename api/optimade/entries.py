"""Catalog materials as OPTIMADE ``structures`` resources (v1.2)."""

from __future__ import annotations

from collections import Counter
from datetime import UTC

from django.db.models import Prefetch

from api.optimade.fields import PROVIDER_PREFIX, anonymous_formula, reduced_formula
from catalog.models import Material, MaterialOrigin

P = f"_{PROVIDER_PREFIX}_"

# Provider-specific properties: (name, type, unit, description).
PROVIDER_PROPERTIES = {
    f"{P}e_above_hull": (
        "float",
        "eV/atom",
        "Energy above the convex hull of the material's own chemical system, in "
        "the scheme given by _gnomon_scheme (0 on the hull).",
    ),
    f"{P}formation_energy_per_atom": (
        "float",
        "eV/atom",
        "Formation energy per atom relative to the elements, in the scheme given by _gnomon_scheme.",
    ),
    f"{P}is_stable": ("boolean", None, "Whether the material is on the convex hull of its scheme."),
    f"{P}scheme": (
        "string",
        None,
        "Level of theory (Gnomon scheme) of the hull quantities; energies of different schemes are never mixed.",
    ),
    f"{P}verdict": (
        "string",
        None,
        "confirmed: every competing phase (any trusted source's phases on or within 50 meV/atom of its hull in the "
        "system and its subsystems) has an energy in _gnomon_scheme; provisional: some are missing.",
    ),
    f"{P}missing_competitors": (
        "list",
        None,
        "Reduced formulas of the competing phases without an energy in _gnomon_scheme (empty when confirmed).",
    ),
    f"{P}reference_verdict": (
        "string",
        None,
        "The reference database's verdict on this composition, e.g. 'MP (Bartel 2020): stable, Ed -1.90 eV/atom'; "
        "null where it has no entry.",
    ),
    f"{P}crystal_system": ("string", None, "Crystal system from spglib (symprec 0.1 Å)."),
    f"{P}origin": ("list", None, "Datasets or campaigns the material came from (merged duplicates keep all)."),
    f"{P}campaign": ("integer", None, "Id of the Gnomon discovery campaign that found the material, if any."),
}

STANDARD_PROPERTIES = (
    "id",
    "type",
    "last_modified",
    "elements",
    "nelements",
    "elements_ratios",
    "chemical_formula_descriptive",
    "chemical_formula_reduced",
    "chemical_formula_anonymous",
    "dimension_types",
    "nperiodic_dimensions",
    "lattice_vectors",
    "space_group_it_number",
    "cartesian_site_positions",
    "nsites",
    "species",
    "species_at_sites",
    "structure_features",
)
# Columns needed to build a resource.
COLUMNS = (
    "id",
    "public_id",
    "updated_at",
    "structure",
    "formula_reduced",
    "formula_anonymous",
    "elements",
    "nelements",
    "nsites",
    "spacegroup_number",
    "crystal_system",
    "e_above_hull",
    "formation_energy_per_atom",
    "is_stable",
    "verdict",
    "verdict_detail",
    "hull_scheme__name",
)


def resource_queryset(queryset):
    return (
        queryset.select_related("hull_scheme")
        .only(*COLUMNS)
        .prefetch_related(
            Prefetch(
                "origins",
                queryset=MaterialOrigin.objects.order_by("id").only("material_id", "dataset", "kind", "details",
                                                                     "campaign_id"),
            )
        )
    )


def _rfc3339(value) -> str:
    return value.astimezone(UTC).replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")


def _site_species_name(species: list[dict]) -> str:
    if len(species) == 1 and species[0].get("occu", 1) == 1:
        return species[0]["element"]
    return "".join(f"{sp['element']}{sp['occu']:g}" for sp in sorted(species, key=lambda s: s["element"]))


def structure_attributes(material: Material) -> dict:
    """Every attribute of one material (``response_fields`` picks from these)."""
    structure = material.structure
    sites = structure["sites"]
    species_at_sites = [_site_species_name(site["species"]) for site in sites]
    species: dict[str, dict] = {}
    amounts: Counter = Counter()
    for site, name in zip(sites, species_at_sites, strict=True):
        for sp in site["species"]:
            amounts[sp["element"]] += sp.get("occu", 1)
        if name not in species:
            chemical_symbols = [sp["element"] for sp in sorted(site["species"], key=lambda s: s["element"])]
            concentration = [sp.get("occu", 1) for sp in sorted(site["species"], key=lambda s: s["element"])]
            if sum(concentration) < 1 - 1e-6:
                chemical_symbols.append("vacancy")
                concentration.append(1 - sum(concentration))
            species[name] = {"name": name, "chemical_symbols": chemical_symbols, "concentration": concentration}
    total = sum(amounts.values())
    elements = sorted(material.elements)
    campaigns = [o.campaign_id for o in material.origins.all() if o.kind == MaterialOrigin.Kind.CAMPAIGN]
    return {
        "last_modified": _rfc3339(material.updated_at),
        "elements": elements,
        "nelements": material.nelements,
        "elements_ratios": [amounts[el] / total for el in elements],
        "chemical_formula_descriptive": material.formula_reduced,
        "chemical_formula_reduced": reduced_formula(material.formula_reduced, elements),
        "chemical_formula_anonymous": anonymous_formula(material.formula_anonymous),
        "dimension_types": [1, 1, 1],
        "nperiodic_dimensions": 3,
        "lattice_vectors": structure["lattice"]["matrix"],
        "space_group_it_number": material.spacegroup_number,
        "cartesian_site_positions": [site["xyz"] for site in sites],
        "nsites": material.nsites,
        "species": list(species.values()),
        "species_at_sites": species_at_sites,
        "structure_features": ["disorder"]
        if any(len(s["species"]) > 1 or s["species"][0].get("occu", 1) < 1 for s in sites)
        else [],
        f"{P}e_above_hull": material.e_above_hull,
        f"{P}formation_energy_per_atom": material.formation_energy_per_atom,
        f"{P}is_stable": material.is_stable,
        f"{P}scheme": material.hull_scheme.name if material.hull_scheme else None,
        f"{P}verdict": material.verdict or None,
        f"{P}missing_competitors": [m["formula"] for m in (material.verdict_detail or {}).get("missing", [])],
        f"{P}reference_verdict": ((material.verdict_detail or {}).get("reference") or {}).get("text"),
        f"{P}crystal_system": material.crystal_system or None,
        f"{P}origin": sorted({o.dataset for o in material.origins.all()}),
        f"{P}campaign": next((c for c in campaigns if isinstance(c, int)), None),
    }


def structure_resource(material: Material, fields: tuple[str, ...] | None, base_url: str) -> dict:
    attributes = structure_attributes(material)
    if fields is not None:
        attributes = {name: attributes.get(name) for name in fields if name in attributes}
    return {
        "id": material.public_id,
        "type": "structures",
        "attributes": attributes,
        "links": {"self": f"{base_url}/structures/{material.public_id}"},
    }
