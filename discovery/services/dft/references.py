"""Elemental references in a job's own scheme, computed on demand before it runs (one worker per element)."""

from __future__ import annotations

import logging
import zlib
from contextlib import contextmanager

from django.db import DatabaseError, connection
from pymatgen.core import Structure

from catalog.models import MaterialOrigin, Scheme
from discovery.dft import DFTError, get_preset
from discovery.dft.references import ReferenceStructure, elemental_reference
from discovery.models import DFTJob
from discovery.services.dft import (
    execution,  # a cycle by nature: a reference is a job, run before the job that needs it
)
from discovery.services.dft.competitors import queue_competing_phases
from discovery.services.dft.jobs import REFERENCE_LOCK_CLASS, create_job
from discovery.services.dft.schemes import missing_elements, scheme_for

logger = logging.getLogger(__name__)


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
    execution.execute_job(job.pk)
    job.refresh_from_db()
    return job
