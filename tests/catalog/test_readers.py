"""Readers are pure: every format becomes plain records with the energy's meaning attached, bad input becomes problems."""

from __future__ import annotations

import gzip
import json

import ase.io
import pytest
from pymatgen.core import Lattice, Structure
from pymatgen.entries.computed_entries import ComputedStructureEntry
from pymatgen.io.ase import AseAtomsAdaptor
from pymatgen.io.cif import CifWriter
from pymatgen.io.vasp import Poscar

from catalog import readers
from tests.factories import rocksalt


def nacl(a: float = 5.69) -> Structure:
    return rocksalt("Na", "Cl", a)


def srtio3(a: float = 3.905) -> Structure:
    return Structure.from_spacegroup(
        "Pm-3m", Lattice.cubic(a), ["Sr", "Ti", "O"], [[0, 0, 0], [0.5, 0.5, 0.5], [0.5, 0.5, 0]]
    )


def read_all(path, **kwargs) -> list[dict]:
    files, problems = readers.expand_paths([path])
    out = list(problems)
    for source in files:
        for unit in readers.iter_units(source, **kwargs):
            out.extend(readers.parse_unit(unit))
    return out


def cif_text(structure: Structure) -> str:
    return str(CifWriter(structure))


def write_csv(path, header: list[str], rows: list[list]) -> None:
    import csv

    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "wt", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)


@pytest.mark.parametrize(
    ("name", "expected"),
    [("a.cif", "cif"), ("a.cif.gz", "cif"), ("POSCAR", "poscar"), ("CONTCAR", "poscar"), ("x.vasp", "poscar"),
     ("x.poscar", "poscar"), ("t.extxyz", "xyz"), ("t.xyz", "xyz"), ("e.json.gz", "json"), ("d.csv", "csv"),
     ("export.jsonl", "jsonl"), ("dump.ndjson.gz", "jsonl"), ("cifs.zip", "zip"), ("notes.txt", None)],
)
def test_format_is_detected_from_the_name(name, expected):
    assert readers.detect_format(name) == expected


def test_cif_file_gives_structure_descriptors_and_no_energy(tmp_path):
    (tmp_path / "nacl.cif").write_text(cif_text(nacl()))
    (record,) = read_all(tmp_path / "nacl.cif")
    assert record["ok"]
    assert record["source_id"] == "nacl.cif"
    assert record["description"]["formula_reduced"] == "NaCl"
    assert record["description"]["spacegroup_number"] == 225
    assert readers.primitive_nsites(Structure.from_dict(record["structure"])) == 2
    assert record["energy"] is None
    assert Structure.from_dict(record["structure"]).composition.reduced_formula == "NaCl"


def test_gzip_cif_and_multi_block_cif(tmp_path):
    with gzip.open(tmp_path / "two.cif.gz", "wt") as handle:
        handle.write(cif_text(nacl()) + "\n" + cif_text(srtio3()))
    records = read_all(tmp_path / "two.cif.gz")
    assert [r["description"]["formula_reduced"] for r in records] == ["NaCl", "SrTiO3"]
    assert [r["source_id"] for r in records] == ["two.cif.gz#0", "two.cif.gz#1"]


def test_poscar_contcar_and_vasp_files(tmp_path):
    Poscar(srtio3()).write_file(tmp_path / "POSCAR")
    Poscar(nacl()).write_file(tmp_path / "CONTCAR")
    Poscar(nacl(5.5)).write_file(tmp_path / "x.vasp")
    records = read_all(tmp_path)
    assert sorted(r["description"]["formula_reduced"] for r in records) == ["NaCl", "NaCl", "SrTiO3"]


def test_poscar_energy_in_comment_is_a_total_energy(tmp_path):
    text = Poscar(nacl()).get_str().splitlines()
    text[0] = "-.27123E+02 'run/dir' ['tag']"
    (tmp_path / "a.poscar").write_text("\n".join(text) + "\n")
    (record,) = read_all(tmp_path / "a.poscar", poscar_energy_in_comment=True)
    assert record["energy"]["kind"] == readers.TOTAL_ENERGY
    assert record["energy"]["energy_total"] == pytest.approx(-27.123)
    assert record["energy"]["energy_per_atom"] == pytest.approx(-27.123 / 8)


def test_extended_xyz_frames_with_total_energy(tmp_path):
    frames = []
    for a, energy in ((5.6, -27.0), (5.8, -26.5)):
        atoms = AseAtomsAdaptor.get_atoms(nacl(a))
        atoms.info["energy"] = energy
        frames.append(atoms)
    ase.io.write(tmp_path / "traj.extxyz", frames, format="extxyz")
    records = read_all(tmp_path / "traj.extxyz")
    assert [r["energy"]["energy_total"] for r in records] == [-27.0, -26.5]
    assert all(r["energy"]["kind"] == readers.TOTAL_ENERGY for r in records)


def test_pymatgen_json_structure_list_and_entries(tmp_path):
    (tmp_path / "one.json").write_text(json.dumps(nacl().as_dict()))
    (tmp_path / "many.json").write_text(json.dumps([nacl().as_dict(), srtio3().as_dict()]))
    entry = ComputedStructureEntry(srtio3(), -40.0, correction=-1.5, entry_id="calc-1", parameters={"xc": "PBE"})
    with gzip.open(tmp_path / "entries.json.gz", "wt") as handle:
        json.dump([entry.as_dict()], handle)
    assert len(read_all(tmp_path / "one.json")) == 1
    assert len(read_all(tmp_path / "many.json")) == 2
    (record,) = read_all(tmp_path / "entries.json.gz")
    assert record["source_id"] == "calc-1"
    assert record["energy"]["energy_total"] == pytest.approx(-41.5)  # corrected energy, correction kept beside it
    assert record["energy"]["correction"] == pytest.approx(-1.5)
    assert record["data"]["parameters"] == {"xc": "PBE"}


