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

Where each part lives: ``schemes`` (backend and scheme of a job), ``jobs`` (create, enqueue, cancel, retry, claim,
requeue), ``execution`` (run a claimed job; what a finished one writes), ``references`` (elemental references on
demand), ``competitors`` (competing phases a verdict needs). Callers import from here.
"""

from discovery.services.dft.competitors import (
    PROTOTYPES_PER_SEARCH,
    campaign_of,
    competitor_budget_left,
    queue_competing_phases,
    search_competitor_structures,
)
from discovery.services.dft.execution import (
    RelaxationNotConverged,
    complete_job,
    execute_job,
    fail_job,
    is_transient,
    release_for_retry,
    require_converged,
    retry_with_larger_budget,
    update_hulls_for,
)
from discovery.services.dft.jobs import (
    ADVISORY_LOCK_CLASS,
    LOG_EXCERPT_CHARS,
    REFERENCE_LOCK_CLASS,
    STEP_BUDGET_FACTOR,
    TIME_LIMIT_S,
    DFTJobError,
    JobOutcome,
    JobTimeLimitExceeded,
    cancel_job,
    claim_job,
    create_job,
    enqueue_job,
    max_attempts,
    requeue_stale_jobs,
    retry_failed_jobs,
    time_limit_for,
)
from discovery.services.dft.references import (
    ensure_references,
    run_reference_job,
)
from discovery.services.dft.schemes import (
    backend_for,
    ensure_scheme_for,
    missing_elements,
    scheme_for,
)

__all__ = [
    "ADVISORY_LOCK_CLASS",
    "DFTJobError",
    "JobOutcome",
    "JobTimeLimitExceeded",
    "LOG_EXCERPT_CHARS",
    "PROTOTYPES_PER_SEARCH",
    "REFERENCE_LOCK_CLASS",
    "RelaxationNotConverged",
    "STEP_BUDGET_FACTOR",
    "TIME_LIMIT_S",
    "backend_for",
    "campaign_of",
    "cancel_job",
    "claim_job",
    "competitor_budget_left",
    "complete_job",
    "create_job",
    "enqueue_job",
    "ensure_references",
    "ensure_scheme_for",
    "execute_job",
    "fail_job",
    "is_transient",
    "max_attempts",
    "missing_elements",
    "queue_competing_phases",
    "release_for_retry",
    "requeue_stale_jobs",
    "require_converged",
    "retry_failed_jobs",
    "retry_with_larger_budget",
    "run_reference_job",
    "scheme_for",
    "time_limit_for",
    "search_competitor_structures",
    "update_hulls_for",
]
