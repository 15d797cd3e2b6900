"""DFT verification jobs: the state machine around a backend run, and what a finished job writes.

States: ``queued → running → succeeded | failed | cancelled`` (a transient error sends a running job back to queued for a
retry with back-off). Guarantees:

- **Exactly once.** A worker claims a job under a PostgreSQL session advisory lock that it holds for the whole run. The
  lock dies with the worker's database connection, so a job that says ``running`` while nobody holds its lock belongs
  to a dead worker: ``requeue_stale_jobs`` (run when a worker starts, and by beat) puts it back in the queue. A second
  delivery of the same message (acks_late redelivery) finds the lock held or the job finished and does nothing.
- **Nothing half-written.** The backend runs outside any transaction; everything a success writes — the energy record,
  the candidate's status, a new ``Material`` (origin: campaign, round, parent, job), the incremental hull update and the
  job row — commits in ONE transaction. A worker killed (SIGKILL) mid-run leaves only the ``running`` job row behind.
- **Consistent energies.** A job's energy goes to the scheme of its backend+preset (``GPAW-PBE-fast``,
  ``ML-CHGNet-0.4.2``...). Before a job runs, the elemental references of its chemical system are computed in the same
  scheme if missing (cached as energy records + ``ElementalReference``), and when the system has no compound computed in
  that scheme yet, the catalog's stable phases of the system are queued as DFT jobs of their own.
- **Retry policy.** Transient errors (scheduler, node, database connection) are retried with back-off by the Celery
  task; physics failures (SCF not converging after the preset's fallbacks), parse errors and time-outs are recorded with
  their reason and not retried.
"""

from __future__ import annotations

import dataclasses
import logging
import shutil
import socket
import time
import traceback
import zlib
from collections.abc import Iterable
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.db import DatabaseError, IntegrityError, InterfaceError, OperationalError, connection, transaction
from django.utils import timezone
from pymatgen.core import Composition, Structure

from catalog.models import ElementalReference, EnergyRecord, Material, MaterialOrigin, Scheme
from catalog.services import hulls as hull_service
from catalog.structures import chemsys_of
from discovery import messages
from discovery.dft import DFTError, DFTResult, SchemeSpec, get_backend, get_preset
from discovery.dft.base import load_plugins
from discovery.dft.references import ReferenceStructure, elemental_reference
from discovery.generation.prototypes import (
    SearchedStructure,
    prototype_structures,
    rank_searched,
)
from discovery.models import DEAD_JOB_STATES, TERMINAL_JOB_STATES, Candidate, DFTJob

logger = logging.getLogger(__name__)

ADVISORY_LOCK_CLASS = 0x67444654  # 'gDFT': first key of pg_try_advisory_lock(int, int); the job id is the second
REFERENCE_LOCK_CLASS = 0x67524546  # 'gREF': first key of the per-(scheme, element) reference lock
LOG_EXCERPT_CHARS = 6000


class DFTJobError(ValueError):
    """A job cannot be created or changed as asked (bad state, missing structure); the message says why."""


class JobTimeLimitExceeded(DFTError):
    """The job ran past its preset's time limit."""


@dataclass(frozen=True)
class JobOutcome:
    job_id: int
    state: str
    action: str  # "succeeded" | "failed" | "requeued" | "skipped: ..."


# ----------------------------------------------------------------------------------------------------------------------
# Backends, schemes, settings


def backend_for(name: str):
    """A backend instance by name; plugin modules (``GNOMON_DFT_BACKEND_PLUGINS``) are imported first."""
    load_plugins(settings.GNOMON_DFT_BACKEND_PLUGINS)
    options = settings.GNOMON_VASP if name == "vasp" else {}
    return get_backend(name, **options)


def ensure_scheme_for(spec: SchemeSpec) -> Scheme:
    from catalog.services.energies import ensure_scheme

    return ensure_scheme(
        spec.name, spec.kind, protocol=spec.protocol or None, level_of_theory=spec.level_of_theory[:200],
        is_dft=spec.is_dft, correction_policy=spec.correction_policy[:200], description=spec.description,
    )


