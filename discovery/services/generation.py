"""Candidate generation, Django side: parents from the catalog → ``Candidate`` rows, deduplicated against the catalog.

The science lives in ``discovery.generation`` (pure, no Django); this module only chooses parents and known phases
from the database, runs the pipelines, deduplicates against existing ``Material`` and ``Candidate`` rows, and writes
new ``Candidate`` rows in bulk (unique per round and fingerprint, so re-running is idempotent).
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import InterfaceError, OperationalError, transaction
from django.db.models import F, Q
from django.utils import timezone
from pymatgen.core import Structure

from catalog.models import Material
from catalog.parallel import map_in_processes, pool_size
from catalog.structures import chemsys_of
from discovery import messages
from discovery.campaign_config import PIPELINES, CampaignConfig
from discovery.generation.base import GeneratedCandidate
from discovery.generation.compositional import (
    CompositionModel,
    CompositionWork,
    RandomStructureConfig,
    RidgeCompositionModel,
    build_random_structures,
    plan_compositional,
    train_baseline,
    work_from_json,
    work_to_json,
)
from discovery.generation.dedup import DedupStats, deduplicate, structure_key
from discovery.generation.substitution import SubstitutionConfig, SubstitutionGenerator, generate_substitutions
from discovery.models import CampaignRound, Candidate, GenerationChunk

logger = logging.getLogger(__name__)

OVERSAMPLE = 3.0  # proposals deduplicated per candidate wanted: duplicates of known crystals are common
COMPOSITIONAL_TOP_N = 20  # compositions a campaign round builds random structures for
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
    skipped_parents: list[list[Any]] = field(default_factory=list)  # [parent material id, reason]
    dedup: dict[str, int] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _default_workers() -> int:
    return settings.GNOMON_GENERATION_WORKERS


# Parents are crystals: a molecule in a vacuum box (a bootstrap reference such as Cl2) has hundreds of Å³ per atom,
# while the loosest elemental solid (Cs) has ~117. Substituting into such a box only makes absurd "crystals".
MAX_PARENT_VOLUME_PER_ATOM = 150.0  # Å³
# GNoME substitutes into stable crystals; hypothetical prototypes far above the hull make poor (often unbalanced) parents.
MAX_PARENT_E_ABOVE_HULL = 0.1  # eV/atom; parents with no hull position yet are kept


def choose_parent_ids(
    elements: Sequence[str],
    max_elements: int,
    limit: int | None = 5000,
    max_foreign: int = 2,
    max_e_above_hull: float | None = MAX_PARENT_E_ABOVE_HULL,
) -> list[int]:
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
    return ids


def load_parents(ids: Sequence[int]) -> list[tuple[int, Structure]]:
    """(material id, structure) in the order of ``ids``."""
    rows = dict(Material.objects.filter(id__in=list(ids)).values_list("id", "structure"))
    return [(pk, Structure.from_dict(rows[pk])) for pk in ids if pk in rows]


def choose_parents(elements: Sequence[str], max_elements: int, limit: int | None = 5000, **kwargs):
    """(id, public id, structure) of ``choose_parent_ids``."""
    ids = choose_parent_ids(elements, max_elements, limit, **kwargs)
    public = dict(Material.objects.filter(id__in=ids).values_list("id", "public_id"))
    return [(pk, public[pk], s) for pk, s in load_parents(ids)]


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
    for pk, s in Material.objects.filter(formula_reduced__in=formulas).values_list("id", "structure").iterator(2000):
        refs.append((f"material:{pk}", Structure.from_dict(s)))
    cands = Candidate.objects.filter(formula_reduced__in=formulas)
    cands = cands.filter(round__campaign_id=round_obj.campaign_id) if round_obj else cands.filter(round__isnull=True)
    for pk, s in cands.values_list("id", "structure").iterator(2000):
        refs.append((f"candidate:{pk}", Structure.from_dict(s)))
    return refs


@dataclass
class GenerationPlan:
    """What a round will generate from: parents to substitute and ranked compositions to build structures for."""

    report: GenerationReport
    parent_ids: list[int] = field(default_factory=list)
    compositions: list[CompositionWork] = field(default_factory=list)


def plan_generation(
    round_obj: CampaignRound | None,
    *,
    elements: Sequence[str],
    max_elements: int,
    pipelines: Sequence[str],
    parents_limit: int | None = 5000,
    composition_model: CompositionModel | None = None,
    compositional_top_n: int = 20,
) -> GenerationPlan:
    """Choose the parents and rank the compositions (cheap); building the candidates is ``run_*`` (expensive)."""
    unknown = set(pipelines) - set(PIPELINES)
    if unknown:
        raise ValueError(f"unknown pipelines: {sorted(unknown)}; choose from {', '.join(PIPELINES)}")
    plan = GenerationPlan(GenerationReport(round_id=round_obj.pk if round_obj else None, pipelines=list(pipelines)))
    report = plan.report
    if "structural" in pipelines:
        t = time.perf_counter()
        plan.parent_ids = choose_parent_ids(elements, max_elements, parents_limit)
        report.n_parents = len(plan.parent_ids)
        report.timings["choose_parents"] = round(time.perf_counter() - t, 3)
    if "compositional" in pipelines:
        t = time.perf_counter()
        model = composition_model if composition_model is not None else default_composition_model()
        phases = known_phases(elements) if model is not None else None
        result = plan_compositional(elements, max_elements, model, top_n=compositional_top_n,
                                    known_phases=phases or None)
        report.n_compositions = result.n_compositions
        plan.compositions = result.work
        report.timings["rank_compositions"] = round(time.perf_counter() - t, 3)
    return plan


def substitution_config(elements: Sequence[str], max_elements: int,
                        base: SubstitutionConfig | None = None) -> SubstitutionConfig:
    return dataclasses.replace(base or SubstitutionConfig(), allowed_elements=frozenset(elements),
                               max_elements=max_elements)


def run_structural(parent_ids: Sequence[int], config: SubstitutionConfig,
                   workers: int | None = 1) -> tuple[list[GeneratedCandidate], list[tuple[Any, str]]]:
    """Substituted children of the parents, best first, and the parents skipped with their reason.

    ``workers`` > 1 uses a process pool where ``catalog.parallel`` allows one (never inside a Celery task)."""
    parents = load_parents(parent_ids)
    if pool_size(workers, len(parents)) > 1:
        return generate_substitutions(parents, config, workers=workers), []
    generator = SubstitutionGenerator(config)
    children = generator.generate(parents)
    children.sort(key=lambda c: -c.score)
    return children, generator.failures


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

    In this process, with a process pool where one is allowed (commands, notebooks, benchmarks); campaigns fan the
    same work out over the task queue instead (``fan_out_generation``). ``round_obj`` may be None (ad-hoc
    generation, rows without a round). Structural children are ranked by substitution probability, compositional
    structures by their composition's predicted stability; the best ``oversample × limit`` proposals are deduplicated
    (within the batch, against catalog materials and against the campaign's earlier candidates) and the first
    ``limit`` survivors are written.
    """
    elements = sorted(set(elements))
    workers = workers or _default_workers()
    t_start = time.perf_counter()
    plan = plan_generation(round_obj, elements=elements, max_elements=max_elements, pipelines=list(pipelines),
                           parents_limit=parents_limit, composition_model=composition_model,
                           compositional_top_n=compositional_top_n)
    report = plan.report
    structural: list[GeneratedCandidate] = []
    compositional: list[GeneratedCandidate] = []
    if "structural" in report.pipelines:
        t = time.perf_counter()
        structural, skipped = run_structural(plan.parent_ids, substitution_config(elements, max_elements, substitution),
                                             workers)
        report.skipped_parents = [[pid, why] for pid, why in skipped]
        report.timings["structural"] = round(time.perf_counter() - t, 3)
    if "compositional" in report.pipelines:
        t = time.perf_counter()
        n = pool_size(workers, len(plan.compositions) // 2)  # a process for fewer than two compositions costs more
        pieces = [(plan.compositions[i::n], structure_config, rng_seed) for i in range(n)]
        for part in map_in_processes(_build_compositional, pieces, n):
            compositional.extend(part)
        report.timings["compositional"] = round(time.perf_counter() - t, 3)
    finish_generation(round_obj, report, structural=structural, compositional=compositional, limit=limit,
                      oversample=oversample, workers=workers)
    report.timings["total"] = round(time.perf_counter() - t_start, 3)
    if round_obj is not None:
        CampaignRound.objects.filter(pk=round_obj.pk).update(generation=report.as_dict())
    return report


def _build_compositional(args) -> list[GeneratedCandidate]:
    items, config, seed = args
    return build_random_structures(items, config, seed)


def finish_generation(
    round_obj: CampaignRound | None,
    report: GenerationReport,
    *,
    structural: Sequence[GeneratedCandidate],
    compositional: Sequence[GeneratedCandidate],
    limit: int,
    oversample: float = 3.0,
    workers: int | None = 1,
) -> GenerationReport:
    """Rank the union of the proposals, deduplicate the best ``oversample × limit`` and write the first ``limit``."""
    structural = sorted(structural, key=lambda c: -c.score)
    report.by_pipeline["structural_generated"] = len(structural)
    report.by_pipeline["compositional_generated"] = len(compositional)
    proposals = list(compositional) + structural  # compositional structures are few and expensive: they go first
    report.n_generated = report.n_generated or len(proposals)
    considered = proposals[: max(limit, int(limit * oversample))]
    report.n_considered = len(considered)

    t = time.perf_counter()
    refs = _references({c.formula for c in considered}, round_obj)
    report.timings["load_references"] = round(time.perf_counter() - t, 3)
    t = time.perf_counter()
    kept_idx, stats = deduplicate(considered, refs, workers=workers if len(considered) > 2000 else 1)
    report.timings["dedup"] = round(time.perf_counter() - t, 3)
    kept = [considered[i] for i in kept_idx][:limit]
    _fill_dedup(report, stats)
    report.n_deduplicated = len(kept)

    t = time.perf_counter()
    parent_public = dict(
        Material.objects.filter(pk__in={c.parent_id for c in kept if c.pipeline == "structural"})
        .values_list("pk", "public_id")
    )
    report.n_created = _write(round_obj, kept, parent_public)
    report.timings["write"] = round(time.perf_counter() - t, 3)
    for c in kept:
        report.by_pipeline[c.pipeline] = report.by_pipeline.get(c.pipeline, 0) + 1

    if round_obj is not None:
        round_obj.n_generated = report.n_generated
        round_obj.n_deduplicated = report.n_deduplicated
        round_obj.generation = report.as_dict()
        round_obj.save(update_fields=["n_generated", "n_deduplicated", "generation"])
    logger.info("generation: %d proposals, %d new candidates written (%d already present)",
                report.n_generated, report.n_created, report.n_deduplicated - report.n_created)
    return report


# --- campaigns: the same work, fanned out over the task queue -------------------------------------------------------
MAX_CHUNK_ATTEMPTS = 3  # a chunk lost or failed this many times fails its round, with the reason


class GenerationFailed(RuntimeError):
    """A generation chunk failed for good; the message names the chunk, its work and the reason."""


def fan_out_generation(rnd: CampaignRound, config: CampaignConfig) -> list[GenerationChunk]:
    """Plan the round's generation and store it as chunks; each is sent to the task queue once this transaction commits.

    Parents go ``GNOMON_GENERATION_CHUNK_PARENTS`` to a chunk, compositions ``GNOMON_GENERATION_CHUNK_COMPOSITIONS``:
    small enough that two workers (or twenty hosts) share a large element space, large enough that a chunk outweighs
    its message. Re-running this for a round that has chunks returns them unchanged.
    """
    existing = list(rnd.generation_chunks.order_by("index"))
    if existing:
        return existing
    plan = plan_generation(rnd, elements=config.elements, max_elements=config.max_elements,
                           pipelines=config.pipelines, compositional_top_n=COMPOSITIONAL_TOP_N)
    works: list[tuple[str, dict[str, Any]]] = []
    step = settings.GNOMON_GENERATION_CHUNK_PARENTS
    for i in range(0, len(plan.parent_ids), step):
        works.append(("structural", {"parent_ids": plan.parent_ids[i : i + step]}))
    step = settings.GNOMON_GENERATION_CHUNK_COMPOSITIONS
    for i in range(0, len(plan.compositions), step):
        works.append(("compositional", {"compositions": work_to_json(plan.compositions[i : i + step]),
                                        "seed": config.seed + rnd.index}))
    chunks = GenerationChunk.objects.bulk_create(
        [GenerationChunk(round=rnd, index=i, pipeline=pipeline, work=work) for i, (pipeline, work) in enumerate(works)]
    )
    rnd.generation = {**plan.report.as_dict(), "chunks": len(chunks)}
    rnd.save(update_fields=["generation"])
    send_chunks(chunks)
    return chunks


def send_chunks(chunks: Sequence[GenerationChunk]) -> None:
    """Mark the chunks sent and send their tasks once the current transaction commits."""
    if not chunks:
        return
    GenerationChunk.objects.filter(pk__in=[c.pk for c in chunks]).update(sent_at=timezone.now())
    messages.run_generation_chunks([c.pk for c in chunks])


def run_generation_chunk(chunk_id: int, worker_host: str = "") -> str:
    """Build one chunk's proposals and store the best ``candidates_per_round × oversample`` of them.

    Idempotent: a chunk already done is left alone, and of two deliveries of one chunk (a re-sent message, a worker
    killed after it finished) the first to finish wins. A parent that breaks the substitution code is skipped and named.
    """
    from discovery.services.campaigns import campaign_config

    with transaction.atomic():
        chunk = GenerationChunk.objects.select_for_update().select_related("round__campaign").filter(pk=chunk_id).first()
        if chunk is None or chunk.state == GenerationChunk.State.DONE:
            return "nothing to do"
        chunk.state = GenerationChunk.State.RUNNING
        chunk.attempts += 1
        chunk.started_at = timezone.now()
        chunk.worker_host = worker_host[:120]
        chunk.save(update_fields=["state", "attempts", "started_at", "worker_host"])
    config = campaign_config(chunk.round.campaign)
    started = time.perf_counter()
    skipped: list[tuple[Any, str]] = []
    try:
        if chunk.pipeline == "structural":
            cfg = substitution_config(config.elements, config.max_elements)
            proposals, skipped = run_structural(chunk.work["parent_ids"], cfg, workers=1)
        else:
            proposals = build_random_structures(work_from_json(chunk.work["compositions"]), None, chunk.work["seed"])
    except (OperationalError, InterfaceError):
        raise  # the database went away: the task retries the chunk
    except Exception as exc:  # noqa: BLE001 - recorded on the chunk; the round's stage decides whether to retry
        logger.exception("generation chunk %s failed", chunk_id)
        GenerationChunk.objects.filter(pk=chunk_id).exclude(state=GenerationChunk.State.DONE).update(
            state=GenerationChunk.State.FAILED, error=f"{type(exc).__name__}: {exc}"[:2000],
            finished_at=timezone.now(),
        )
        return "failed"
    keep = max(config.candidates_per_round, int(config.candidates_per_round * OVERSAMPLE))
    with transaction.atomic():
        chunk = GenerationChunk.objects.select_for_update().get(pk=chunk_id)
        if chunk.state == GenerationChunk.State.DONE:
            return "already done by another delivery"
        chunk.proposals = [c.as_dict() for c in proposals[:keep]]
        chunk.n_generated = len(proposals)
        chunk.skipped = [[pid, why] for pid, why in skipped]
        chunk.state = GenerationChunk.State.DONE
        chunk.error = ""
        chunk.finished_at = timezone.now()
        chunk.wall_time_s = round(time.perf_counter() - started, 3)
        chunk.save()
    return f"{len(proposals)} proposals"


def collect_generation(rnd: CampaignRound, config: CampaignConfig) -> GenerationReport | None:
    """Once every chunk is done: deduplicate the union and write the round's candidates. Else None (still waiting).

    Chunks that failed, or that were sent more than ``GNOMON_GENERATION_CHUNK_TIMEOUT_S`` ago and never finished (a
    lost message, a killed worker), are sent again up to ``MAX_CHUNK_ATTEMPTS`` times; then ``GenerationFailed``.
    """
    chunks = list(rnd.generation_chunks.order_by("index"))
    pending = [c for c in chunks if c.state != GenerationChunk.State.DONE]
    if pending:
        stale_before = timezone.now() - timedelta(seconds=settings.GNOMON_GENERATION_CHUNK_TIMEOUT_S)
        resend = []
        for c in pending:
            lost = c.sent_at is None or (c.state != GenerationChunk.State.FAILED and c.sent_at < stale_before)
            if c.state != GenerationChunk.State.FAILED and not lost:
                continue
            if c.attempts >= MAX_CHUNK_ATTEMPTS:
                what = (f"{len(c.work.get('parent_ids', []))} parents" if c.pipeline == "structural"
                        else f"{len(c.work.get('compositions', []))} compositions")
                reason = c.error or f"no result {settings.GNOMON_GENERATION_CHUNK_TIMEOUT_S} s after it was sent"
                raise GenerationFailed(
                    f"generation chunk {c.index} ({c.pipeline}, {what}) failed {c.attempts} times: {reason}"
                )
            resend.append(c)
        GenerationChunk.objects.filter(pk__in=[c.pk for c in resend]).update(state=GenerationChunk.State.QUEUED)
        send_chunks(resend)
        return None
    report = GenerationReport(round_id=rnd.pk, pipelines=list(config.pipelines))
    planned = dict(rnd.generation or {})
    report.n_parents = planned.get("n_parents", 0)
    report.n_compositions = planned.get("n_compositions", 0)
    report.timings = {**planned.get("timings", {}),
                      "chunks_wall_s": round(sum(c.wall_time_s or 0 for c in chunks), 3)}
    report.n_generated = sum(c.n_generated for c in chunks)
    report.skipped_parents = [s for c in chunks for s in c.skipped]
    structural = [GeneratedCandidate.from_dict(d) for c in chunks if c.pipeline == "structural" for d in c.proposals]
    compositional = [GeneratedCandidate.from_dict(d) for c in chunks if c.pipeline == "compositional"
                     for d in c.proposals]
    finish_generation(rnd, report, structural=structural, compositional=compositional,
                      limit=config.candidates_per_round, oversample=OVERSAMPLE, workers=1)
    rnd.generation = {**rnd.generation, "chunks": len(chunks)}
    rnd.save(update_fields=["generation"])
    GenerationChunk.objects.filter(round=rnd).update(proposals=[])  # written as candidates; keep the bookkeeping only
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
