"""Reads: the competing phases of a chemical system, and the stability verdict of a hull entry.

"Stable" means stable against every known competitor, as in GNoME, not against whatever a scheme happens to hold. So a
verdict in scheme X says against which phases it was reached and whether that set is complete:

- ``competing_phases(chemsys)``: every phase that a trusted source in the catalog (a DFT-level scheme: imported
  structures, the seed sets, the Materials Project table) places on, or within ``COMPETITOR_WINDOW_EV`` of, its hull in
  the system or a subsystem. One selector: campaigns (to queue the missing ones), the API and the UI call it.
- ``stability_verdict(entry)``: ``confirmed`` when every competitor has an energy in the entry's scheme, else
  ``provisional`` with the missing ones (and why: not computed yet, no structure known, larger than
  ``MAX_COMPETITOR_SITES``); beside it the reference verdict of the Materials Project (Bartel et al. 2020 table).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

from pymatgen.core import Composition

from catalog.models import EnergyRecord, HullEntry, Material, MaterialOrigin, Scheme

COMPETITOR_WINDOW_EV = 0.05  # eV/atom above a source's hull that still counts as a competing phase
MAX_COMPETITOR_SITES = 20  # larger competitor cells are not computed by campaigns; they stay listed as missing
SEARCHED_ORIGIN = "structure-search"  # MaterialOrigin.dataset of crystals found by a competitor structure search
REFERENCE_SCHEME = "MP-bartel2020"  # the external reference verdicts come from (MP's 2019 snapshot)
ON_HULL_TOLERANCE_EV = 1e-6  # e_above_hull at or below this is "on the hull"

CONFIRMED, PROVISIONAL = "confirmed", "provisional"
VERDICT_STATES = (CONFIRMED, PROVISIONAL)


@dataclass(frozen=True)
class Competitor:
    formula: str  # reduced formula
    chemsys: str
    e_above_hull: float  # eV/atom, the lowest any trusted source gives it
    sources: tuple[str, ...]  # scheme names that place it within the window
    material_id: int | None = None  # a catalog crystal of this phase (its lowest-energy one), None: composition only
    public_id: str | None = None
    nsites: int | None = None

    @property
    def computable(self) -> bool:
        return self.material_id is not None and (self.nsites or 0) <= MAX_COMPETITOR_SITES


@dataclass
class Missing:
    formula: str
    reason: str


@dataclass
class ReferenceVerdict:
    source: str
    formula: str
    stable: bool
    decomposition_energy: float | None  # eV/atom: ≤ 0 on the reference hull

    def text(self) -> str:
        where = "stable" if self.stable else "above its hull"
        ed = "" if self.decomposition_energy is None else f", Ed {self.decomposition_energy:+.2f} eV/atom"
        return f"{self.source}: {where}{ed}"


@dataclass
class Verdict:
    state: str  # CONFIRMED | PROVISIONAL
    on_hull: bool
    competitors: list[Competitor] = field(default_factory=list)
    missing: list[Missing] = field(default_factory=list)
    reference: ReferenceVerdict | None = None
    searched: list[str] = field(default_factory=list)  # competitors whose only computed crystals were searched for

    @property
    def label(self) -> str:
        """'confirmed stable', 'provisional stable', 'confirmed unstable', ..."""
        return f"{self.state} {'stable' if self.on_hull else 'unstable'}"

    @property
    def novelty(self) -> str | None:
        """For a stable verdict: 'rediscovered' (stable in the reference too), 'novel' (no reference entry), or
        'disagrees' (the reference puts it above its hull)."""
        if not self.on_hull:
            return None
        if self.reference is None:
            return "novel"
        return "rediscovered" if self.reference.stable else "disagrees"

    def as_dict(self) -> dict[str, Any]:
        return {"state": self.state, "label": self.label, "on_hull": self.on_hull, "novelty": self.novelty,
                "competitors": [c.formula for c in self.competitors],
                "missing": [asdict(m) for m in self.missing], "searched": list(self.searched),
                "reference": None if self.reference is None else {**asdict(self.reference),
                                                                   "text": self.reference.text()}}


def competing_phases(chemsys: str, *, exclude_scheme: Scheme | None = None,
                     window: float = COMPETITOR_WINDOW_EV) -> list[Competitor]:
    """The phases a verdict in ``chemsys`` must be reached against (see the module docstring), lowest energy first.

    ``exclude_scheme``: the scheme being judged (its own entries are what is judged, not a source)."""
    elements = sorted(set(chemsys.split("-")))
    rows = (HullEntry.objects.filter(energy_record__elements__contained_by=elements, chemsys__contains="-",
                                     status=HullEntry.Status.OK, e_above_hull__lte=window, scheme__is_dft=True,
                                     energy_record__excluded_reason="")
            .exclude(scheme__kind=Scheme.Kind.STABILITY_VALUE)
            .values("energy_record__composition", "chemsys", "e_above_hull", "scheme__name", "material_id",
                    "material__public_id", "material__nsites"))
    if exclude_scheme is not None:
        rows = rows.exclude(scheme=exclude_scheme)
    phases: dict[str, dict[str, Any]] = {}
    for row in rows:
        formula = Composition(row["energy_record__composition"]).reduced_formula
        phase = phases.setdefault(formula, {"chemsys": row["chemsys"], "e": row["e_above_hull"], "sources": set(),
                                            "structure": None})
        phase["e"] = min(phase["e"], row["e_above_hull"])
        phase["sources"].add(row["scheme__name"])
        if row["material_id"] is not None:
            best = phase["structure"]
            if best is None or row["e_above_hull"] < best[0]:
                phase["structure"] = (row["e_above_hull"], row["material_id"], row["material__public_id"],
                                      row["material__nsites"])
    out = []
    for formula, p in phases.items():
        structure = p["structure"] or (None, None, None, None)
        out.append(Competitor(formula, p["chemsys"], round(p["e"], 6), tuple(sorted(p["sources"])),
                              structure[1], structure[2], structure[3]))
    return sorted(out, key=lambda c: (c.chemsys.count("-"), c.chemsys, c.e_above_hull, c.formula))


def _reference_rows(chemsystems: set[str]) -> dict[str, ReferenceVerdict]:
    """Reduced formula → the Materials Project's verdict (Bartel et al. 2020 table), for the given systems."""
    out: dict[str, ReferenceVerdict] = {}
    rows = EnergyRecord.objects.filter(scheme__name=REFERENCE_SCHEME, chemsys__in=sorted(chemsystems)).values_list(
        "composition", "data")
    for composition, data in rows:
        reduced = Composition(composition).reduced_formula
        ed = (data or {}).get("published_decomposition_energy")
        out.setdefault(reduced, ReferenceVerdict("MP (Bartel 2020)", reduced, ed is not None and ed <= 0, ed))
    return out


