"""A job's life before it runs: created, enqueued, cancelled, retried; claimed under an advisory lock, requeued
when its worker died."""

from __future__ import annotations

import logging
import socket
from collections.abc import Iterable
from dataclasses import dataclass

from django.conf import settings
from django.db import DatabaseError, IntegrityError, connection, transaction
from django.utils import timezone
from pymatgen.core import Structure

from catalog.models import Material
from discovery import messages
from discovery.dft import DFTError, get_preset
from discovery.models import DEAD_JOB_STATES, TERMINAL_JOB_STATES, Candidate, DFTJob
from discovery.services.dft.schemes import missing_elements, scheme_for

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


STEP_BUDGET_FACTOR = "step_budget_factor"  # DFTJob.settings: the relaxation's step budget × this (2 on its retry)
TIME_LIMIT_S = "time_limit_s"  # DFTJob.settings: the limit it was last sent with (time_limit_for)


def time_limit_for(job: DFTJob) -> int:
    """Seconds a job may run: its preset's limit, times its step budget (a retry relaxes twice as long), plus one
    preset limit for each elemental reference of its system still missing in its scheme — those are computed inline,
    as jobs of their own, before it starts, and used to eat its own time (a candidate ran out on a loaded machine)."""
    preset_limit = get_preset(job.preset).time_limit_s
    limit = preset_limit * int(job.settings.get(STEP_BUDGET_FACTOR, 1))
    if not job.is_reference and job.input_structure:
        elements = {el.symbol for el in Structure.from_dict(job.input_structure).composition.elements}
        limit += preset_limit * len(missing_elements(scheme_for(job.backend, job.preset), elements))
    return limit


def enqueue_job(job: DFTJob, countdown: float | None = None) -> None:
    """Send the job to the ``dft`` queue once the current transaction commits, with its time limit
    (``time_limit_for``; ``countdown``: not before so many seconds, e.g. once the sending worker has let go of the
    job's lock)."""
    limit = time_limit_for(job)
    if job.settings.get(TIME_LIMIT_S) != limit:
        job.settings = {**job.settings, TIME_LIMIT_S: limit}
        DFTJob.objects.filter(pk=job.pk).update(settings=job.settings)
    messages.run_dft_job(job.pk, time_limit_s=limit, countdown=countdown)


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


def _clip(text: str, limit: int = LOG_EXCERPT_CHARS) -> str:
    return text if len(text) <= limit else text[:limit] + "\n[...]"
