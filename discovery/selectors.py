"""Reads of campaigns, their jobs and the trail from a material back to the campaign that found it.

The web UI and the API call these; they hold no ORM of their own for discovery rows.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from django.db.models import Count, Q, QuerySet, Sum

from catalog.models import Material, MaterialOrigin
from discovery.models import Campaign, CampaignRound, Candidate, DFTJob


def int_or_none(value) -> int | None:
    """An id out of a JSON detail (int, numeric string), None for anything else."""
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def campaign_list() -> list[Campaign]:
    return list(
        Campaign.objects.annotate(n_rounds=Count("rounds"), new_stable=Sum("rounds__n_new_stable")).order_by(
            "-created_at"
        )[:200]
    )


def campaign_jobs(campaign: Campaign) -> QuerySet[DFTJob]:
    """Every DFT job a campaign caused: its candidates', the competing phases it queued (``competitor_for``) and the
    jobs its candidates' jobs asked for (``reference_for``)."""
    return DFTJob.objects.filter(Q(candidate__round__campaign=campaign) | Q(reference_for__candidate__round__campaign=campaign)
                                 | Q(competitor_for=campaign))


@dataclass
class CampaignTrail:
    origin: MaterialOrigin
    campaign: Campaign | None = None
    round: CampaignRound | None = None
    candidate: Candidate | None = None
    jobs: list[DFTJob] = field(default_factory=list)


def campaign_trails(material: Material, origins: list[MaterialOrigin]) -> list[CampaignTrail]:
    """campaign → round → parent → DFT job for each campaign origin, read off the origin's provenance columns (and
    the material's own candidate and job rows)."""
    campaign_origins = [o for o in origins if o.kind == MaterialOrigin.Kind.CAMPAIGN]
    if not campaign_origins:
        return []
    candidates = list(
        Candidate.objects.filter(Q(material=material) | Q(pk__in=[o.candidate_id for o in campaign_origins]))
        .select_related("round__campaign", "parent")
        .defer("structure", "parent__structure")
    )
    jobs = list(
        DFTJob.objects.filter(Q(material=material) | Q(pk__in=[o.dft_job_id for o in campaign_origins])
                              | Q(candidate__in=candidates))
        .select_related("scheme")
        .defer("input_structure", "result")
        .order_by("created_at")
    )
    campaigns = {c.pk: c for c in Campaign.objects.filter(pk__in=[o.campaign_id for o in campaign_origins])}
    trails = []
    for origin in campaign_origins:
        candidate = next((c for c in candidates if c.pk == origin.candidate_id), candidates[0] if candidates else None)
        trail = CampaignTrail(origin=origin, candidate=candidate)
        if candidate is not None and candidate.round is not None:
            trail.round = candidate.round
            trail.campaign = candidate.round.campaign
        else:
            trail.campaign = campaigns.get(origin.campaign_id)
        trail.jobs = [j for j in jobs if candidate is None or j.candidate_id in (None, candidate.pk)]
        trails.append(trail)
    return trails
