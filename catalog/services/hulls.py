"""The living hull: keeps ``ChemsysHull``/``HullEntry`` rows and the materials' denormalised stability up to date.

``update_hulls(scheme, chemsys_iterable)`` is called after new energies land in a scheme (with their chemical systems).
A new energy in system T can change the hull of T and of every stored system that contains T, nothing else. So:

1. under a per-scheme transaction-level advisory lock (``pg_advisory_xact_lock`` with integer keys), find the *touched*
   stored systems: T itself and its stored supersets (``elements__contains``, GIN index);
2. keep the *maximal* touched systems and load every energy of the scheme inside them (``elements__contained_by``): the
   hull of a sub-system is a face of its superset's hull, so one diagram per maximal system answers every touched entry;
3. upsert the touched entries' ``HullEntry`` rows in bulk, bump each touched ``ChemsysHull.revision``, and refresh the
   denormalised fields of the touched materials from their preferred scheme (lowest ``display_priority`` with an ``ok``
   hull entry).

All of it runs in one transaction. ``recompute_hulls`` rebuilds from scratch with the same machinery.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import lru_cache

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone
from pymatgen.core import Composition

from catalog import hulls as engine
from catalog.models import ChemsysHull, ElementalReference, EnergyRecord, HullEntry, Material, Scheme
from catalog.selectors import by_preferred_scheme
from catalog.structures import parse_chemsys
from catalog.verdicts import stability_verdicts

logger = logging.getLogger(__name__)

# First key of the two-integer advisory lock: "hull" in ASCII. The second key is the scheme's primary key.
HULL_LOCK_NAMESPACE = 0x68756C6C
_QUERY_CHUNK = 500  # OR-ed array conditions per query
_WRITE_BATCH = 2000


def patch_threshold() -> int:
    """Systems with this many elements or more get no hull of their own (setting / env GNOMON_HULL_PATCH_THRESHOLD)."""
    value = getattr(settings, "GNOMON_HULL_PATCH_THRESHOLD", None) or os.environ.get("GNOMON_HULL_PATCH_THRESHOLD")
    return int(value) if value else engine.DEFAULT_PATCH_THRESHOLD


@dataclass
class HullUpdate:
    """What an update did."""

    scheme: str
    touched_systems: list[str] = field(default_factory=list)
    maximal_systems: list[str] = field(default_factory=list)
    n_loaded: int = 0  # energies read to build the diagrams
    n_entries: int = 0  # hull entries written
    n_stable: int = 0
    n_missing_references: int = 0
    n_skipped: int = 0  # energies without a value for the scheme's kind
    n_materials: int = 0  # materials whose denormalised stability was refreshed
    n_diagrams: int = 0
    hull_unchanged: bool = (
        False  # the fast path: the new energies moved no hull vertex, only their own system was redone
    )
    skipped_reason: str = ""


def lock_scheme(scheme: Scheme) -> None:
    """Serialise hull work per scheme until the end of the current transaction."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", [HULL_LOCK_NAMESPACE, int(scheme.pk)])


def _as_scheme(scheme: Scheme | str | int) -> Scheme:
    if isinstance(scheme, Scheme):
        return scheme
    if isinstance(scheme, int):
        return Scheme.objects.get(pk=scheme)
    return Scheme.objects.get(name=scheme)


def _normalise(chemsys_iterable: Iterable[str | Iterable[str]]) -> set[tuple[str, ...]]:
    systems: set[tuple[str, ...]] = set()
    for cs in chemsys_iterable:
        els = parse_chemsys(cs) if isinstance(cs, str) else tuple(sorted(set(cs)))
        if els:
            systems.add(els)
    return systems


def _chunks(items: list, size: int = _QUERY_CHUNK):
    for start in range(0, len(items), size):
        yield items[start : start + size]


def hull_records(scheme: Scheme):
    """The scheme's energies that may enter its hulls: all but those marked ``excluded_reason`` (e.g. a relaxation
    that never converged)."""
    return EnergyRecord.objects.filter(scheme=scheme, excluded_reason="")


def _stored_systems(scheme: Scheme, systems: set[tuple[str, ...]], lookup: str) -> set[str]:
    """Stored chemical systems of the scheme whose elements ``contains`` (a superset of, or equal to) or are
    ``contained_by`` (a subset of, or equal to) one of ``systems``."""
    found: set[str] = set()
    for chunk in _chunks(sorted(systems)):
        cond = Q()
        for els in chunk:
            cond |= Q(**{f"elements__{lookup}": list(els)})
        found.update(hull_records(scheme).filter(cond).values_list("chemsys", flat=True).distinct())
    return found


