"""Gnomon: a self-hosted, living catalog for materials discovery."""

from gnomon.celery import app as celery_app

__all__ = ["celery_app"]
