"""Running a claimed job to a terminal state, and everything a finished job writes, in one transaction."""

from __future__ import annotations

import dataclasses
import logging
import shutil
import time
import traceback
from pathlib import Path

from django.conf import settings
from django.db import InterfaceError, OperationalError, transaction
from django.utils import timezone
from pymatgen.core import Structure

from catalog.models import ElementalReference, Material, MaterialOrigin, Scheme
from catalog.services import hulls as hull_service
from catalog.structures import chemsys_of
from discovery.dft import DFTError, DFTResult, get_preset
from discovery.models import TERMINAL_JOB_STATES, Candidate, DFTJob
from discovery.services.dft.jobs import (
    STEP_BUDGET_FACTOR,
    TIME_LIMIT_S,
    JobOutcome,
    JobTimeLimitExceeded,
    _clip,
    _unlock,
    claim_job,
    enqueue_job,
)
from discovery.services.dft.references import ensure_references
from discovery.services.dft.schemes import backend_for, ensure_scheme_for

logger = logging.getLogger(__name__)


def execute_job(job_id: int, *, final_attempt: bool = True, worker_host: str | None = None) -> JobOutcome:
    """Run one job to a terminal state (or back to queued on a transient error, which is then re-raised for the
    Celery task to retry). Safe to call twice for the same job: the second call does nothing."""
    job = claim_job(job_id, worker_host)
    if job is None:
        state = DFTJob.objects.filter(pk=job_id).values_list("state", flat=True).first()
        return JobOutcome(job_id, state or "missing", f"skipped: job is {state} or held by another worker")
    t0 = time.perf_counter()
    try:
        backend = backend_for(job.backend)
        preset = get_preset(job.preset)
        scheme = ensure_scheme_for(backend.scheme_for(preset))
        structure = Structure.from_dict(job.input_structure)
        if not job.is_reference:
            ensure_references(scheme, structure, backend=job.backend, preset=job.preset, parent=job)
        workdir = Path(settings.GNOMON_DFT_WORKDIR) / f"job-{job.pk}-attempt-{job.attempts}"
        if workdir.exists():
            shutil.rmtree(workdir)
        budget = int(job.settings.get(STEP_BUDGET_FACTOR, 1))
        start = Structure.from_dict(job.settings["restart_structure"]) if "restart_structure" in job.settings else structure
        result = backend.run(start, dataclasses.replace(preset, max_steps=preset.max_steps * budget), workdir=workdir,
                             is_molecule=bool(job.settings.get("is_molecule")))
        try:
            require_converged(result, preset, budget)
        except RelaxationNotConverged as unconverged:
            unconverged.structure = result.structure  # the retry starts where this relaxation stopped
            raise
        complete_job(job.pk, result, scheme=scheme, wall_time_s=time.perf_counter() - t0)
        return JobOutcome(job.pk, DFTJob.State.SUCCEEDED, "succeeded")
    except RelaxationNotConverged as exc:
        if int(job.settings.get(STEP_BUDGET_FACTOR, 1)) == 1:
            retry_with_larger_budget(job.pk, exc, wall_time_s=time.perf_counter() - t0)
            return JobOutcome(job.pk, DFTJob.State.QUEUED, "requeued: relaxation not converged, larger step budget")
        fail_job(job.pk, exc, wall_time_s=time.perf_counter() - t0)
        return JobOutcome(job.pk, DFTJob.State.FAILED, f"failed: {type(exc).__name__}")
    except BaseException as exc:
        if _is_soft_time_limit(exc):
            exc = JobTimeLimitExceeded(f"ran past its time limit of {job.settings.get(TIME_LIMIT_S, '?')} s (the "
                                       f"{job.preset!r} preset's {get_preset(job.preset).time_limit_s} s, see "
                                       "time_limit_for)")
        transient = is_transient(exc)
        if not isinstance(exc, Exception):  # KeyboardInterrupt/SystemExit: leave for requeue_stale_jobs
            raise
        if transient and not final_attempt:
            release_for_retry(job.pk, exc, wall_time_s=time.perf_counter() - t0)
            raise
        fail_job(job.pk, exc, wall_time_s=time.perf_counter() - t0, transient=transient)
        if transient:
            raise
        return JobOutcome(job.pk, DFTJob.State.FAILED, f"failed: {type(exc).__name__}")
    finally:
        _unlock(job_id)


