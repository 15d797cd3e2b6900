"""Schemathesis with every check against the OpenAPI schema of a live server: no 5xx, no schema violations."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_api_conforms_to_its_schema(live_server, catalog_rows, tmp_path):
    cli = Path(sys.executable).with_name("schemathesis")
    result = subprocess.run(
        [str(cli), "run", f"{live_server.url}/api/schema/", "--checks", "all", "--max-examples", "8", "--seed", "7",
         "--no-shrink", "--report-dir", str(tmp_path)],
        capture_output=True, text=True, timeout=300, check=False, cwd=tmp_path,  # its cache stays out of the repo
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-6000:]
    assert " passed" in output and "failure" not in output.split("SUMMARY")[-1], output[-6000:]
