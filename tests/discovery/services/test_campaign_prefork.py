"""Campaigns on prefork workers, the way users run them: generation fanned out over the task queue, and a DFT pool
process killed while every DFT slot is busy.

A Celery prefork pool process is daemonic and may not start processes; generation used to start a process pool there
and died on every campaign larger than the demo ("daemonic processes are not allowed to have children").
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from discovery.models import Campaign, Candidate, DFTJob, GenerationChunk
from discovery.services.campaigns import create_campaign
from gnomon.processes import WORKER_QUEUES
from tests.discovery import campaign_support as support
from tests.discovery.services.test_campaign_end_to_end import TINY

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def test_generation_fans_out_as_chunk_tasks_on_a_prefork_worker(campaign_env):
    """Both pipelines, parents three to a chunk: several chunks of each kind, taken by two pool processes."""
    var, staff = campaign_env
    log = var / "worker.log"
    campaign = create_campaign(
        {**TINY, "name": "prefork-fan-out", "pipelines": ["structural", "compositional"], "rounds": 1}, user=staff,
        launch=True,
    )
    worker = support.start_worker("fan", log, var, extra_env={"GNOMON_GENERATION_CHUNK_PARENTS": "3"})
    try:
        support.wait_for(support.campaign_finished(campaign), 420, "the campaign to finish", log)
    finally:
        support.stop(worker)
    assert "daemonic processes" not in log.read_text(errors="replace")
    support.assert_completed_cleanly(campaign, rounds=1)
    chunks = list(GenerationChunk.objects.filter(round__campaign=campaign))
    by_pipeline = {p: [c for c in chunks if c.pipeline == p] for p in ("structural", "compositional")}
    assert len(by_pipeline["structural"]) >= 3 and len(by_pipeline["compositional"]) >= 2
    assert all(c.state == GenerationChunk.State.DONE and c.attempts == 1 and c.proposals == [] for c in chunks)
    assert all(len(c.work["parent_ids"]) <= 3 for c in by_pipeline["structural"])
    rnd = campaign.rounds.get()
    assert rnd.generation["chunks"] == len(chunks) and rnd.n_generated == sum(c.n_generated for c in chunks)
    assert {"generate", "generating", "screen"} <= set(rnd.timings)
    assert all(c.n_generated > 0 for c in by_pipeline["structural"])
    assert rnd.generation["by_pipeline"]["structural_generated"] > 0
    assert rnd.generation["by_pipeline"]["compositional_generated"] > 0
    assert Candidate.objects.filter(round=rnd).count() == rnd.n_deduplicated > 0


def _running_job_pids(campaign: Campaign, var: Path) -> dict[int, int]:
    """Job id → pid of the pool process running it (the slow-fake backend writes its pid into the job's workdir)."""
    pids = {}
    for job in DFTJob.objects.filter(state=DFTJob.State.RUNNING):
        started = var / "dft" / f"job-{job.pk}-attempt-{job.attempts}" / "started"
        if started.exists() and started.read_text().strip():
            pids[job.pk] = int(started.read_text())
    return pids


def test_a_killed_dft_pool_process_is_rerun_once_while_every_dft_slot_is_busy(campaign_env):
    """The quick start's layout: orchestration and sweeps on their own worker, two DFT slots on another. Killing one
    DFT pool process mid-job leaves the other slot busy; the job runs again and succeeds exactly once."""
    var, staff = campaign_env
    log = var / "worker.log"
    campaign = create_campaign({**TINY, "name": "prefork-kill", "rounds": 1}, user=staff, launch=True)
    main = support.start_worker("main", log, var, queues=WORKER_QUEUES["main"], concurrency=1, beat=True,
                                extra_env=support.FAST_BEAT)
    dft = support.start_worker("dft", log, var, queues=WORKER_QUEUES["dft"], concurrency=2, dft_sleep=8)
    try:
        def both_slots_busy() -> bool:
            return len(_running_job_pids(campaign, var)) >= 2

        support.wait_for(both_slots_busy, 420, "two DFT jobs running at once", log)
        victim_job, victim_pid = sorted(_running_job_pids(campaign, var).items())[0]
        os.kill(victim_pid, signal.SIGKILL)
        killed_at = time.monotonic()
        support.wait_for(support.campaign_finished(campaign), 420, "the campaign to finish after the kill", log)
        recovery_s = time.monotonic() - killed_at
    finally:
        support.stop(dft)
        support.stop(main)
    support.assert_completed_cleanly(campaign, rounds=1)
    job = DFTJob.objects.get(pk=victim_job)
    assert job.state == DFTJob.State.SUCCEEDED and job.attempts >= 2, (job.attempts, job.log_excerpt)
    assert recovery_s < 400


# Campaigns of the acceptance matrix that fit the test suite: each pipeline, a ternary and a quaternary space, small and
# larger cells, the issue's own K–Zn–F configuration, verified by the ML backend (CHGNet) on prefork workers.
MATRIX = {
    "k-zn-f": {"elements": ["K", "Zn", "F"], "pipelines": ["structural", "compositional"], "max_atoms": 7},
    "li-na-k-cl": {"elements": ["Li", "Na", "K", "Cl"], "max_elements": 4, "pipelines": ["compositional"],
                   "max_atoms": 12},
    "rb-br": {"elements": ["Rb", "Br"], "max_elements": 2, "pipelines": ["structural"], "max_atoms": 4},
}


def test_matrix_campaigns_complete_with_the_ml_verifier_on_the_production_layout(campaign_env):
    var, staff = campaign_env
    log = var / "worker.log"
    campaigns = [
        create_campaign({**TINY, "name": f"matrix-{name}", "rounds": 1, "candidates_per_round": 40, "dft_per_round": 1,
                         "dft_backend": "ml", **settings}, user=staff, launch=True)
        for name, settings in MATRIX.items()
    ]
    main = support.start_worker("main", log, var, queues=WORKER_QUEUES["main"], concurrency=2,
                                extra_env={"GNOMON_GENERATION_CHUNK_PARENTS": "4"})
    dft = support.start_worker("dft", log, var, queues=WORKER_QUEUES["dft"], concurrency=1)
    try:
        for campaign in campaigns:
            support.wait_for(support.campaign_finished(campaign), 600, f"campaign {campaign.name} to finish", log)
    finally:
        support.stop(dft)
        support.stop(main)
    for campaign in campaigns:
        campaign.refresh_from_db()
        assert campaign.status == Campaign.Status.COMPLETED, (campaign.name, campaign.error)
        rnd = campaign.rounds.get()
        assert rnd.stage == "done" and rnd.n_generated > 0, campaign.name
        assert rnd.n_dft_done + rnd.n_dft_failed == rnd.n_selected, campaign.name
        assert GenerationChunk.objects.filter(round=rnd, state="done").count() == rnd.generation["chunks"]
    assert "daemonic processes" not in log.read_text(errors="replace")
