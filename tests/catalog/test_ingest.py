"""The import path end to end against real PostgreSQL: formats, idempotency, duplicate merging, bad input, semantics."""

from __future__ import annotations

import json

import pytest
from django.core.management import CommandError, call_command
from pymatgen.entries.computed_entries import ComputedStructureEntry
from pymatgen.io.vasp import Poscar

from catalog.models import ElementalReference, EnergyRecord, Material, MaterialOrigin, Scheme
from catalog.services import energies as energy_services
from catalog.services.energies import EnergyError, SchemeKindError, ensure_scheme, record_energy
from catalog.services.ingest import ImportOptions, import_paths
from catalog.services.materials import register_material
from tests.catalog.test_readers import cif_text, nacl, srtio3, write_csv

pytestmark = pytest.mark.django_db


def options(**kwargs) -> ImportOptions:
    return ImportOptions(**{"source": "test", "workers": 1, **kwargs})


def run(*args) -> str:
    from io import StringIO

    out, err = StringIO(), StringIO()
    call_command("import_structures", *map(str, args), "--no-progress", stdout=out, stderr=err)
    return out.getvalue() + err.getvalue()


def test_every_format_in_one_directory(tmp_path):
    (tmp_path / "a.cif").write_text(cif_text(nacl()))
    Poscar(srtio3()).write_file(tmp_path / "b.vasp")
    (tmp_path / "c.json").write_text(json.dumps([
        ComputedStructureEntry(nacl(5.0).replace_species({"Na": "K"}), -20.0, entry_id="k1").as_dict()]))
    write_csv(tmp_path / "d.csv.gz", ["material_id", "cif", "formation_energy_per_atom"],
              [["li", cif_text(nacl(4.0).replace_species({"Na": "Li", "Cl": "F"})), -3.0]])
    summary = import_paths([tmp_path], options(workers=2))
    assert (summary.read, summary.imported, summary.rejected) == (4, 4, 0)
    assert sorted(Material.objects.values_list("formula_reduced", flat=True)) == ["KCl", "LiF", "NaCl", "SrTiO3"]
    m = Material.objects.get(formula_reduced="NaCl")
    assert m.public_id == f"gn-{m.pk:06d}"
    assert m.spacegroup_number == 225 and m.nsites == 8 and m.chemsys == "Cl-Na"


def test_csv_energy_semantics_go_to_schemes_of_the_right_kind(tmp_path):
    write_csv(tmp_path / "perov.csv", ["material_id", "cif", "heat_all", "heat_ref", "dir_gap"],
              [[1, cif_text(srtio3()), 0.4, 0.15, 1.6]])
    write_csv(tmp_path / "carbon.csv", ["material_id", "cif", "energy_per_atom"], [["c1", cif_text(nacl()), -3.5]])
    write_csv(tmp_path / "mp20.csv", ["material_id", "cif", "formation_energy_per_atom", "e_above_hull"],
              [["mp-1", cif_text(nacl(5.9).replace_species({"Na": "K"})), -2.1, 0.0]])
    import_paths([tmp_path / "perov.csv"], options(source="perov", scheme="dataset:perov"))
    import_paths([tmp_path / "carbon.csv"], options(source="carbon", scheme="dataset:carbon"))
    import_paths([tmp_path / "mp20.csv"], options(source="mp20"))

    stability = EnergyRecord.objects.get(scheme__name="dataset:perov")
    assert stability.scheme.kind == Scheme.Kind.STABILITY_VALUE and not stability.scheme.builds_hull
    assert stability.stability_value == 0.15
    assert stability.formation_energy_per_atom is None and stability.energy_total is None
    assert stability.data["heat_all"] == 0.4 and stability.data["dir_gap"] == 1.6

    total = EnergyRecord.objects.get(scheme__name="dataset:carbon")
    assert total.scheme.kind == Scheme.Kind.TOTAL_ENERGY
    assert total.energy_per_atom == -3.5 and total.energy_total == pytest.approx(-3.5 * 8)
    assert total.formation_energy_per_atom is None and total.natoms == 8

    formation = EnergyRecord.objects.get(scheme__name="dataset:mp20")
    assert formation.scheme.kind == Scheme.Kind.FORMATION_ENERGY
    assert formation.formation_energy_per_atom == -2.1 and formation.energy_per_atom is None
    assert formation.data["e_above_hull"] == 0.0


