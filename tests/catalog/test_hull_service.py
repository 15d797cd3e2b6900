"""The living hull service on real PostgreSQL: incremental upkeep, bookkeeping and the materials' stability fields."""

from __future__ import annotations

import io
import random

import pytest
from django.core.management import call_command
from pymatgen.analysis.phase_diagram import PDEntry, PhaseDiagram
from pymatgen.core import Composition

from catalog.models import (
    ChemsysHull,
    ElementalReference,
    EnergyRecord,
    HullEntry,
    Material,
    Scheme,
    format_public_id,
)
from catalog.services.hulls import recompute_hulls, update_hulls

pytestmark = pytest.mark.django_db

TOL = 1e-6


def make_scheme(name="test-fe", kind=Scheme.Kind.FORMATION_ENERGY, priority=100, is_dft=True):
    return Scheme.objects.create(name=name, kind=kind, display_priority=priority, is_dft=is_dft)


def make_material(formula: str) -> Material:
    comp = Composition(formula)
    els = sorted(el.symbol for el in comp.elements)
    mat = Material.objects.create(
        public_id=f"tmp{random.getrandbits(48):x}",
        structure={},
        formula_reduced=comp.reduced_formula,
        formula_anonymous=comp.anonymized_formula,
        elements=els,
        nelements=len(els),
        chemsys="-".join(els),
        nsites=int(comp.num_atoms),
        volume=10.0 * comp.num_atoms,
        density=3.0,
        fingerprint="x",
    )
    mat.public_id = format_public_id(mat.pk)
    mat.save(update_fields=["public_id"])
    return mat


def add_energy(scheme, formula, value, material=None, key=None):
    """``value``: formation energy per atom (formation schemes) or total energy per atom (total-energy schemes)."""
    comp = Composition(formula)
    els = sorted(el.symbol for el in comp.elements)
    fields = {}
    if scheme.kind == Scheme.Kind.FORMATION_ENERGY:
        fields["formation_energy_per_atom"] = value
    elif scheme.kind == Scheme.Kind.TOTAL_ENERGY:
        fields["energy_per_atom"] = value
        fields["energy_total"] = value * comp.num_atoms
    else:
        fields["stability_value"] = value
    return EnergyRecord.objects.create(
        scheme=scheme,
        material=material,
        source_key=key or f"{formula}:{value}:{random.random()}",
        composition=comp.formula.replace(" ", ""),
        elements=els,
        chemsys="-".join(els),
        natoms=comp.num_atoms,
        **fields,
    )


def snapshot(scheme):
    return {
        h.energy_record_id: (
            h.status,
            h.formation_energy_per_atom,
            h.e_above_hull,
            h.is_stable,
            h.decomposition_energy,
            sorted((d["energy_record"] or 0, round(d["fraction"], 9)) for d in h.decomposition),
        )
        for h in HullEntry.objects.filter(scheme=scheme)
    }


def assert_same(a, b):
    assert a.keys() == b.keys()
    for key, va in a.items():
        vb = b[key]
        assert va[0] == vb[0] and va[3] == vb[3], key
        for x, y in zip(va[1:3] + va[4:5], vb[1:3] + vb[4:5], strict=True):
            assert (x is None and y is None) or x == pytest.approx(y, abs=1e-9), key
        assert va[5] == vb[5], key


@pytest.fixture
def li_fe_o():
    scheme = make_scheme()
    mats = {f: make_material(f) for f in ("Li2O", "Fe2O3", "LiFeO2", "FeO")}
    recs = {
        "Li2O": add_energy(scheme, "Li2O", -2.08, mats["Li2O"]),
        "Li2O2": add_energy(scheme, "Li2O2", -1.65),
        "Fe2O3": add_energy(scheme, "Fe2O3", -1.71, mats["Fe2O3"]),
        "FeO": add_energy(scheme, "FeO", -1.40, mats["FeO"]),
        "Fe3O4": add_energy(scheme, "Fe3O4", -1.66),
        "LiFeO2": add_energy(scheme, "LiFeO2", -1.95, mats["LiFeO2"]),
        "Li5FeO4": add_energy(scheme, "Li5FeO4", -1.90),
    }
    return scheme, mats, recs


