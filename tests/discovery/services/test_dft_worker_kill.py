"""A real Celery worker killed with SIGKILL mid-job: the job is re-queued, completes exactly once, nothing half-written.

The worker is a separate process on the ``dft`` queue, using the same Redis broker and the same (test) database as
this test (hence ``transactional_db``: rows must be committed to be seen). It runs a deliberately slow fake backend
registered through ``GNOMON_DFT_BACKEND_PLUGINS`` so the kill lands while the "calculation" is running.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings

from catalog.models import EnergyRecord, Material
from discovery.models import TERMINAL_JOB_STATES, Campaign, CampaignRound, Candidate, DFTJob
from discovery.services import dft
from tests.discovery.campaign_support import database_url, stop, wait_for
from tests.factories import rocksalt

ROOT = Path(__file__).resolve().parents[3]


def _start_worker(name: str, log: Path, workdir: Path, **extra_env: str) -> subprocess.Popen:
    env = {
        **os.environ,
        "DATABASE_URL": database_url(),
        "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
        "CELERY_RESULT_BACKEND": settings.CELERY_RESULT_BACKEND,
        "GNOMON_DFT_BACKEND_PLUGINS": "tests.discovery.dft_support",
        "GNOMON_DFT_WORKDIR": str(workdir),
        "GNOMON_TEST_DFT_SLEEP": "6",
        "PYTHONPATH": str(ROOT),
        **extra_env,
    }
    return subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "gnomon", "worker", "-Q", "dft", "-P", "solo", "-n", f"{name}@%h",
         "--without-mingle", "--without-gossip", "-l", "INFO"],
        cwd=ROOT, env=env, stdout=log.open("ab"), stderr=subprocess.STDOUT, start_new_session=True,
    )


def _finish_on_a_new_worker(job: DFTJob, name: str, log: Path, workdir: Path) -> None:
    """Start a fresh worker (it re-queues jobs orphaned by dead workers) and wait until ``job`` is terminal."""
    worker = _start_worker(name, log, workdir)
    try:
        def finished() -> bool:
            job.refresh_from_db()
            return job.state in TERMINAL_JOB_STATES

        wait_for(finished, 120, "the re-queued job to finish", log)
    finally:
        stop(worker)


def _queued_candidate_job(tmp_path: Path, monkeypatch, name: str):
    """A selected NaCl candidate of a new campaign with its DFT job on the slow-fake backend (references cached)."""
    from gnomon.celery import app

    monkeypatch.setattr(settings, "GNOMON_DFT_BACKEND_PLUGINS", ["tests.discovery.dft_support"])
    monkeypatch.setattr(settings, "GNOMON_DFT_WORKDIR", tmp_path / "dft")
    with app.connection_for_write() as conn:
        conn.default_channel.queue_purge("dft")  # stale messages from earlier runs on this broker db
    structure = rocksalt("Na", "Cl", 5.69).get_primitive_structure()
    scheme = dft.scheme_for("slow-fake", "fast")
    dft.ensure_references(scheme, structure, backend="slow-fake", preset="fast")  # cached before the worker starts
    campaign = Campaign.objects.create(name=name, elements=["Na", "Cl"])
    rnd = CampaignRound.objects.create(campaign=campaign, index=0)
    candidate = Candidate.objects.create(round=rnd, structure=structure.as_dict(), formula_reduced="NaCl",
                                         chemsys="Cl-Na", pipeline="structural", fingerprint=name,
                                         status=Candidate.Status.SELECTED)
    return scheme, candidate, dft.create_job(candidate=candidate, backend="slow-fake", preset="fast")


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_sigkilled_worker_leaves_job_requeued_and_it_completes_exactly_once(tmp_path, monkeypatch):
    monkeypatch.setenv("GNOMON_TEST_DFT_SLEEP", "0")
    _, candidate, job = _queued_candidate_job(tmp_path, monkeypatch, "kill-test")
    n_materials = Material.objects.count()
    log = tmp_path / "worker.log"
    workdir = tmp_path / "worker-dft"

    first = _start_worker("kill1", log, workdir)
    try:
        dft.enqueue_job(job)  # outside an atomic block: sent at once
        wait_for(lambda: (workdir / f"job-{job.pk}-attempt-1" / "started").exists(), 90, "the job to start", log)
        job.refresh_from_db()
        assert job.state == DFTJob.State.RUNNING and job.attempts == 1
        os.killpg(first.pid, signal.SIGKILL)  # the worker and anything it started
        first.wait(timeout=15)
    finally:
        stop(first)

    # killed mid-job: still marked running, nothing of the success path written
    job.refresh_from_db()
    candidate.refresh_from_db()
    assert job.state == DFTJob.State.RUNNING
    assert not EnergyRecord.objects.filter(source_key=f"dftjob:{job.pk}").exists()
    assert Material.objects.count() == n_materials and candidate.status == Candidate.Status.SELECTED

    _finish_on_a_new_worker(job, "kill2", log, workdir)  # on start it re-queues jobs orphaned by dead workers

    job.refresh_from_db()
    candidate.refresh_from_db()
    assert job.state == DFTJob.State.SUCCEEDED, job.error_message
    assert job.attempts == 2 and "[requeued" in job.log_excerpt and "worker kill1@" in job.log_excerpt
    assert EnergyRecord.objects.filter(source_key=f"dftjob:{job.pk}").count() == 1
    assert Material.objects.count() == n_materials + 1
    assert candidate.status == Candidate.Status.VERIFIED and candidate.material_id == job.material_id


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_worker_killed_during_the_hull_update_leaves_no_half_written_rows(tmp_path, monkeypatch):
    """The success path (energy, material, hull entries, job row) is one transaction: a kill inside the hull update
    leaves none of it, and the re-run writes all of it once."""
    from catalog.models import ChemsysHull, HullEntry

    scheme, _, job = _queued_candidate_job(tmp_path, monkeypatch, "hull-kill")
    before = {
        "materials": Material.objects.count(),
        "energies": EnergyRecord.objects.count(),
        "hull_entries": HullEntry.objects.count(),
        "revisions": dict(ChemsysHull.objects.filter(scheme=scheme).values_list("chemsys", "revision")),
    }
    log = tmp_path / "worker.log"
    workdir = tmp_path / "worker-dft"
    first = _start_worker("hullkill1", log, workdir, GNOMON_TEST_HULL_SLEEP="30")
    try:
        dft.enqueue_job(job)
        wait_for(lambda: (workdir / "hull-update-started").exists(), 120, "the hull update to start", log)
        os.killpg(first.pid, signal.SIGKILL)
        first.wait(timeout=15)
    finally:
        stop(first)

    job.refresh_from_db()
    assert job.state == DFTJob.State.RUNNING  # the transaction that would have finished it never committed
    assert Material.objects.count() == before["materials"]
    assert EnergyRecord.objects.count() == before["energies"]
    assert HullEntry.objects.count() == before["hull_entries"]
    assert dict(ChemsysHull.objects.filter(scheme=scheme).values_list("chemsys", "revision")) == before["revisions"]

    _finish_on_a_new_worker(job, "hullkill2", log, workdir)
    assert job.state == DFTJob.State.SUCCEEDED, job.error_message
    record = EnergyRecord.objects.get(source_key=f"dftjob:{job.pk}")
    assert HullEntry.objects.filter(energy_record=record).count() == 1
    assert Material.objects.count() == before["materials"] + 1
    assert ChemsysHull.objects.get(scheme=scheme, chemsys="Cl-Na").revision == before["revisions"].get("Cl-Na", 0) + 1