class RelaxationNotConverged(DFTError):
    """The relaxation stopped at its step limit with forces or stress above the threshold: the energy belongs to no
    minimum, so it never enters a hull. Retried once, from where it stopped, with twice the steps."""


def require_converged(result: DFTResult, preset, budget: int = 1) -> None:
    """Only converged results enter a hull: a relaxation that says it did not converge raises."""
    if preset.relax and result.relaxation.get("converged") is False:
        raise RelaxationNotConverged(
            f"relaxation of {result.structure.composition.reduced_formula} did not reach fmax {preset.fmax} eV/Å "
            f"within {preset.max_steps * budget} steps ({result.relaxation.get('steps')} taken)"
        )


def retry_with_larger_budget(job_id: int, exc: RelaxationNotConverged, *, wall_time_s: float) -> None:
    """Queue the job again with twice the step budget, starting from where the relaxation stopped."""
    restart = getattr(exc, "structure", None)
    with transaction.atomic():
        job = DFTJob.objects.select_for_update().get(pk=job_id)
        if job.state != DFTJob.State.RUNNING:
            return
        job.settings = {**job.settings, STEP_BUDGET_FACTOR: 2,
                        **({"restart_structure": restart.as_dict()} if restart is not None else {})}
        job.state = DFTJob.State.QUEUED
        job.wall_time_s = wall_time_s
        job.error_class = type(exc).__name__
        job.error_message = f"retrying with twice the step budget: {exc}"
        job.log_excerpt = _clip(f"[attempt {job.attempts}] {exc}; queued again with twice the steps\n" + job.log_excerpt)
        job.save(update_fields=["settings", "state", "wall_time_s", "error_class", "error_message", "log_excerpt"])
        enqueue_job(job, countdown=5)  # this worker still holds the job's lock until execute_job returns


def is_transient(exc: BaseException) -> bool:
    if isinstance(exc, DFTError):
        return exc.retryable
    return isinstance(exc, (OperationalError, InterfaceError, ConnectionError, TimeoutError))


def _is_soft_time_limit(exc: BaseException) -> bool:
    return type(exc).__name__ == "SoftTimeLimitExceeded"


def release_for_retry(job_id: int, exc: BaseException, *, wall_time_s: float) -> None:
    with transaction.atomic():
        job = DFTJob.objects.select_for_update().get(pk=job_id)
        if job.state != DFTJob.State.RUNNING:
            return
        job.state = DFTJob.State.QUEUED
        job.error_class = type(exc).__name__[:120]
        job.error_message = f"transient, will retry: {exc}"
        job.wall_time_s = wall_time_s
        job.save(update_fields=["state", "error_class", "error_message", "wall_time_s"])


def fail_job(job_id: int, exc: BaseException, *, wall_time_s: float, transient: bool = False) -> None:
    with transaction.atomic():
        job = DFTJob.objects.select_for_update().get(pk=job_id)
        if job.state in TERMINAL_JOB_STATES:
            return
        job.state = DFTJob.State.FAILED
        job.finished_at = timezone.now()
        job.wall_time_s = wall_time_s
        job.error_class = type(exc).__name__[:120]
        kind = "transient error, retries exhausted" if transient else "not retried"
        job.error_message = f"{kind}: {exc}"
        job.log_excerpt = _clip("".join(traceback.format_exception(exc))[-3000:] + "\n" + job.log_excerpt)
        job.save(update_fields=["state", "finished_at", "wall_time_s", "error_class", "error_message", "log_excerpt"])
        if job.candidate_id and not job.is_reference:
            Candidate.objects.filter(pk=job.candidate_id).update(status=Candidate.Status.FAILED)


