"""Fixtures for the discovery tests."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model

from tests.discovery import campaign_support as support
from tests.discovery import dft_support  # noqa: F401 - registers the slow-fake DFT backend


@pytest.fixture
def dft_workdir(tmp_path, settings):
    settings.GNOMON_DFT_WORKDIR = tmp_path / "dft"
    return settings.GNOMON_DFT_WORKDIR


@pytest.fixture
def shared_data_dir() -> Path:
    """``GNOMON_DATA_DIR`` (the shared seed data, read in place, never copied into the repo); skips when absent."""
    path = Path(os.environ.get("GNOMON_DATA_DIR", Path(__file__).resolve().parents[3] / "shared" / "data"))
    if not path.is_dir():
        pytest.skip(f"shared data not found at {path}: set GNOMON_DATA_DIR to the shared/data directory")
    return path


@pytest.fixture
def campaign_env(tmp_path, settings):
    """A seeded catalog, empty queues and a staff user for campaigns run by real worker processes."""
    settings.MODEL_DIR = tmp_path / "models"
    settings.GNOMON_DFT_BACKEND_PLUGINS = ["tests.discovery.dft_support"]
    support.purge_queues()
    support.seed_catalog()
    staff = get_user_model().objects.create_user("launcher", is_staff=True)
    return tmp_path, staff


@pytest.fixture
def fake_dft_backend(settings, dft_workdir, monkeypatch):
    """The slow-fake DFT backend with no sleep, and job messages captured instead of sent (the list of job ids)."""
    from discovery import messages

    settings.GNOMON_DFT_BACKEND_PLUGINS = ["tests.discovery.dft_support"]
    monkeypatch.setenv("GNOMON_TEST_DFT_SLEEP", "0")
    sent: list[int] = []
    monkeypatch.setattr(messages, "run_dft_job", lambda job_id, **_: sent.append(job_id))  # every DFT send goes here
    return sent

