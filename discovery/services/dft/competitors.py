"""Competing phases a verdict needs: catalog crystals queued as jobs, composition-only phases given a structure search;
counted in the campaign's budget."""

from __future__ import annotations

import logging

from django.conf import settings
from pymatgen.core import Composition, Structure

from catalog.models import EnergyRecord, Material, MaterialOrigin, Scheme
from discovery.generation.prototypes import SearchedStructure, prototype_structures, rank_searched
from discovery.models import DEAD_JOB_STATES, DFTJob
from discovery.services.dft.jobs import create_job, enqueue_job

logger = logging.getLogger(__name__)


def queue_competing_phases(scheme: Scheme, elements: list[str], *, backend: str, preset: str,
                           parent: DFTJob | None = None) -> list[int]:
    """Queue DFT jobs for the competing phases of ``elements``'s system that ``scheme`` does not hold yet.

    The competitors come from the one selector, ``catalog.verdicts.competing_phases``: every phase a trusted source
    places on or within 50 meV/atom of its hull in the system or a subsystem. Those with a catalog crystal of at most
    ``MAX_COMPETITOR_SITES`` atoms are computed (lowest energy first); those known by composition only get a structure
    search (``search_competitor_structures``: known crystals of the same stoichiometry, decorated, ranked by the
    campaign's screening model, the best ``GNOMON_DFT_SEARCHED_STRUCTURES`` computed and recorded as searched). At most
    ``GNOMON_DFT_MAX_REFERENCE_PHASES`` new jobs per call, and, for a campaign, at most its ``max_competitor_jobs`` in
    all (they count in its budget); the rest stay missing, and the verdicts that need them stay provisional. Each new
    job records ``reference_for`` (the job that needed it), so a campaign round waits for its phases before it
    reads its hit rate off the hull, and its dashboard lists them."""
    from catalog.verdicts import MAX_COMPETITOR_SITES, SEARCHED_ORIGIN, competing_phases

    campaign = campaign_of(parent)
    room = settings.GNOMON_DFT_MAX_REFERENCE_PHASES
    if campaign is not None:
        room = min(room, competitor_budget_left(campaign))
    competitors = competing_phases("-".join(sorted(elements)), exclude_scheme=scheme)
    computable = [c for c in competitors if c.computable]
    computed = set(EnergyRecord.objects.filter(scheme=scheme, material_id__in=[c.material_id for c in computable])
                   .values_list("material_id", flat=True))  # only the competitors', not the whole scheme's
    budget = campaign.pk if campaign is not None else None
    ids: list[int] = []
    live = set(DFTJob.objects.filter(material_id__in=[c.material_id for c in computable], backend=backend,
                                     preset=preset).exclude(state__in=DEAD_JOB_STATES)
               .values_list("material_id", flat=True))
    for competitor in [c for c in computable if c.material_id not in computed]:
        if competitor.material_id not in live:
            if room <= 0:
                break
            room -= 1
        material = Material.objects.get(pk=competitor.material_id)
        job = create_job(material=material, backend=backend, preset=preset,
                         label=f"{material.public_id} competing phase {competitor.formula}",
                         reference_for=parent.pk if parent is not None else None, competitor_for=budget)
        if job.state == DFTJob.State.QUEUED:
            enqueue_job(job)
        ids.append(job.pk)
    composition_only = [c for c in competitors if c.material_id is None
                        and Composition(c.formula).num_atoms <= MAX_COMPETITOR_SITES]
    if not composition_only:
        return ids
    have = {Composition(c).reduced_formula for c in EnergyRecord.objects.filter(
        scheme=scheme, elements__contained_by=sorted(elements)).values_list("composition", flat=True)}
    searched = set(DFTJob.objects.filter(backend=backend, preset=preset).exclude(searched_for="")
                   .exclude(state__in=DEAD_JOB_STATES).values_list("searched_for", flat=True))
    version = _ranking_model(campaign)
    for competitor in composition_only:
        if competitor.formula in have or competitor.formula in searched:
            continue
        for found in search_competitor_structures(competitor.formula, version=version,
                                                  limit=settings.GNOMON_DFT_SEARCHED_STRUCTURES):
            if room <= 0:
                return ids
            room -= 1
            origin = {"dataset": SEARCHED_ORIGIN, "source_id": f"{found.formula}:{found.prototype_id}:{scheme.pk}",
                      "kind": MaterialOrigin.Kind.USER,
                      "details": {"searched_for": found.formula, "prototype": found.prototype_id,
                                  "prototype_formula": found.prototype_formula, "mapping": dict(found.mapping),
                                  "note": "structure searched by prototype substitution, not known"}}
            job = create_job(structure=found.structure, backend=backend, preset=preset, origin=origin,
                             label=f"searched {found.formula} (from {found.prototype_formula} #{found.prototype_id})",
                             reference_for=parent.pk if parent is not None else None,
                             competitor_for=budget, searched_for=found.formula)
            enqueue_job(job)
            ids.append(job.pk)
    return ids