def complete_job(job_id: int, result: DFTResult, *, scheme: Scheme, wall_time_s: float) -> DFTJob:
    """Everything a successful job writes, in one transaction (see the module docstring)."""
    from catalog.services.energies import record_energy, set_elemental_references

    with transaction.atomic():
        job = DFTJob.objects.select_for_update().get(pk=job_id)
        if job.state != DFTJob.State.RUNNING:
            logger.info("DFT job %s is %s: result discarded", job_id, job.state)
            return job
        material = job.material
        candidate = Candidate.objects.select_for_update().get(pk=job.candidate_id) if job.candidate_id else None
        if material is None and (candidate is not None or job.settings.get("origin")):
            material = _register_result_material(job, candidate, result.structure)
        summary = result.to_dict()
        record = record_energy(
            scheme,
            source_key=f"dftjob:{job.pk}",
            material=material,
            composition=result.structure.composition.formula.replace(" ", ""),
            energy_total=result.energy_total,
            energy_per_atom=result.energy_per_atom,
            correction=result.correction,
            produced_by=f"DFTJob {job.pk} ({job.backend}/{job.preset})",
            data={k: summary[k] for k in ("settings", "scf", "relaxation", "timings", "peak_memory_mb", "structure")}
            | {"label": job.settings.get("label", ""), "dft_job": job.pk},
            update_hull=False,
            protocol_hash=result.scheme.protocol_hash or None,  # refused unless it is the scheme's (ProtocolMismatch)
        )
        elements = sorted({el.symbol for el in result.structure.composition.elements})
        if len(elements) == 1 and scheme.kind == Scheme.Kind.TOTAL_ENERGY:
            current = ElementalReference.objects.filter(scheme=scheme, element=elements[0]).first()
            if current is None or result.energy_per_atom < current.energy_per_atom:
                set_elemental_references(scheme, {elements[0]: result.energy_per_atom},
                                         source=f"DFTJob {job.pk}: {job.settings.get('label', '')}")
        if candidate is not None:
            candidate.status = Candidate.Status.VERIFIED
            candidate.material = material
            candidate.save(update_fields=["status", "material"])
        job.state = DFTJob.State.SUCCEEDED
        job.scheme = scheme
        job.material = material
        job.energy_record = record
        job.finished_at = timezone.now()
        job.wall_time_s = wall_time_s
        job.settings = {**job.settings, "calculation": result.settings}
        job.result = summary
        history = "".join(line + "\n" for line in job.log_excerpt.splitlines()
                          if line.startswith(("[requeued", "[attempt")))
        job.log_excerpt = _clip(history + result.log_excerpt)
        job.error_class = ""
        job.error_message = ""
        job.save()
        update_hulls_for(scheme, [chemsys_of(result.structure.composition)])
    return job


def update_hulls_for(scheme: Scheme, chemsystems: list[str]) -> None:
    """Incremental hull update (``catalog.services.hulls``), inside the caller's transaction. Looked up on the module
    at each call, so a worker's instrumentation (the kill tests' ``dft_support``) sees every update."""
    hull_service.update_hulls(scheme, chemsystems)


def _register_result_material(job: DFTJob, candidate: Candidate | None, structure: Structure) -> Material:
    from catalog.services.materials import register_material

    campaign_id = None
    if candidate is not None:
        rnd = candidate.round
        campaign_id = rnd.campaign_id if rnd is not None else None
        origin = {
            "dataset": f"campaign:{campaign_id}" if campaign_id else "campaign",
            "source_id": f"candidate:{candidate.pk}",
            "kind": MaterialOrigin.Kind.CAMPAIGN,
            "details": {"round": rnd.index if rnd is not None else None,
                        "parent": candidate.parent.public_id if candidate.parent_id else None,
                        "scheme": f"{job.backend}/{job.preset}"},
        }
    else:
        origin = dict(job.settings["origin"])
        origin.setdefault("kind", MaterialOrigin.Kind.USER)
        origin.setdefault("details", {})
    material, _created = register_material(
        structure, dataset=origin["dataset"], source_id=origin["source_id"], kind=origin["kind"],
        details=origin["details"], campaign_id=campaign_id, candidate_id=candidate.pk if candidate else None,
        dft_job_id=job.pk,
    )
    return material
