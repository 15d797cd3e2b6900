"""The stages of one campaign round: generate → screen → verify (DFT) → fold into hulls → retrain.

Each function runs inside the caller's transaction and moves ``round.stage`` forward only when its work is written, so a
crash anywhere leaves the round at a stage that can simply be run again.
"""

from __future__ import annotations

import time
from statistics import mean

from django.db.models import Count, Max, Min, Q
from django.utils import timezone

from catalog.models import Scheme
from discovery.campaign_config import CampaignConfig
from discovery.models import TERMINAL_JOB_STATES, Campaign, CampaignRound, Candidate, DFTJob, ModelVersion

MIN_TRAINING_CRYSTALS = 50  # below this the campaign's own scheme is too small to train on
MIN_OPTIMIZER_STEPS = 150  # per ensemble member: small seed sets get smaller batches and more epochs



class StageWaiting(Exception):  # noqa: N818 - a control-flow signal, not an error
    """The round is waiting for work elsewhere (DFT jobs); nothing to do now."""


def run_stage(campaign: Campaign, rnd: CampaignRound, config: CampaignConfig) -> str:
    handler = {
        "generate": generate,
        "generating": collect_generation,
        "screen": screen,
        "verify": verify,
        "verifying": wait_for_jobs,
        "fold": fold,
        "retrain": retrain,
    }.get(rnd.stage)
    if handler is None:
        raise ValueError(f"unknown round stage '{rnd.stage}'")
    stage = rnd.stage  # the handler moves rnd.stage on; time is booked to the stage that ran
    started = time.monotonic()
    action = handler(campaign, rnd, config)
    timings = dict(rnd.timings)
    timings[stage] = round(timings.get(stage, 0) + time.monotonic() - started, 3)
    CampaignRound.objects.filter(pk=rnd.pk).update(timings=timings)
    return action


def _set_stage(rnd: CampaignRound, stage: str, **counts) -> None:
    for key, value in counts.items():
        setattr(rnd, key, value)
    rnd.stage = stage
    if stage == "done":
        rnd.finished_at = timezone.now()
    rnd.save()


def generate(campaign: Campaign, rnd: CampaignRound, config: CampaignConfig) -> str:
    """Plan the round's generation and send it out as chunk tasks; ``generating`` collects them."""
    from discovery.services.generation import fan_out_generation

    chunks = fan_out_generation(rnd, config)
    _set_stage(rnd, "generating")
    return f"generation sent out as {len(chunks)} chunk task(s)"


def collect_generation(campaign: Campaign, rnd: CampaignRound, config: CampaignConfig) -> str:
    from discovery.services import generation

    report = generation.collect_generation(rnd, config)
    if report is None:
        pending = rnd.generation_chunks.exclude(state="done").count()
        raise StageWaiting(f"{pending} of {rnd.generation_chunks.count()} generation chunks pending in round {rnd.index}")
    n_kept = rnd.candidates.count()
    _set_stage(rnd, "screen", n_generated=report.n_generated, n_deduplicated=n_kept)
    skipped = f"; {len(report.skipped_parents)} parent(s) skipped" if report.skipped_parents else ""
    return f"generated {n_kept} candidates{skipped}"


def current_model(campaign: Campaign) -> ModelVersion | None:
    return campaign.models.order_by("-created_at").first()


def training_scheme(config: CampaignConfig) -> Scheme:
    """The seed scheme whose crystals the screening ensemble learns from besides the campaign's own DFT results.

    The campaign's own DFT scheme alone once it holds ``MIN_TRAINING_CRYSTALS`` crystals in at least three chemical
    systems (the split is by chemsys). Before that, the best seed among the hull-building schemes with three or more systems:
    same level-of-theory family first (e.g. the GPAW bootstrap seed for a GPAW campaign), then the one with most
    crystals touching the campaign's elements, then the largest.
    """
    from discovery.services.dft import scheme_for

    own = scheme_for(config.dft_backend, config.dft_preset)
    stats = list(
        Scheme.objects.exclude(kind=Scheme.Kind.STABILITY_VALUE)
        .filter(energies__material__isnull=False)
        .annotate(
            n=Count("energies"),
            n_chemsys=Count("energies__chemsys", distinct=True),
            n_in_space=Count("energies", filter=Q(energies__elements__overlap=list(config.elements))),
        )
        .filter(n_chemsys__gte=3)
    )
    for scheme in stats:
        if scheme.pk == own.pk and scheme.n >= MIN_TRAINING_CRYSTALS:
            return own
    stats = [s for s in stats if s.pk != own.pk]  # the own scheme always joins as the primary one
    if not stats:
        raise ValueError(
            "no scheme has crystals with energies in three or more chemical systems to train a screening model on; "
            "load seed data first (python manage.py load_seed)"
        )
    family = own.name.split("-")[0]
    return max(stats, key=lambda s: (s.name.split("-")[0] == family and s.is_dft == own.is_dft, s.n_in_space, s.n))