def test_importing_the_same_file_twice_adds_nothing(tmp_path):
    write_csv(tmp_path / "d.csv", ["material_id", "cif", "energy_per_atom"],
              [["a", cif_text(nacl()), -3.0], ["b", cif_text(srtio3()), -5.0]])
    first = run(tmp_path / "d.csv", "--source", "d", "--workers", "1")
    counts = (Material.objects.count(), MaterialOrigin.objects.count(), EnergyRecord.objects.count())
    second = run(tmp_path / "d.csv", "--source", "d", "--workers", "1")
    assert counts == (2, 2, 2)
    assert (Material.objects.count(), MaterialOrigin.objects.count(), EnergyRecord.objects.count()) == counts
    assert "imported 2" in first
    assert "imported 0, merged 0, already present 2" in second


def test_duplicates_are_merged_keeping_every_origin_and_the_lower_energy(tmp_path):
    # The same crystal from two sources: slightly different cell (another functional) and a rattled copy.
    rattled = nacl(5.72)
    rattled.perturb(0.02, min_distance=0.0)
    write_csv(tmp_path / "a.csv", ["material_id", "cif", "energy_per_atom"], [["x1", cif_text(nacl()), -3.0]])
    write_csv(tmp_path / "b.csv", ["material_id", "cif", "energy_per_atom"],
              [["y1", cif_text(rattled), -3.2], ["y2", cif_text(nacl(5.69 * 1.5)), -1.0]])
    import_paths([tmp_path / "a.csv"], options(source="a", scheme="S"))
    summary = import_paths([tmp_path / "b.csv"], options(source="b", scheme="S"))
    assert (summary.imported, summary.merged) == (1, 1)  # the 3.4x-volume cell is not the same material
    merged = Material.objects.get(origins__dataset="a")
    assert sorted(merged.origins.values_list("dataset", "source_id")) == [("a", "x1"), ("b", "y1")]
    record = EnergyRecord.objects.get(material=merged)
    assert record.energy_per_atom == -3.2  # the lower energy is the one a hull uses
    assert [o["source_key"] for o in record.data["other_values"]] == ["a:x1"]


def test_duplicates_inside_one_file_are_merged(tmp_path):
    write_csv(tmp_path / "d.csv", ["material_id", "cif", "energy_per_atom"],
              [["1", cif_text(nacl()), -3.0], ["2", cif_text(nacl().get_primitive_structure()), -3.1]])
    summary = import_paths([tmp_path / "d.csv"], options())
    assert (summary.imported, summary.merged) == (1, 1)
    assert MaterialOrigin.objects.filter(material__formula_reduced="NaCl").count() == 2
    assert EnergyRecord.objects.get().energy_per_atom == -3.1


def test_bad_cif_in_a_batch_is_reported_and_the_rest_imported(tmp_path):
    rows = [[f"ok{i}", cif_text(nacl(5.0 + 0.5 * i)), -3.0] for i in range(3)]
    rows.insert(1, ["bad", "data_broken\n_cell_length_a 5\n", -3.0])
    write_csv(tmp_path / "d.csv", ["material_id", "cif", "energy_per_atom"], rows)
    output = run(tmp_path / "d.csv", "--batch-size", "2", "--workers", "1")
    assert Material.objects.count() == 3
    assert "d.csv, row 3 (id bad)" in output
    assert "read 4, imported 3, merged 0, already present 0, rejected 1" in output


def test_nothing_importable_exits_non_zero(tmp_path):
    (tmp_path / "x.cif").write_text("not a cif")
    with pytest.raises(CommandError, match="nothing could be imported"):
        run(tmp_path / "x.cif")


def test_a_row_the_database_refuses_is_rejected_alone_and_its_batch_is_written(tmp_path, monkeypatch):
    write_csv(tmp_path / "d.csv", ["material_id", "cif", "energy_per_atom"],
              [[str(i), cif_text(nacl(5.0 + 0.7 * i)), -3.0] for i in range(4)])
    real = energy_services.record_energies

    def refuses_row_2(scheme, items):
        if any(item.source_key.endswith(":2") for item in items):
            raise EnergyError("simulated refusal of row 2")
        return real(scheme, items)

    monkeypatch.setattr("catalog.services.ingest.record_energies", refuses_row_2)
    summary = import_paths([tmp_path / "d.csv"], options(batch_size=4))
    assert (summary.imported, summary.rejected) == (3, 1)
    assert Material.objects.count() == 3 and EnergyRecord.objects.count() == 3  # no material without its energy
    (problem,) = summary.problems
    assert problem["source_id"] == "2" and "simulated refusal of row 2" in problem["reason"]


