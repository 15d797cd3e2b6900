import io
import json

import pytest
from ase.io import read
from pymatgen.core import Structure
from pymatgen.io.cif import CifParser
from pymatgen.io.vasp import Poscar

from catalog.formats import FORMATS, UnknownFormat, structure_to_format
from tests.factories import perovskite


@pytest.fixture
def srtio3():
    return perovskite("Sr", "Ti", lattice=3.905)


def test_every_format_round_trips(srtio3):
    cif, ctype, ext = structure_to_format(srtio3, "cif")
    assert (ctype, ext) == ("chemical/x-cif", "cif")
    assert CifParser.from_str(cif.decode()).parse_structures(primitive=False)[0].matches(srtio3)
    poscar, _, ext = structure_to_format(srtio3, "poscar")
    assert ext == "vasp" and Poscar.from_str(poscar.decode()).structure.matches(srtio3)
    as_json, ctype, _ = structure_to_format(srtio3, "json")
    assert ctype == "application/json" and Structure.from_dict(json.loads(as_json)) == srtio3
    xyz, _, ext = structure_to_format(srtio3, "xyz")
    atoms = read(io.StringIO(xyz.decode()), format="extxyz")
    assert ext == "xyz" and atoms.pbc.all() and abs(atoms.cell.lengths()[0] - 3.905) < 1e-6
    assert sorted(atoms.get_chemical_symbols()) == sorted(s.specie.symbol for s in srtio3)
    assert set(FORMATS) == {"cif", "poscar", "json", "xyz"}


def test_unknown_format(srtio3):
    with pytest.raises(UnknownFormat):
        structure_to_format(srtio3, "pdb")