def scheme_for(backend: str, preset: str) -> Scheme:
    return ensure_scheme_for(backend_for(backend).scheme_for(get_preset(preset)))


# ----------------------------------------------------------------------------------------------------------------------
# Creating, enqueueing, cancelling, retrying


def create_job(
    *,
    candidate: Candidate | None = None,
    material: Material | None = None,
    structure: Structure | None = None,
    backend: str | None = None,
    preset: str | None = None,
    label: str = "",
    is_molecule: bool = False,
    origin: dict | None = None,
    is_reference: bool = False,
    reference_for: int | None = None,
    competitor_for: int | None = None,
    searched_for: str = "",
) -> DFTJob:
    """A queued job for a candidate, a catalog material or a bare structure (bootstrap / references).

    Idempotent for candidates and materials: an unfinished or succeeded job for the same target, backend and preset is
    returned instead of a new one. ``origin`` ({dataset, source_id, kind, details}) registers the relaxed structure as a
    ``Material`` on success when the job has neither candidate nor material (e.g. bootstrap_hull's prototypes).
    """
    backend = backend or settings.GNOMON_DFT_BACKEND
    preset = preset or settings.GNOMON_DFT_PRESET
    get_preset(preset)  # fail early on a typo
    if structure is None:
        if candidate is not None:
            structure = Structure.from_dict(candidate.structure)
        elif material is not None:
            structure = material.to_structure()
        else:
            raise DFTJobError("a DFT job needs a candidate, a material or a structure")
    if candidate is not None or material is not None:
        existing = (
            DFTJob.objects.filter(candidate=candidate, material=material, backend=backend, preset=preset)
            .exclude(state__in=DEAD_JOB_STATES)
            .first()
        )
        if existing is not None:
            return existing
    job_settings = {"label": label or structure.composition.reduced_formula, "is_molecule": is_molecule}
    if origin:
        job_settings["origin"] = origin
    try:
        with transaction.atomic():
            return DFTJob.objects.create(
                candidate=candidate, material=material, input_structure=structure.as_dict(), backend=backend,
                preset=preset, settings=job_settings, is_reference=is_reference, reference_for_id=reference_for,
                competitor_for_id=competitor_for, searched_for=searched_for,
            )
    except IntegrityError:  # another process created the same job meanwhile (one_live_dft_job_per_candidate/material)
        return (DFTJob.objects.filter(candidate=candidate, material=material, backend=backend, preset=preset)
                .exclude(state__in=DEAD_JOB_STATES).get())


def enqueue_job(job: DFTJob, countdown: float | None = None) -> None:
    """Send the job to the ``dft`` queue once the current transaction commits, with its preset's time limit
    (``countdown``: not before so many seconds, e.g. once the sending worker has let go of the job's lock)."""
    messages.run_dft_job(job.pk, time_limit_s=get_preset(job.preset).time_limit_s, countdown=countdown)


def cancel_job(job_id: int, reason: str = "cancelled") -> DFTJob:
    """Queued or running jobs become cancelled; a running backend finishes but its result is discarded."""
    with transaction.atomic():
        job = DFTJob.objects.select_for_update().get(pk=job_id)
        if job.state in TERMINAL_JOB_STATES:
            raise DFTJobError(f"DFT job {job_id} is already {job.state}")
        job.state = DFTJob.State.CANCELLED
        job.finished_at = timezone.now()
        job.error_message = reason
        job.save(update_fields=["state", "finished_at", "error_message"])
    return job


def retry_failed_jobs(job_ids: Iterable[int]) -> int:
    """Failed (or cancelled) jobs go back to queued and are re-sent; returns how many."""
    n = 0
    with transaction.atomic():
        for job in DFTJob.objects.select_for_update().filter(
            pk__in=list(job_ids), state__in=DEAD_JOB_STATES
        ):
            job.state = DFTJob.State.QUEUED
            job.finished_at = None
            try:
                with transaction.atomic():
                    job.save(update_fields=["state", "finished_at"])
            except IntegrityError:  # the candidate already has a newer live job: nothing to retry
                continue
            enqueue_job(job)
            n += 1
    return n


