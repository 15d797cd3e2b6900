"""Support for the campaign tests that run real Celery workers: a seed catalog, worker processes, waiting, invariants.

The workers are separate processes on the same Redis broker and the same (test) database as the test, so the tests
use ``transactional_db`` (rows must be committed to be seen). DFT runs on the ``slow-fake`` backend of
``tests.discovery.dft_support`` (toy energies, a configurable sleep), loaded in the worker through
``GNOMON_DFT_BACKEND_PLUGINS``.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from django.conf import settings
from django.db import connection
from django.db.models import Count

from catalog.models import EnergyRecord, Material, MaterialOrigin
from catalog.services.energies import ensure_scheme, record_energy
from discovery.models import Campaign, Candidate, DFTJob
from gnomon.processes import supervised
from tests.discovery.screening_data import binary, synthetic_energy
from tests.factories import make_material

ROOT = Path(__file__).resolve().parents[2]
SEED_CATIONS = ("Li", "Na", "K", "Rb")
SEED_ANIONS = ("F", "Cl", "Br")
FAST_BEAT = {"GNOMON_RESUME_EVERY_S": "3", "GNOMON_STALLED_AFTER_S": "5"}  # beat re-nudges within seconds


def seed_catalog() -> int:
    """A formation-energy scheme with rock-salt and CsCl halides of four alkali metals (24 crystals, 12 systems).

    It holds the parents of the structural pipeline (NaCl, KCl, ...) and the training data of the first model.
    """
    scheme = ensure_scheme("TEST-seed-halides", "formation_energy", level_of_theory="synthetic", is_dft=True)
    count = 0
    for cation in SEED_CATIONS:
        for anion in SEED_ANIONS:
            for prototype in ("rocksalt", "cscl"):
                structure = binary(cation, anion, prototype)
                material = make_material(structure, dataset="test-seed", source_id=f"{cation}{anion}-{prototype}")
                record_energy(scheme, source_key=f"seed:{cation}{anion}:{prototype}", material=material,
                              formation_energy_per_atom=synthetic_energy(cation, anion, prototype))
                count += 1
    return count


def database_url() -> str:
    p = connection.settings_dict
    auth = p["USER"] + (f":{p['PASSWORD']}" if p.get("PASSWORD") else "")
    host = p["HOST"] or "127.0.0.1"
    if host.startswith("/"):  # unix socket (embedded PostgreSQL)
        return f"postgres://{auth}@/{p['NAME']}?host={host}" + (f"&port={p['PORT']}" if p.get("PORT") else "")
    return f"postgres://{auth}@{host}:{p['PORT'] or 5432}/{p['NAME']}"


def start_worker(name: str, log: Path, var: Path, *, dft_sleep: float = 0.0, beat: bool = False,
                 extra_env: dict[str, str] | None = None, queues: str = "default,screening,dft",
                 concurrency: int = 2) -> subprocess.Popen:
    """A prefork worker, as users run it (supervised: started again if it dies): its pool processes are daemonic, so
    a task there may not start processes.

    By default one worker serves all three queues with two processes; ``queues`` splits them as the quick start does
    (``default,screening`` apart from ``dft``)."""
    env = {
        **os.environ,
        "DATABASE_URL": database_url(),
        "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
        "CELERY_RESULT_BACKEND": settings.CELERY_RESULT_BACKEND,
        "GNOMON_DFT_BACKEND_PLUGINS": "tests.discovery.dft_support",
        "GNOMON_DFT_WORKDIR": str(var / "dft"),
        "GNOMON_MODEL_DIR": str(settings.MODEL_DIR),
        "GNOMON_TEST_DFT_SLEEP": str(dft_sleep),
        "GNOMON_TORCH_THREADS": "1",
        "PYTHONPATH": str(ROOT),
        **(extra_env or {}),
    }
    args = [sys.executable, "-m", "celery", "-A", "gnomon", "worker", "-Q", queues, "-P", "prefork",
            "-c", str(concurrency), "-n", f"{name}@%h", "--without-mingle", "--without-gossip", "-l", "INFO"]
    if beat:
        args += ["-B", "-s", str(var / f"beat-{name}")]
    args = supervised(sys.executable, args)  # restarted when it dies, as Docker and the quick start do
    return subprocess.Popen(args, cwd=ROOT, env=env, stdout=log.open("ab"), stderr=subprocess.STDOUT,
                            start_new_session=True)


def stop(proc: subprocess.Popen, sig: int = signal.SIGTERM) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, sig)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=20)


def wait_for(predicate: Callable[[], bool], timeout: float, what: str, log: Path) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.5)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}; worker log tail:\n"
                         + log.read_text(errors="replace")[-6000:])


def campaign_finished(campaign: Campaign) -> Callable[[], bool]:
    def check() -> bool:
        campaign.refresh_from_db()
        return campaign.status in (Campaign.Status.COMPLETED, Campaign.Status.FAILED, Campaign.Status.CANCELLED)

    return check


def job_running(campaign: Campaign) -> Callable[[], bool]:
    def check() -> bool:
        return DFTJob.objects.filter(candidate__round__campaign=campaign, state=DFTJob.State.RUNNING).exists()

    return check


def purge_queues() -> None:
    """Drop messages other test runs left on this broker database."""
    from gnomon.celery import app

    with app.connection_for_write() as conn:
        for queue in ("default", "screening", "dft"):
            conn.default_channel.queue_purge(queue)


def assert_no_duplicates(campaign: Campaign) -> None:
    """What unique constraints and idempotent stages promise after any crash: nothing twice."""
    candidates = Candidate.objects.filter(round__campaign=campaign)
    repeated = candidates.values("round", "fingerprint").annotate(n=Count("id")).filter(n__gt=1)
    assert not repeated.exists(), f"duplicate candidates: {list(repeated)}"
    jobs_per_candidate = (DFTJob.objects.filter(candidate__round__campaign=campaign)
                          .values("candidate").annotate(n=Count("id")).filter(n__gt=1))
    assert not jobs_per_candidate.exists(), f"candidates with several DFT jobs: {list(jobs_per_candidate)}"
    energies = EnergyRecord.objects.values("scheme", "source_key").annotate(n=Count("id")).filter(n__gt=1)
    assert not energies.exists(), f"duplicate energy records: {list(energies)}"
    origins = MaterialOrigin.objects.values("dataset", "source_id").annotate(n=Count("id")).filter(n__gt=1)
    assert not origins.exists(), f"duplicate material origins: {list(origins)}"
    for job in DFTJob.objects.filter(candidate__round__campaign=campaign, state=DFTJob.State.SUCCEEDED):
        assert EnergyRecord.objects.filter(source_key=f"dftjob:{job.pk}").count() == 1, job
        assert job.material_id is not None and Material.objects.filter(pk=job.material_id).exists(), job


def assert_completed_cleanly(campaign: Campaign, rounds: int) -> None:
    """Completed, every round done, every DFT job terminal and each success counted once, nothing duplicated."""
    from discovery.models import CampaignRound

    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.COMPLETED, campaign.error
    done = list(CampaignRound.objects.filter(campaign=campaign).order_by("index"))
    assert [r.stage for r in done] == ["done"] * rounds
    jobs = DFTJob.objects.filter(candidate__round__campaign=campaign)
    assert not jobs.exclude(state__in=[DFTJob.State.SUCCEEDED, DFTJob.State.FAILED]).exists()
    assert jobs.filter(state=DFTJob.State.SUCCEEDED).count() == sum(r.n_dft_done for r in done) > 0
    assert_no_duplicates(campaign)