def test_an_overlong_source_id_is_rejected_by_name_and_the_rest_imported(tmp_path):
    write_csv(tmp_path / "d.csv", ["material_id", "cif"],
              [["ok-1", cif_text(nacl(5.0))], ["x" * 300, cif_text(nacl(5.7))], ["ok-3", cif_text(nacl(6.4))]])
    summary = import_paths([tmp_path / "d.csv"], options(batch_size=3))
    assert (summary.imported, summary.rejected) == (2, 1)
    assert summary.problems[0]["source_id"] == "x" * 300 and "not written" in summary.problems[0]["reason"]


def test_scheme_kind_conflict_is_a_clear_error(tmp_path):
    ensure_scheme("MyScheme", Scheme.Kind.TOTAL_ENERGY)
    write_csv(tmp_path / "d.csv", ["material_id", "cif", "heat_ref"], [["1", cif_text(srtio3()), 0.1]])
    with pytest.raises(CommandError, match="holds total_energy values"):
        run(tmp_path / "d.csv", "--scheme", "MyScheme")


def test_register_material_is_idempotent_and_merges(rocksalt_nacl):
    material, created = register_material(rocksalt_nacl, dataset="campaign:1", source_id="cand-1",
                                          kind=MaterialOrigin.Kind.CAMPAIGN, details={"round": 1})
    again, created_again = register_material(rocksalt_nacl, dataset="campaign:1", source_id="cand-1")
    same, created_same = register_material(rocksalt_nacl.copy(), dataset="user", source_id="upload-7")
    assert created and not created_again and not created_same
    assert material.pk == again.pk == same.pk
    assert material.origins.count() == 2
    assert material.origins.get(dataset="campaign:1").details == {"round": 1}


def test_record_energy_per_kind_idempotent_and_validated(rocksalt_nacl):
    material, _ = register_material(rocksalt_nacl, dataset="t", source_id="1")
    scheme = ensure_scheme("GPAW-test", Scheme.Kind.TOTAL_ENERGY)
    record = record_energy(scheme, material=material, source_key="job-1", energy_total=-27.0, produced_by="job 1",
                           data={"ecut": 520})
    assert record.composition == "Na4Cl4" and record.energy_per_atom == pytest.approx(-27.0 / 8)
    assert record_energy(scheme, material=material, source_key="job-1", energy_total=-99.0).pk == record.pk
    assert EnergyRecord.objects.get(pk=record.pk).energy_total == -27.0

    lower = record_energy(scheme, material=material, source_key="job-2", energy_total=-28.0)
    assert lower.pk == record.pk and lower.energy_total == -28.0  # one energy per material and scheme: the lowest
    assert lower.data["other_values"][0]["source_key"] == "job-1"

    reference = record_energy("GPAW-test", composition="Cl2", source_key="ref-Cl2", energy_total=-3.6)
    assert reference.material is None and reference.chemsys == "Cl" and reference.energy_per_atom == -1.8

    with pytest.raises(EnergyError, match="needs energy_per_atom"):
        record_energy(scheme, composition="Na", source_key="x", formation_energy_per_atom=-1.0)


def test_hulls_are_updated_through_the_hull_service_when_present(tmp_path, monkeypatch):
    import sys
    import types

    calls = []
    fake = types.ModuleType("catalog.services.hulls")
    fake.update_hulls = lambda scheme, chemsystems: calls.append((scheme.name, sorted(chemsystems)))
    monkeypatch.setitem(sys.modules, "catalog.services.hulls", fake)
    write_csv(tmp_path / "d.csv", ["material_id", "cif", "energy_per_atom", ], [["1", cif_text(nacl()), -3.0]])
    write_csv(tmp_path / "p.csv", ["material_id", "cif", "heat_ref"], [["1", cif_text(srtio3()), 0.1]])
    import_paths([tmp_path / "d.csv"], options(source="d"))
    import_paths([tmp_path / "p.csv"], options(source="p"))
    assert calls == [("dataset:d", ["Cl-Na"])]  # stability values never build a hull


def test_elemental_references_only_for_total_energy_schemes():
    total = ensure_scheme("T", Scheme.Kind.TOTAL_ENERGY)
    formation = ensure_scheme("F", Scheme.Kind.FORMATION_ENERGY)
    energy_services.set_elemental_references(total, {"Na": -1.3, "Cl": -1.8})
    assert ElementalReference.objects.filter(scheme=total).count() == 2
    with pytest.raises(EnergyError):
        energy_services.set_elemental_references(formation, {"Na": 0.0})


def test_scheme_kind_error_is_an_energy_error():
    ensure_scheme("K", Scheme.Kind.FORMATION_ENERGY)
    with pytest.raises(SchemeKindError):
        ensure_scheme("K", Scheme.Kind.TOTAL_ENERGY)