# ----------------------------------------------------------------------------------------------------------------------
# Claiming and the advisory lock


def _try_lock(job_id: int) -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s, %s)", [ADVISORY_LOCK_CLASS, int(job_id)])
        return bool(cursor.fetchone()[0])


def _unlock(job_id: int) -> None:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_unlock(%s, %s)", [ADVISORY_LOCK_CLASS, int(job_id)])
    except DatabaseError:  # the connection is gone, and the lock with it
        logger.warning("could not release the advisory lock of DFT job %s (connection lost)", job_id)


def claim_job(job_id: int, worker_host: str | None = None) -> DFTJob | None:
    """Move a queued (or orphaned running) job to running under this worker's lock; None if it is not ours to run."""
    with transaction.atomic():
        job = DFTJob.objects.select_for_update().get(pk=job_id)
        if job.state in TERMINAL_JOB_STATES:
            return None
        if not _try_lock(job.pk):
            return None  # a live worker holds it
        restarted = job.state == DFTJob.State.RUNNING
        if restarted and _give_up_on_lost_worker(job):
            _unlock(job.pk)
            return None
        job.state = DFTJob.State.RUNNING
        job.attempts += 1
        job.worker_host = (worker_host or socket.gethostname())[:120]
        job.started_at = timezone.now()
        job.finished_at = None
        if restarted:
            job.log_excerpt = _clip(f"[attempt {job.attempts}] previous worker was lost mid-run; restarted\n"
                                    + job.log_excerpt)
        job.save(update_fields=["state", "attempts", "worker_host", "started_at", "finished_at", "log_excerpt"])
    return job


def requeue_stale_jobs() -> list[int]:
    """Jobs marked running whose worker died (nobody holds their lock) go back to queued and are re-sent."""
    requeued: list[int] = []
    with transaction.atomic():
        for job in DFTJob.objects.select_for_update(skip_locked=True).filter(state=DFTJob.State.RUNNING):
            if not _try_lock(job.pk):
                continue  # its worker is alive
            _unlock(job.pk)
            if _give_up_on_lost_worker(job):
                continue
            job.state = DFTJob.State.QUEUED
            job.log_excerpt = _clip(f"[requeued {timezone.now():%Y-%m-%d %H:%M:%S}] worker {job.worker_host} lost "
                                    f"during attempt {job.attempts}\n" + job.log_excerpt)
            job.save(update_fields=["state", "log_excerpt"])
            enqueue_job(job)
            requeued.append(job.pk)
    if requeued:
        logger.warning("re-queued %d DFT jobs left running by lost workers: %s", len(requeued), requeued)
    return requeued


def max_attempts() -> int:
    return settings.GNOMON_DFT_MAX_RETRIES + 1


def _give_up_on_lost_worker(job: DFTJob) -> bool:
    """A job whose workers keep dying (hard time limit, out of memory, crashes) fails instead of looping forever."""
    if job.attempts < max_attempts():
        return False
    job.state = DFTJob.State.FAILED
    job.finished_at = timezone.now()
    job.error_class = "WorkerLost"
    job.error_message = (f"not retried: the worker running this job was lost {job.attempts} times (killed, out of "
                         f"memory or past the hard time limit of the {job.preset!r} preset)")
    job.save(update_fields=["state", "finished_at", "error_class", "error_message"])
    if job.candidate_id and not job.is_reference:
        Candidate.objects.filter(pk=job.candidate_id).update(status=Candidate.Status.FAILED)
    logger.error("DFT job %s failed: %s", job.pk, job.error_message)
    return True


# ----------------------------------------------------------------------------------------------------------------------
# Running


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
            exc = JobTimeLimitExceeded(f"ran past the {job.preset!r} preset's time limit of "
                                       f"{get_preset(job.preset).time_limit_s} s")
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


