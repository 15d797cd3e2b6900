"""Campaign lifecycle (stand-in until the campaign engine lands: same signature as its ``create_campaign``).

Only what the REST API needs: store a campaign from raw settings, validated here, and queue it. The engine's version
(branch of the campaigns issue) replaces this module whole; callers depend only on ``create_campaign(raw, *, user,
launch)``, ``PermissionDenied`` for non-staff users and ``CampaignConfigError.errors`` (field → message).
"""

from __future__ import annotations

import logging
from typing import Any

from django.core.exceptions import PermissionDenied
from django.db import IntegrityError, transaction
from pymatgen.core import Element

from discovery.models import Campaign

logger = logging.getLogger(__name__)
PIPELINES = ("structural", "compositional")


class CampaignConfigError(ValueError):
    """Invalid campaign settings; ``errors`` maps field name → message."""

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))
        self.errors = errors


def _validate(raw: dict[str, Any]) -> dict[str, Any]:
    errors: dict[str, str] = {}
    name = str(raw.get("name", "")).strip()
    if not name:
        errors["name"] = "a campaign needs a name"
    elif len(name) > 120:
        errors["name"] = "at most 120 characters"
    elements = raw.get("elements")
    if not isinstance(elements, list) or len({e for e in elements if isinstance(e, str)}) < 2:
        errors["elements"] = "list at least two distinct elements, e.g. [\"Li\", \"Mn\", \"O\"]"
        elements = []
    elif bad := [e for e in elements if not (isinstance(e, str) and Element.is_valid_symbol(e))]:
        errors["elements"] = f"not chemical elements: {', '.join(map(str, bad))}"
    pipelines = raw.get("pipelines", ["structural"])
    if not isinstance(pipelines, list) or not pipelines or any(p not in PIPELINES for p in pipelines):
        errors["pipelines"] = f"choose one or both of {', '.join(PIPELINES)}"
    max_elements = raw.get("max_elements", min(3, len(set(elements)) or 3))
    if isinstance(max_elements, bool) or not isinstance(max_elements, int) or not 1 <= max_elements <= 6:
        errors["max_elements"] = f"'{max_elements}' is not an integer in [1, 6]"
    elif elements and max_elements > len(set(elements)):
        errors["max_elements"] = f"{max_elements} is more than the {len(set(elements))} elements allowed"
    if errors:
        raise CampaignConfigError(errors)
    extra = {k: v for k, v in raw.items() if k not in ("name", "elements", "pipelines", "max_elements")}
    return {"name": name, "elements": sorted(set(elements)), "pipelines": list(dict.fromkeys(pipelines)),
            "max_elements": max_elements, "config": extra}


def create_campaign(raw: dict[str, Any], *, user, launch: bool = False) -> Campaign:
    """Validate settings and store a draft campaign (queued at once with ``launch``; the engine is nudged on commit)."""
    if user is None or not getattr(user, "is_staff", False):
        raise PermissionDenied("only staff users can launch or change campaigns")
    values = _validate(dict(raw))
    try:
        with transaction.atomic():
            campaign = Campaign.objects.create(
                **values,
                launched_by=user,
                status=Campaign.Status.QUEUED if launch else Campaign.Status.DRAFT,
            )
    except IntegrityError as exc:
        raise CampaignConfigError({"name": f"a campaign named '{values['name']}' already exists"}) from exc
    if launch:
        transaction.on_commit(lambda: _nudge(campaign.pk))
    return campaign


def _nudge(campaign_id: int) -> None:
    try:
        from discovery.tasks import advance_campaign_task  # type: ignore[attr-defined]
    except ImportError:
        logger.info("campaign %s queued; the campaign engine (discovery.tasks) is not installed", campaign_id)
        return
    advance_campaign_task.delay(campaign_id)
