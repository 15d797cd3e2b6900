"""Probe tasks for the deployment tests: tiny, side-effect free, named so that ``CELERY_TASK_ROUTES`` routes them.

Not auto-discovered (production workers never load them); a test worker loads them with ``--include
gnomon.testing_tasks``. Their names follow the production patterns on purpose, so the real routing table is what is
tested: ``discovery.tasks.screen_*`` → queue ``screening``, ``discovery.tasks.run_dft_*`` → queue ``dft``.
"""

from __future__ import annotations

import logging

from celery import shared_task

from gnomon.logging import request_id_var, task_id_var

logger = logging.getLogger("gnomon.testing_tasks")

SCREEN_PROBE = "discovery.tasks.screen_deploy_probe"
DFT_PROBE = "discovery.tasks.run_dft_deploy_probe"


def _report(task) -> dict:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT current_database()")
        (database,) = cursor.fetchone()
    delivery = task.request.delivery_info or {}
    report = {
        "task": task.name,
        "hostname": task.request.hostname,
        "routing_key": delivery.get("routing_key"),
        "database": database,
        "task_id_in_log_context": task_id_var.get(),
        "request_id_in_log_context": request_id_var.get(),
    }
    logger.info("deploy probe ran", extra={"probe": task.name})
    return report


@shared_task(name=SCREEN_PROBE, bind=True)
def screen_deploy_probe(self) -> dict:
    return _report(self)


@shared_task(name=DFT_PROBE, bind=True)
def run_dft_deploy_probe(self) -> dict:
    return _report(self)
