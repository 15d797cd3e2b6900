import pytest

from catalog.models import MaterialOrigin
from catalog.selectors import InvalidQuery, MaterialQuery, parse_formula_query, search_materials
from tests.factories import make_material, perovskite, rocksalt

pytestmark = pytest.mark.django_db


@pytest.fixture
def catalog_rows():
    return {
        "nacl": make_material(rocksalt("Na", "Cl", 5.69), e_above_hull=0.0, is_stable=True, dataset="perov"),
        "mgo": make_material(rocksalt("Mg", "O", 4.21), e_above_hull=0.05, is_stable=False),
        "srtio3": make_material(perovskite("Sr", "Ti"), e_above_hull=0.0, is_stable=True),
        "batio3": make_material(perovskite("Ba", "Ti"), e_above_hull=0.2, is_stable=False),
        "lafeo3": make_material(perovskite("La", "Fe"), e_above_hull=0.01, is_stable=False),
    }


def ids(qs):
    return {m.formula_reduced for m in qs}


def test_elements_include_exclude_only(catalog_rows):
    assert ids(search_materials(MaterialQuery(elements=("Ti",)))) == {"SrTiO3", "BaTiO3"}
    assert ids(search_materials(MaterialQuery(elements=("O",), exclude_elements=("Ti",)))) == {"MgO", "LaFeO3"}
    assert ids(search_materials(MaterialQuery(only_elements=("Na", "Cl", "Mg", "O")))) == {"NaCl", "MgO"}


def test_chemsys_exact_and_wildcard(catalog_rows):
    assert ids(search_materials(MaterialQuery(chemsys="O-Ti-Sr"))) == {"SrTiO3"}
    assert ids(search_materials(MaterialQuery(chemsys="*-Ti-O"))) == {"SrTiO3", "BaTiO3"}
    assert ids(search_materials(MaterialQuery(chemsys="*-O"))) == {"MgO"}


def test_formula_reduced_and_anonymous(catalog_rows):
    assert ids(search_materials(MaterialQuery(formula="Ti1Sr1O3"))) == {"SrTiO3"}
    assert ids(search_materials(MaterialQuery(formula="ABO3"))) == {"SrTiO3", "BaTiO3", "LaFeO3"}
    assert parse_formula_query("ABO3").anonymous_formula == "ABC3"
    assert parse_formula_query("A2B4").anonymous_formula == "AB2"


def test_energy_range_and_stability(catalog_rows):
    assert ids(search_materials(MaterialQuery(e_above_hull_max=0.02))) == {"NaCl", "SrTiO3", "LaFeO3"}
    assert ids(search_materials(MaterialQuery(is_stable=True))) == {"NaCl", "SrTiO3"}


def test_symmetry_and_origin(catalog_rows):
    assert ids(search_materials(MaterialQuery(spacegroup_number=225))) == {"NaCl", "MgO"}
    assert ids(search_materials(MaterialQuery(crystal_system="Cubic"))) == ids(catalog_rows.values())
    assert ids(search_materials(MaterialQuery(origin="perov"))) == {"NaCl"}
    from discovery.models import Campaign

    campaign = Campaign.objects.create(id=7, name="c7", elements=["Ba", "O", "Ti"], max_elements=3,
                                       pipelines=["structural"], config={})
    MaterialOrigin.objects.create(
        material=catalog_rows["batio3"], kind="campaign", dataset="campaign:7", source_id="c1", campaign=campaign
    )
    assert ids(search_materials(MaterialQuery(origin="campaign"))) == {"BaTiO3"}
    assert ids(search_materials(MaterialQuery(campaign=7))) == {"BaTiO3"}


def test_ordering_is_total(catalog_rows):
    make_material(rocksalt("K", "Br", 6.6))  # no hull yet: sorts last both ways
    rows = list(search_materials(MaterialQuery(ordering=("-e_above_hull",))))
    assert [r.formula_reduced for r in rows[:2]] == ["BaTiO3", "MgO"]
    assert rows[-1].e_above_hull is None
    ascending = list(search_materials(MaterialQuery(ordering=("e_above_hull",))))
    assert [r.e_above_hull for r in ascending[:2]] == [0.0, 0.0]
    assert ascending[0].id < ascending[1].id
    assert ascending[-1].e_above_hull is None


@pytest.mark.parametrize(
    ("query", "param"),
    [
        (MaterialQuery(elements=("Xx",)), "elements"),
        (MaterialQuery(chemsys="Li-Li"), "chemsys"),
        (MaterialQuery(formula="Li2-O"), "formula"),
        (MaterialQuery(e_above_hull_min=0.5, e_above_hull_max=0.1), "e_above_hull_min"),
        (MaterialQuery(spacegroup_number=231), "spacegroup_number"),
        (MaterialQuery(crystal_system="rhombic"), "crystal_system"),
        (MaterialQuery(ordering=("structure",)), "ordering"),
    ],
)
def test_bad_input_names_the_parameter(query, param):
    with pytest.raises(InvalidQuery) as err:
        list(search_materials(query))
    assert err.value.param == param


def test_a_system_shows_the_preferred_schemes_hull_dft_before_ml_at_equal_priority():
    from catalog.models import ChemsysHull, Scheme
    from catalog.selectors import hull_for, hull_schemes

    ml = Scheme.objects.create(name="ML-test", kind=Scheme.Kind.TOTAL_ENERGY, is_dft=False, display_priority=100)
    dft = Scheme.objects.create(name="ZZ-DFT-test", kind=Scheme.Kind.TOTAL_ENERGY, is_dft=True, display_priority=100)
    for scheme in (ml, dft):
        ChemsysHull.objects.create(scheme=scheme, chemsys="Cl-Na", elements=["Cl", "Na"])
    assert hull_for("Na-Cl").scheme == dft  # any element order; DFT first although its name sorts last
    assert hull_for("Cl-Na", "ML-test").scheme == ml
    assert hull_for("Cl-Na", "no-such-scheme") is None
    assert hull_schemes("Cl-Na") == [dft, ml]
