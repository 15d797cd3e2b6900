"""Fixtures for the discovery tests."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

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
