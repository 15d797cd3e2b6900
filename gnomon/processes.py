"""Helpers for child processes (multiprocessing pools) that need Django; this module imports no models."""


def setup_django() -> None:
    """Pool initializer: ready the app registry before any task that references Django code is unpickled."""
    import os

    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gnomon.settings")
    django.setup()
