from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied

from discovery.campaign_config import CampaignConfigError
from discovery.models import Campaign, CampaignRound
from discovery.services.campaigns import (
    CampaignStateError,
    cancel_campaign,
    create_campaign,
    launch_campaign,
    pause_campaign,
    resume_campaign,
)

pytestmark = pytest.mark.django_db

SETTINGS = {"name": "LiZnO", "elements": ["Li", "Zn", "O"], "rounds": 2}


@pytest.fixture
def staff():
    return get_user_model().objects.create_user("staff", is_staff=True)


@pytest.fixture
def visitor():
    return get_user_model().objects.create_user("visitor")


def test_anonymous_and_non_staff_cannot_create_or_launch(staff, visitor):
    with pytest.raises(PermissionDenied):
        create_campaign(SETTINGS, user=visitor)
    with pytest.raises(PermissionDenied):
        create_campaign(SETTINGS, user=None)
    campaign = create_campaign(SETTINGS, user=staff)
    for action in (launch_campaign, pause_campaign, cancel_campaign):
        with pytest.raises(PermissionDenied):
            action(campaign, user=visitor)
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.DRAFT


def test_lifecycle_transitions(staff, django_capture_on_commit_callbacks):
    campaign = create_campaign(SETTINGS, user=staff)
    assert campaign.status == Campaign.Status.DRAFT
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        campaign = launch_campaign(campaign, user=staff)
    assert campaign.status == Campaign.Status.QUEUED and campaign.started_at is not None
    assert len(callbacks) == 1  # one nudge for a worker, sent after commit
    campaign = pause_campaign(campaign, user=staff)
    assert campaign.status == Campaign.Status.PAUSED
    with pytest.raises(CampaignStateError, match="paused"):
        launch_campaign(campaign, user=staff)
    with django_capture_on_commit_callbacks(execute=False):
        campaign = resume_campaign(campaign, user=staff)
    assert campaign.status == Campaign.Status.QUEUED
    campaign = cancel_campaign(campaign, user=staff)
    assert campaign.status == Campaign.Status.CANCELLED and campaign.finished_at is not None
    with pytest.raises(CampaignStateError):
        resume_campaign(campaign, user=staff)


def test_duplicate_name_and_bad_settings_are_clear_errors(staff):
    create_campaign(SETTINGS, user=staff)
    with pytest.raises(CampaignConfigError) as err:
        create_campaign(SETTINGS, user=staff)
    assert "already exists" in err.value.errors["name"]
    with pytest.raises(CampaignConfigError) as err:
        create_campaign({"name": "x", "elements": ["Li", "Zz"]}, user=staff)
    assert "Zz" in err.value.errors["elements"]
    assert Campaign.objects.count() == 1


def test_screening_stages_are_handed_to_the_screening_queue(staff, monkeypatch, django_capture_on_commit_callbacks):
    """A stage message delivered on the wrong queue is passed on, not run there: GNN work belongs to 'screening'."""
    from discovery.services import campaigns as services

    sent = []
    monkeypatch.setattr(services, "_send", lambda campaign_id, queue: sent.append((campaign_id, queue)))
    campaign = services.create_campaign({"name": "queues", "elements": ["Na", "Cl"]}, user=staff)
    Campaign.objects.filter(pk=campaign.pk).update(status=Campaign.Status.RUNNING)
    CampaignRound.objects.create(campaign=campaign, index=0, stage="screen")
    with django_capture_on_commit_callbacks(execute=True):
        result = services.advance_campaign(campaign.pk, queue="default")
    assert result.action == "handed to the screening queue"
    assert sent == [(campaign.pk, "screening")]
    assert CampaignRound.objects.get(campaign=campaign).stage == "screen"  # nothing ran
    assert services.queue_for("screen") == services.queue_for("retrain") == "screening"
    assert services.queue_for("generate") == services.queue_for("fold") == "default"