_RECORD_FIELDS = (
    "id",
    "material_id",
    "material__public_id",
    "composition",
    "chemsys",
    "natoms",
    "energy_total",
    "energy_per_atom",
    "formation_energy_per_atom",
)


def _load_records(scheme: Scheme, maximal: list[frozenset[str]]) -> list[dict]:
    rows: dict[int, dict] = {}
    for chunk in _chunks(sorted(sorted(m) for m in maximal)):
        cond = Q()
        for els in chunk:
            cond |= Q(elements__contained_by=els)
        for row in hull_records(scheme).filter(cond).values(*_RECORD_FIELDS):
            rows[row["id"]] = row
    return list(rows.values())


@lru_cache(maxsize=262_144)
def _composition(formula: str) -> Composition:
    """Parsed once per formula string: parsing dominates small incremental updates otherwise."""
    return Composition(formula)


def _to_input(scheme: Scheme, row: dict) -> engine.HullInput | None:
    comp = _composition(row["composition"])
    natoms = comp.num_atoms
    if scheme.kind == Scheme.Kind.TOTAL_ENERGY:
        if row["energy_total"] is not None:
            return engine.HullInput(row["id"], comp, float(row["energy_total"]))
        if row["energy_per_atom"] is not None:
            return engine.HullInput(row["id"], comp, float(row["energy_per_atom"]) * natoms)
        return None
    if row["formation_energy_per_atom"] is None:
        return None
    return engine.HullInput(row["id"], comp, float(row["formation_energy_per_atom"]) * natoms)


def update_hulls(
    scheme: Scheme | str | int,
    chemsys_iterable: Iterable[str | Iterable[str]],
    *,
    include_subsystems: bool = False,
    progress: Callable[[int], None] | None = None,
    on_plan: Callable[[int, int], None] | None = None,
) -> HullUpdate:
    """Recompute the hulls touched by new energies in ``chemsys_iterable`` (``"Fe-O"`` strings or element lists).

    ``include_subsystems`` also recomputes every stored system inside the given ones (a rebuild of a whole space).
    ``on_plan(n_diagrams_upper_bound, n_entries)`` is called once the work is known; ``progress(n)`` per diagram.
    """
    scheme = _as_scheme(scheme)
    report = HullUpdate(scheme=scheme.name)
    if not scheme.builds_hull:
        report.skipped_reason = "stability_value schemes build no hull"
        return report
    systems = _normalise(chemsys_iterable)
    if not systems:
        return report
    with transaction.atomic():
        lock_scheme(scheme)
        if (
            len(systems) == 1
            and not include_subsystems
            and _update_if_hull_unchanged(scheme, next(iter(systems)), report, progress, on_plan)
        ):
            report.hull_unchanged = True
            return report
        touched = _stored_systems(scheme, systems, "contains")
        if include_subsystems:
            touched |= _stored_systems(scheme, systems, "contained_by")
        # systems named but no longer stored (their energies were deleted): their bookkeeping goes
        gone = {"-".join(s) for s in systems} - touched
        if gone:
            ChemsysHull.objects.filter(scheme=scheme, chemsys__in=gone).delete()
        if not touched:
            return report
        maximal = engine.maximal_systems(touched)
        rows = _load_records(scheme, maximal)
        _recompute(scheme, touched, maximal, rows, report, progress, on_plan)
    return report


