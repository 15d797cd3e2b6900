"""Fixtures for the security tests: a small catalog, a campaign, and one client per kind of caller."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.core.cache import cache
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from discovery.services.campaigns import create_campaign
from tests.factories import make_material, rocksalt


@pytest.fixture(autouse=True)
def _fresh_throttle_counters():
    """Throttle counters live in the cache; a test must not inherit another's."""
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def material(db):
    return make_material(rocksalt("Na", "Cl", 5.69), e_above_hull=0.0, is_stable=True, formation_energy_per_atom=-2.1)


@pytest.fixture
def staff(db):
    return get_user_model().objects.create_user("staff", password="staff-pw-123456", is_staff=True)


@pytest.fixture
def member(db):
    """A logged-in, non-staff user: may read everything, change nothing."""
    return get_user_model().objects.create_user("member", password="member-pw-123456")


@pytest.fixture
def campaign(staff):
    return create_campaign({"name": "security-probe", "elements": ["Li", "Zn", "O"], "rounds": 2}, user=staff)


@pytest.fixture
def callers(member) -> dict[str, APIClient]:
    """Anonymous, a non-staff session and a non-staff API token."""
    session = APIClient()
    session.force_login(member)
    token = APIClient()
    token.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=member).key}")
    return {"anonymous": APIClient(), "member session": session, "member token": token}
