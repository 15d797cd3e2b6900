"""DFT jobs as a state machine, with a fake backend: success path, references first, failures, atomicity, re-queueing."""

from __future__ import annotations

import psycopg
import pytest
from django.core.management import call_command
from django.db import connection
from pymatgen.core import Structure

from catalog.models import ElementalReference, EnergyRecord, HullEntry, Material, MaterialOrigin
from catalog.services import hulls as hull_service
from discovery.models import Campaign, CampaignRound, Candidate, DFTJob
from discovery.services import dft
from tests.discovery import dft_support  # noqa: F401 - registers the slow-fake backend
from tests.factories import make_material, rocksalt

pytestmark = pytest.mark.django_db

BACKEND = "slow-fake"


@pytest.fixture(autouse=True)
def _fake_backend(fake_dft_backend):
    return fake_dft_backend


def _nacl(fail: str | None = None) -> Structure:
    s = rocksalt("Na", "Cl", 5.69).get_primitive_structure()
    if fail:
        s.properties["fail"] = fail
    return s


def _candidate(structure: Structure) -> Candidate:
    campaign = Campaign.objects.create(name="test", elements=["Na", "Cl"])
    rnd = CampaignRound.objects.create(campaign=campaign, index=1)
    return Candidate.objects.create(round=rnd, structure=structure.as_dict(), formula_reduced="NaCl", chemsys="Cl-Na",
                                    pipeline="structural", fingerprint="f1", status=Candidate.Status.SELECTED)


def test_success_writes_energy_material_candidate_and_hull_after_computing_references():
    candidate = _candidate(_nacl())
    job = dft.create_job(candidate=candidate, backend=BACKEND, preset="fast")
    assert job.state == DFTJob.State.QUEUED

    outcome = dft.execute_job(job.pk)

    assert outcome.action == "succeeded"
    job.refresh_from_db()
    candidate.refresh_from_db()
    assert job.state == DFTJob.State.SUCCEEDED and job.attempts == 1 and job.wall_time_s is not None
    assert job.scheme.name == "TEST-fake-fast" and job.result["composition"] == "Na1Cl1"
    # elemental references of the system were computed first, in the same scheme, and cached
    refs = dict(ElementalReference.objects.filter(scheme=job.scheme).values_list("element", "energy_per_atom"))
    assert refs == pytest.approx({"Na": -1.3, "Cl": -1.8})
    assert DFTJob.objects.filter(is_reference=True, state=DFTJob.State.SUCCEEDED).count() == 2
    # the candidate became a verified Material with a campaign origin naming round, candidate and job
    assert candidate.status == Candidate.Status.VERIFIED and candidate.material_id == job.material_id
    origin = MaterialOrigin.objects.get(material=job.material, dataset=f"campaign:{candidate.round.campaign_id}")
    assert origin.kind == MaterialOrigin.Kind.CAMPAIGN
    assert origin.details["round"] == 1 and origin.candidate_id == candidate.pk
    assert origin.dft_job_id == job.pk and origin.campaign_id == candidate.round.campaign_id
    # the energy record and the hull: NaCl (toy energy 1 eV/atom below the elements) is stable
    record = EnergyRecord.objects.get(source_key=f"dftjob:{job.pk}")
    assert job.energy_record == record and record.material == job.material
    assert record.energy_total == pytest.approx(-1.3 - 1.8 - 2.0)
    hull = HullEntry.objects.get(energy_record=record)
    assert hull.is_stable and hull.formation_energy_per_atom == pytest.approx(-1.0)

    # a second delivery of the same message does nothing
    assert dft.execute_job(job.pk).action.startswith("skipped")
    assert EnergyRecord.objects.filter(source_key=f"dftjob:{job.pk}").count() == 1
    job.refresh_from_db()
    assert job.attempts == 1
    # references are cached: a second candidate computes none
    n_jobs = DFTJob.objects.count()
    other = dft.create_job(structure=_nacl(), backend=BACKEND, preset="fast")
    dft.execute_job(other.pk)
    assert DFTJob.objects.count() == n_jobs + 1


def test_create_job_is_idempotent_per_target():
    candidate = _candidate(_nacl())
    first = dft.create_job(candidate=candidate, backend=BACKEND, preset="fast")
    assert dft.create_job(candidate=candidate, backend=BACKEND, preset="fast").pk == first.pk
    assert dft.create_job(candidate=candidate, backend=BACKEND, preset="standard").pk != first.pk


