"""Celery tasks of the discovery engine: one-line wrappers around services (logic lives in discovery/services)."""

from __future__ import annotations

from celery import shared_task

from discovery.services import campaigns


@shared_task(name="discovery.tasks.advance_campaign_task", acks_late=True, ignore_result=True)
def advance_campaign_task(campaign_id: int) -> str:
    return campaigns.advance_campaign(campaign_id).action


@shared_task(name="discovery.tasks.resume_stalled_campaigns_task", ignore_result=True)
def resume_stalled_campaigns_task() -> list[int]:
    return campaigns.resume_stalled_campaigns()
