"""Writing materials into the catalog: one place that turns a structure into a ``Material`` row and merges duplicates.

Duplicates are decided by pymatgen's ``StructureMatcher`` (default tolerances) among materials with the same reduced
formula, after a cheap pre-filter that never hides a true match: the same number of sites in the primitive cell (what
StructureMatcher itself compares) and a volume-per-atom window (``DEDUP_VOLUME_WINDOW``, relative). Space groups are
deliberately not used to bucket: two relaxations of one crystal can come out with different symmetry at a fixed symprec.
A duplicate is not stored twice; its ``MaterialOrigin`` is attached to the material already in the catalog.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F
from pymatgen.core import Structure

from catalog.models import Material, MaterialOrigin, format_public_id
from catalog.readers import build_record, primitive_nsites

logger = logging.getLogger(__name__)

# Relaxations of one crystal with different functionals differ by a few % in volume (PBE vs experiment ~2-3 % in the
# lattice constant, i.e. up to ~9 % in volume); ±15 % keeps them together while splitting most AIRSS polymorphs.
DEDUP_VOLUME_WINDOW = 0.15


@dataclass
class _Known:
    material_id: int
    volume_per_atom: float
    structure_dict: dict
    primitive_nsites: int | None = None
    _structure: Structure | None = None

    @property
    def structure(self) -> Structure:
        if self._structure is None:
            self._structure = Structure.from_dict(self.structure_dict)
        return self._structure

    def prim_nsites(self) -> int:
        if self.primitive_nsites is None:
            self.primitive_nsites = primitive_nsites(self.structure)
        return self.primitive_nsites


@dataclass
class MatchIndex:
    """Materials already in the catalog (and those added during this run), by reduced formula, loaded lazily."""

    window: float = DEDUP_VOLUME_WINDOW
    _by_formula: dict[str, list[_Known]] = field(default_factory=dict)
    _matcher: object | None = None
    comparisons: int = 0

    @property
    def matcher(self):
        if self._matcher is None:
            from pymatgen.analysis.structure_matcher import StructureMatcher

            self._matcher = StructureMatcher()
        return self._matcher

    def prefetch(self, formulas: Iterable[str]) -> None:
        """Load the catalog's materials of these reduced formulas in one query (one per batch, not one per record)."""
        missing = sorted(set(formulas) - set(self._by_formula))
        for formula in missing:
            self._by_formula[formula] = []
        for start in range(0, len(missing), 1000):
            rows = (
                Material.objects.filter(formula_reduced__in=missing[start:start + 1000])
                .annotate(vpa=F("volume") / F("nsites"))
                .values_list("id", "formula_reduced", "vpa", "structure")
                .order_by("id")
            )
            for pk, formula, vpa, structure in rows:
                self._by_formula[formula].append(_Known(pk, vpa, structure))

    def _known(self, formula: str) -> list[_Known]:
        if formula not in self._by_formula:
            self.prefetch([formula])
        return self._by_formula[formula]

    def find(self, record: dict, structure: Structure | None = None) -> int | None:
        """Id of a catalog material that is the same crystal as ``record`` (a readers.build_record dict), or None.

        Work grows only with real candidates: the structure and its primitive cell are built when one is in the window.
        """
        formula = record["description"]["formula_reduced"]
        vpa = record["volume_per_atom"]
        low, high = vpa / (1 + self.window), vpa * (1 + self.window)
        candidates = [k for k in self._known(formula) if low <= k.volume_per_atom <= high]
        if not candidates:
            return None
        if structure is None:
            structure = Structure.from_dict(record["structure"])
        if record.get("primitive_nsites") is None:
            record["primitive_nsites"] = primitive_nsites(structure)
        prim = record["primitive_nsites"]
        for known in candidates:
            if known.prim_nsites() != prim:
                continue
            self.comparisons += 1
            try:
                if self.matcher.fit(structure, known.structure):
                    return known.material_id
            except Exception as exc:  # noqa: BLE001 - a matcher failure means "not shown to be the same"
                logger.debug("StructureMatcher failed on material %s: %s", known.material_id, exc)
        return None

    def add(self, material_id: int, record: dict, structure: Structure | None = None) -> None:
        formula = record["description"]["formula_reduced"]
        self._known(formula).append(
            _Known(material_id, record["volume_per_atom"], record["structure"], record.get("primitive_nsites"),
                   structure)
        )

    def relabel(self, real_of: dict[int, int]) -> None:
        """Replace the placeholder ids of a batch's new materials by the ids reserved for them."""
        for known in self._by_formula.values():
            for k in known:
                if k.material_id in real_of:
                    k.material_id = real_of[k.material_id]


def reserve_material_ids(count: int) -> list[int]:
    """Take ``count`` ids from the material table's own sequence so public ids are known before the bulk insert."""
    if count <= 0:
        return []
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT nextval(pg_get_serial_sequence(%s, 'id')) FROM generate_series(1, %s)",
            [Material._meta.db_table, count],
        )
        return [row[0] for row in cursor.fetchall()]


def material_fields(record: dict) -> dict:
    """Column values of a Material from a readers.build_record dict (the one structure → row conversion)."""
    d = record["description"]
    return {
        "structure": record["structure"],
        "formula_reduced": d["formula_reduced"],
        "formula_anonymous": d["formula_anonymous"],
        "elements": list(d["elements"]),
        "nelements": d["nelements"],
        "chemsys": d["chemsys"],
        "nsites": d["nsites"],
        "volume": d["volume"],
        "density": d["density"],
        "spacegroup_number": d["spacegroup_number"],
        "spacegroup_symbol": d["spacegroup_symbol"],
        "crystal_system": d["crystal_system"],
        "symprec": d["symprec"],
        "fingerprint": d["fingerprint"],
    }