def test_hull_entries_match_pymatgen_and_refresh_materials(li_fe_o):
    scheme, mats, recs = li_fe_o
    report = update_hulls(scheme, ["Fe-Li-O"])
    assert report.n_entries == 2  # only Fe-Li-O (LiFeO2, Li5FeO4) and its stored supersets (none) are touched
    recompute_hulls(scheme)
    assert HullEntry.objects.filter(scheme=scheme).count() == len(recs)
    entries = [
        PDEntry(Composition(r.composition), r.formation_energy_per_atom * r.natoms, name=k) for k, r in recs.items()
    ]
    entries += [PDEntry(Composition(el), 0.0, name=el) for el in ("Li", "Fe", "O")]
    for key, rec in recs.items():
        space = frozenset(Composition(rec.composition).elements)
        pd = PhaseDiagram([e for e in entries if space.issuperset(e.composition.elements)])
        entry = next(e for e in entries if e.name == key)
        h = HullEntry.objects.get(energy_record=rec)
        assert h.status == HullEntry.Status.OK
        assert h.chemsys == rec.chemsys
        assert h.e_above_hull == pytest.approx(pd.get_e_above_hull(entry), abs=TOL)
        assert h.is_stable == (entry in pd.stable_entries)
        assert h.formation_energy_per_atom == pytest.approx(rec.formation_energy_per_atom, abs=1e-12)
        assert h.decomposition_energy == pytest.approx(pd.get_decomp_and_phase_separation_energy(entry)[1], abs=TOL)
        if rec.material_id:
            mat = Material.objects.get(pk=rec.material_id)
            assert mat.e_above_hull == h.e_above_hull
            assert mat.is_stable == h.is_stable
            assert mat.formation_energy_per_atom == h.formation_energy_per_atom
            assert mat.hull_scheme_id == scheme.pk
    # decomposition JSON: record ids, public ids of materials, null for composition-only phases
    feo = HullEntry.objects.get(energy_record=recs["FeO"])
    assert not feo.is_stable
    products = {d["formula"]: d for d in feo.decomposition}
    assert set(products) == {"Fe3O4", "Fe"}
    assert products["Fe3O4"]["energy_record"] == recs["Fe3O4"].pk and products["Fe3O4"]["material"] is None
    assert products["Fe"]["energy_record"] is None  # the element at 0 eV/atom
    assert sum(d["fraction"] for d in feo.decomposition) == pytest.approx(1.0)
    stable = HullEntry.objects.get(energy_record=recs["Fe2O3"])
    assert stable.is_stable and stable.e_above_hull == 0.0 and stable.decomposition_energy < 0
    assert stable.decomposition == [
        {"energy_record": recs["Fe2O3"].pk, "material": mats["Fe2O3"].public_id, "formula": "Fe2O3", "fraction": 1.0}
    ]


def test_revision_bumps_only_touched_systems(li_fe_o):
    scheme, _, recs = li_fe_o
    recompute_hulls(scheme)
    rev = dict(ChemsysHull.objects.filter(scheme=scheme).values_list("chemsys", "revision"))
    assert rev == {"Li-O": 1, "Fe-O": 1, "Fe-Li-O": 1}
    new = add_energy(scheme, "Li2O", -2.30)  # a lower polymorph
    report = update_hulls(scheme, [new.chemsys])
    assert sorted(report.touched_systems) == ["Fe-Li-O", "Li-O"]
    assert report.maximal_systems == ["Fe-Li-O"] and report.n_diagrams == 1
    rev2 = dict(ChemsysHull.objects.filter(scheme=scheme).values_list("chemsys", "revision"))
    assert rev2 == {"Li-O": 2, "Fe-O": 1, "Fe-Li-O": 2}
    assert HullEntry.objects.get(energy_record=new).hull_revision == 2
    hull = ChemsysHull.objects.get(scheme=scheme, chemsys="Li-O")
    assert hull.n_entries == 3 and hull.elements == ["Li", "O"]
    # the old Li2O now sits 0.22 eV/atom above the hull; the material follows
    old = HullEntry.objects.get(energy_record=recs["Li2O"])
    assert old.e_above_hull == pytest.approx(0.22) and not old.is_stable
    assert Material.objects.get(pk=recs["Li2O"].material_id).e_above_hull == pytest.approx(0.22)


def test_energy_above_the_hull_only_recomputes_its_own_system(li_fe_o):
    scheme, _, recs = li_fe_o
    recompute_hulls(scheme)
    before = snapshot(scheme)
    new = add_energy(scheme, "LiO3", -0.2)  # far above the Li-O hull
    report = update_hulls(scheme, [new.chemsys])
    assert report.touched_systems == ["Li-O"] and report.n_entries == 3
    assert report.hull_unchanged
    rev = dict(ChemsysHull.objects.filter(scheme=scheme).values_list("chemsys", "revision"))
    assert rev == {"Li-O": 2, "Fe-O": 1, "Fe-Li-O": 1}  # the superset's hull did not move
    incremental = snapshot(scheme)
    assert incremental[new.pk][0:4] == ("ok", -0.2, incremental[new.pk][2], False) and incremental[new.pk][2] > 0
    assert_same({k: v for k, v in incremental.items() if k != new.pk}, before)
    recompute_hulls(scheme)
    assert_same(incremental, snapshot(scheme))
    # a new stable phase takes the full path and moves the superset too
    report = update_hulls(scheme, [add_energy(scheme, "Li2O", -2.5).chemsys])
    assert sorted(report.touched_systems) == ["Fe-Li-O", "Li-O"]