def test_physics_failure_is_recorded_and_not_retried():
    candidate = _candidate(_nacl(fail="physics"))
    job = dft.create_job(candidate=candidate, backend=BACKEND, preset="fast")
    outcome = dft.execute_job(job.pk, final_attempt=False)  # retries left, but physics failures never retry
    job.refresh_from_db()
    candidate.refresh_from_db()
    assert outcome.state == DFTJob.State.FAILED
    assert job.state == DFTJob.State.FAILED and job.error_class == "PhysicsError"
    assert "SCF did not converge" in job.error_message and "not retried" in job.error_message
    assert candidate.status == Candidate.Status.FAILED
    assert not EnergyRecord.objects.filter(source_key=f"dftjob:{job.pk}").exists()


def test_an_unconverged_relaxation_is_retried_once_with_more_steps_and_never_reaches_a_hull(_fake_backend):
    candidate = _candidate(_nacl(fail="unconverged"))
    job = dft.create_job(candidate=candidate, backend=BACKEND, preset="fast")
    outcome = dft.execute_job(job.pk)
    job.refresh_from_db()
    assert outcome.state == DFTJob.State.QUEUED and job.state == DFTJob.State.QUEUED
    assert job.settings["step_budget_factor"] == 2 and "restart_structure" in job.settings
    assert job.error_class == "RelaxationNotConverged" and "within 30 steps" in job.error_message
    assert _fake_backend[-1] == job.pk  # sent again
    outcome = dft.execute_job(job.pk)
    job.refresh_from_db()
    candidate.refresh_from_db()
    assert outcome.state == DFTJob.State.FAILED and job.state == DFTJob.State.FAILED and job.attempts == 2
    assert "within 60 steps" in job.error_message and candidate.status == Candidate.Status.FAILED
    assert not EnergyRecord.objects.filter(source_key=f"dftjob:{job.pk}").exists()
    assert not HullEntry.objects.filter(energy_record__source_key=f"dftjob:{job.pk}").exists()


def test_transient_failure_goes_back_to_queued_then_fails_when_retries_run_out():
    job = dft.create_job(structure=_nacl(fail="transient"), backend=BACKEND, preset="fast")
    from discovery.dft import TransientDFTError

    with pytest.raises(TransientDFTError):
        dft.execute_job(job.pk, final_attempt=False)
    job.refresh_from_db()
    assert job.state == DFTJob.State.QUEUED and job.error_class == "TransientDFTError" and job.attempts == 1
    with pytest.raises(TransientDFTError):
        dft.execute_job(job.pk, final_attempt=True)
    job.refresh_from_db()
    assert job.state == DFTJob.State.FAILED and job.attempts == 2 and "retries exhausted" in job.error_message


def test_success_path_is_one_transaction(monkeypatch):
    """If anything in the success path fails (here the hull update), nothing of it is written."""
    candidate = _candidate(_nacl())
    dft.ensure_references(dft.scheme_for(BACKEND, "fast"), _nacl(), backend=BACKEND, preset="fast")
    n_records, n_materials = EnergyRecord.objects.count(), Material.objects.count()
    job = dft.create_job(candidate=candidate, backend=BACKEND, preset="fast")

    def broken(*_args, **_kwargs):
        raise RuntimeError("hull service down")

    monkeypatch.setattr(hull_service, "update_hulls", broken)
    dft.execute_job(job.pk)
    job.refresh_from_db()
    candidate.refresh_from_db()
    assert job.state == DFTJob.State.FAILED and "hull service down" in job.error_message
    assert EnergyRecord.objects.count() == n_records and Material.objects.count() == n_materials
    assert candidate.material_id is None


def test_requeue_stale_jobs_only_touches_jobs_whose_worker_is_gone(_fake_backend):
    orphan = dft.create_job(structure=_nacl(), backend=BACKEND, preset="fast")
    alive = dft.create_job(structure=_nacl(), backend=BACKEND, preset="fast")
    DFTJob.objects.filter(pk__in=[orphan.pk, alive.pk]).update(state=DFTJob.State.RUNNING, attempts=1,
                                                               worker_host="gone")
    # another "worker" (its own database connection) holds alive's lock
    params = connection.get_connection_params()
    with psycopg.connect(**{k: v for k, v in params.items() if k in ("host", "port", "user", "password", "dbname")},
                         autocommit=True) as other:
        other.execute("SELECT pg_advisory_lock(%s, %s)", [dft.ADVISORY_LOCK_CLASS, alive.pk])
        assert dft.requeue_stale_jobs() == [orphan.pk]
        assert dft.execute_job(alive.pk).action.startswith("skipped")  # a duplicate delivery does not run it twice
    orphan.refresh_from_db()
    alive.refresh_from_db()
    assert orphan.state == DFTJob.State.QUEUED and "lost" in orphan.log_excerpt
    assert alive.state == DFTJob.State.RUNNING
    assert _fake_backend == [orphan.pk]
    dft.execute_job(orphan.pk)
    orphan.refresh_from_db()
    assert orphan.state == DFTJob.State.SUCCEEDED and orphan.attempts == 2


