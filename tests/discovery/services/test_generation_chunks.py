"""A round's generation as chunk tasks, in one process: planning, collecting, lost chunks, failures and the retry."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.utils import timezone

from discovery.models import Campaign, CampaignRound, Candidate, GenerationChunk
from discovery.services import campaigns as services
from discovery.services import generation
from tests.discovery import campaign_support as support

pytestmark = pytest.mark.django_db
ELEMENTS = ["Li", "Na", "K", "Cl", "Br"]


@pytest.fixture
def running(settings, monkeypatch):
    """A running Na–K–Cl campaign over the seed halides; messages are recorded, not sent."""
    settings.GNOMON_GENERATION_CHUNK_PARENTS = 4
    support.seed_catalog()
    sent: list[tuple[str, int]] = []
    monkeypatch.setattr(services, "_send", lambda campaign_id, queue: sent.append(("advance", campaign_id)))
    monkeypatch.setattr("celery.current_app.send_task",
                        lambda name, args, queue: sent.append((name.rsplit(".", 1)[-1], args[0])))
    staff = get_user_model().objects.create_user("staff", is_staff=True)
    campaign = services.create_campaign(
        {"name": "chunks", "elements": ELEMENTS, "pipelines": ["structural"], "candidates_per_round": 10,
         "dft_backend": "ml"}, user=staff)
    Campaign.objects.filter(pk=campaign.pk).update(status=Campaign.Status.RUNNING)
    return campaign, staff, sent


def _chunk_sends(sent):
    return sorted(pk for name, pk in sent if name == "run_generation_chunk")


def test_a_round_plans_chunks_waits_for_them_and_writes_the_union(running, django_capture_on_commit_callbacks):
    campaign, _, sent = running
    with django_capture_on_commit_callbacks(execute=True):
        action = services.advance_campaign(campaign.pk).action
    rnd = CampaignRound.objects.get(campaign=campaign)
    chunks = list(rnd.generation_chunks.order_by("index"))
    n = len(chunks)
    assert action == f"generation sent out as {n} chunk task(s)" and n >= 2
    assert rnd.stage == "generating" and _chunk_sends(sent) == [c.pk for c in chunks]
    assert [len(c.work["parent_ids"]) for c in chunks[:-1]] == [4] * (n - 1)
    assert sum(len(c.work["parent_ids"]) for c in chunks) == rnd.generation["n_parents"]
    with django_capture_on_commit_callbacks(execute=True):
        assert services.advance_campaign(campaign.pk).action == f"waiting: {n} of {n} generation chunks pending in round 0"
    for chunk in chunks:
        assert generation.run_generation_chunk(chunk.pk) .endswith("proposals")
        assert generation.run_generation_chunk(chunk.pk) == "nothing to do"  # a second delivery changes nothing
    with django_capture_on_commit_callbacks(execute=True):
        action = services.advance_campaign(campaign.pk).action
    rnd.refresh_from_db()
    assert action == f"generated {rnd.candidates.count()} candidates"
    assert rnd.stage == "screen" and 0 < rnd.candidates.count() == rnd.n_deduplicated <= 10
    assert rnd.n_generated == sum(GenerationChunk.objects.filter(round=rnd).values_list("n_generated", flat=True))
    assert not GenerationChunk.objects.filter(round=rnd).exclude(proposals=[]).exists()  # written: proposals dropped
    # the same as generating in one process
    one_process = generation.generate_candidates(None, elements=ELEMENTS, limit=10, workers=1)
    assert sorted(Candidate.objects.filter(round=rnd).values_list("fingerprint", flat=True)) == sorted(
        Candidate.objects.filter(round__isnull=True).values_list("fingerprint", flat=True))
    assert one_process.n_generated == rnd.n_generated


def test_lost_chunks_are_resent_then_fail_the_round_with_a_reason_and_the_retry_starts_afresh(
        running, settings, django_capture_on_commit_callbacks):
    campaign, staff, sent = running
    with django_capture_on_commit_callbacks(execute=True):
        services.advance_campaign(campaign.pk)
    rnd = CampaignRound.objects.get(campaign=campaign)
    lost = rnd.generation_chunks.order_by("index").first()
    for chunk in rnd.generation_chunks.exclude(pk=lost.pk):
        generation.run_generation_chunk(chunk.pk)
    long_ago = timezone.now() - timedelta(seconds=settings.GNOMON_GENERATION_CHUNK_TIMEOUT_S + 1)
    for attempt in range(1, 4):  # its worker dies each time: the stage sends it again, three tries in all
        GenerationChunk.objects.filter(pk=lost.pk).update(state="running", attempts=attempt, sent_at=long_ago)
        sent.clear()
        with django_capture_on_commit_callbacks(execute=True):
            action = services.advance_campaign(campaign.pk).action
        if attempt < 3:
            assert action.startswith("waiting: 1 of ") and _chunk_sends(sent) == [lost.pk]
    assert action == "failed" and not _chunk_sends(sent)
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.FAILED
    assert campaign.error.startswith("round 0, stage generating: GenerationFailed: generation chunk 0 (structural, "
                                     "4 parents) failed 3 times: no result")
    with django_capture_on_commit_callbacks(execute=True):
        call_command("resume_campaign", "chunks", user=staff.username)
    campaign.refresh_from_db()
    lost.refresh_from_db()
    assert campaign.status == Campaign.Status.QUEUED and campaign.error == ""
    assert lost.attempts == 0 and lost.sent_at is None
    sent.clear()
    with django_capture_on_commit_callbacks(execute=True):
        assert services.advance_campaign(campaign.pk).action.startswith("waiting: 1 of ")
    assert _chunk_sends(sent) == [lost.pk]
    generation.run_generation_chunk(lost.pk)
    with django_capture_on_commit_callbacks(execute=True):
        assert services.advance_campaign(campaign.pk).action.startswith("generated ")


def test_a_parent_that_breaks_substitution_is_skipped_and_named(running, monkeypatch):
    from discovery.generation.substitution import SubstitutionGenerator

    campaign, _, _ = running
    rnd = CampaignRound.objects.create(campaign=campaign, index=0, stage="generate")
    chunk = generation.fan_out_generation(rnd, services.campaign_config(campaign))[0]
    bad = chunk.work["parent_ids"][0]
    original = SubstitutionGenerator.children

    def children(self, structure, parent_id=None):
        if parent_id == bad:
            raise ValueError("spglib found no symmetry")
        return original(self, structure, parent_id)

    monkeypatch.setattr(SubstitutionGenerator, "children", children)
    generation.run_generation_chunk(chunk.pk)
    chunk.refresh_from_db()
    assert chunk.state == "done" and chunk.n_generated > 0
    assert chunk.skipped == [[bad, "ValueError: spglib found no symmetry"]]