STEP_BUDGET_FACTOR = "step_budget_factor"  # DFTJob.settings: the relaxation's step budget × this (2 on its retry)


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


def _clip(text: str, limit: int = LOG_EXCERPT_CHARS) -> str:
    return text if len(text) <= limit else text[:limit] + "\n[...]"


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

    if candidate is not None:
        rnd = candidate.round
        campaign_id = rnd.campaign_id if rnd is not None else None
        origin = {
            "dataset": f"campaign:{campaign_id}" if campaign_id else "campaign",
            "source_id": f"candidate:{candidate.pk}",
            "kind": MaterialOrigin.Kind.CAMPAIGN,
            "details": {"campaign": campaign_id, "round": rnd.index if rnd is not None else None,
                        "round_id": rnd.pk if rnd is not None else None, "candidate": candidate.pk,
                        "parent": candidate.parent.public_id if candidate.parent_id else None,
                        "dft_job": job.pk, "scheme": f"{job.backend}/{job.preset}"},
        }
    else:
        origin = dict(job.settings["origin"])
        origin.setdefault("kind", MaterialOrigin.Kind.USER)
        origin["details"] = {**origin.get("details", {}), "dft_job": job.pk}
    material, _created = register_material(
        structure, dataset=origin["dataset"], source_id=origin["source_id"], kind=origin["kind"],
        details=origin["details"],
    )
    return material


# ----------------------------------------------------------------------------------------------------------------------
# Consistent references


def missing_elements(scheme: Scheme, elements: Iterable[str]) -> list[str]:
    have = set(ElementalReference.objects.filter(scheme=scheme, element__in=list(elements))
               .values_list("element", flat=True))
    return sorted(set(elements) - have)


def ensure_references(scheme: Scheme, structure: Structure, *, backend: str, preset: str,
                      parent: DFTJob | None = None) -> list[int]:
    """Compute missing elemental references of ``structure``'s system in ``scheme`` now (inline, each its own job),
    and queue the competing phases of the system that the scheme does not hold yet (``queue_competing_phases``).

    Returns the ids of the jobs it created."""
    elements = sorted({el.symbol for el in structure.composition.elements})
    created: list[int] = []
    for element in missing_elements(scheme, elements):
        with _reference_lock(scheme, element):  # two jobs of one system must not both compute its references
            if not missing_elements(scheme, [element]):
                continue  # computed by the job that held the lock
            created.append(_compute_reference(scheme, element, backend=backend, preset=preset, parent=parent))
    if len(elements) > 1:
        with _reference_lock(scheme, "-".join(elements)):  # concurrent jobs of one system queue its phases once
            created += queue_competing_phases(scheme, elements, backend=backend, preset=preset, parent=parent)
    return created


@contextmanager
def _reference_lock(scheme: Scheme, element: str):
    """A session advisory lock per (scheme, element or system): waits while another worker computes the same
    reference or queues the same system's phases."""
    key = zlib.crc32(f"{scheme.pk}:{element}".encode()) & 0x7FFFFFFF
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_lock(%s, %s)", [REFERENCE_LOCK_CLASS, key])
    try:
        yield
    finally:
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(%s, %s)", [REFERENCE_LOCK_CLASS, key])
        except DatabaseError:  # the connection is gone, and the lock with it
            logger.warning("could not release the reference lock of %s in %s (connection lost)", element, scheme)


def _compute_reference(scheme: Scheme, element: str, *, backend: str, preset: str, parent: DFTJob | None) -> int:
    ref = elemental_reference(element, get_preset(preset).molecule_box)
    job = run_reference_job(ref, backend=backend, preset=preset,
                            origin_note=f"reference for DFTJob {parent.pk}" if parent else "reference")
    if job.state != DFTJob.State.SUCCEEDED:
        raise DFTError(f"elemental reference {ref.label} for {scheme.name} failed: {job.error_message}")
    return job.pk


