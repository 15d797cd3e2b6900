"""Request size limits and export throttling, with the settings a deployment gets by default.

(tests/api/ switches throttling off for its own tests; these tests run with the configured rates.)
"""

from __future__ import annotations

import pytest
from django.conf import settings
from django.test import Client
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient
from rest_framework.throttling import SimpleRateThrottle

from discovery.models import Campaign

pytestmark = pytest.mark.django_db


def test_the_body_limit_is_explicit_and_applies_to_form_fields_and_json():
    assert settings.GNOMON_MAX_REQUEST_BYTES <= 10 * 1024 * 1024
    assert settings.DATA_UPLOAD_MAX_MEMORY_SIZE == settings.GNOMON_MAX_REQUEST_BYTES


@pytest.mark.parametrize(("url", "content_type"), [
    ("/api/v1/campaigns/", "application/json"),
    ("/admin/discovery/campaign/add/", "application/x-www-form-urlencoded"),
    ("/campaigns/1/launch/", "multipart/form-data; boundary=BoUnDaRy"),  # file parts: Django's own limit skips them
])
def test_an_oversized_body_is_413_before_anything_reads_it(staff, url, content_type):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=staff).key}")
    client.force_login(staff)
    body = b"x" * (settings.GNOMON_MAX_REQUEST_BYTES + 1)
    response = client.generic("POST", url, body, content_type=content_type)
    assert response.status_code == 413
    assert "larger than" in response.content.decode()
    assert not Campaign.objects.exists()


def test_a_body_within_the_limit_is_served(staff):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=staff).key}")
    response = client.post("/api/v1/campaigns/", {"name": "small", "elements": ["Li", "O"], "max_elements": 2,
                                                  "pad": "x" * 1000}, format="json")
    assert response.status_code in (201, 400)  # the body was read and judged on its content


def _allowed(rate: str) -> int:
    return SimpleRateThrottle.parse_rate(None, rate)[0]


def test_anonymous_export_is_throttled_at_the_configured_rate(material):
    rate = settings.GNOMON_API_THROTTLE_RATES["anon_export"]
    assert rate, "anonymous export must have a rate"
    allowed = _allowed(rate)
    assert allowed <= 100  # a bulk endpoint: far below the read rate
    client = Client()
    codes = [client.get("/api/v1/export/", {"format": "csv"}).status_code for _ in range(allowed + 1)]
    assert codes == [200] * allowed + [429]
    refused = client.get("/api/v1/export/")
    assert refused.status_code == 429 and "throttled" in refused.json()["detail"].lower()
    assert "Retry-After" in refused


def test_a_signed_in_user_is_counted_separately_and_more_generously(material, member):
    anonymous_allowed = _allowed(settings.GNOMON_API_THROTTLE_RATES["anon_export"])
    assert _allowed(settings.GNOMON_API_THROTTLE_RATES["user_export"]) > anonymous_allowed
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=member).key}")
    codes = {client.get("/api/v1/export/").status_code for _ in range(anonymous_allowed + 1)}
    assert codes == {200}


def test_anonymous_reads_are_throttled_too():
    assert settings.GNOMON_API_THROTTLE_RATES["anon"], "anonymous reads must have a rate"
    assert _allowed(settings.GNOMON_API_THROTTLE_RATES["anon"]) < _allowed(settings.GNOMON_API_THROTTLE_RATES["user"])
