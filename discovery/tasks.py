"""Celery tasks of the discovery engine: one-line wrappers around services (logic lives in discovery/services)."""

from __future__ import annotations

from celery import shared_task
from celery.signals import worker_ready
from django.conf import settings
from django.db import InterfaceError, OperationalError

from discovery.dft import TransientDFTError
from discovery.services import campaigns, dft, generation

# The hard limit here is the longest preset's; enqueue_job passes each job's own preset limit.
MAX_TIME_LIMIT_S = 6 * 3600 + 60


@shared_task(
    bind=True, name="discovery.tasks.run_dft_job", acks_late=True, reject_on_worker_lost=True, ignore_result=True,
    autoretry_for=(TransientDFTError, OperationalError, InterfaceError, ConnectionError, TimeoutError),
    max_retries=settings.GNOMON_DFT_MAX_RETRIES, retry_backoff=30, retry_backoff_max=1800, retry_jitter=True,
    time_limit=MAX_TIME_LIMIT_S,
)
def run_dft_job(self, job_id: int) -> str:
    outcome = dft.execute_job(job_id, final_attempt=self.request.retries >= self.max_retries,
                              worker_host=self.request.hostname)
    campaigns.job_finished(job_id)
    return outcome.action


@shared_task(name="discovery.tasks.requeue_stale_dft_jobs", ignore_result=True)
def requeue_stale_dft_jobs() -> list[int]:
    return dft.requeue_stale_jobs()


@worker_ready.connect
def _requeue_on_worker_start(sender=None, **_kwargs) -> None:
    """A worker that starts (e.g. after its predecessor was killed) re-queues jobs orphaned by dead workers."""
    dft.requeue_stale_jobs()


@shared_task(bind=True, name="discovery.tasks.advance_campaign_task", acks_late=True, ignore_result=True,
             max_retries=30)
def advance_campaign_task(self, campaign_id: int, queue: str | None = None) -> str:
    action = campaigns.advance_campaign(campaign_id, queue=queue).action
    if action == campaigns.BUSY:  # another worker is advancing it: this nudge may be the one that news depends on
        raise self.retry(countdown=5, queue=queue or "default")
    return action


@shared_task(
    bind=True, name="discovery.tasks.run_generation_chunk", acks_late=True, reject_on_worker_lost=True,
    ignore_result=True, autoretry_for=(OperationalError, InterfaceError), max_retries=3, retry_backoff=10,
    time_limit=3600,
)
def run_generation_chunk(self, chunk_id: int) -> str:
    outcome = generation.run_generation_chunk(chunk_id, worker_host=self.request.hostname or "")
    campaigns.chunk_finished(chunk_id)
    return outcome


@shared_task(name="discovery.tasks.resume_stalled_campaigns_task", ignore_result=True)
def resume_stalled_campaigns_task() -> list[int]:
    return campaigns.resume_stalled_campaigns()