def train_campaign_model(campaign: Campaign, config: CampaignConfig, for_round: int) -> ModelVersion:
    from discovery.screening.training import TrainingConfig
    from discovery.services.dft import scheme_for
    from discovery.services.generation import default_composition_model
    from discovery.services.screening import train_ensemble

    own = scheme_for(config.dft_backend, config.dft_preset)
    seed = training_scheme(config)
    version = train_ensemble(
        own,
        extra_schemes=[seed] if seed.pk != own.pk else [],  # the campaign's verified energies, then the seed data
        ensemble_size=config.ensemble_size,
        training_config=TrainingConfig(epochs=config.epochs, seed=config.seed),
        name=f"{campaign.name}-round{for_round}",
        min_optimizer_steps=MIN_OPTIMIZER_STEPS,
        prior=default_composition_model(),  # None without the Bartel data: the networks then learn Ef directly
        fine_tune=current_model(campaign) if config.retraining == "fine-tune" else None,
    )
    version.campaign = campaign
    version.save(update_fields=["campaign"])
    return version


def screen(campaign: Campaign, rnd: CampaignRound, config: CampaignConfig) -> str:
    from discovery.screening.acquisition import AcquisitionRule
    from discovery.services.screening import screen_candidates, select_candidates

    model = current_model(campaign) or train_campaign_model(campaign, config, for_round=rnd.index)
    generated = list(rnd.candidates.filter(status=Candidate.Status.GENERATED).order_by("pk"))
    affordable = [c for c in generated if len(c.structure.get("sites", [])) <= config.max_atoms]
    too_big = [c.pk for c in generated if len(c.structure.get("sites", [])) > config.max_atoms]
    Candidate.objects.filter(pk__in=too_big).update(status=Candidate.Status.REJECTED)
    waiting = waiting_candidates(campaign, rnd)
    pool = affordable + waiting
    summary = screen_candidates(pool, model)  # the waiting ones again: a new model and new hulls since they were scored
    rule = AcquisitionRule(
        kappa=config.kappa_for_round(rnd.index),
        threshold=config.max_predicted_e_above_hull,
        top_n=config.dft_per_round,
        max_per_chemsys=config.cap_per_chemsys,
        max_per_formula=config.cap_per_formula or None,
    )
    chosen = select_candidates(pool, rule)
    carried = [c for c in chosen if c.round_id != rnd.pk]
    for candidate in carried:  # verified and counted in the round that chose them; the recipe keeps where they began
        candidate.recipe = {**candidate.recipe, "carried_over_from_round": candidate.round.index}
        candidate.round = rnd
    Candidate.objects.bulk_update(carried, ["recipe", "round"])
    _set_stage(
        rnd, "verify", n_screened=summary.screened, n_selected=len(chosen), model_version=model,
        acquisition={**rule.as_dict(), "waiting_from_earlier_rounds": len(waiting), "carried_over": len(carried)},
    )
    return f"screened {summary.screened} ({len(waiting)} from earlier rounds), selected {len(chosen)}"


def waiting_candidates(campaign: Campaign, rnd: CampaignRound) -> list[Candidate]:
    """Earlier rounds' screened candidates that no round has chosen yet: they compete again under the new model.

    Without them a round whose generation finds nothing new (a small element space, the same parents) would have nothing
    to verify, and a candidate the first, least-informed model ranked just below the cut would never get a second look.
    """
    taken = set(rnd.candidates.values_list("fingerprint", flat=True))
    earlier = Candidate.objects.filter(
        round__campaign=campaign, round__index__lt=rnd.index, status=Candidate.Status.SCREENED
    ).select_related("round")
    return [c for c in earlier.order_by("pk") if c.fingerprint not in taken]


def verify(campaign: Campaign, rnd: CampaignRound, config: CampaignConfig) -> str:
    from discovery.services.dft import create_job, enqueue_job

    queued = held = 0
    for candidate in rnd.candidates.filter(status=Candidate.Status.SELECTED).order_by("pk"):
        job = create_job(candidate=candidate, backend=config.dft_backend, preset=config.dft_preset)
        if job.state != DFTJob.State.QUEUED:
            continue
        if config.max_concurrent_dft and queued >= config.max_concurrent_dft:
            job.held_by_campaign = True  # sent by release_held_jobs as slots free up
            job.save(update_fields=["held_by_campaign"])
            held += 1
        else:
            enqueue_job(job)  # sent after commit, with the preset's time limit
            queued += 1
    _set_stage(rnd, "verifying")
    return f"queued {queued} DFT jobs" + (f", {held} held (max {config.max_concurrent_dft} at once)" if held else "")


