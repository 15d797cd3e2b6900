"""Campaign actions the UI, admin and API call.

Minimal placeholders written for the web UI: they only move ``Campaign.status`` (the campaign engine replaces them with
versions that also queue and revoke the Celery work). Both refuse a move the state machine does not allow.
"""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from discovery.models import Campaign

LAUNCHABLE = {Campaign.Status.DRAFT, Campaign.Status.PAUSED, Campaign.Status.FAILED}
CANCELLABLE = {Campaign.Status.QUEUED, Campaign.Status.RUNNING, Campaign.Status.PAUSED}


class CampaignStateError(ValueError):
    pass


def launch_campaign(campaign: Campaign, user=None) -> Campaign:
    with transaction.atomic():
        campaign = Campaign.objects.select_for_update().get(pk=campaign.pk)
        if campaign.status not in LAUNCHABLE:
            raise CampaignStateError(f"campaign '{campaign.name}' is {campaign.status}; it cannot be launched")
        campaign.status = Campaign.Status.QUEUED
        campaign.error = ""
        if user is not None and getattr(user, "is_authenticated", False):
            campaign.launched_by = user
        campaign.save(update_fields=["status", "error", "launched_by", "updated_at"])
    return campaign


def cancel_campaign(campaign: Campaign, user=None) -> Campaign:
    with transaction.atomic():
        campaign = Campaign.objects.select_for_update().get(pk=campaign.pk)
        if campaign.status not in CANCELLABLE:
            raise CampaignStateError(f"campaign '{campaign.name}' is {campaign.status}; it cannot be cancelled")
        campaign.status = Campaign.Status.CANCELLED
        campaign.finished_at = timezone.now()
        campaign.save(update_fields=["status", "finished_at", "updated_at"])
    return campaign
