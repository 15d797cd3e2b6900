"""Nobody but staff changes anything: every API and OPTIMADE endpoint refuses writes from anonymous callers and from
non-staff users (session or token), every campaign admin action and the UI's launch/cancel refuse them too, and the
database is left exactly as it was.

(``/healthz`` is left out: a read-only probe answered by middleware for any method.)
The endpoint list is checked against the URL configuration, so a new endpoint without a test here fails the suite.
"""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, resolve, reverse

from catalog.models import EnergyRecord, Material, MaterialOrigin
from discovery.models import Campaign, DFTJob

pytestmark = pytest.mark.django_db

WRITE_METHODS = ("post", "put", "patch", "delete")
REFUSED = {401, 403, 405}


def _names(patterns, namespace: str = "") -> set[str]:
    names: set[str] = set()
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            inner = f"{namespace}:{pattern.namespace}" if namespace and pattern.namespace else (
                pattern.namespace or namespace)
            names |= _names(pattern.url_patterns, inner)
        elif isinstance(pattern, URLPattern) and pattern.name:
            names.add(f"{namespace}:{pattern.name}".lstrip(":"))
    return names


def api_urls(material, campaign) -> list[str]:
    pid, pk = material.public_id, campaign.pk
    return [
        "/api/v1/materials/", f"/api/v1/materials/{pid}/", "/api/v1/chemsys/Cl-Na/hull/", "/api/v1/campaigns/",
        f"/api/v1/campaigns/{pk}/", f"/api/v1/campaigns/{pk}/rounds/", "/api/v1/export/", "/api/schema/",
        "/api/v1/", "/api/v1/dumps/", "/api/v1/dumps/gnomon-catalog-20260101T000000Z.tar.gz",
        "/api/docs/", "/api/redoc/", "/optimade/versions", "/optimade/v1/info", "/optimade/v1/info/structures",
        "/optimade/v1/structures", f"/optimade/v1/structures/{pid}", "/optimade/v1/references",
        "/optimade/v1/references/x", "/optimade/v1/links", "/optimade/v2/info",
    ]


def snapshot() -> tuple:
    return (
        Material.objects.count(), MaterialOrigin.objects.count(), EnergyRecord.objects.count(), DFTJob.objects.count(),
        tuple(Campaign.objects.order_by("pk").values_list("pk", "status", "name")),
    )


def test_every_api_route_is_in_the_list(material, campaign):
    """A new endpoint under /api or /optimade must be added to api_urls (and so to the write tests)."""
    routed = {name for name in _names(get_resolver().url_patterns)
              if name.split(":")[0] in ("api", "optimade") or name in ("schema", "swagger-ui", "redoc")}
    covered = {":".join(filter(None, [resolve(url).namespace, resolve(url).url_name]))
               for url in api_urls(material, campaign)}
    assert routed - covered == set()


@pytest.mark.parametrize("method", WRITE_METHODS)
def test_no_api_endpoint_accepts_a_write_from_anonymous_or_non_staff(callers, material, campaign, method):
    before = snapshot()
    body = {"name": "intruder", "elements": ["Li", "O"], "max_elements": 2}
    for caller, client in callers.items():
        for url in api_urls(material, campaign):
            response = getattr(client, method)(url, body, format="json")
            assert response.status_code in REFUSED, (caller, method, url, response.status_code)
    assert snapshot() == before


def test_campaign_launch_refusals_say_why(callers):
    anonymous = callers["anonymous"].post("/api/v1/campaigns/", {"name": "x", "elements": ["Li", "O"]}, format="json")
    assert anonymous.status_code == 401 and "credentials" in anonymous.json()["detail"]
    member = callers["member token"].post("/api/v1/campaigns/", {"name": "x", "elements": ["Li", "O"]}, format="json")
    assert member.status_code == 403 and "staff" in member.json()["detail"]
    assert not Campaign.objects.filter(name="x").exists()


@pytest.mark.parametrize("action", ["launch", "cancel"])
def test_ui_campaign_buttons_refuse_anonymous_and_non_staff(member, campaign, action):
    url = reverse(f"frontend:campaign-{action}", args=[campaign.pk])
    anonymous, logged_in = Client(), Client()
    logged_in.force_login(member)
    for client in (anonymous, logged_in):
        response = client.post(url)
        assert response.status_code == 403 or (response.status_code == 302 and "login" in response["Location"])
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.DRAFT


ADMIN_ACTIONS = [
    ("admin:discovery_campaign_changelist", "campaign", action)
    for action in ("launch", "pause", "resume", "cancel", "retry_failed")
] + [("admin:discovery_dftjob_changelist", "job", action) for action in ("retry_failed", "cancel")]


@pytest.mark.parametrize(("changelist", "target", "action"), ADMIN_ACTIONS)
def test_admin_actions_refuse_anonymous_and_non_staff(member, campaign, changelist, target, action):
    job = (DFTJob.objects.create(settings={"label": "probe"}, input_structure={}, state=DFTJob.State.FAILED)
           if target == "job" else None)
    selected = (job or campaign).pk
    before = snapshot(), DFTJob.objects.values_list("state", flat=True).first()
    anonymous, logged_in = Client(), Client()
    logged_in.force_login(member)
    for client in (anonymous, logged_in):
        response = client.post(reverse(changelist), {"action": action, "_selected_action": [selected]})
        assert response.status_code == 302 and "/admin/login/" in response["Location"]
    assert (snapshot(), DFTJob.objects.values_list("state", flat=True).first()) == before


def test_admin_add_and_delete_refuse_non_staff(member, campaign):
    client = Client()
    client.force_login(member)
    for url in (reverse("admin:discovery_campaign_add"), reverse("admin:discovery_campaign_delete", args=[campaign.pk]),
                reverse("admin:catalog_material_add")):
        response = client.post(url, {"name": "intruder", "post": "yes"})
        assert response.status_code == 302 and "/admin/login/" in response["Location"]
    assert Campaign.objects.filter(pk=campaign.pk).exists() and not Campaign.objects.filter(name="intruder").exists()
