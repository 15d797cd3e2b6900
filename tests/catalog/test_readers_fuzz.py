"""Property-based tests of the structure readers and the import path: bad bytes become named problems, never crashes.

Two kinds of input: random bytes and text (nothing like a crystal file), and *mutations* of valid CIF and POSCAR files
(truncation, deleted or repeated lines, numbers replaced by zero / huge / negative / NaN values, element symbols replaced
by unknown ones), which reach far deeper into pymatgen's parsers. The contract checked is the readers' own:
``iter_units`` and ``parse_unit`` never raise; every rejected unit is a problem naming its file with a readable reason;
``import_paths`` and ``import_structures`` only ever fail with the command's own ``CommandError``.
"""

from __future__ import annotations

import gzip
import json
import math
import os
import re
import tempfile
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pymatgen.io.vasp import Poscar

from catalog import readers
from catalog.models import Material, MaterialOrigin
from catalog.services.ingest import ImportOptions, import_paths
from tests.catalog.test_readers import cif_text, nacl, srtio3

# GNOMON_FUZZ_EXAMPLES raises the example count for a deeper run (e.g. 5000) than the suite's default.
EXAMPLES = int(os.environ.get("GNOMON_FUZZ_EXAMPLES", "150"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
FUZZ_DB = settings(max_examples=25, deadline=None,
                   suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])

SUFFIXES = ["a.cif", "b.cif.gz", "POSCAR", "c.vasp", "d.extxyz", "e.json", "f.json.gz", "g.csv", "h.csv.gz"]
TEXT_FORMATS = ["cif", "poscar", "xyz", "csv-row"]
NUMBER = re.compile(r"-?\d+\.\d+|\b\d+\b")

VALID_CIFS = [cif_text(nacl()), cif_text(srtio3())]
VALID_POSCARS = [Poscar(nacl()).get_str(), Poscar(srtio3()).get_str()]

# Values a corrupt file may hold where a number belongs (as text).
odd_numbers = st.one_of(
    st.sampled_from(["0", "0.0", "-1", "-5.69", "1e308", "1e-308", "nan", "inf", "-inf", "1e999", "99999999999",
                     "180", "360", "0.5.5", "--1", "", "1/0"]),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.integers(min_value=-(10**30), max_value=10**30).map(str),
)
odd_symbols = st.one_of(st.sampled_from(["Xx", "Qz", "X", "D", "Zz", "", "1", "Na+", "na", "NA", "Uuo", "Og9"]),
                        st.text(alphabet=st.characters(codec="utf-8"), min_size=1, max_size=4))


@st.composite
def mutated(draw, texts: list[str]) -> str:
    """A valid file with 1-4 mutations applied in order."""
    text = draw(st.sampled_from(texts))
    for _ in range(draw(st.integers(min_value=1, max_value=4))):
        lines = text.splitlines()
        op = draw(st.sampled_from(["truncate", "delete_line", "repeat_line", "number", "symbol", "insert", "swap"]))
        if not lines:
            break
        index = draw(st.integers(min_value=0, max_value=len(lines) - 1))
        if op == "truncate":
            text = text[: draw(st.integers(min_value=0, max_value=len(text)))]
        elif op == "delete_line":
            text = "\n".join(lines[:index] + lines[index + 1:])
        elif op == "repeat_line":
            text = "\n".join(lines[: index + 1] + lines[index:])
        elif op == "number":
            matches = list(NUMBER.finditer(text))
            if matches:
                m = draw(st.sampled_from(matches))
                text = text[: m.start()] + draw(odd_numbers) + text[m.end():]
        elif op == "symbol":
            for symbol in ("Na", "Cl", "Sr", "Ti", "O"):
                if symbol in text:
                    replacement = draw(odd_symbols)  # literal: a drawn backslash is not a regex escape
                    text = re.sub(rf"\b{symbol}\b", lambda _match, r=replacement: r, text)
                    break
        elif op == "insert":
            position = draw(st.integers(min_value=0, max_value=len(text)))
            text = text[:position] + draw(st.text(max_size=40)) + text[position:]
        elif op == "swap":
            other = draw(st.integers(min_value=0, max_value=len(lines) - 1))
            lines[index], lines[other] = lines[other], lines[index]
            text = "\n".join(lines)
    return text


def unit(fmt: str, text: str) -> dict:
    return {"file": "fuzz/input", "name": "input", "format": fmt, "location": None, "source_id": None, "text": text}


def assert_contract(items: list[dict], file: str) -> None:
    """Records are complete and finite; problems name the file and say what is wrong in words."""
    assert items, "parse_unit returned nothing"
    for item in items:
        assert isinstance(item["ok"], bool)
        if item["ok"]:
            description = item["description"]
            assert description["nsites"] > 0
            assert math.isfinite(description["volume"]) and description["volume"] > 0
            assert all(re.fullmatch(r"[A-Z][a-z]?", el) for el in description["elements"]), description["elements"]
            json.dumps(item["structure"], allow_nan=False)  # storable as JSON in PostgreSQL
        else:
            assert item["file"] == file
            reason = item["reason"]
            assert isinstance(reason, str) and reason.strip()
            message = reason.split(":", 1)[-1]  # past the exception's class name
            assert re.search(r"[A-Za-z]{3,}", message), f"reason does not say what is wrong: {reason!r}"


@FUZZ
@given(fmt=st.sampled_from(TEXT_FORMATS), text=st.text(max_size=2000))
def test_random_text_in_any_format_becomes_a_problem_or_a_record(fmt, text):
    assert_contract(readers.parse_unit(unit(fmt, text)), "fuzz/input")


@FUZZ
@given(text=mutated(VALID_CIFS))
def test_mutated_cif_never_crashes_the_parser(text):
    assert_contract(readers.parse_unit(unit("cif", text)), "fuzz/input")


@FUZZ
@given(text=mutated(VALID_POSCARS))
def test_mutated_poscar_never_crashes_the_parser(text):
    assert_contract(readers.parse_unit(unit("poscar", text)), "fuzz/input")


json_values = st.recursive(
    st.none() | st.booleans() | st.floats() | st.integers() | st.text(max_size=10),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=20,
)


@FUZZ
@given(obj=st.one_of(
    st.dictionaries(st.text(max_size=8), json_values, max_size=6),
    st.fixed_dictionaries({"@class": st.sampled_from(["Structure", "ComputedStructureEntry", "ComputedEntry", "Foo"])},
                          optional={"lattice": json_values, "sites": json_values, "energy": json_values,
                                    "structure": json_values, "correction": json_values}),
))
def test_random_pymatgen_json_objects_become_problems(obj):
    item = {"file": "fuzz/input", "name": "input", "format": "pmg-json", "location": None, "source_id": None,
            "object": obj}
    assert_contract(readers.parse_unit(item), "fuzz/input")


@FUZZ
@given(name=st.sampled_from(SUFFIXES), payload=st.one_of(
    st.binary(max_size=3000),
    st.text(max_size=2000).map(str.encode),
    mutated(VALID_CIFS).map(str.encode),
))
def test_random_bytes_in_any_file_type_never_raise_from_the_readers(name, payload):
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / name
        path.write_bytes(gzip.compress(payload) if name.endswith(".gz") else payload)
        files, problems = readers.expand_paths([path])
        assert problems == [] and len(files) == 1
        items: list[dict] = []
        for item in readers.iter_units(files[0]):
            items.extend(readers.parse_unit(item))
        for item in items:
            if not item["ok"]:
                assert item["file"] == str(path) and item["reason"].strip()


def test_unknown_element_is_rejected_with_its_symbol():
    """pymatgen reads an unknown symbol as a dummy species; the catalog holds only real elements."""
    text = cif_text(nacl()).replace("Na", "Xx")
    (item,) = readers.parse_unit(unit("cif", text))
    assert not item["ok"]
    assert "Xx" in item["reason"] and "element" in item["reason"]


@pytest.mark.django_db
@FUZZ_DB
@given(files=st.lists(
    st.tuples(st.sampled_from(SUFFIXES), st.one_of(st.binary(max_size=1500), mutated(VALID_CIFS).map(str.encode))),
    min_size=1, max_size=5,
))
def test_import_service_and_command_survive_any_bytes(files):
    with tempfile.TemporaryDirectory() as directory:
        for index, (name, payload) in enumerate(files):
            data = gzip.compress(payload) if name.endswith(".gz") else payload
            (Path(directory) / f"{index}-{name}").write_bytes(data)
        before = Material.objects.count()
        summary = import_paths([directory], ImportOptions(source="fuzz", workers=1, update_hulls=False))
        assert summary.read == summary.written + summary.existing + summary.rejected
        assert Material.objects.count() - before == summary.imported
        assert MaterialOrigin.objects.filter(dataset="fuzz").count() >= summary.written
        for item in summary.problems:
            assert item["file"].startswith(directory) and item["reason"].strip()

        out, err = StringIO(), StringIO()
        try:
            call_command("import_structures", directory, "--source", "fuzz-cmd", "--workers", "1", "--no-hulls",
                         "--no-progress", stdout=out, stderr=err)
        except CommandError as exc:
            assert "nothing could be imported" in str(exc)
        assert "read " in out.getvalue()


@pytest.mark.parametrize(("where", "bad"), [("coordinate", "nan"), ("coordinate", "inf"), ("lattice", "nan"),
                                            ("lattice", "inf"), ("lattice", "1e308"), ("lattice", "1e6")])
def test_non_finite_or_absurd_cells_are_problems_not_segfaults_or_stalls(where, bad):
    """A NaN coordinate used to reach spglib, which dies with SIGSEGV and takes the whole import process with it; a
    10⁶ Å vector made the duplicate matcher's primitive-cell search run for minutes."""
    if where == "coordinate":
        lines = VALID_POSCARS[0].splitlines()
        row = lines.index(next(line for line in lines if line.strip().startswith("0.5")))
        lines[row] = f"{bad} 0.5 0.5 Na"
        text = "\n".join(lines) + "\n"
    else:
        text = VALID_POSCARS[0].replace("5.6900000000000004    0.0000000000000000", f"5.69 {bad}", 1)
    (item,) = readers.parse_unit(unit("poscar", text))
    assert not item["ok"]
    assert "not finite" in item["reason"] or "impossible lattice" in item["reason"], item["reason"]


@pytest.mark.django_db
def test_poscar_with_selective_dynamics_is_imported(tmp_path):
    """Relaxation inputs carry 'Selective dynamics' flags, which pymatgen keeps as numpy arrays; storing them as JSON
    used to raise TypeError out of the batch writer and stop the whole import."""
    Poscar(srtio3(), selective_dynamics=[[True, True, False]] * 5).write_file(tmp_path / "relax.vasp")
    summary = import_paths([tmp_path], ImportOptions(source="sd", workers=1, update_hulls=False))
    assert (summary.imported, summary.rejected) == (1, 0)
    stored = Material.objects.get(origins__dataset="sd").structure
    assert stored["sites"][0]["properties"]["selective_dynamics"] == [True, True, False]