def test_concurrency_limit_holds_dft_jobs_back_until_slots_free(staff, monkeypatch, django_capture_on_commit_callbacks):
    """max_concurrent_dft=1: verify sends one job and holds the rest; each finished job releases the next."""
    from pymatgen.core import Lattice, Structure

    from discovery import messages
    from discovery.models import Candidate, DFTJob
    from discovery.services import campaigns as services

    sent = []
    monkeypatch.setattr(messages, "run_dft_job", lambda job_id, **_: sent.append(job_id))
    monkeypatch.setattr(services, "_send", lambda campaign_id, queue: None)
    campaign = services.create_campaign(
        {"name": "limited", "elements": ["Na", "Cl"], "max_concurrent_dft": 1, "dft_backend": "ml"}, user=staff
    )
    Campaign.objects.filter(pk=campaign.pk).update(status=Campaign.Status.RUNNING)
    rnd = CampaignRound.objects.create(campaign=campaign, index=0, stage="verify")
    for i, a in enumerate((5.5, 5.6, 5.7)):
        structure = Structure.from_spacegroup("Fm-3m", Lattice.cubic(a), ["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])
        Candidate.objects.create(round=rnd, structure=structure.as_dict(), formula_reduced="NaCl", chemsys="Cl-Na",
                                 pipeline="structural", fingerprint=f"f{i}", status=Candidate.Status.SELECTED)

    with django_capture_on_commit_callbacks(execute=True):
        assert services.advance_campaign(campaign.pk).action == "queued 1 DFT jobs, 2 held (max 1 at once)"
    jobs = list(DFTJob.objects.filter(candidate__round=rnd).order_by("pk"))
    assert sent == [jobs[0].pk] and [j.held_by_campaign for j in jobs] == [False, True, True]

    with django_capture_on_commit_callbacks(execute=True):  # the first job still runs: nothing released
        assert services.advance_campaign(campaign.pk).action == "waiting: 3 of 3 DFT jobs pending in round 0"
    DFTJob.objects.filter(pk=jobs[0].pk).update(state=DFTJob.State.SUCCEEDED)
    with django_capture_on_commit_callbacks(execute=True):
        assert services.advance_campaign(campaign.pk).action.endswith("; released 1")
    assert sent == [jobs[0].pk, jobs[1].pk]
    assert not DFTJob.objects.get(pk=jobs[1].pk).held_by_campaign
    assert services.resume_stalled_campaigns(timedelta(0)) == [campaign.pk]
    assert jobs[2].pk not in sent  # beat never sends a held job


def test_round_waits_for_the_reference_phases_its_jobs_queued(staff, monkeypatch, django_capture_on_commit_callbacks):
    """Hit rates are read off the hull only once the competing phases a candidate's job queued have been computed."""
    from pymatgen.core import Lattice, Structure

    from discovery.models import Candidate, DFTJob
    from discovery.services import campaigns as services
    from tests.factories import make_material

    sent = []
    monkeypatch.setattr(services, "_send", lambda campaign_id, queue: sent.append(campaign_id))
    campaign = services.create_campaign({"name": "phases", "elements": ["Na", "Cl"], "dft_backend": "ml"}, user=staff)
    Campaign.objects.filter(pk=campaign.pk).update(status=Campaign.Status.RUNNING)
    rnd = CampaignRound.objects.create(campaign=campaign, index=0, stage="verifying")
    structure = Structure(Lattice.cubic(3.3), ["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    candidate = Candidate.objects.create(round=rnd, structure=structure.as_dict(), formula_reduced="NaCl",
                                         chemsys="Cl-Na", pipeline="structural", fingerprint="cscl")
    job = DFTJob.objects.create(candidate=candidate, input_structure=structure.as_dict(), backend="ml",
                                state=DFTJob.State.SUCCEEDED)
    phase = DFTJob.objects.create(material=make_material(structure), input_structure=structure.as_dict(),
                                  backend="ml", reference_for=job)
    with django_capture_on_commit_callbacks(execute=True):
        result = services.advance_campaign(campaign.pk)
    assert result.action == "waiting: 1 reference-phase DFT jobs pending for round 0"
    DFTJob.objects.filter(pk=phase.pk).update(state=DFTJob.State.SUCCEEDED)
    with django_capture_on_commit_callbacks(execute=True):
        services.job_finished(phase.pk)  # the phase's end nudges the campaign that waits for it
    assert sent == [campaign.pk]
    with django_capture_on_commit_callbacks(execute=True):
        assert services.advance_campaign(campaign.pk).action == "all DFT jobs finished"


def test_candidates_no_round_chose_compete_again_in_the_next_round(staff):
    """A round whose generation finds nothing new still has work: earlier rounds' screened, unchosen candidates."""
    from pymatgen.core import Lattice, Structure

    from discovery.models import Candidate
    from discovery.services.campaign_stages import waiting_candidates

    campaign = create_campaign(SETTINGS, user=staff)
    first = CampaignRound.objects.create(campaign=campaign, index=0, stage="done")
    second = CampaignRound.objects.create(campaign=campaign, index=1, stage="screen")
    structure = Structure(Lattice.cubic(4.2), ["Li", "O"], [[0, 0, 0], [0.5, 0.5, 0.5]]).as_dict()

    def candidate(rnd, fingerprint, status):
        return Candidate.objects.create(round=rnd, structure=structure, formula_reduced="LiO", chemsys="Li-O",
                                        pipeline="structural", fingerprint=fingerprint, status=status)

    waiting = candidate(first, "a", Candidate.Status.SCREENED)
    candidate(first, "b", Candidate.Status.VERIFIED)
    candidate(first, "c", Candidate.Status.REJECTED)
    candidate(first, "d", Candidate.Status.SCREENED)
    candidate(second, "d", Candidate.Status.GENERATED)  # regenerated this round: it competes as this round's own
    later = CampaignRound.objects.create(campaign=campaign, index=2, stage="generate")
    candidate(later, "e", Candidate.Status.SCREENED)  # a later round's candidate is never "earlier"
    other = create_campaign({**SETTINGS, "name": "other"}, user=staff)
    candidate(CampaignRound.objects.create(campaign=other, index=0, stage="done"), "f", Candidate.Status.SCREENED)

    assert waiting_candidates(campaign, second) == [waiting]


def test_a_round_verifies_an_earlier_candidate_it_chooses_and_records_where_it_came_from(staff, monkeypatch):
    from pymatgen.core import Lattice, Structure

    from discovery.campaign_config import validate
    from discovery.models import Candidate
    from discovery.services import campaign_stages, screening

    def fake_screen(candidates, _model):  # the ensemble's verdict, fixed: lower fingerprint letter = more stable
        for c in candidates:
            c.predicted_mean = c.predicted_e_above_hull = {"a": -0.2, "b": 0.05, "n": 0.0}[c.fingerprint]
            c.predicted_std, c.status = 0.0, Candidate.Status.SCREENED
        Candidate.objects.bulk_update(candidates, ["predicted_mean", "predicted_e_above_hull", "predicted_std", "status"])
        return screening.ScreeningSummary(screened=len(candidates))

    monkeypatch.setattr(screening, "screen_candidates", fake_screen)
    monkeypatch.setattr(campaign_stages, "current_model", lambda _campaign: None)
    monkeypatch.setattr(campaign_stages, "train_campaign_model", lambda *_args, **_kw: None)
    config = validate({**SETTINGS, "dft_per_round": 2, "max_predicted_e_above_hull": 0.1, "cap_per_chemsys": 5})
    campaign = create_campaign(SETTINGS, user=staff)
    first = CampaignRound.objects.create(campaign=campaign, index=0, stage="done")
    second = CampaignRound.objects.create(campaign=campaign, index=1, stage="screen")
    structure = Structure(Lattice.cubic(4.2), ["Li", "O"], [[0, 0, 0], [0.5, 0.5, 0.5]]).as_dict()
    for rnd, fingerprint, status in ((first, "a", "screened"), (first, "b", "screened"), (second, "n", "generated")):
        Candidate.objects.create(round=rnd, structure=structure, formula_reduced="LiO", chemsys="Li-O",
                                 pipeline="structural", fingerprint=fingerprint, status=status)

    campaign_stages.screen(campaign, second, config)

    second.refresh_from_db()
    chosen = Candidate.objects.filter(status=Candidate.Status.SELECTED)
    assert sorted(chosen.values_list("fingerprint", flat=True)) == ["a", "n"]  # b: above the 0.1 eV/atom threshold
    assert all(c.round_id == second.pk for c in chosen)  # verified, and counted, in the round that chose it
    assert chosen.get(fingerprint="a").recipe["carried_over_from_round"] == 0
    assert Candidate.objects.get(fingerprint="b").round_id == first.pk
    assert second.stage == "verify" and second.n_screened == 3 and second.n_selected == 2
    assert second.acquisition["waiting_from_earlier_rounds"] == 2 and second.acquisition["carried_over"] == 1
