"""The Celery application; tasks live in each app's ``tasks.py`` and stay one-line wrappers around services."""

import os

from celery import Celery

import gnomon.logging  # noqa: F401 - connects the Celery signals that put task ids into log lines

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gnomon.settings")

app = Celery("gnomon")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
