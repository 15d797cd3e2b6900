from catalog.structures import chemsys_of, describe, parse_chemsys


def test_describe_rocksalt(rocksalt_nacl):
    d = describe(rocksalt_nacl)
    assert d.formula_reduced == "NaCl"
    assert d.formula_anonymous == "AB"
    assert d.chemsys == "Cl-Na"
    assert d.spacegroup_number == 225
    assert d.crystal_system == "cubic"
    assert d.nsites == 8


def test_describe_perovskite_symmetry(perovskite_srtio3):
    d = describe(perovskite_srtio3)
    assert d.spacegroup_number == 221
    assert d.formula_anonymous == "ABC3"
    assert d.elements == ("O", "Sr", "Ti")


def test_chemsys_roundtrip():
    assert chemsys_of("LiFePO4") == "Fe-Li-O-P"
    assert parse_chemsys("O-Li-Fe") == ("Fe", "Li", "O")
