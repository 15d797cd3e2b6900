"""Candidate generation, Django side: parents from the catalog → ``Candidate`` rows, deduplicated against the catalog.

The science lives in ``discovery.generation`` (pure, no Django); this module only chooses parents and known phases
from the database, runs the pipelines, deduplicates against existing ``Material`` and ``Candidate`` rows, and writes
new ``Candidate`` rows in bulk (unique per round and fingerprint, so re-running is idempotent).
"""

from __future__ import annotations

import dataclasses
import logging
import os
import time
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q

from catalog.models import Material
from catalog.structures import chemsys_of
from discovery.generation.base import GeneratedCandidate
from discovery.generation.compositional import (
    CompositionModel,
    RandomStructureConfig,
    RidgeCompositionModel,
    generate_compositional,
    train_baseline,
)
from discovery.generation.dedup import DedupStats, deduplicate, structure_key
from discovery.generation.substitution import SubstitutionConfig, generate_substitutions
from discovery.models import CampaignRound, Candidate

logger = logging.getLogger(__name__)

PIPELINES = ("structural", "compositional")
BASELINE_MODEL_FILE = "composition-ridge-baseline.json"


@dataclass
class GenerationReport:
    round_id: int | None
    pipelines: list[str]
    n_parents: int = 0
    n_compositions: int = 0
    n_generated: int = 0  # raw proposals from the pipelines
    n_considered: int = 0  # proposals that went through deduplication (best first, up to a multiple of the limit)
    n_deduplicated: int = 0  # unique and new after deduplication
    n_duplicates_in_batch: int = 0
    n_duplicates_known: int = 0  # of a catalog material or an earlier candidate
    n_created: int = 0  # rows written (rows already present are not written twice)
    by_pipeline: dict[str, int] = field(default_factory=dict)
    dedup: dict[str, int] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _default_workers() -> int:
    """``settings.GNOMON_GENERATION_WORKERS`` when the settings define it, else up to two processes."""
    configured = getattr(settings, "GNOMON_GENERATION_WORKERS", None)
    return int(configured) if configured else min(2, os.cpu_count() or 1)


# Parents are crystals: a molecule in a vacuum box (a bootstrap reference such as Cl2) has hundreds of Å³ per atom,
# while the loosest elemental solid (Cs) has ~117. Substituting into such a box only makes absurd "crystals".
MAX_PARENT_VOLUME_PER_ATOM = 150.0  # Å³
# GNoME substitutes into stable crystals; hypothetical prototypes far above the hull make poor (often unbalanced) parents.
MAX_PARENT_E_ABOVE_HULL = 0.1  # eV/atom; parents with no hull position yet are kept


def choose_parents(
    elements: Sequence[str],
    max_elements: int,
    limit: int | None = 5000,
    max_foreign: int = 2,
    max_e_above_hull: float | None = MAX_PARENT_E_ABOVE_HULL,
):
    """Catalog materials to substitute: at least one element in the space, at most ``max_foreign`` outside it
    (those must be substituted away), at most ``max_elements + 1`` elements, crystals (not molecules in a box)
    within ``max_e_above_hull`` of their hull; stable and low-e_above_hull first."""
    allowed = set(elements)
    qs = Material.objects.filter(
        elements__overlap=list(allowed),
        nelements__lte=max_elements + 1,
        volume__lte=F("nsites") * MAX_PARENT_VOLUME_PER_ATOM,
    )
    if max_e_above_hull is not None:
        qs = qs.filter(Q(e_above_hull__isnull=True) | Q(e_above_hull__lte=max_e_above_hull))
    qs = qs.order_by(F("e_above_hull").asc(nulls_last=True), "id").values_list("id", "elements")
    ids = []
    for pk, els in qs.iterator(chunk_size=5000):
        if len(set(els) - allowed) <= max_foreign:
            ids.append(pk)
            if limit is not None and len(ids) >= limit:
                break
    rows = Material.objects.filter(id__in=ids).values_list("id", "public_id", "structure")
    by_id = {pk: (pid, s) for pk, pid, s in rows}
    from pymatgen.core import Structure

    return [(pk, by_id[pk][0], Structure.from_dict(by_id[pk][1])) for pk in ids if pk in by_id]