def _update_if_hull_unchanged(
    scheme: Scheme,
    elements: tuple[str, ...],
    report: HullUpdate,
    progress: Callable[[int], None] | None,
    on_plan: Callable[[int, int], None] | None,
) -> bool:
    """Fast path for one system T: if T's hull vertices are what is stored, only T's own entries can change.

    A new energy above T's hull (or one without the elemental references it needs) is no vertex of any hull: the hulls of
    T's supersets, their entries' energies above the hull, decompositions and decomposition energies stay as they are
    (a non-vertex of T's face never lowers a hull of a superset or of its rivals). So T alone is recomputed, on its own
    diagram. Any change of T's vertices (a new stable phase, a changed energy or reference) takes the full path.
    """
    chemsys = "-".join(elements)
    rows = _load_records(scheme, [frozenset(elements)])
    own = {row["id"] for row in rows if row["chemsys"] == chemsys}
    if not own:
        return False
    stored = {
        rid: (status, stable, e_form)
        for rid, status, stable, e_form in HullEntry.objects.filter(energy_record_id__in=own).values_list(
            "energy_record_id", "status", "is_stable", "formation_energy_per_atom"
        )
    }

    def unchanged(result: engine.HullReport) -> bool:
        for rid in own:
            res = result.results.get(rid)
            before = stored.get(rid)
            if res is None:  # no energy for this kind: fine unless it was part of the hull
                if before is not None and before[1]:
                    return False
                continue
            if before is None:
                if res.is_stable:
                    return False
                continue
            status, stable, e_form = before
            if status != res.status or stable != res.is_stable:
                return False
            if (e_form is None) != (res.formation_energy_per_atom is None):
                return False
            if e_form is not None and abs(e_form - res.formation_energy_per_atom) > 1e-9:
                return False
        return True

    return _recompute(scheme, {chemsys}, [frozenset(elements)], rows, report, progress, on_plan, accept=unchanged)


def recompute_hulls(
    scheme: Scheme | str | int | None = None,
    chemsys: str | None = None,
    *,
    progress: Callable[[int], None] | None = None,
    on_plan: Callable[[int, int], None] | None = None,
) -> list[HullUpdate]:
    """Rebuild hulls from scratch: every hull-building scheme (or one), every system (or those in and over ``chemsys``).

    Each scheme is rebuilt in its own transaction. Bookkeeping of systems that no longer hold energies is removed.
    """
    schemes = [_as_scheme(scheme)] if scheme is not None else list(Scheme.objects.all())
    reports: list[HullUpdate] = []
    for sch in schemes:
        if not sch.builds_hull:
            reports.append(HullUpdate(scheme=sch.name, skipped_reason="stability_value schemes build no hull"))
            continue
        if chemsys:
            reports.append(update_hulls(sch, [chemsys], include_subsystems=True, progress=progress, on_plan=on_plan))
            continue
        report = HullUpdate(scheme=sch.name)
        with transaction.atomic():
            lock_scheme(sch)
            touched = set(hull_records(sch).values_list("chemsys", flat=True).distinct())
            ChemsysHull.objects.filter(scheme=sch).exclude(chemsys__in=touched).delete()
            if touched:
                rows = list(hull_records(sch).values(*_RECORD_FIELDS))
                _recompute(sch, touched, engine.maximal_systems(touched), rows, report, progress, on_plan)
        reports.append(report)
    return reports


