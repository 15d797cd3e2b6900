"""Campaign lifecycle: create, launch, pause, resume, cancel, retry failed jobs — and the round state machine.

Every state lives in PostgreSQL; Celery messages only nudge ``advance_campaign``, which is idempotent and takes a row
lock, so a killed worker, a Redis restart or a duplicate message can delay a campaign but never corrupt it. The beat
task ``resume_stalled_campaigns`` re-sends the nudge for campaigns that stopped moving.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.db import IntegrityError, transaction
from django.utils import timezone

from discovery import messages
from discovery.campaign_config import CampaignConfig, CampaignConfigError, validate
from discovery.dft.base import available_backends, load_plugins
from discovery.models import Campaign, CampaignRound, DFTJob

logger = logging.getLogger(__name__)

ACTIVE = (Campaign.Status.QUEUED, Campaign.Status.RUNNING)


class CampaignStateError(ValueError):
    """The requested transition is not allowed from the campaign's current status."""


def deployment_backends() -> list[str]:
    """Every DFT backend of this deployment: the built-ins plus those of ``GNOMON_DFT_BACKEND_PLUGINS``."""
    load_plugins(settings.GNOMON_DFT_BACKEND_PLUGINS)
    return available_backends()


def validate_config(raw: dict[str, Any]) -> CampaignConfig:
    return validate(raw, backends=deployment_backends())


def _require_staff(user) -> None:
    if user is None or not getattr(user, "is_staff", False):
        raise PermissionDenied("only staff users can launch or change campaigns")


# Graph-network work (screening, retraining) goes to the ``screening`` queue, which a deployment can serve from a GPU
# host; everything else of the orchestration runs on ``default``. DFT jobs have their own ``dft`` queue.
STAGE_QUEUES = {"screen": "screening", "retrain": "screening"}


def queue_for(stage: str | None) -> str:
    return STAGE_QUEUES.get(stage or "", "default")


def _current_stage(campaign_id: int) -> str | None:
    return (
        CampaignRound.objects.filter(campaign_id=campaign_id).order_by("-index").values_list("stage", flat=True).first()
    )


def _send(campaign_id: int, queue: str) -> None:
    messages.advance_campaign(campaign_id, queue)


def _nudge(campaign_id: int, stage: str | None = None) -> None:
    """Ask a worker of the right queue to advance the campaign once the current transaction has committed."""
    _send(campaign_id, queue_for(stage if stage is not None else _current_stage(campaign_id)))


def create_campaign(raw: dict[str, Any] | CampaignConfig, *, user, launch: bool = False) -> Campaign:
    """Validate settings and store a draft campaign (queued at once with ``launch``)."""
    _require_staff(user)
    config = raw if isinstance(raw, CampaignConfig) else validate_config(dict(raw))
    try:
        with transaction.atomic():
            campaign = Campaign.objects.create(
                name=config.name,
                elements=config.elements,
                max_elements=config.max_elements,
                pipelines=config.pipelines,
                config=config.as_dict(),
                launched_by=user,
            )
    except IntegrityError as exc:
        raise CampaignConfigError({"name": f"a campaign named '{config.name}' already exists"}) from exc
    if launch:
        campaign = launch_campaign(campaign, user=user)
    return campaign


def campaign_config(campaign: Campaign) -> CampaignConfig:
    return validate_config(dict(campaign.config))


def _transition(campaign: Campaign, allowed_from: tuple[str, ...], to: str, *, user) -> Campaign:
    _require_staff(user)
    with transaction.atomic():
        locked = Campaign.objects.select_for_update().get(pk=campaign.pk)
        if locked.status not in allowed_from:
            raise CampaignStateError(
                f"campaign '{locked.name}' is {locked.status}; this needs one of: {', '.join(allowed_from)}"
            )
        locked.status = to
        if to == Campaign.Status.QUEUED and locked.started_at is None:
            locked.started_at = timezone.now()
        if to in (Campaign.Status.CANCELLED, Campaign.Status.COMPLETED, Campaign.Status.FAILED):
            locked.finished_at = timezone.now()
        locked.save(update_fields=["status", "started_at", "finished_at", "updated_at"])
        if to == Campaign.Status.QUEUED:
            _nudge(locked.pk)
        if to == Campaign.Status.CANCELLED:
            DFTJob.objects.filter(candidate__round__campaign=locked, state=DFTJob.State.QUEUED).update(
                state=DFTJob.State.CANCELLED, finished_at=timezone.now()
            )
    return locked


