"""Campaigns run by real Celery worker processes: a tiny campaign end to end, and one whose worker is SIGKILLed.

Everything real except the DFT energies (the ``slow-fake`` backend's toy energies): generation from the seed
catalog, a trained (tiny) screening ensemble, acquisition, DFT jobs on the ``dft`` queue, the living hull, retraining.
"""

from __future__ import annotations

import os
import signal

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command

from catalog.models import HullEntry, MaterialOrigin
from discovery.models import Campaign, CampaignRound, Candidate, DFTJob, ModelVersion
from discovery.services.campaigns import create_campaign
from tests.discovery import campaign_support as support

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

TINY = {
    "elements": ["Na", "K", "Cl"],
    "max_elements": 3,
    "pipelines": ["structural"],
    "rounds": 2,
    "candidates_per_round": 12,
    "dft_per_round": 2,
    "ensemble_size": 2,
    "epochs": 2,
    "max_atoms": 4,
    "max_predicted_e_above_hull": 2.0,  # a 2-epoch model is poor; let it pick anyway
    "cap_per_chemsys": 2,
    "kappa": 1.0,
    "kappa_final": 0.0,  # explore in round 0, exploit in round 1
    "dft_backend": "slow-fake",
    "dft_preset": "fast",
}


def _toml(settings: dict) -> str:
    def value(v):
        if isinstance(v, list):
            return "[" + ", ".join(f'"{x}"' for x in v) + "]"
        return f'"{v}"' if isinstance(v, str) else str(v)

    return "[campaign]\n" + "".join(f"{k} = {value(v)}\n" for k, v in settings.items())


def test_tiny_campaign_runs_end_to_end_on_a_real_worker(campaign_env, capsys):
    """Launched the operator's way: ``launch_campaign --config FILE --wait --min-verified 1``."""
    var, staff = campaign_env
    log = var / "worker.log"
    config = var / "tiny.toml"
    config.write_text(_toml({**TINY, "name": "tiny-e2e"}))
    worker = support.start_worker("e2e", log, var)
    try:
        call_command("launch_campaign", config=config, user=staff.username, wait=True, timeout=420, min_verified=1)
    except Exception:
        print(log.read_text(errors="replace")[-6000:])
        raise
    finally:
        support.stop(worker)
    campaign = Campaign.objects.get(name="tiny-e2e")
    assert "round 1:" in capsys.readouterr().out

    assert campaign.status == Campaign.Status.COMPLETED, campaign.error
    rounds = list(CampaignRound.objects.filter(campaign=campaign).order_by("index"))
    assert [r.index for r in rounds] == [0, 1] and all(r.stage == "done" for r in rounds)
    assert [r.acquisition["kappa"] for r in rounds] == [1.0, 0.0]
    assert all(r.acquisition["top_n"] == TINY["dft_per_round"] for r in rounds)
    # round 1 ranked round 0's screened-but-unchosen candidates again, with the retrained model
    assert rounds[1].acquisition["waiting_from_earlier_rounds"] == rounds[0].n_screened - rounds[0].n_selected
    carried = Candidate.objects.filter(round=rounds[1], recipe__carried_over_from_round=0)
    assert carried.count() == rounds[1].acquisition["carried_over"]
    for rnd in rounds:
        assert rnd.n_generated >= rnd.n_deduplicated > 0
        assert 0 < rnd.n_selected <= TINY["dft_per_round"]
        assert rnd.n_dft_done + rnd.n_dft_failed == rnd.n_selected
        assert rnd.n_dft_done > 0 and rnd.hit_rate is not None and 0 <= rnd.hit_rate <= 1
        assert rnd.model_version is not None and rnd.model_mae is not None
        assert {"generate", "screen", "verify", "fold"} <= set(rnd.timings)
    # a model for round 0, retrained after it for round 1 (no retraining after the last round)
    models = list(ModelVersion.objects.filter(campaign=campaign).order_by("created_at"))
    assert len(models) == 2 and rounds[0].model_version == models[0] and rounds[1].model_version == models[1]
    assert all(len(m.weights) == TINY["ensemble_size"] for m in models)
    # retraining learned from the round's verified energies (the campaign's scheme) on top of the seed crystals
    assert models[0].hyperparameters["extra_schemes"] == ["TEST-seed-halides"]
    assert models[1].data_count > models[0].data_count and models[1].data_hash != models[0].data_hash
    # retraining continued round 0's members (the default "fine-tune") rather than starting over
    assert models[0].hyperparameters["fine_tuned"] is None
    assert models[1].hyperparameters["fine_tuned"] == {"from_version": models[0].pk, "from_name": models[0].name}

    verified = Candidate.objects.filter(round__campaign=campaign, status=Candidate.Status.VERIFIED)
    assert verified.count() == sum(r.n_dft_done for r in rounds)
    for candidate in verified:
        origin = MaterialOrigin.objects.get(material=candidate.material, kind=MaterialOrigin.Kind.CAMPAIGN)
        assert origin.campaign_id == campaign.pk
        # the living hull: every verified energy has its hull entry, placed against the system's references
        job = candidate.dft_jobs.get(state=DFTJob.State.SUCCEEDED)
        entry = HullEntry.objects.get(energy_record=job.energy_record)
        assert entry.status == HullEntry.Status.OK and entry.e_above_hull is not None
    support.assert_no_duplicates(campaign)


def test_campaign_survives_a_sigkilled_worker_without_duplicates(campaign_env):
    """Kill the worker (and its children) while a round's DFT jobs run; a new worker finishes the campaign."""
    var, staff = campaign_env
    log = var / "worker.log"
    campaign = create_campaign({**TINY, "name": "tiny-kill"}, user=staff, launch=True)
    first = support.start_worker("kill1", log, var, dft_sleep=4, beat=True, extra_env=support.FAST_BEAT)
    try:
        support.wait_for(support.job_running(campaign), 300, "a DFT job of the campaign to start", log)
        os.killpg(first.pid, signal.SIGKILL)
        first.wait(timeout=20)
    finally:
        support.stop(first)

    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.RUNNING  # nothing finished it behind our back
    orphaned = DFTJob.objects.filter(candidate__round__campaign=campaign, state=DFTJob.State.RUNNING).count()
    assert orphaned >= 1

    second = support.start_worker("kill2", log, var, dft_sleep=0, beat=True, extra_env=support.FAST_BEAT)
    try:
        support.wait_for(support.campaign_finished(campaign), 420, "the campaign to finish after the kill", log)
    finally:
        support.stop(second)

    support.assert_completed_cleanly(campaign, rounds=2)
    jobs = DFTJob.objects.filter(candidate__round__campaign=campaign)
    assert jobs.filter(attempts__gte=2).exists()  # the killed job ran again, on the second worker


def test_launch_campaign_command_errors_are_clear(campaign_env, tmp_path):
    _, staff = campaign_env
    bad = tmp_path / "bad.toml"
    bad.write_text('[campaign]\nname = "x"\nelements = ["Na", "Qq"]\nrounds = 0\n')
    with pytest.raises(CommandError, match="Qq") as err:
        call_command("launch_campaign", config=bad)
    assert "rounds" in str(err.value)
    visitor = get_user_model().objects.create_user("visitor")
    with pytest.raises(CommandError, match="not staff"):
        call_command("launch_campaign", preset="smoke", user=visitor.username)
    # no worker serves this test: the campaign stays queued and --wait gives up with the reason
    with pytest.raises(CommandError, match="ended queued: timed out"):
        call_command("launch_campaign", preset="smoke", user=staff.username, wait=True, timeout=1)