def release_held_jobs(rnd: CampaignRound, config: CampaignConfig) -> int:
    """Send held DFT jobs of the round while the campaign is below ``max_concurrent_dft``; returns how many."""
    from discovery.services.dft import enqueue_job

    held = round_jobs(rnd).filter(state=DFTJob.State.QUEUED, held_by_campaign=True).order_by("pk")
    if config.max_concurrent_dft:
        active = (
            DFTJob.objects.filter(candidate__round__campaign_id=rnd.campaign_id,
                                  state__in=[DFTJob.State.QUEUED, DFTJob.State.RUNNING])
            .exclude(held_by_campaign=True)
            .count()
        )
        held = held[: max(0, config.max_concurrent_dft - active)]
    released = 0
    for job in held:
        job.held_by_campaign = False
        job.save(update_fields=["held_by_campaign"])
        enqueue_job(job)
        released += 1
    return released



def round_jobs(rnd: CampaignRound):
    return DFTJob.objects.filter(candidate__round=rnd)


def wait_for_jobs(campaign: Campaign, rnd: CampaignRound, config: CampaignConfig) -> str:
    jobs = round_jobs(rnd)
    pending = jobs.exclude(state__in=TERMINAL_JOB_STATES).count()
    if pending:
        raise StageWaiting(f"{pending} of {jobs.count()} DFT jobs pending in round {rnd.index}")
    # reference phases the round's jobs queued (e.g. KF and NaF for a KNaF2 candidate): the hull is not final before
    phases = DFTJob.objects.filter(reference_for__in=jobs)
    phases_pending = phases.exclude(state__in=TERMINAL_JOB_STATES).count()
    if phases_pending:
        raise StageWaiting(f"{phases_pending} reference-phase DFT jobs pending for round {rnd.index}")
    span = jobs.aggregate(first=Min("created_at"), last=Max("finished_at"))
    if span["first"] and span["last"]:
        rnd.timings = {**rnd.timings, "dft_wall": round((span["last"] - span["first"]).total_seconds(), 3)}
    _set_stage(rnd, "fold")
    return "all DFT jobs finished"


def fold(campaign: Campaign, rnd: CampaignRound, config: CampaignConfig) -> str:
    """Energies entered the hulls as each job succeeded; here the round's metrics are read off the updated hulls.

    Only confirmed verdicts count (``catalog.verdicts``: every competing phase has an energy in the scheme): the hit
    rate is confirmed stable / confirmed, and "new stable" splits into rediscovered (stable in the reference too) and
    novel. Provisional verdicts are counted apart with the competitors they still miss."""
    from catalog.verdicts import CONFIRMED, stability_verdict

    jobs = list(round_jobs(rnd).select_related("candidate", "energy_record__hull_entry__scheme"))
    done = [j for j in jobs if j.state == DFTJob.State.SUCCEEDED and j.energy_record_id]
    failed = sum(1 for j in jobs if j.state == DFTJob.State.FAILED)
    entries = [(j, getattr(j.energy_record, "hull_entry", None)) for j in done]
    judged = [(j, h, stability_verdict(h)) for j, h in entries if h is not None and h.e_above_hull is not None]
    confirmed = [(j, h, v) for j, h, v in judged if v.state == CONFIRMED]
    provisional = [(j, h, v) for j, h, v in judged if v.state != CONFIRMED]
    on_hull = [(h, v) for _, h, v in confirmed if v.on_hull]
    # "newly stable": below the hull of everything else (negative decomposition energy), not merely touching it.
    newly_stable = [(h, v) for h, v in on_hull if h.decomposition_energy is not None and h.decomposition_energy < 0]
    errors = [
        abs(j.candidate.predicted_mean - h.formation_energy_per_atom)
        for j, h in entries
        if h is not None and h.formation_energy_per_atom is not None and j.candidate.predicted_mean is not None
    ]
    verdicts = {
        "confirmed": len(confirmed),
        "provisional": len(provisional),
        "confirmed_on_hull": len(on_hull),
        "provisional_on_hull": sum(v.on_hull for _, _, v in provisional),
        "rediscovered": sum(v.novelty == "rediscovered" for _, v in on_hull),
        "novel": sum(v.novelty == "novel" for _, v in on_hull),
        "disagrees_with_reference": sum(v.novelty == "disagrees" for _, v in on_hull),
        "candidates": [{"formula": j.candidate.formula_reduced, "job": j.pk, **v.as_dict()} for j, _, v in judged],
    }
    _set_stage(
        rnd,
        "retrain",
        n_dft_done=len(done),
        n_dft_failed=failed,
        n_new_on_hull=len(on_hull),
        n_new_stable=len(newly_stable),
        hit_rate=(len(on_hull) / len(confirmed)) if confirmed else None,
        model_mae=mean(errors) if errors else None,
        verdicts=verdicts,
    )
    return (f"{len(done)} verified: {len(confirmed)} confirmed ({len(on_hull)} on the hull), "
            f"{len(provisional)} provisional")


def retrain(campaign: Campaign, rnd: CampaignRound, config: CampaignConfig) -> str:
    if rnd.index + 1 >= config.rounds:
        _set_stage(rnd, "done")
        return "last round: no retraining"
    model = train_campaign_model(campaign, config, for_round=rnd.index + 1)
    _set_stage(rnd, "done")
    return f"retrained: {model.name}"