def launch_campaign(campaign: Campaign, *, user) -> Campaign:
    return _transition(campaign, (Campaign.Status.DRAFT,), Campaign.Status.QUEUED, user=user)


def pause_campaign(campaign: Campaign, *, user) -> Campaign:
    return _transition(campaign, ACTIVE, Campaign.Status.PAUSED, user=user)


def resume_campaign(campaign: Campaign, *, user) -> Campaign:
    """Resume a paused campaign, or retry a failed one from the stage that failed.

    A failed stage left its round where it was (its writes rolled back), so running it again is the retry; generation
    chunks that had used up their tries get fresh ones, and the old error is cleared."""
    from discovery.models import GenerationChunk

    failed = Campaign.objects.filter(pk=campaign.pk, status=Campaign.Status.FAILED).exists()
    with transaction.atomic():
        resumed = _transition(campaign, (Campaign.Status.PAUSED, Campaign.Status.FAILED), Campaign.Status.QUEUED,
                              user=user)
        if failed:
            GenerationChunk.objects.filter(round__campaign=resumed).exclude(state=GenerationChunk.State.DONE).update(
                state=GenerationChunk.State.QUEUED, attempts=0, sent_at=None, error=""
            )
            Campaign.objects.filter(pk=resumed.pk).update(error="")
            resumed.error = ""
    return resumed


def cancel_campaign(campaign: Campaign, *, user) -> Campaign:
    allowed = (Campaign.Status.DRAFT, Campaign.Status.QUEUED, Campaign.Status.RUNNING, Campaign.Status.PAUSED)
    return _transition(campaign, allowed, Campaign.Status.CANCELLED, user=user)


def retry_failed_jobs(campaign: Campaign, *, user) -> int:
    """Re-queue the campaign's failed DFT jobs and let its rounds wait for them again; returns how many."""
    from discovery.services import dft

    _require_staff(user)
    with transaction.atomic():
        failed = DFTJob.objects.filter(candidate__round__campaign=campaign, state=DFTJob.State.FAILED)
        round_ids = set(failed.values_list("candidate__round_id", flat=True))
        count = dft.retry_failed_jobs(list(failed.values_list("pk", flat=True)))
        if count:
            CampaignRound.objects.filter(pk__in=round_ids, stage__in=("fold", "retrain", "done")).update(
                stage="verifying"
            )
            if campaign.status in (Campaign.Status.COMPLETED, Campaign.Status.FAILED):
                Campaign.objects.filter(pk=campaign.pk).update(status=Campaign.Status.QUEUED, finished_at=None)
            _nudge(campaign.pk)
    return count


def job_finished(job_id: int) -> None:
    """A DFT job reached a terminal state: nudge its campaign so the round can move on without waiting for beat."""
    job = DFTJob.objects.filter(pk=job_id).values("candidate__round__campaign_id", "reference_for_id").first()
    if job is None:
        return
    campaign_id = job["candidate__round__campaign_id"]
    parent = job["reference_for_id"]
    if campaign_id is None and parent is not None:  # a reference phase a round is waiting for
        campaign_id = (DFTJob.objects.filter(pk=parent).values_list("candidate__round__campaign_id", flat=True)
                       .first())
    if campaign_id is not None:
        _nudge(campaign_id)


BUSY = "busy"  # advance_campaign found the campaign locked by another worker: the nudge is tried again shortly


def chunk_finished(chunk_id: int) -> None:
    """A generation chunk ended: nudge its campaign so the round collects as soon as the last chunk is in."""
    from discovery.models import GenerationChunk

    campaign_id = GenerationChunk.objects.filter(pk=chunk_id).values_list("round__campaign_id", flat=True).first()
    if campaign_id is not None:
        _nudge(campaign_id)


@dataclass
class AdvanceResult:
    campaign_id: int
    action: str


