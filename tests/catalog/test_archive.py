"""export_catalog → import_catalog into an emptied catalog gives the same catalog: materials, origins, energies per
scheme with their protocols, and hulls rebuilt equal to 1e-6 eV/atom; a damaged archive is refused, naming the part."""

from __future__ import annotations

import io
import tarfile

import pytest
from django.core.management import CommandError, call_command
from pymatgen.core import Lattice, Structure

from catalog.models import ChemsysHull, ElementalReference, EnergyRecord, HullEntry, Material, MaterialOrigin, Scheme
from catalog.services.energies import EnergyInput, ensure_scheme, record_energies, set_elemental_references
from catalog.services.hulls import recompute_hulls
from tests.factories import make_material, rocksalt

pytestmark = pytest.mark.django_db


@pytest.fixture
def small_catalog():
    scheme = ensure_scheme("TEST-PBE", Scheme.Kind.TOTAL_ENERGY, protocol={"code": "test", "cutoff_eV": 500})
    set_elemental_references(scheme, {"Na": -1.3, "Cl": -1.8}, source="test references")
    nacl = make_material(rocksalt("Na", "Cl", 5.69), dataset="seed", source_id="nacl-1")
    MaterialOrigin.objects.create(material=nacl, dataset="other", source_id="nacl-dup", details={"note": "merged"})
    na3cl = make_material(Structure(Lattice.cubic(4.8), ["Na", "Na", "Na", "Cl"],
                                    [[0, 0, 0], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]]), source_id="na3cl")
    record_energies(scheme, [
        EnergyInput("nacl", "Na4Cl4", material_id=nacl.pk, energy_per_atom=-3.4, produced_by="test"),
        EnergyInput("na3cl", "Na3Cl", material_id=na3cl.pk, energy_per_atom=-1.9, produced_by="test"),
        EnergyInput("nacl2-composition", "NaCl2", energy_per_atom=-2.0, produced_by="a composition only"),
    ])
    recompute_hulls()
    return scheme


def snapshot() -> dict:
    return {
        "materials": sorted((m.formula_reduced, m.spacegroup_number) for m in Material.objects.all()),
        "origins": sorted(MaterialOrigin.objects.values_list("dataset", "source_id", "material__formula_reduced")),
        "energies": sorted(EnergyRecord.objects.values_list("scheme__name", "scheme__protocol_hash", "source_key",
                                                            "composition", "energy_per_atom")),
        "hulls": sorted(HullEntry.objects.values_list("scheme__name", "energy_record__source_key", "is_stable")),
        "references": sorted(ElementalReference.objects.values_list("scheme__name", "element", "energy_per_atom")),
    }


def empty_catalog() -> None:
    for model in (HullEntry, ChemsysHull, EnergyRecord, ElementalReference, MaterialOrigin, Material, Scheme):
        model.objects.all().delete()


def test_an_archive_reads_back_into_an_empty_catalog_as_the_same_catalog(small_catalog, tmp_path):
    path = tmp_path / "catalog.tar.gz"
    call_command("export_catalog", str(path), stdout=io.StringIO(), stderr=io.StringIO())
    before = snapshot()
    assert before["hulls"] and before["energies"]
    empty_catalog()
    out = io.StringIO()
    call_command("import_catalog", str(path), stdout=out, stderr=io.StringIO())
    assert snapshot() == before
    assert "hulls rebuilt: 3 entries compared" in out.getvalue() and "eV/atom, 0 beyond 1e-06" in out.getvalue()
    assert Material.objects.get(formula_reduced="NaCl").origins.count() == 2  # the merged duplicate's origins
    with tarfile.open(path) as archive:
        assert {"manifest.json", "materials.jsonl", "energies.jsonl", "hulls.jsonl"} <= set(archive.getnames())
        assert sum(name.startswith("cif/") for name in archive.getnames()) == 2


def test_a_damaged_archive_is_refused_naming_the_part(small_catalog, tmp_path):
    path = tmp_path / "catalog.tar.gz"
    call_command("export_catalog", str(path), "--no-cif", stdout=io.StringIO(), stderr=io.StringIO())
    damaged = tmp_path / "damaged.tar.gz"
    with tarfile.open(path) as source, tarfile.open(damaged, "w:gz") as target:
        for member in source.getmembers():
            data = source.extractfile(member).read()
            if member.name == "energies.jsonl":
                data = data.replace(b"-3.4", b"-9.9")
            member.size = len(data)
            target.addfile(member, io.BytesIO(data))
    with pytest.raises(CommandError, match="energies.jsonl does not match its SHA-256"):
        call_command("import_catalog", str(damaged), stdout=io.StringIO(), stderr=io.StringIO())
