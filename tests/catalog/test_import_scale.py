"""Scale and fuzz test of the real import command against PostgreSQL: many generated files, 1 % of them corrupt.

It takes about a minute on a busy 2-core machine, within the suite's budget, so it is not marked slow.
The corrupt files (cut off mid-row, random bytes, a cell that cannot exist, a made-up element) must each be named in the
command's report with a reason; every other file must become exactly one material with one origin; nothing crashes.
"""

from __future__ import annotations

import csv
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command

from catalog.models import Material, MaterialOrigin
from tests.catalog.structure_files import write_structure_files

pytestmark = pytest.mark.django_db

EXPECTED_REASON = {
    "truncated": ("could not", "parse", "Error"),
    "garbage": ("cannot read file", "Error"),
    "impossible_lattice": ("lattice",),
    "unknown_element": ("'Xx'",),
}


def import_generated_files(tmp_path: Path, count: int) -> None:
    directory = tmp_path / "files"
    directory.mkdir()
    generated = write_structure_files(directory, count)
    report = tmp_path / "rejected.csv"
    out, err = StringIO(), StringIO()
    call_command("import_structures", str(directory), "--source", "scale", "--workers", "2", "--no-hulls",
                 "--no-progress", "--report", str(report), stdout=out, stderr=err)

    assert len(generated.good) == count * 99 // 100 and len(generated.bad) == count // 100
    assert Material.objects.count() == len(generated.good)
    assert MaterialOrigin.objects.filter(dataset="scale").count() == len(generated.good)
    imported_files = set(MaterialOrigin.objects.filter(dataset="scale").values_list("details__file", flat=True))
    assert imported_files == {str(path) for path in generated.good}
    assert f"imported {len(generated.good)}, merged 0" in out.getvalue()
    assert f"rejected {len(generated.bad)}," in out.getvalue()

    with report.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert {row["file"] for row in rows} == {str(path) for path in generated.bad}
    assert len(rows) == len(generated.bad)  # one line per bad file, none for good ones
    for row in rows:
        kind = generated.bad[Path(row["file"])]
        assert any(word in row["reason"] for word in EXPECTED_REASON[kind]), (kind, row["reason"])



def test_ten_thousand_files_with_one_percent_corrupt_import_99_percent(tmp_path):
    import_generated_files(tmp_path, 10_000)