def advance_campaign(campaign_id: int, queue: str | None = None) -> AdvanceResult:
    """Run the next step of a campaign, if any. Safe to call any number of times, from any worker.

    ``queue``: the queue this call was delivered on; a stage that belongs to another queue is handed over to it
    (``None``, as in tests and the shell, runs whatever stage is next).
    """
    from discovery.services import campaign_stages as stages

    failure = ""
    with transaction.atomic():
        campaign = Campaign.objects.select_for_update(skip_locked=True).filter(pk=campaign_id).first()
        if campaign is None:  # another worker holds the row (it is advancing this campaign right now), or it is gone
            return AdvanceResult(campaign_id, BUSY if Campaign.objects.filter(pk=campaign_id).exists() else "missing")
        if campaign.status not in ACTIVE:
            return AdvanceResult(campaign_id, f"idle ({campaign.status})")
        config = campaign_config(campaign)
        if campaign.status == Campaign.Status.QUEUED:
            campaign.status = Campaign.Status.RUNNING
            campaign.started_at = campaign.started_at or timezone.now()
            campaign.save(update_fields=["status", "started_at", "updated_at"])
        if campaign.started_at and timezone.now() - campaign.started_at > timedelta(hours=config.wall_clock_hours):
            return _finish(campaign, "wall-clock cap reached")
        current = campaign.rounds.order_by("-index").first()
        if current is None or current.stage == "done":
            if current is not None and current.index + 1 >= config.rounds:
                return _finish(campaign, "all rounds done")
            current = CampaignRound.objects.create(
                campaign=campaign, index=0 if current is None else current.index + 1, stage="generate"
            )
        wanted = queue_for(current.stage)
        if queue is not None and queue != wanted:
            Campaign.objects.filter(pk=campaign.pk).update(updated_at=timezone.now())
            _nudge(campaign.pk, current.stage)
            return AdvanceResult(campaign_id, f"handed to the {wanted} queue")
        waiting: stages.StageWaiting | None = None
        try:
            with transaction.atomic():  # a failing stage rolls back its own writes only
                try:
                    action = stages.run_stage(campaign, current, config)
                except stages.StageWaiting as exc:  # what the stage did before finding it must wait (re-sent work) stays
                    waiting = exc
        except Exception as exc:  # noqa: BLE001 - any stage error fails the campaign with a readable reason
            logger.exception("campaign %s round %s stage %s failed", campaign.pk, current.index, current.stage)
            failure = f"round {current.index}, stage {current.stage}: {type(exc).__name__}: {exc}"
            campaign.status = Campaign.Status.FAILED
            campaign.error = failure[:2000]
            campaign.finished_at = timezone.now()
            campaign.save(update_fields=["status", "error", "finished_at", "updated_at"])
            return AdvanceResult(campaign_id, "failed")
        if waiting is not None:
            released = stages.release_held_jobs(current, config) if current.stage == "verifying" else 0
            return AdvanceResult(campaign_id, f"waiting: {waiting}" + (f"; released {released}" if released else ""))
        Campaign.objects.filter(pk=campaign.pk).update(updated_at=timezone.now())
        _nudge(campaign.pk, current.stage)
        return AdvanceResult(campaign_id, action)


def _finish(campaign: Campaign, why: str) -> AdvanceResult:
    campaign.status = Campaign.Status.COMPLETED
    campaign.finished_at = timezone.now()
    campaign.error = "" if why == "all rounds done" else why
    campaign.save(update_fields=["status", "finished_at", "error", "updated_at"])
    return AdvanceResult(campaign.pk, f"completed: {why}")


def resume_stalled_campaigns(stalled_after: timedelta | None = None) -> list[int]:
    """Beat task body: re-nudge active campaigns that have not moved lately, and re-send lost DFT jobs.

    A Redis restart can drop queued messages; rows in PostgreSQL still say what is pending, so we send them again.
    Re-sending is harmless because every stage and job is idempotent.
    """
    if stalled_after is None:
        stalled_after = timedelta(seconds=settings.GNOMON_STALLED_AFTER_S)
    cutoff = timezone.now() - stalled_after
    stalled = list(Campaign.objects.filter(status__in=ACTIVE, updated_at__lt=cutoff).values_list("pk", flat=True))
    lost_jobs = list(
        DFTJob.objects.filter(
            candidate__round__campaign_id__in=stalled, state=DFTJob.State.QUEUED, created_at__lt=cutoff
        )
        .exclude(held_by_campaign=True)  # never sent: the campaign's concurrency limit holds them back
        .values_list("pk", flat=True)
    )
    from discovery.services import dft

    for job in DFTJob.objects.filter(pk__in=lost_jobs):
        dft.enqueue_job(job)
    for campaign_id in stalled:
        _send(campaign_id, queue_for(_current_stage(campaign_id)))
    return stalled