def _recompute(
    scheme: Scheme,
    touched: set[str],
    maximal: list[frozenset[str]],
    rows: list[dict],
    report: HullUpdate,
    progress: Callable[[int], None] | None,
    on_plan: Callable[[int, int], None] | None,
    accept: Callable[[engine.HullReport], bool] | None = None,
) -> bool:
    """Compute and write; with ``accept``, write only if ``accept(result)`` (and return whether it wrote)."""
    report.touched_systems = sorted(touched)
    report.maximal_systems = ["-".join(sorted(m)) for m in maximal]
    report.n_loaded = len(rows)
    inputs: list[engine.HullInput] = []
    targets: list[int] = []
    by_id: dict[int, dict] = {}
    skipped: list[int] = []
    for row in rows:
        item = _to_input(scheme, row)
        if item is None:
            if row["chemsys"] in touched:
                skipped.append(row["id"])
            continue
        inputs.append(item)
        by_id[row["id"]] = row
        if row["chemsys"] in touched:
            targets.append(row["id"])

    references = None
    if scheme.kind == Scheme.Kind.TOTAL_ENERGY:
        references = dict(ElementalReference.objects.filter(scheme=scheme).values_list("element", "energy_per_atom"))
    if on_plan is not None:
        on_plan(len(maximal), len(targets))
    result = engine.compute_hulls(
        inputs, scheme.kind, references, targets=targets, patch_threshold=patch_threshold(), progress=progress
    )
    if accept is not None and not accept(result):
        return False
    report.n_diagrams = result.n_diagrams
    report.n_skipped = len(skipped)
    if skipped:
        logger.warning(
            "%s: %d energies carry no value for a %s scheme; no hull entry", scheme, len(skipped), scheme.kind
        )
        HullEntry.objects.filter(energy_record_id__in=skipped).delete()

    # ChemsysHull: bump the revision of every touched system (safe read-modify-write: we hold the scheme's lock)
    current = dict(ChemsysHull.objects.filter(scheme=scheme, chemsys__in=touched).values_list("chemsys", "revision"))
    revisions = {cs: current.get(cs, 0) + 1 for cs in touched}
    ChemsysHull.objects.bulk_create(
        [
            ChemsysHull(
                scheme=scheme,
                chemsys=cs,
                elements=list(parse_chemsys(cs)),
                revision=revisions[cs],
                n_entries=result.systems.get(cs, {}).get("n_entries", 0),
                n_stable=result.systems.get(cs, {}).get("n_stable", 0),
            )
            for cs in sorted(touched)
        ],
        batch_size=_WRITE_BATCH,
        update_conflicts=True,
        unique_fields=["scheme", "chemsys"],
        update_fields=["revision", "n_entries", "n_stable", "updated_at"],
    )

    # HullEntry upserts
    public_ids = {row["id"]: row["material__public_id"] for row in by_id.values()}
    entries: list[HullEntry] = []
    for rid in targets:
        res = result.results[rid]
        row = by_id[rid]
        entries.append(
            HullEntry(
                energy_record_id=rid,
                scheme=scheme,
                material_id=row["material_id"],
                chemsys=row["chemsys"],
                status=res.status,
                formation_energy_per_atom=res.formation_energy_per_atom,
                e_above_hull=res.e_above_hull,
                is_stable=res.is_stable,
                decomposition_energy=res.decomposition_energy,
                decomposition=[
                    {
                        "energy_record": p.key,
                        "material": public_ids.get(p.key) if p.key is not None else None,
                        "formula": p.formula,
                        "fraction": p.fraction,
                    }
                    for p in res.decomposition
                ],
                hull_revision=revisions[row["chemsys"]],
                note=res.note[:255],
            )
        )
        report.n_stable += res.is_stable
        report.n_missing_references += res.status == engine.STATUS_MISSING_REFERENCES
    HullEntry.objects.bulk_create(
        entries,
        batch_size=_WRITE_BATCH,
        update_conflicts=True,
        unique_fields=["energy_record"],
        update_fields=[
            "scheme",
            "material",
            "chemsys",
            "status",
            "formation_energy_per_atom",
            "e_above_hull",
            "is_stable",
            "decomposition_energy",
            "decomposition",
            "hull_revision",
            "note",
            "updated_at",
        ],
    )
    report.n_entries = len(entries)

    material_ids = {by_id[rid]["material_id"] for rid in targets if by_id[rid]["material_id"] is not None}
    material_ids |= {row["material_id"] for row in rows if row["id"] in skipped and row["material_id"] is not None}
    report.n_materials = refresh_material_stability(material_ids)
    return True


def refresh_material_stability(material_ids: Iterable[int]) -> int:
    """Copy each material's preferred hull entry (lowest scheme display priority, status ok) onto the material, with
    its stability verdict (``catalog.verdicts``), so lists and OPTIMADE filter on it without recomputing."""
    ids = sorted(set(material_ids))
    n = 0
    for chunk in _chunks(ids, _WRITE_BATCH):
        preferred = {
            h.material_id: h
            for h in HullEntry.objects.filter(material_id__in=chunk, status=HullEntry.Status.OK)
            .order_by("material_id", *by_preferred_scheme("scheme__"))
            .distinct("material_id")
            .select_related("scheme", "energy_record")
        }
        verdicts = stability_verdicts(h for h in preferred.values() if h.e_above_hull is not None)
        materials = list(Material.objects.filter(pk__in=chunk).only("id"))
        now = timezone.now()
        for mat in materials:
            mat.updated_at = now
            h = preferred.get(mat.pk)
            mat.formation_energy_per_atom = h.formation_energy_per_atom if h else None
            mat.e_above_hull = h.e_above_hull if h else None
            mat.is_stable = h.is_stable if h else None
            mat.hull_scheme_id = h.scheme_id if h else None
            verdict = verdicts.get(h.pk) if h else None
            mat.verdict = verdict.state if verdict else ""
            mat.verdict_detail = verdict.as_dict() if verdict else {}
        Material.objects.bulk_update(
            materials,
            ["formation_energy_per_atom", "e_above_hull", "is_stable", "hull_scheme", "verdict", "verdict_detail",
             "updated_at"],
        )
        n += len(materials)
    return n
