"""The REST API's OpenAPI schema is a committed contract (``docs/openapi.yaml``): a change to a path, a parameter or a
field shows up here as a diff to review, not as a surprise for the scripts that call the API."""

from __future__ import annotations

import difflib
from pathlib import Path

import pytest
from django.core.management import call_command

CONTRACT = Path(__file__).resolve().parents[2] / "docs" / "openapi.yaml"


def test_api_schema_matches_the_committed_contract(tmp_path):
    generated = tmp_path / "openapi.yaml"
    call_command("spectacular", "--file", str(generated), "--validate", "--fail-on-warn")
    diff = list(difflib.unified_diff(CONTRACT.read_text().splitlines(), generated.read_text().splitlines(),
                                     "docs/openapi.yaml (committed)", "generated now", lineterm="", n=2))
    if diff:
        pytest.fail("the REST API's schema changed; if that is intended, run `make schema` and commit "
                    "docs/openapi.yaml:\n" + "\n".join(diff[:200]))