def run_reference_job(ref: ReferenceStructure, *, backend: str, preset: str, origin_note: str = "") -> DFTJob:
    """Run one elemental reference inline (molecules stay composition-only; solids become catalog materials)."""
    scheme_name = scheme_for(backend, preset).name
    origin = None if ref.is_molecule else {"dataset": f"reference:{scheme_name}", "source_id": ref.label,
                                           "kind": MaterialOrigin.Kind.USER, "details": {"note": origin_note}}
    job = create_job(structure=ref.structure, backend=backend, preset=preset, label=ref.label,
                     is_molecule=ref.is_molecule, origin=origin, is_reference=True)
    execute_job(job.pk)
    job.refresh_from_db()
    return job


def queue_competing_phases(scheme: Scheme, elements: list[str], *, backend: str, preset: str,
                           parent: DFTJob | None = None) -> list[int]:
    """Queue DFT jobs for the competing phases of ``elements``'s system that ``scheme`` does not hold yet.

    The competitors come from the one selector, ``catalog.verdicts.competing_phases``: every phase a trusted source
    places on or within 50 meV/atom of its hull in the system or a subsystem. Those with a catalog crystal of at most
    ``MAX_COMPETITOR_SITES`` atoms are computed (lowest energy first); those known by composition only get a structure
    search (``search_competitor_structures``: known crystals of the same stoichiometry, decorated, ranked by the
    campaign's screening model, the best ``GNOMON_DFT_SEARCHED_STRUCTURES`` computed and recorded as searched). At most
    ``GNOMON_DFT_MAX_REFERENCE_PHASES`` new jobs per call, and, for a campaign, at most its ``max_competitor_jobs`` in
    all (they count in its budget); the rest stay missing, and the verdicts that need them stay provisional. Each new
    job records ``reference_for`` (the job that needed it), so a campaign round waits for its phases before it
    reads its hit rate off the hull, and its dashboard lists them."""
    from catalog.verdicts import MAX_COMPETITOR_SITES, SEARCHED_ORIGIN, competing_phases

    campaign = campaign_of(parent)
    room = settings.GNOMON_DFT_MAX_REFERENCE_PHASES
    if campaign is not None:
        room = min(room, competitor_budget_left(campaign))
    competitors = competing_phases("-".join(sorted(elements)), exclude_scheme=scheme)
    computable = [c for c in competitors if c.computable]
    computed = set(EnergyRecord.objects.filter(scheme=scheme, material_id__in=[c.material_id for c in computable])
                   .values_list("material_id", flat=True))  # only the competitors', not the whole scheme's
    budget = campaign.pk if campaign is not None else None
    ids: list[int] = []
    live = set(DFTJob.objects.filter(material_id__in=[c.material_id for c in computable], backend=backend,
                                     preset=preset).exclude(state__in=DEAD_JOB_STATES)
               .values_list("material_id", flat=True))
    for competitor in [c for c in computable if c.material_id not in computed]:
        if competitor.material_id not in live:
            if room <= 0:
                break
            room -= 1
        material = Material.objects.get(pk=competitor.material_id)
        job = create_job(material=material, backend=backend, preset=preset,
                         label=f"{material.public_id} competing phase {competitor.formula}",
                         reference_for=parent.pk if parent is not None else None, competitor_for=budget)
        if job.state == DFTJob.State.QUEUED:
            enqueue_job(job)
        ids.append(job.pk)
    composition_only = [c for c in competitors if c.material_id is None
                        and Composition(c.formula).num_atoms <= MAX_COMPETITOR_SITES]
    if not composition_only:
        return ids
    have = {Composition(c).reduced_formula for c in EnergyRecord.objects.filter(
        scheme=scheme, elements__contained_by=sorted(elements)).values_list("composition", flat=True)}
    searched = set(DFTJob.objects.filter(backend=backend, preset=preset).exclude(searched_for="")
                   .exclude(state__in=DEAD_JOB_STATES).values_list("searched_for", flat=True))
    version = _ranking_model(campaign)
    for competitor in composition_only:
        if competitor.formula in have or competitor.formula in searched:
            continue
        for found in search_competitor_structures(competitor.formula, version=version,
                                                  limit=settings.GNOMON_DFT_SEARCHED_STRUCTURES):
            if room <= 0:
                return ids
            room -= 1
            origin = {"dataset": SEARCHED_ORIGIN, "source_id": f"{found.formula}:{found.prototype_id}:{scheme.pk}",
                      "kind": MaterialOrigin.Kind.USER,
                      "details": {"searched_for": found.formula, "prototype": found.prototype_id,
                                  "prototype_formula": found.prototype_formula, "mapping": dict(found.mapping),
                                  "note": "structure searched by prototype substitution, not known"}}
            job = create_job(structure=found.structure, backend=backend, preset=preset, origin=origin,
                             label=f"searched {found.formula} (from {found.prototype_formula} #{found.prototype_id})",
                             reference_for=parent.pk if parent is not None else None,
                             competitor_for=budget, searched_for=found.formula)
            enqueue_job(job)
            ids.append(job.pk)
    return ids


