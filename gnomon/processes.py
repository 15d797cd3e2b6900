"""Helpers for child processes (multiprocessing pools) that need Django; this module imports no models."""


def setup_django() -> None:
    """Pool initializer: ready the app registry before any task that references Django code is unpickled."""
    import os

    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gnomon.settings")
    django.setup()


# The Celery processes of a one-host installation, as docker/compose.yaml lays them out: orchestration (campaign stages,
# generation chunks, hulls, beat's sweeps) and graph networks on one worker, DFT on another, so that neither waits
# behind the other. The quick start and the campaign benchmark start exactly these.
WORKER_QUEUES = {"main": "default,screening", "dft": "dft"}


def supervised(python: str, argv: list[str]) -> list[str]:
    """``argv`` under ``gnomon.supervise``, which starts it again when it dies (as Docker's restart policy does)."""
    return [python, "-m", "gnomon.supervise", "--", *argv]


def celery_processes(python: str, schedule_file: str, concurrency: int = 2) -> list[tuple[str, list[str]]]:
    """(name, argv) of the workers and beat, each supervised."""
    celery = [python, "-m", "celery", "-A", "gnomon"]
    workers = [
        (f"{name}-worker", [*celery, "worker", "-Q", queues, "-c", str(concurrency), "-n", f"{name}@%h", "-l", "INFO"])
        for name, queues in WORKER_QUEUES.items()
    ]
    processes = [*workers, ("beat", [*celery, "beat", "-l", "INFO", "-s", schedule_file])]
    return [(name, supervised(python, argv)) for name, argv in processes]