def test_incremental_updates_equal_a_full_recompute():
    rng = random.Random(11)
    scheme = make_scheme()
    elements = ["Li", "Fe", "O", "P", "Mn"]

    def random_formula():
        k = rng.randint(1, 4)
        return "".join(f"{el}{rng.randint(1, 4)}" for el in rng.sample(elements, k))

    for _ in range(60):
        f = random_formula()
        add_energy(scheme, f, rng.uniform(-2.0, 0.2), make_material(f) if rng.random() < 0.5 else None)
    recompute_hulls(scheme)
    for _ in range(25):
        f = random_formula()
        rec = add_energy(scheme, f, rng.uniform(-2.5, 0.0), make_material(f) if rng.random() < 0.5 else None)
        update_hulls(scheme, [rec.chemsys])
    incremental = snapshot(scheme)
    materials = dict(Material.objects.values_list("pk", "e_above_hull"))
    recompute_hulls(scheme)
    assert_same(incremental, snapshot(scheme))
    # the same numbers up to rounding (an entry may be evaluated on a different, equivalent maximal diagram)
    assert materials == pytest.approx(dict(Material.objects.values_list("pk", "e_above_hull")), abs=1e-9)
    # and a batch update of several systems gives the same again
    update_hulls(scheme, ["Li", "Fe-O", "Mn-P"])
    assert_same(incremental, snapshot(scheme))


def test_missing_elemental_reference_gives_a_status():
    scheme = make_scheme("test-total", kind=Scheme.Kind.TOTAL_ENERGY)
    ElementalReference.objects.create(scheme=scheme, element="Li", energy_per_atom=-1.9089)
    add_energy(scheme, "O2", -4.9467)
    li2o = add_energy(scheme, "Li2O", -4.75, make_material("Li2O"))
    mat = make_material("LiFeO2")
    lfo = add_energy(scheme, "LiFeO2", -6.0, mat)
    recompute_hulls(scheme)
    h = HullEntry.objects.get(energy_record=lfo)
    assert h.status == HullEntry.Status.MISSING_REFERENCES
    assert h.e_above_hull is None and "Fe" in h.note
    mat.refresh_from_db()
    assert mat.e_above_hull is None and mat.hull_scheme is None
    ok = HullEntry.objects.get(energy_record=li2o)
    assert ok.status == HullEntry.Status.OK
    assert ok.formation_energy_per_atom == pytest.approx((3 * -4.75 - 2 * -1.9089 - -4.9467) / 3)
    # adding the reference fixes it on the next update
    ElementalReference.objects.create(scheme=scheme, element="Fe", energy_per_atom=-8.47)
    update_hulls(scheme, ["Fe"])
    h.refresh_from_db()
    mat.refresh_from_db()
    assert h.status == HullEntry.Status.OK and mat.hull_scheme_id == scheme.pk


def test_preferred_scheme_is_lowest_display_priority_with_an_ok_entry():
    dft = make_scheme("dft", priority=10)
    ml = make_scheme("ml", priority=50, is_dft=False)
    total = make_scheme("raw", kind=Scheme.Kind.TOTAL_ENERGY, priority=1)
    mat = make_material("LiO2")
    add_energy(dft, "LiO2", -1.0, mat)
    add_energy(ml, "LiO2", -0.5, mat)
    add_energy(total, "LiO2", -5.0, mat)  # no Li/O references in this scheme: missing_references
    add_energy(ml, "Li2O", -1.2)
    recompute_hulls()
    mat.refresh_from_db()
    assert mat.hull_scheme_id == dft.pk and mat.formation_energy_per_atom == pytest.approx(-1.0)
    # ML energies never enter the DFT hull: the ML Li2O makes LiO2 unstable only in the ML scheme
    assert mat.is_stable
    assert not HullEntry.objects.get(scheme=ml, material=mat).is_stable
    EnergyRecord.objects.filter(scheme=dft).delete()
    recompute_hulls()
    mat.refresh_from_db()
    assert mat.hull_scheme_id == ml.pk and mat.is_stable is False
    assert not ChemsysHull.objects.filter(scheme=dft).exists()


def test_stability_value_scheme_builds_no_hull():
    scheme = make_scheme("dataset:perov", kind=Scheme.Kind.STABILITY_VALUE)
    add_energy(scheme, "SrTiO3", 0.1, make_material("SrTiO3"))
    report = update_hulls(scheme, ["O-Sr-Ti"])
    assert report.skipped_reason
    recompute_hulls()
    assert not ChemsysHull.objects.exists() and not HullEntry.objects.exists()


def test_management_command(li_fe_o):
    scheme, _, _ = li_fe_o
    out = io.StringIO()
    call_command("recompute_hulls", "--scheme", scheme.name, "--no-progress", stdout=out, stderr=io.StringIO())
    text = out.getvalue()
    assert "3 chemical systems" in text and "7 hull entries" in text
    out = io.StringIO()
    call_command("recompute_hulls", "--chemsys", "O-Fe", "--no-progress", stdout=out, stderr=io.StringIO())
    assert "2 chemical systems" in out.getvalue()  # Fe-O and the Fe-Li-O system that contains it
    assert ChemsysHull.objects.get(scheme=scheme, chemsys="Fe-O").revision == 2
    assert ChemsysHull.objects.get(scheme=scheme, chemsys="Li-O").revision == 1
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="unknown scheme"):
        call_command("recompute_hulls", "--scheme", "nope", stdout=io.StringIO())