def test_cancel_discards_and_retry_failed_requeues(_fake_backend):
    job = dft.create_job(structure=_nacl(fail="physics"), backend=BACKEND, preset="fast")
    dft.execute_job(job.pk)
    assert dft.retry_failed_jobs([job.pk]) == 1
    job.refresh_from_db()
    assert job.state == DFTJob.State.QUEUED and _fake_backend == [job.pk]
    dft.cancel_job(job.pk)
    job.refresh_from_db()
    assert job.state == DFTJob.State.CANCELLED
    assert dft.execute_job(job.pk).action.startswith("skipped")


def test_admin_retry_action(admin_client, _fake_backend):
    job = dft.create_job(structure=_nacl(fail="physics"), backend=BACKEND, preset="fast")
    dft.execute_job(job.pk)
    response = admin_client.post("/admin/discovery/dftjob/", {"action": "retry_failed", "_selected_action": [job.pk]})
    assert response.status_code == 302
    job.refresh_from_db()
    assert job.state == DFTJob.State.QUEUED
    assert admin_client.get("/admin/discovery/dftjob/").status_code == 200


def test_run_dft_command_on_a_material(capsys):
    material = make_material(_nacl(), dataset="test", source_id="nacl")
    call_command("run_dft", material=material.public_id, backend=BACKEND, preset="fast")
    out = capsys.readouterr().out
    assert "succeeded" in out and "TEST-fake-fast" in out and material.public_id in out
    assert EnergyRecord.objects.filter(material=material, scheme__name="TEST-fake-fast").exists()


def test_bootstrap_hull_command_builds_a_consistent_hull(capsys):
    call_command("bootstrap_hull", elements="Na,Cl", backend=BACKEND, preset="fast")
    out = capsys.readouterr().out
    assert "NaCl-rocksalt" in out and "Cl2-molecule" in out
    refs = set(ElementalReference.objects.filter(scheme__name="TEST-fake-fast").values_list("element", flat=True))
    assert refs == {"Na", "Cl"}
    assert MaterialOrigin.objects.filter(dataset="bootstrap:TEST-fake-fast", source_id="NaCl-rocksalt").exists()
    assert not Material.objects.filter(formula_reduced="Cl2").exists()  # molecules stay composition-only
    n = DFTJob.objects.count()
    call_command("bootstrap_hull", elements="Na,Cl", backend=BACKEND, preset="fast")  # re-run: nothing new
    assert DFTJob.objects.count() == n


def test_a_job_whose_workers_keep_dying_fails_instead_of_looping(settings, _fake_backend):
    job = dft.create_job(structure=_nacl(), backend=BACKEND, preset="fast")
    DFTJob.objects.filter(pk=job.pk).update(state=DFTJob.State.RUNNING, attempts=settings.GNOMON_DFT_MAX_RETRIES + 1)
    assert dft.requeue_stale_jobs() == []
    job.refresh_from_db()
    assert job.state == DFTJob.State.FAILED and job.error_class == "WorkerLost" and _fake_backend == []


def test_time_limit_covers_the_references_computed_inline_and_the_retry_budget(monkeypatch):
    from catalog.services.energies import set_elemental_references
    from discovery import messages
    from discovery.dft import get_preset

    sent = {}
    monkeypatch.setattr(messages, "run_dft_job", lambda job_id, **kw: sent.update({job_id: kw["time_limit_s"]}))
    preset_limit = get_preset("fast").time_limit_s
    job = dft.create_job(candidate=_candidate(_nacl()), backend=BACKEND, preset="fast")
    dft.enqueue_job(job)  # Na and Cl have no reference in the scheme yet: both run inside this job first
    assert sent[job.pk] == 3 * preset_limit
    job.refresh_from_db()
    assert job.settings[dft.TIME_LIMIT_S] == 3 * preset_limit  # recorded, so a time-out message can quote it

    set_elemental_references(dft.scheme_for(BACKEND, "fast"), {"Na": -1.3, "Cl": -1.8}, source="test")
    assert dft.time_limit_for(job) == preset_limit
    job.settings = {**job.settings, dft.STEP_BUDGET_FACTOR: 2}  # the retry of an unconverged relaxation
    assert dft.time_limit_for(job) == 2 * preset_limit
