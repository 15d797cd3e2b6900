"""Work sent to the task queue, by task name, once the current transaction commits.

Services decide *that* a campaign should advance, a DFT job run or a generation chunk be computed; the Celery tasks in
``discovery.tasks`` do it by calling the services. Sending by name keeps that one-way: no service imports the tasks
module (an import-linter contract in ``pyproject.toml`` holds it so), and a message is only sent for rows a worker can
already see.
"""

from __future__ import annotations

from collections.abc import Sequence

from celery import current_app
from django.db import transaction

ADVANCE_CAMPAIGN = "discovery.tasks.advance_campaign_task"
RUN_DFT_JOB = "discovery.tasks.run_dft_job"  # routed to the ``dft`` queue (CELERY_TASK_ROUTES)
RUN_GENERATION_CHUNK = "discovery.tasks.run_generation_chunk"


def send_on_commit(task_name: str, args: tuple, **options) -> None:
    transaction.on_commit(lambda: current_app.send_task(task_name, args=args, **options))


def advance_campaign(campaign_id: int, queue: str) -> None:
    """Ask a worker of ``queue`` to take the campaign's next step."""
    send_on_commit(ADVANCE_CAMPAIGN, (campaign_id, queue), queue=queue)


def run_dft_job(job_id: int, *, time_limit_s: float, countdown: float | None = None) -> None:
    """Run a DFT job; the worker gets ``time_limit_s`` (soft) and a minute more (hard)."""
    send_on_commit(RUN_DFT_JOB, (job_id,), time_limit=time_limit_s + 60, soft_time_limit=time_limit_s,
                   countdown=countdown)


def run_generation_chunks(chunk_ids: Sequence[int]) -> None:
    for pk in chunk_ids:
        send_on_commit(RUN_GENERATION_CHUNK, (pk,), queue="default")