@pytest.mark.parametrize(
    ("column", "kind", "field"),
    [
        ("formation_energy_per_atom", readers.FORMATION_ENERGY, "formation_energy_per_atom"),
        ("energy_per_atom", readers.TOTAL_ENERGY, "energy_per_atom"),
        ("heat_ref", readers.STABILITY_VALUE, "stability_value"),
        ("E_f", readers.FORMATION_ENERGY, "formation_energy_per_atom"),
    ],
)
def test_csv_energy_column_keeps_its_meaning(tmp_path, column, kind, field):
    write_csv(tmp_path / "d.csv", ["", "material_id", "cif", column, "band_gap"], [[0, "m-1", cif_text(nacl()), -1.25, 5]])
    (record,) = read_all(tmp_path / "d.csv")
    assert record["source_id"] == "m-1"
    assert record["energy"]["kind"] == kind
    assert record["energy"][field] == -1.25
    assert record["data"]["band_gap"] == 5


def test_perov5_layout_keeps_heat_all_and_gaps_in_data(tmp_path):
    write_csv(tmp_path / "p.csv.gz", ["", "material_id", "cif", "formula", "heat_all", "heat_ref", "dir_gap", "ind_gap"],
              [[3, 17, cif_text(srtio3()), "SrTiO3", 0.3, 0.1, 1.5, 1.2]])
    (record,) = read_all(tmp_path / "p.csv.gz")
    assert record["energy"] == {"kind": readers.STABILITY_VALUE, "stability_value": 0.1, "column": "heat_ref"}
    assert record["data"] == {"formula": "SrTiO3", "heat_all": 0.3, "dir_gap": 1.5, "ind_gap": 1.2}


def test_bad_rows_become_problems_with_file_row_and_reason(tmp_path):
    write_csv(tmp_path / "d.csv", ["material_id", "cif", "energy_per_atom"], [
        ["good", cif_text(nacl()), -3.0],
        ["broken", "data_x\n_cell_length_a 4\nloop_\n_atom_site_label\n", -3.0],
        ["nonnumeric", cif_text(nacl()), "abc"],
    ])
    good, broken, nonnumeric = read_all(tmp_path / "d.csv")
    assert good["ok"]
    assert not broken["ok"] and broken["location"] == "row 3" and broken["source_id"] == "broken" and broken["reason"]
    assert not nonnumeric["ok"] and "energy_per_atom" in nonnumeric["reason"]


def test_missing_paths_unknown_formats_and_empty_globs_are_reported(tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    (tmp_path / "bad.json").write_text("{not json")
    problems = read_all(tmp_path / "nothing-here.cif") + read_all(str(tmp_path / "*.vasp")) + read_all(
        tmp_path / "bad.json")
    assert [p["ok"] for p in problems] == [False, False, False]
    assert "no such file" in problems[0]["reason"]
    assert "matches no file" in problems[1]["reason"]
    assert "invalid JSON" in problems[2]["reason"]


def test_csv_without_structure_column_is_reported(tmp_path):
    write_csv(tmp_path / "d.csv", ["formula", "target"], [["NaCl", -2.0]])
    (item,) = read_all(tmp_path / "d.csv")
    assert not item["ok"] and "no structure column" in item["reason"]


def test_glob_and_directory_expansion_are_stable(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "b.cif").write_text(cif_text(nacl()))
    (tmp_path / "a.cif").write_text(cif_text(srtio3()))
    files, problems = readers.expand_paths([tmp_path, str(tmp_path / "*.cif")])
    assert problems == []
    assert [f.name for f in files] == ["a.cif", "sub/b.cif"]


def _reasons(tmp_path, name: str, text: str) -> list[str]:
    path = tmp_path / name
    path.write_text(text)
    return [r["reason"] for r in read_all(path) if not r["ok"]]


def test_overlapping_atoms_are_named_with_their_distance(tmp_path):
    crowded = Structure(Lattice.cubic(5.6), ["Na", "Cl", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5], [0.51, 0.5, 0.5]])
    (reason,) = _reasons(tmp_path, "crowded.cif", cif_text(crowded))
    assert "atoms closer than 0.5 Å: site 2 (Cl) and site 3 (Cl) are 0.056 Å apart" in reason


def test_a_cif_cut_inside_a_row_says_where(tmp_path):
    text = cif_text(nacl())
    lines = text.rstrip("\n").split("\n")
    cut = "\n".join(lines[:-1]) + "\n" + " ".join(lines[-1].split()[:3]) + "\n"  # the last atom row, half written
    (reason,) = _reasons(tmp_path, "cut.cif", cut)
    assert f"the file ends inside a loop: line {len(lines)} has 3 of the 7 values" in reason


def test_a_cif_cut_at_a_row_boundary_is_not_taken_for_another_crystal(tmp_path):
    lines = cif_text(nacl()).rstrip("\n").split("\n")
    (reason,) = _reasons(tmp_path, "short.cif", "\n".join(lines[:-2]) + "\n")  # two Cl rows missing: "Na4 Cl2"
    assert "do not match the file's _chemical_formula_sum (is the file complete?)" in reason


def test_an_xyz_header_claiming_more_atoms_than_the_file_holds_is_refused_at_once(tmp_path):
    (reason,) = _reasons(tmp_path, "huge.xyz", "999999999999999999999999999999\ncomment\nNa 0 0 0\n")
    assert "declares 999999999999999999999999999999 atoms but only 1 lines follow" in reason
