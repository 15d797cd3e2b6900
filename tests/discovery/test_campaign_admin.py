import pytest
from django.urls import reverse

from discovery.models import Campaign

pytestmark = pytest.mark.django_db

VALID = {
    "name": "admin-campaign",
    "max_elements": 2,
    "elements_text": "Na, Cl",
    "pipelines_choice": ["structural"],
    "rounds": 2,
    "candidates_per_round": 50,
    "dft_per_round": 2,
    "wall_clock_hours": 1,
    "ensemble_size": 2,
    "kappa": 1.0,
    "max_predicted_e_above_hull": 0.1,
    "cap_per_chemsys": 2,
    "dft_backend": "gpaw",
    "dft_preset": "fast",
    "rounds-TOTAL_FORMS": 0,
    "rounds-INITIAL_FORMS": 0,
}


def add_url():
    return reverse("admin:discovery_campaign_add")


def test_admin_form_creates_a_validated_draft(admin_client):
    response = admin_client.post(add_url(), VALID)
    assert response.status_code == 302, response.content[:2000]
    campaign = Campaign.objects.get(name="admin-campaign")
    assert campaign.status == Campaign.Status.DRAFT
    assert campaign.elements == ["Cl", "Na"]
    assert campaign.config["dft_per_round"] == 2
    assert campaign.config["retraining"] == "fine-tune"  # the default when the form leaves it out


def test_admin_form_can_choose_retraining_from_scratch(admin_client):
    admin_client.post(add_url(), {**VALID, "retraining": "scratch"})
    assert Campaign.objects.get(name="admin-campaign").config["retraining"] == "scratch"


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("elements_text", "Na, Qx", "not chemical elements"),
        ("elements_text", "", "This field is required"),
        ("rounds", 0, "out of range"),
        ("dft_per_round", 5000, "out of range"),
        ("max_elements", 4, "more than the 2 elements"),
        ("retraining", "warm", "Select a valid choice"),
    ],
)
def test_admin_form_rejects_bad_input(admin_client, field, value, message):
    response = admin_client.post(add_url(), {**VALID, field: value})
    assert response.status_code == 200
    assert message in response.content.decode()
    assert not Campaign.objects.exists()


def test_admin_actions_follow_the_state_machine(admin_client, django_capture_on_commit_callbacks):
    admin_client.post(add_url(), VALID)
    campaign = Campaign.objects.get()
    changelist = reverse("admin:discovery_campaign_changelist")
    with django_capture_on_commit_callbacks(execute=False):
        admin_client.post(changelist, {"action": "launch", "_selected_action": [campaign.pk]})
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.QUEUED
    response = admin_client.post(changelist, {"action": "launch", "_selected_action": [campaign.pk]}, follow=True)
    assert "needs one of: draft" in response.content.decode()
    admin_client.post(changelist, {"action": "cancel", "_selected_action": [campaign.pk]})
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.CANCELLED


def test_anonymous_cannot_reach_campaign_admin(client):
    response = client.post(add_url(), VALID)
    assert response.status_code == 302 and "/login/" in response["Location"]
    assert not Campaign.objects.exists()
