"""Bulk export: every format streams (no Content-Length), honours filters and fields, and round-trips."""

from __future__ import annotations

import csv
import io
import json
import zipfile

import pytest
from ase.io import read
from pymatgen.core import Structure

from api.export import DEFAULT_FIELDS, stream_export
from catalog.models import Material

pytestmark = pytest.mark.django_db
URL = "/api/v1/export/"


def body(response) -> bytes:
    assert response.status_code == 200, response.content
    assert response.streaming and not response.has_header("Content-Length")
    return b"".join(response.streaming_content)


def test_jsonl_default_has_structure_and_honours_filters(client, catalog_rows):
    lines = body(client.get(f"{URL}?elements=Ti&ordering=-energy_above_hull")).decode().splitlines()
    rows = [json.loads(line) for line in lines]
    assert [r["formula_reduced"] for r in rows] == ["BaTiO3", "SrTiO3"]
    assert Structure.from_dict(rows[0]["structure"]).composition.reduced_formula == "BaTiO3"
    assert rows[0]["energy_above_hull"] == 0.2 and rows[0]["elements"] == ["Ba", "O", "Ti"]


def test_jsonl_fields(client, catalog_rows):
    rows = [json.loads(x) for x in body(client.get(f"{URL}?fields=public_id,is_stable")).decode().splitlines()]
    assert len(rows) == 5 and all(set(r) == {"public_id", "is_stable"} for r in rows)
    only_structure = body(client.get(f"{URL}?fields=structure&formula=NaCl")).decode()
    assert set(json.loads(only_structure)) == {"structure"}


def test_csv(client, catalog_rows):
    rows = list(csv.DictReader(io.StringIO(body(client.get(f"{URL}?format=csv&is_stable=true")).decode())))
    assert {r["formula_reduced"] for r in rows} == {"NaCl", "SrTiO3"}
    assert rows[0]["elements"] in ("Cl Na", "O Sr Ti")


def test_extxyz_reads_back_with_ase(client, catalog_rows):
    frames = read(io.StringIO(body(client.get(f"{URL}?format=extxyz&nelements=3")).decode()), index=":",
                  format="extxyz")
    assert len(frames) == 3
    assert {f.info["formula_reduced"] for f in frames} == {"SrTiO3", "BaTiO3", "LaFeO3"}
    assert all(len(f) == 5 and f.pbc.all() for f in frames)


def test_cif_zip(client, catalog_rows):
    archive = zipfile.ZipFile(io.BytesIO(body(client.get(f"{URL}?format=cif&nelements=2"))))
    names = sorted(archive.namelist())
    assert names == sorted(f"{catalog_rows[k].public_id}.cif" for k in ("nacl", "mgo"))
    structure = Structure.from_str(archive.read(names[0]).decode(), fmt="cif")
    assert structure.composition.reduced_formula in ("NaCl", "MgO")


@pytest.mark.parametrize("fmt", ["jsonl", "csv", "extxyz", "cif"])
def test_a_search_that_cannot_match_exports_nothing(client, catalog_rows, fmt):
    data = body(client.get(f"{URL}?format={fmt}&nelements_min=3&nelements_max=2"))
    if fmt == "csv":
        assert data.decode().splitlines() == [",".join(DEFAULT_FIELDS["csv"])]
    elif fmt == "cif":
        assert zipfile.ZipFile(io.BytesIO(data)).namelist() == []
    else:
        assert data == b""


def test_format_by_accept_header(client, catalog_rows):
    response = client.get(URL, HTTP_ACCEPT="text/csv")
    assert response["Content-Type"].startswith("text/csv")


@pytest.mark.parametrize(("query", "param"), [("format=pdf", "format"), ("fields=public_id,nope", "fields"),
                                               ("elements=Qq", "elements")])
def test_bad_parameters(client, catalog_rows, query, param):
    response = client.get(f"{URL}?{query}")
    assert response.status_code == 400 and param in response.json()
    assert response["Content-Type"] == "application/json"


def test_streams_come_in_chunks(catalog_rows, monkeypatch):
    """Rows go out as they arrive: several blocks for several blocks' worth of rows, in both export paths."""
    from api import export

    monkeypatch.setattr(export, "COPY_BLOCK", 1)  # every COPY row becomes a block
    chunks = list(stream_export(Material.objects.order_by("id"), "jsonl", ("public_id",)))
    assert len(chunks) == 5 and all(c.count(b"\n") == 1 for c in chunks)
    frames = list(stream_export(Material.objects.order_by("id"), "extxyz", ("public_id",), chunk_size=2))
    assert len(frames) == 3


def test_jsonl_escapes_awkward_text(catalog_rows):
    """PostgreSQL writes the JSON; quotes, backslashes, newlines and non-ASCII must survive as one valid line each."""
    from catalog.models import Scheme

    awkward = 'PBE "fast"\\ γ\nline2\x01'
    scheme = Scheme.objects.create(name=awkward, kind=Scheme.Kind.FORMATION_ENERGY)
    Material.objects.update(hull_scheme=scheme)
    lines = b"".join(stream_export(Material.objects.order_by("id"), "jsonl", ("public_id", "hull_scheme"))).splitlines()
    assert len(lines) == 5 and all(json.loads(line)["hull_scheme"] == awkward for line in lines)
    rows = list(csv.reader(io.StringIO(b"".join(stream_export(Material.objects.all(), "csv", ("hull_scheme",))).decode())))
    assert rows[1] == [awkward]


@pytest.mark.parametrize(("fmt", "suffix"), [("jsonl", ".jsonl"), ("extxyz", ".extxyz"), ("cif", ".zip")])
def test_every_export_format_imports_back_through_the_command(client, catalog_rows, tmp_path, fmt, suffix):
    """GET /api/v1/export/ → a file → ``manage.py import_structures`` into an emptied catalog: the same crystals."""
    from django.core.management import call_command

    path = tmp_path / f"catalog{suffix}"
    path.write_bytes(body(client.get(URL, {"format": fmt})))
    before = sorted((m.formula_reduced, m.spacegroup_number, m.nsites) for m in Material.objects.all())
    Material.objects.all().delete()
    report = io.StringIO()
    call_command("import_structures", str(path), "--source", f"round-trip-{fmt}", "--workers", "1", stdout=report)
    after = sorted((m.formula_reduced, m.spacegroup_number, m.nsites) for m in Material.objects.all())
    assert after == before, report.getvalue()
    assert all(m.origins.filter(dataset=f"round-trip-{fmt}").exists() for m in Material.objects.all())
