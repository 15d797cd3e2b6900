"""Campaign endpoints: anyone reads; only a staff user's token launches."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from rest_framework.authtoken.models import Token

from discovery.models import Campaign, CampaignRound

pytestmark = pytest.mark.django_db
URL = "/api/v1/campaigns/"
LAUNCH = {"name": "li-zn-o", "elements": ["Li", "Zn", "O"], "max_elements": 3, "pipelines": ["structural"]}


def token_for(username: str, staff: bool) -> str:
    user = get_user_model().objects.create_user(username, password="x-unused-1234", is_staff=staff)
    return Token.objects.create(user=user).key


@pytest.fixture
def campaign():
    c = Campaign.objects.create(name="seed", elements=["Na", "Cl"], status=Campaign.Status.RUNNING)
    CampaignRound.objects.create(campaign=c, index=1, stage="done", n_generated=10, hit_rate=0.5)
    CampaignRound.objects.create(campaign=c, index=0, stage="done", n_generated=20)
    return c


def test_read_campaigns_and_rounds(client, campaign, django_assert_max_num_queries):
    with django_assert_max_num_queries(1):
        listed = client.get(URL).json()
    assert listed[0]["name"] == "seed" and listed[0]["status"] == "running"
    assert client.get(f"{URL}{campaign.pk}/").json()["elements"] == ["Na", "Cl"]
    rounds = client.get(f"{URL}{campaign.pk}/rounds/").json()
    assert [r["index"] for r in rounds] == [0, 1] and rounds[1]["hit_rate"] == 0.5
    assert client.get(f"{URL}{campaign.pk + 1000}/").status_code == 404
    assert client.get(f"{URL}{campaign.pk + 1000}/rounds/").status_code == 404


def test_launch_needs_a_staff_token(client):
    assert client.post(URL, LAUNCH, format="json").status_code == 401
    client.credentials(HTTP_AUTHORIZATION=f"Token {token_for('alice', staff=False)}")
    assert client.post(URL, LAUNCH, format="json").status_code == 403
    assert not Campaign.objects.exists()


def test_staff_launch_queues_the_campaign_after_commit(client, django_capture_on_commit_callbacks):
    client.credentials(HTTP_AUTHORIZATION=f"Token {token_for('root', staff=True)}")
    with django_capture_on_commit_callbacks() as callbacks:
        response = client.post(URL, LAUNCH, format="json")
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["status"] == "queued" and body["launched_by"] == "root" and body["elements"] == ["Li", "O", "Zn"]
    assert Campaign.objects.get(pk=body["id"]).status == Campaign.Status.QUEUED
    assert len(callbacks) == 1  # the engine is nudged only once the row is committed


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({**LAUNCH, "elements": ["Li", "Xx"]}, "elements"),
        ({**LAUNCH, "elements": ["Li"]}, "elements"),
        ({**LAUNCH, "name": ""}, "name"),
        ({**LAUNCH, "pipelines": ["magic"]}, "pipelines"),
        ({**LAUNCH, "max_elements": 9}, "max_elements"),
    ],
)
def test_launch_validation_errors_name_the_field(client, payload, field):
    client.credentials(HTTP_AUTHORIZATION=f"Token {token_for('root', staff=True)}")
    response = client.post(URL, payload, format="json")
    assert response.status_code == 400 and field in response.json(), response.content


def test_duplicate_name_is_a_400(client, campaign):
    client.credentials(HTTP_AUTHORIZATION=f"Token {token_for('root', staff=True)}")
    response = client.post(URL, {**LAUNCH, "name": "seed"}, format="json")
    assert response.status_code == 400 and "name" in response.json()