@dataclass
class OriginSpec:
    dataset: str
    source_id: str
    kind: str = MaterialOrigin.Kind.DATASET
    licence: str = ""
    details: dict = field(default_factory=dict)
    campaign_id: int | None = None  # provenance of a computed crystal (MaterialOrigin's foreign keys)
    candidate_id: int | None = None
    dft_job_id: int | None = None


@dataclass
class BatchOutcome:
    """Per input record: the material id and whether it was new, merged into a duplicate, or already imported."""

    material_ids: list[int | None]
    status: list[str]  # "created" | "merged" | "existing"

    @property
    def created(self) -> int:
        return self.status.count("created")

    @property
    def merged(self) -> int:
        return self.status.count("merged")


def register_materials(records: Sequence[dict], origins: Sequence[OriginSpec], *, index: MatchIndex | None = None,
                       ) -> BatchOutcome:
    """Batch version of ``register_material`` for the import path; call inside a transaction.

    ``records`` are readers.build_record dicts. An origin already in the catalog (same dataset and source id) makes the
    record a no-op (``existing``), which makes re-imports idempotent. New crystals are inserted with one ``bulk_create``;
    duplicates (of the catalog or of an earlier record of the batch) only add an origin.
    """
    if len(records) != len(origins):
        raise ValueError("records and origins must have the same length")
    index = index or MatchIndex()
    existing = _existing_origins([(o.dataset, o.source_id) for o in origins])
    index.prefetch(r["description"]["formula_reduced"] for r in records)
    material_ids: list[int | None] = [None] * len(records)
    status = [""] * len(records)
    new_positions: list[int] = []
    batch_keys: dict[tuple[str, str], int] = {}
    for i, (record, origin) in enumerate(zip(records, origins, strict=True)):
        key = (origin.dataset, origin.source_id)
        if key in existing:
            material_ids[i], status[i] = existing[key], "existing"
            continue
        if key in batch_keys:  # the same origin twice in one batch: the first wins
            j = batch_keys[key]
            material_ids[i], status[i] = material_ids[j], "existing"
            continue
        batch_keys[key] = i
        match = index.find(record)
        if match is not None:
            material_ids[i], status[i] = match, "merged"
        else:
            # Ids are reserved below for all new rows at once; a placeholder lets later records of the batch match.
            new_positions.append(i)
            placeholder = -(i + 1)
            material_ids[i], status[i] = placeholder, "created"
            index.add(placeholder, record)

    ids = reserve_material_ids(len(new_positions))
    real_of = {}
    for position, pk in zip(new_positions, ids, strict=True):
        real_of[-(position + 1)] = pk
    materials = []
    for position, pk in zip(new_positions, ids, strict=True):
        materials.append(Material(id=pk, public_id=format_public_id(pk), **material_fields(records[position])))
    Material.objects.bulk_create(materials, batch_size=500)
    index.relabel(real_of)
    material_ids = [real_of.get(m, m) if m is not None else None for m in material_ids]

    new_origins = []
    for i, origin in enumerate(origins):
        if status[i] in {"created", "merged"}:
            new_origins.append(
                MaterialOrigin(material_id=material_ids[i], kind=origin.kind, dataset=origin.dataset,
                               source_id=origin.source_id, licence=origin.licence, details=origin.details,
                               campaign_id=origin.campaign_id, candidate_id=origin.candidate_id,
                               dft_job_id=origin.dft_job_id)
            )
    MaterialOrigin.objects.bulk_create(new_origins, batch_size=1000)
    return BatchOutcome(material_ids=material_ids, status=status)


def _existing_origins(keys: list[tuple[str, str]]) -> dict[tuple[str, str], int]:
    by_dataset: dict[str, list[str]] = defaultdict(list)
    for dataset, source_id in keys:
        by_dataset[dataset].append(source_id)
    found: dict[tuple[str, str], int] = {}
    for dataset, source_ids in by_dataset.items():
        for start in range(0, len(source_ids), 5000):
            rows = MaterialOrigin.objects.filter(dataset=dataset, source_id__in=source_ids[start:start + 5000])
            for source_id, material_id in rows.values_list("source_id", "material_id"):
                found[(dataset, source_id)] = material_id
    return found


def existing_source_ids(dataset: str, source_ids: Sequence[str]) -> set[str]:
    return {sid for (_, sid) in _existing_origins([(dataset, s) for s in source_ids])}


def register_material(
    structure: Structure,
    *,
    dataset: str,
    source_id: str,
    kind: str = MaterialOrigin.Kind.DATASET,
    licence: str = "",
    details: dict | None = None,
    symprec: float | None = None,
    campaign_id: int | None = None,
    candidate_id: int | None = None,
    dft_job_id: int | None = None,
) -> tuple[Material, bool]:
    """Put one crystal in the catalog, or attach a new origin to the same crystal already there.

    Returns ``(material, created)``; ``created`` is False when the structure matched an existing material (the origin
    is added to it) or when this origin was registered before (nothing changes: calling twice is safe).
    """
    record = build_record(structure, None, None, source_id=source_id, file="", location=None,
                          symprec=symprec if symprec is not None else settings.GNOMON_SYMPREC)
    origin = OriginSpec(dataset=dataset, source_id=source_id, kind=kind, licence=licence, details=details or {},
                        campaign_id=campaign_id, candidate_id=candidate_id, dft_job_id=dft_job_id)
    with transaction.atomic():
        outcome = register_materials([record], [origin])
    material = Material.objects.get(pk=outcome.material_ids[0])
    return material, outcome.status[0] == "created"