def reference_verdict(formula: str) -> ReferenceVerdict | None:
    """The Materials Project's verdict on a composition (Bartel et al. 2020 table), None when it has no entry."""
    comp = Composition(formula)
    chemsys = "-".join(sorted(el.symbol for el in comp.elements))
    return _reference_rows({chemsys}).get(comp.reduced_formula)


def stability_verdicts(entries: Iterable[HullEntry]) -> dict[int, Verdict]:
    """Confirmed or provisional (with what is missing), and the reference verdict, for each hull entry (by its id).

    Batched: competitors, the scheme's computed phases and the reference rows are read once per (scheme, system),
    so refreshing a whole imported batch costs a few queries per system, not per material."""
    entries = [e for e in entries if e.energy_record_id is not None]
    competitors_of: dict[tuple[int, str], list[Competitor]] = {}
    computed_of: dict[tuple[int, str], list[tuple[int, str, int | None]]] = {}
    references = _reference_rows({e.chemsys for e in entries})
    out: dict[int, Verdict] = {}
    for entry in entries:
        key = (entry.scheme_id, entry.chemsys)
        if key not in competitors_of:
            competitors_of[key] = competing_phases(entry.chemsys, exclude_scheme=entry.scheme)
            computed_of[key] = list(EnergyRecord.objects.filter(
                scheme_id=entry.scheme_id, chemsys__contains="-", excluded_reason="",
                elements__contained_by=sorted(entry.chemsys.split("-"))).values_list("pk", "composition", "material_id"))
        out[entry.pk] = _verdict(entry, competitors_of[key], computed_of[key], references)
    searched_materials = set(MaterialOrigin.objects.filter(
        dataset=SEARCHED_ORIGIN, material_id__in={m for rows in computed_of.values() for _, _, m in rows if m}
    ).values_list("material_id", flat=True))
    if searched_materials:
        for entry in entries:
            known = {Composition(c).reduced_formula for _, c, m in computed_of[(entry.scheme_id, entry.chemsys)]
                     if m not in searched_materials}
            verdict = out[entry.pk]
            verdict.searched = sorted({c.formula for c in verdict.competitors if c.material_id is None}
                                      - known - {m.formula for m in verdict.missing})
    return out


