"""Campaign state changes."""

from __future__ import annotations

import logging

from django.db import transaction

from discovery.models import Campaign

logger = logging.getLogger(__name__)


def create_campaign(
    *,
    name: str,
    elements: list[str],
    max_elements: int = 3,
    pipelines: list[str] | None = None,
    config: dict | None = None,
    launched_by=None,
) -> Campaign:
    """Queue a campaign: the row in status ``queued`` now, the engine's task once the transaction commits.

    The task is looked up lazily (``discovery.tasks.run_campaign``) so that the API works before the engine exists; it
    gets only the id and must tolerate the row being gone by the time it runs.
    """
    campaign = Campaign.objects.create(
        name=name,
        elements=list(elements),
        max_elements=max_elements,
        pipelines=list(pipelines or ["structural", "compositional"]),
        config=dict(config or {}),
        status=Campaign.Status.QUEUED,
        launched_by=launched_by,
    )
    transaction.on_commit(lambda: _enqueue_campaign(campaign.pk))
    return campaign


def _enqueue_campaign(campaign_id: int) -> None:
    try:
        from discovery.tasks import run_campaign  # type: ignore[attr-defined]
    except ImportError:
        logger.info("campaign %s queued; no campaign engine installed yet (discovery.tasks.run_campaign)", campaign_id)
        return
    run_campaign.delay(campaign_id)