PROTOTYPES_PER_SEARCH = 300  # known crystals of the stoichiometry decorated per search (lowest e_above_hull first)


def search_competitor_structures(formula: str, *, version=None, limit: int = 2) -> list[SearchedStructure]:
    """Candidate structures for a composition the catalog knows only as a number: every known crystal of the same
    anonymous formula (at most ``MAX_COMPETITOR_SITES`` atoms), decorated with ``formula``'s elements, ranked by the
    screening model ``version`` (lowest predicted formation energy first; catalog order without a model)."""
    from django.db.models import F

    from catalog.verdicts import MAX_COMPETITOR_SITES

    rows = (Material.objects.filter(formula_anonymous=Composition(formula).anonymized_formula,
                                    nsites__lte=MAX_COMPETITOR_SITES)
            .order_by(F("e_above_hull").asc(nulls_last=True), "id").values_list("id", "structure")
            [:PROTOTYPES_PER_SEARCH])
    reduced = Composition(formula).reduced_formula
    known = [Structure.from_dict(s) for s in Material.objects.filter(formula_reduced=reduced).values_list(
        "structure", flat=True)[:50]]
    known += [Structure.from_dict(s) for s in DFTJob.objects.filter(candidate__formula_reduced=reduced).exclude(
        state__in=DEAD_JOB_STATES).values_list("input_structure", flat=True)[:50]]
    found = prototype_structures(formula, ((pk, Structure.from_dict(s)) for pk, s in rows), MAX_COMPETITOR_SITES,
                                 known=known)
    if version is not None and len(found) > limit:
        from discovery.services.screening import predictor

        prediction = predictor(version)([f.structure for f in found])
        found = rank_searched(found, [None if i in prediction.errors else float(m)
                                      for i, m in enumerate(prediction.mean)])
    return found[:limit]


def campaign_of(job: DFTJob | None):
    """The campaign a job works for: its candidate's, or, for a competitor or reference job, that of the job that
    needed it (followed up the chain)."""
    seen: set[int] = set()
    while job is not None and job.pk not in seen:
        seen.add(job.pk)
        if job.candidate_id is not None:
            rnd = job.candidate.round
            return rnd.campaign if rnd is not None else None
        if job.competitor_for_id is not None:
            return job.competitor_for
        job = job.reference_for
    return None


def competitor_budget_left(campaign) -> int:
    """How many more competing-phase jobs the campaign may queue (its ``max_competitor_jobs``, validated at launch;
    failed ones count: they spent the time)."""
    from discovery.campaign_config import CampaignConfig

    limit = int((campaign.config or {}).get("max_competitor_jobs", CampaignConfig.max_competitor_jobs))
    spent = DFTJob.objects.filter(competitor_for=campaign).exclude(
        state=DFTJob.State.CANCELLED).count()
    return limit - spent


def _ranking_model(campaign):
    if campaign is None:
        return None
    from discovery.services.campaign_stages import current_model

    return current_model(campaign)