def stability_verdict(entry: HullEntry) -> Verdict:
    """``stability_verdicts`` of one hull entry."""
    return stability_verdicts([entry])[entry.pk]


def _missing(competitors: list[Competitor], in_scheme: list[tuple[int, str, int | None]], scheme_name: str, *,
             judged_record: int | None = None, judged_material: int | None = None) -> list[Missing]:
    """The competitors without an energy in the scheme (``in_scheme``: its (record, composition, material) rows in the
    system), with the reason; the record being judged does not stand in for a composition-only competitor."""
    computed_materials = {m for _, _, m in in_scheme if m is not None}
    formulas_other_than_judged = {Composition(c).reduced_formula for pk, c, _ in in_scheme if pk != judged_record}
    missing = []
    for c in competitors:
        if c.material_id is not None and c.material_id in computed_materials:
            continue
        if c.material_id is None and c.formula in formulas_other_than_judged:
            continue  # a composition-only competitor: some crystal of it was computed besides the one judged
        if c.material_id is not None and c.material_id == judged_material:
            continue
        if c.material_id is None:
            reason = "no structure known (composition only, " + ", ".join(c.sources) + ")"
        elif not c.computable:
            reason = f"{c.nsites}-atom cell, beyond the {MAX_COMPETITOR_SITES}-atom limit for competitor jobs"
        else:
            reason = f"not computed in {scheme_name} yet ({c.public_id})"
        missing.append(Missing(c.formula, reason))
    return missing


def _verdict(entry: HullEntry, competitors: list[Competitor], in_scheme: list[tuple[int, str, int | None]],
             references: dict[str, ReferenceVerdict]) -> Verdict:
    record = entry.energy_record
    own_formula = Composition(record.composition).reduced_formula
    missing = _missing(competitors, in_scheme, entry.scheme.name, judged_record=record.pk,
                       judged_material=entry.material_id)
    on_hull = entry.e_above_hull is not None and entry.e_above_hull <= ON_HULL_TOLERANCE_EV
    return Verdict(CONFIRMED if not missing else PROVISIONAL, on_hull,
                   [c for c in competitors if c.formula != own_formula or c.material_id != entry.material_id],
                   missing, references.get(own_formula))


def missing_competitors(chemsys: str, scheme: Scheme) -> list[Missing]:
    """The competing phases of ``chemsys`` (and its subsystems) that ``scheme`` has no energy for: what its phase
    diagram lacks before any verdict on it can be confirmed."""
    in_scheme = list(EnergyRecord.objects.filter(
        scheme=scheme, chemsys__contains="-", excluded_reason="",
        elements__contained_by=sorted(chemsys.split("-"))).values_list("pk", "composition", "material_id"))
    return _missing(competing_phases(chemsys, exclude_scheme=scheme), in_scheme, scheme.name)


def material_verdict(material: Material) -> dict[str, Any] | None:
    """The verdict of the material's hull entry in its preferred scheme (``hull_scheme``), as JSON; None without one."""
    entry = (HullEntry.objects.filter(material=material, scheme_id=material.hull_scheme_id)
             .select_related("energy_record", "scheme").first())
    if entry is None or entry.e_above_hull is None:
        return None
    return {"scheme": entry.scheme.name, "e_above_hull": entry.e_above_hull, **stability_verdict(entry).as_dict()}