PROTOTYPES_PER_SEARCH = 300  # known crystals of the stoichiometry decorated per search (lowest e_above_hull first)


def search_competitor_structures(formula: str, *, version=None, limit: int = 2) -> list[SearchedStructure]:
    """Candidate structures for a composition the catalog knows only as a number: every known crystal of the same
    anonymous formula (at most ``MAX_COMPETITOR_SITES`` atoms), decorated with ``formula``'s elements, ranked by the
    screening model ``version`` (lowest predicted formation energy first; catalog order without a model)."""
    from django.db.models import F

    from catalog.verdicts import MAX_COMPETITOR_SITES

    rows = (Material.objects.filter(formula_anonymous=Composition(formula).anonymized_formula,
                                    nsites__lte=MAX_COMPETITOR_SITES)
            .order_by(F("e_above_hull").asc(nulls_last=True), "id").values_list("id", "structure")
            [:PROTOTYPES_PER_SEARCH])
    reduced = Composition(formula).reduced_formula
    known = [Structure.from_dict(s) for s in Material.objects.filter(formula_reduced=reduced).values_list(
        "structure", flat=True)[:50]]
    known += [Structure.from_dict(s) for s in DFTJob.objects.filter(candidate__formula_reduced=reduced).exclude(
        state__in=DEAD_JOB_STATES).values_list("input_structure", flat=True)[:50]]
    found = prototype_structures(formula, ((pk, Structure.from_dict(s)) for pk, s in rows), MAX_COMPETITOR_SITES,
                                 known=known)
    if version is not None and len(found) > limit:
        from discovery.services.screening import predictor

        prediction = predictor(version)([f.structure for f in found])
        found = rank_searched(found, [None if i in prediction.errors else float(m)
                                      for i, m in enumerate(prediction.mean)])
    return found[:limit]


def campaign_of(job: DFTJob | None):
    """The campaign a job works for: its candidate's, or, for a competitor or reference job, that of the job that
    needed it (followed up the chain)."""
    seen: set[int] = set()
    while job is not None and job.pk not in seen:
        seen.add(job.pk)
        if job.candidate_id is not None:
            rnd = job.candidate.round
            return rnd.campaign if rnd is not None else None
        if job.competitor_for_id is not None:
            return job.competitor_for
        job = job.reference_for
    return None


def competitor_budget_left(campaign) -> int:
    """How many more competing-phase jobs the campaign may queue (its ``max_competitor_jobs``, validated at launch;
    failed ones count: they spent the time)."""
    from discovery.campaign_config import CampaignConfig

    default = CampaignConfig.model_fields["max_competitor_jobs"].default
    limit = int((campaign.config or {}).get("max_competitor_jobs", default))
    spent = DFTJob.objects.filter(competitor_for=campaign).exclude(
        state=DFTJob.State.CANCELLED).count()
    return limit - spent


def _ranking_model(campaign):
    if campaign is None:
        return None
    from discovery.services.campaign_stages import current_model

    return current_model(campaign)
