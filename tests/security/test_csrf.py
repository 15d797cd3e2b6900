"""CSRF is enforced on every form that changes state, for a logged-in staff member's browser session.

Django's test client skips CSRF checks unless asked (``enforce_csrf_checks=True``); these tests ask. The same posts with
the token from the rendered page succeed, so the 403s are CSRF and not something else.
"""

from __future__ import annotations

import re

import pytest
from django.test import Client
from django.urls import reverse

from discovery.models import Campaign

pytestmark = pytest.mark.django_db


@pytest.fixture
def browser(staff) -> Client:
    client = Client(enforce_csrf_checks=True)
    client.force_login(staff)
    return client


def csrf_token(client: Client, url: str) -> str:
    html = client.get(url).content.decode()
    match = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', html)
    assert match, f"no CSRF token in the form at {url}"
    return match.group(1)


def test_ui_launch_needs_the_token(browser, campaign):
    url = reverse("frontend:campaign-launch", args=[campaign.pk])
    assert browser.post(url).status_code == 403
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.DRAFT
    token = csrf_token(browser, reverse("frontend:campaign-detail", args=[campaign.pk]))
    assert browser.post(url, {"csrfmiddlewaretoken": token}).status_code == 302
    campaign.refresh_from_db()
    assert campaign.status != Campaign.Status.DRAFT


@pytest.mark.parametrize("action", ["launch", "cancel"])
def test_admin_actions_need_the_token(browser, campaign, action):
    changelist = reverse("admin:discovery_campaign_changelist")
    response = browser.post(changelist, {"action": action, "_selected_action": [campaign.pk]})
    assert response.status_code == 403
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.DRAFT


def test_admin_add_form_needs_the_token(browser):
    response = browser.post(reverse("admin:discovery_campaign_add"), {"name": "no-token"})
    assert response.status_code == 403
    assert not Campaign.objects.filter(name="no-token").exists()


def test_admin_login_form_needs_the_token(staff):
    client = Client(enforce_csrf_checks=True)
    response = client.post(reverse("admin:login"), {"username": "staff", "password": "staff-pw-123456"})
    assert response.status_code == 403
    assert "_auth_user_id" not in client.session


def test_api_writes_through_a_browser_session_need_the_token(browser):
    """DRF's SessionAuthentication CSRF-checks a logged-in browser; API tokens are headers a third-party page cannot
    send, so they need no CSRF token."""
    body = {"name": "via-session", "elements": ["Li", "O"], "max_elements": 2}
    response = browser.post("/api/v1/campaigns/", body, content_type="application/json")
    assert response.status_code == 403 and "CSRF" in response.json()["detail"]
    assert not Campaign.objects.filter(name="via-session").exists()
