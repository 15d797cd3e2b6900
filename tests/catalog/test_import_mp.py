"""import_mp against responses recorded in a file the test writes (no internet here); the ORM and database are real."""

import io
import json

import pytest
from django.core.management import CommandError, call_command
from pymatgen.core import Lattice, Structure
from pymatgen.entries.computed_entries import ComputedStructureEntry

from catalog.models import EnergyRecord, Material, MaterialOrigin
from catalog.services import ingest

pytestmark = pytest.mark.django_db


def recorded_entries(path):
    """What MPRester.get_entries_in_chemsys('Li-O') returns, reduced to three entries and saved as JSON."""
    li = Structure(Lattice.cubic(3.44), ["Li", "Li"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    o2 = Structure(Lattice.cubic(6.0), ["O", "O"], [[0, 0, 0], [0.2, 0, 0]])
    li2o = Structure.from_spacegroup("Fm-3m", Lattice.cubic(4.63), ["O", "Li"], [[0, 0, 0], [0.25, 0.25, 0.25]])
    entries = [
        ComputedStructureEntry(li, -3.8, entry_id="mp-135-GGA", data={"material_id": "mp-135"}),
        ComputedStructureEntry(o2, -9.9, entry_id="mp-12957-GGA", data={"material_id": "mp-12957"}),
        ComputedStructureEntry(li2o, -14.3 * 4, entry_id="mp-1960-GGA", data={"material_id": "mp-1960"}),
    ]
    path.write_text(json.dumps([e.as_dict() for e in entries]))
    return path


class RecordedClient:
    def __init__(self, path, fail=None):
        self.path, self.fail, self.queries = path, fail, []

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def get_entries_in_chemsys(self, chemsys, compatible_only=True):
        self.queries.append(chemsys)
        if self.fail:
            raise self.fail
        return [ComputedStructureEntry.from_dict(d) for d in json.loads(self.path.read_text())]


def test_import_mp_stores_materials_energies_and_origins(tmp_path, monkeypatch):
    client = RecordedClient(recorded_entries(tmp_path / "li-o.json"))
    monkeypatch.setattr(ingest, "mp_client", lambda api_key: client)
    call_command("import_mp", "--chemsys", "O-Li", "--api-key", "k", "--workers", "1", "--no-progress",
                 stdout=io.StringIO())
    assert client.queries == ["Li-O"]
    assert set(MaterialOrigin.objects.filter(dataset__icontains="mp").values_list("source_id", flat=True)) >= {
        "mp-135", "mp-12957", "mp-1960"}
    li2o = Material.objects.get(formula_reduced="Li2O")
    record = EnergyRecord.objects.get(material=li2o)
    assert record.scheme.name == "MP2020"
    assert record.energy_per_atom == pytest.approx(-14.3 * 4 / li2o.nsites)
    # Importing the same response again adds nothing.
    call_command("import_mp", "--chemsys", "Li-O", "--api-key", "k", "--workers", "1", "--no-progress",
                 stdout=io.StringIO())
    assert Material.objects.count() == 3


def test_missing_key_is_a_clear_command_error(settings):
    settings.MP_API_KEY = ""
    with pytest.raises(CommandError, match="MP_API_KEY"):
        call_command("import_mp", "--chemsys", "Li-O", "--no-progress")


def test_offline_is_a_clear_command_error(tmp_path, monkeypatch):
    client = RecordedClient(tmp_path / "none.json", fail=ConnectionError("Name or service not known"))
    monkeypatch.setattr(ingest, "mp_client", lambda api_key: client)
    with pytest.raises(CommandError, match="check the network connection"):
        call_command("import_mp", "--chemsys", "Li-O", "--api-key", "k", "--no-progress")
    assert not Material.objects.exists()


def test_bad_chemsys_names_the_argument():
    with pytest.raises(CommandError, match="--chemsys 'Li-Qq'"):
        call_command("import_mp", "--chemsys", "Li-Qq", "--api-key", "k")