def known_phases(elements: Sequence[str]) -> dict[str, float]:
    """Lowest catalog formation energy per reduced formula inside the element space (for hull-aware ranking)."""
    out: dict[str, float] = {}
    qs = Material.objects.filter(elements__contained_by=list(elements), formation_energy_per_atom__isnull=False)
    for formula, ef in qs.values_list("formula_reduced", "formation_energy_per_atom"):
        if formula not in out or ef < out[formula]:
            out[formula] = ef
    return out


def default_composition_model() -> CompositionModel | None:
    """The ridge baseline, trained once on Bartel et al. 2020's Ef splits and kept under the model directory."""
    path = Path(settings.MODEL_DIR) / BASELINE_MODEL_FILE
    if path.exists():
        return RidgeCompositionModel.load(path)
    data = Path(settings.DATA_DIR) / "bartel2020_mp_stability"
    if not (data / "Ef" / "train.csv").exists():
        return None
    model = train_baseline(data)
    path.parent.mkdir(parents=True, exist_ok=True)
    model.save(path)
    return model


def _references(formulas: set[str], round_obj: CampaignRound | None) -> list[tuple[str, Any]]:
    refs: list[tuple[str, Any]] = []
    if not formulas:
        return refs
    from pymatgen.core import Structure

    for pk, s in Material.objects.filter(formula_reduced__in=formulas).values_list("id", "structure").iterator(2000):
        refs.append((f"material:{pk}", Structure.from_dict(s)))
    cands = Candidate.objects.filter(formula_reduced__in=formulas)
    cands = cands.filter(round__campaign_id=round_obj.campaign_id) if round_obj else cands.filter(round__isnull=True)
    for pk, s in cands.values_list("id", "structure").iterator(2000):
        refs.append((f"candidate:{pk}", Structure.from_dict(s)))
    return refs


def generate_candidates(
    round_obj: CampaignRound | None,
    *,
    elements: Iterable[str],
    max_elements: int = 3,
    pipelines: Iterable[str] = ("structural",),
    limit: int = 1000,
    rng_seed: int = 0,
    parents_limit: int | None = 5000,
    substitution: SubstitutionConfig | None = None,
    composition_model: CompositionModel | None = None,
    compositional_top_n: int = 20,
    structure_config: RandomStructureConfig | None = None,
    oversample: float = 3.0,
    workers: int | None = None,
) -> GenerationReport:
    """Generate up to ``limit`` new, deduplicated candidates in the element space and store them as ``Candidate`` rows.

    ``round_obj`` may be None (ad-hoc generation, rows without a round). Structural children are ranked by
    substitution probability, compositional structures by their composition's predicted stability; the best
    ``oversample × limit`` proposals are deduplicated (within the batch, against catalog materials and against the
    campaign's earlier candidates) and the first ``limit`` survivors are written.
    """
    elements = sorted(set(elements))
    pipelines = [p for p in pipelines]
    unknown = set(pipelines) - set(PIPELINES)
    if unknown:
        raise ValueError(f"unknown pipelines: {sorted(unknown)}")
    workers = workers or _default_workers()
    report = GenerationReport(round_id=round_obj.pk if round_obj else None, pipelines=pipelines)
    t_start = time.perf_counter()
    proposals: list[GeneratedCandidate] = []
    parent_public: dict[int, str] = {}

    if "structural" in pipelines:
        t = time.perf_counter()
        parents = choose_parents(elements, max_elements, parents_limit)
        parent_public = {pk: pid for pk, pid, _ in parents}
        report.n_parents = len(parents)
        report.timings["load_parents"] = round(time.perf_counter() - t, 3)
        cfg = dataclasses.replace(
            substitution or SubstitutionConfig(), allowed_elements=frozenset(elements), max_elements=max_elements
        )
        t = time.perf_counter()
        structural = generate_substitutions([(pk, s) for pk, _, s in parents], cfg, workers=workers)
        report.timings["structural"] = round(time.perf_counter() - t, 3)
        report.by_pipeline["structural_generated"] = len(structural)
        proposals.extend(structural)

    if "compositional" in pipelines:
        t = time.perf_counter()
        model = composition_model if composition_model is not None else default_composition_model()
        phases = known_phases(elements) if model is not None else None
        result = generate_compositional(
            elements,
            max_elements,
            model,
            top_n=compositional_top_n,
            known_phases=phases or None,
            structure_config=structure_config,
            seed=rng_seed,
            workers=workers,
        )
        report.n_compositions = result.n_compositions
        report.timings["compositional"] = round(time.perf_counter() - t, 3)
        report.by_pipeline["compositional_generated"] = len(result.candidates)
        # compositional structures are few and expensive: they go first
        proposals = result.candidates + proposals

    report.n_generated = len(proposals)
    considered = proposals[: max(limit, int(limit * oversample))]
    report.n_considered = len(considered)

    t = time.perf_counter()
    formulas = {c.formula for c in considered}
    refs = _references(formulas, round_obj)
    report.timings["load_references"] = round(time.perf_counter() - t, 3)
    t = time.perf_counter()
    kept_idx, stats = deduplicate(considered, refs, workers=workers if len(considered) > 2000 else 1)
    report.timings["dedup"] = round(time.perf_counter() - t, 3)
    kept = [considered[i] for i in kept_idx][:limit]
    _fill_dedup(report, stats)
    report.n_deduplicated = len(kept)

    t = time.perf_counter()
    report.n_created = _write(round_obj, kept, parent_public)
    report.timings["write"] = round(time.perf_counter() - t, 3)
    for c in kept:
        report.by_pipeline[c.pipeline] = report.by_pipeline.get(c.pipeline, 0) + 1
    report.timings["total"] = round(time.perf_counter() - t_start, 3)

    if round_obj is not None:
        round_obj.n_generated = report.n_generated
        round_obj.n_deduplicated = report.n_deduplicated
        round_obj.timings = {**(round_obj.timings or {}), "generate": report.timings["total"]}
        round_obj.save(update_fields=["n_generated", "n_deduplicated", "timings"])
    logger.info(
        "generation: %d proposals, %d new candidates written (%d already present) in %.1f s",
        report.n_generated,
        report.n_created,
        report.n_deduplicated - report.n_created,
        report.timings["total"],
    )
    return report


def _fill_dedup(report: GenerationReport, stats: DedupStats) -> None:
    report.dedup = asdict(stats)
    report.n_duplicates_in_batch = stats.n_duplicate_batch
    report.n_duplicates_known = stats.n_duplicate_reference


def _write(round_obj: CampaignRound | None, kept: Sequence[GeneratedCandidate], parent_public: dict[int, str]) -> int:
    rows = []
    seen: set[str] = set()
    for c in kept:
        fp = structure_key(c.lattice, c.frac, c.species)
        if fp in seen:
            continue
        seen.add(fp)
        recipe = dict(c.recipe)
        parent_id = c.parent_id if c.pipeline == "structural" else None
        if parent_id is not None and parent_id in parent_public:
            recipe["parent_public_id"] = parent_public[parent_id]
        rows.append(
            Candidate(
                round=round_obj,
                structure=c.structure.as_dict(),
                formula_reduced=c.formula,
                chemsys=chemsys_of(c.structure.composition),
                pipeline=c.pipeline,
                recipe=recipe,
                parent_id=parent_id,
                fingerprint=fp,
                predicted_mean=None,
            )
        )
    existing_qs = Candidate.objects.filter(fingerprint__in=list(seen))
    existing_qs = existing_qs.filter(round=round_obj) if round_obj else existing_qs.filter(round__isnull=True)
    existing = set(existing_qs.values_list("fingerprint", flat=True))
    rows = [r for r in rows if r.fingerprint not in existing]
    with transaction.atomic():
        Candidate.objects.bulk_create(rows, batch_size=1000, ignore_conflicts=True)
    return len(rows)
