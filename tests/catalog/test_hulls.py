"""The pure hull engine against pymatgen's PhaseDiagram, plus the physics it must respect."""

from __future__ import annotations

import random
import warnings

import pytest
from pymatgen.analysis.phase_diagram import PDEntry, PhaseDiagram
from pymatgen.core import Composition

from catalog.hulls import (
    FORMATION_ENERGY,
    STATUS_MISSING_REFERENCES,
    STATUS_OK,
    TOTAL_ENERGY,
    HullError,
    HullInput,
    compare_decomposition_energies,
    compute_hulls,
    maximal_systems,
)

TOL = 1e-6  # eV/atom
REFS = {"Li": -1.9089, "Fe": -8.4700, "O": -4.9467, "P": -5.4253}


def random_formation_inputs(elements, n, seed, max_species=4):
    rng = random.Random(seed)
    inputs = []
    for i in range(n):
        k = rng.randint(2, min(max_species, len(elements)))
        comp = Composition({el: rng.randint(1, 4) for el in rng.sample(elements, k)})
        inputs.append(HullInput.per_atom(f"e{i}", comp, rng.uniform(-2.5, 0.3)))
    return inputs


def to_total(inputs, refs):
    return [
        HullInput(i.key, i.composition, i.energy + sum(amt * refs[el.symbol] for el, amt in i.composition.items()))
        for i in inputs
    ]


def check_against_pymatgen(inputs, report, pd_entries):
    """Every entry against a PhaseDiagram of its own chemical system built by pymatgen from ``pd_entries``."""
    by_name = {e.name: e for e in pd_entries}
    diagrams: dict[frozenset, PhaseDiagram] = {}
    for item in inputs:
        entry = by_name[item.key]
        space = frozenset(entry.composition.elements)
        if space not in diagrams:
            diagrams[space] = PhaseDiagram([e for e in pd_entries if space.issuperset(e.composition.elements)])
        pd = diagrams[space]
        res = report.results[item.key]
        assert res.status == STATUS_OK
        decomp, e_hull = pd.get_decomp_and_e_above_hull(entry, allow_negative=True)
        assert res.e_above_hull == pytest.approx(e_hull, abs=TOL)
        assert res.formation_energy_per_atom == pytest.approx(pd.get_form_energy_per_atom(entry), abs=TOL)
        assert res.is_stable == (entry in pd.stable_entries)
        if not res.is_stable:
            ours = {p.formula: p.fraction for p in res.decomposition}
            theirs = {p.composition.reduced_formula: amt for p, amt in decomp.items()}
            assert ours.keys() == theirs.keys()
            for formula, amt in theirs.items():
                assert ours[formula] == pytest.approx(amt, abs=TOL)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            _, ed = pd.get_decomp_and_phase_separation_energy(entry, stable_only=False)
        assert res.decomposition_energy == pytest.approx(ed, abs=TOL), item.composition


def test_total_energy_quaternary_matches_pymatgen():
    formation = random_formation_inputs(list(REFS), 150, seed=1)
    inputs = to_total(formation, REFS)
    inputs += [HullInput.per_atom(f"ref-{el}", Composition(el), e) for el, e in REFS.items()]
    inputs += [HullInput.per_atom(f"poly-{el}", Composition(f"{el}2"), e + 0.05) for el, e in REFS.items()]
    report = compute_hulls(inputs, TOTAL_ENERGY)
    pd_entries = [PDEntry(i.composition, i.energy, name=i.key) for i in inputs]
    check_against_pymatgen(inputs, report, pd_entries)
    assert report.n_diagrams == 1
    # elemental references sit at 0 formation energy and on the hull
    for el in REFS:
        assert report.results[f"ref-{el}"].formation_energy_per_atom == 0.0
        assert report.results[f"ref-{el}"].is_stable
        assert report.results[f"ref-{el}"].e_above_hull == 0.0
        assert report.results[f"poly-{el}"].e_above_hull == pytest.approx(0.05, abs=1e-12)


def test_formation_energy_scheme_matches_pymatgen_with_zero_terminals():
    inputs = random_formation_inputs(["Li", "Fe", "O", "P"], 120, seed=2)
    report = compute_hulls(inputs, FORMATION_ENERGY)
    terminals = [PDEntry(Composition(el), 0.0, name=f"terminal-{el}") for el in ("Li", "Fe", "O", "P")]
    pd_entries = [PDEntry(i.composition, i.energy, name=i.key) for i in inputs] + terminals
    check_against_pymatgen(inputs, report, pd_entries)
    for res in report.results.values():
        if res.is_stable:
            assert res.e_above_hull == 0.0
            assert res.decomposition_energy <= 0.0
        else:
            assert res.e_above_hull > 0.0


def test_many_systems_use_maximal_diagrams_and_match_pymatgen():
    rng = random.Random(3)
    inputs = random_formation_inputs(["Li", "Fe", "O"], 40, seed=4)
    inputs += random_formation_inputs(["Na", "Cl", "O"], 40, seed=5)
    inputs += random_formation_inputs(["Fe", "O", "P", "S"], 60, seed=6)
    inputs = [HullInput(f"{k}-{i.key}", i.composition, i.energy) for k, i in enumerate(inputs)]
    inputs.append(HullInput.per_atom("lone", Composition("Cu2S"), rng.uniform(-1, 0)))
    report = compute_hulls(inputs, FORMATION_ENERGY)
    elements = {el.symbol for i in inputs for el in i.composition.elements}
    terminals = [PDEntry(Composition(el), 0.0, name=f"terminal-{el}") for el in elements]
    check_against_pymatgen(inputs, report, [PDEntry(i.composition, i.energy, name=i.key) for i in inputs] + terminals)
    systems = {i.composition.chemical_system for i in inputs}
    assert report.n_diagrams == len(maximal_systems(systems))
    assert report.n_diagrams < len(systems)


def test_patched_phase_diagram_gives_the_same_results():
    inputs = random_formation_inputs(["Li", "Fe", "O", "P", "S", "Mn"], 150, seed=7, max_species=3)
    # one 6-element entry with a positive formation energy: the space is 6-dimensional, its hull patches are not
    inputs.append(HullInput.per_atom("hea", Composition("LiFeOPSMn"), 0.5))
    inputs.append(HullInput.per_atom("deep", Composition("Li2FeOPS"), -3.0))  # stable, 5 elements
    inputs.append(HullInput.per_atom("deep-poly", Composition("Li4Fe2O2P2S2"), -2.9))  # its polymorph
    plain = compute_hulls(inputs, FORMATION_ENERGY, patch_threshold=100)
    patched = compute_hulls(inputs, FORMATION_ENERGY, patch_threshold=3)
    for key, res in plain.results.items():
        other = patched.results[key]
        assert other.e_above_hull == pytest.approx(res.e_above_hull, abs=TOL)
        assert other.is_stable == res.is_stable
        assert other.decomposition_energy == pytest.approx(res.decomposition_energy, abs=TOL)
        # Fractions equal within 1e-6 (rounding both to 6 places split 0.1171875 into 0.117188 vs 0.117187).
        assert {p.key: p.fraction for p in other.decomposition} == pytest.approx(
            {p.key: p.fraction for p in res.decomposition}, abs=1e-6
        )
    assert plain.results["deep"].is_stable and not plain.results["deep-poly"].is_stable
    assert patched.results["deep-poly"].e_above_hull == pytest.approx(0.1)


def test_targets_only_are_returned_and_equal_the_full_computation():
    inputs = random_formation_inputs(["Li", "Fe", "O", "P"], 80, seed=8)
    full = compute_hulls(inputs, FORMATION_ENERGY)
    wanted = [i.key for i in inputs[::7]]
    part = compute_hulls(inputs, FORMATION_ENERGY, targets=wanted)
    assert set(part.results) == set(wanted)
    for key in wanted:
        assert part.results[key] == full.results[key]


def test_lower_polymorph_moves_the_hull_and_raises_rivals():
    base = [
        HullInput.per_atom("LiO", Composition("LiO"), -1.0),
        HullInput.per_atom("Li2O", Composition("Li2O"), -1.1),
        HullInput.per_atom("LiO2", Composition("LiO2"), -0.7),
    ]
    before = compute_hulls(base, FORMATION_ENERGY).results
    assert before["Li2O"].is_stable and before["Li2O"].e_above_hull == 0.0
    assert before["LiO"].is_stable
    new = HullInput.per_atom("LiO-new", Composition("Li2O2"), -1.5)
    after = compute_hulls([*base, new], FORMATION_ENERGY).results
    assert after["LiO-new"].is_stable and after["LiO-new"].e_above_hull == 0.0
    assert after["LiO"].e_above_hull == pytest.approx(0.5)
    assert not after["LiO"].is_stable
    for key in ("Li2O", "LiO2"):
        assert after[key].e_above_hull >= before[key].e_above_hull
    assert after["LiO2"].e_above_hull > before["LiO2"].e_above_hull
    # the old phase now decomposes into the new polymorph
    assert [(p.key, p.fraction) for p in after["LiO"].decomposition] == [("LiO-new", pytest.approx(1.0))]
    # decomposition energy of the new stable polymorph: against Li2O + LiO2 (-0.9 eV/atom at x_O = 1/2), not LiO
    assert after["LiO-new"].decomposition_energy == pytest.approx(-0.6)
    # the old polymorph (pymatgen semantics): its distance from the hull of the other compositions
    assert after["LiO"].decomposition_energy == pytest.approx(-0.1)


def test_missing_elemental_reference_is_a_status_not_a_crash():
    inputs = [
        HullInput.per_atom("Li", Composition("Li"), -1.9),
        HullInput.per_atom("O2", Composition("O2"), -4.9),
        HullInput.per_atom("Li2O", Composition("Li2O"), -4.6),
        HullInput.per_atom("LiFeO2", Composition("LiFeO2"), -6.0),
    ]
    report = compute_hulls(inputs, TOTAL_ENERGY)
    bad = report.results["LiFeO2"]
    assert bad.status == STATUS_MISSING_REFERENCES
    assert "Fe" in bad.note
    assert bad.e_above_hull is None and bad.formation_energy_per_atom is None
    assert report.results["Li2O"].status == STATUS_OK
    assert report.systems["Fe-Li-O"]["n_missing"] == 1
    # a reference given by the scheme fixes it
    fixed = compute_hulls(inputs, TOTAL_ENERGY, {"Fe": -8.47}).results["LiFeO2"]
    assert fixed.status == STATUS_OK
    assert fixed.formation_energy_per_atom == pytest.approx((-6.0 * 4 - (-1.9 - 8.47 - 2 * 4.9)) / 4)


def test_scheme_reference_lower_than_the_data_wins():
    inputs = [
        HullInput.per_atom("Fe-data", Composition("Fe"), -8.40),
        HullInput.per_atom("O2", Composition("O2"), -4.9),
    ]
    res = compute_hulls(inputs, TOTAL_ENERGY, {"Fe": -8.47}).results
    assert res["Fe-data"].e_above_hull == pytest.approx(0.07)
    assert not res["Fe-data"].is_stable
    assert res["O2"].is_stable and res["O2"].formation_energy_per_atom == 0.0


def test_stability_value_and_unknown_kinds_build_no_hull():
    with pytest.raises(HullError, match="never builds a hull"):
        compute_hulls([], "stability_value")
    with pytest.raises(HullError):
        compute_hulls([], "nonsense")


def test_maximal_systems():
    got = maximal_systems(["Fe-O", "Li-O", "Fe-Li-O", "Na-Cl", "Cl", "O"])
    assert sorted("-".join(sorted(s)) for s in got) == ["Cl-Na", "Fe-Li-O"]


def test_compare_decomposition_energies_on_a_hand_made_set():
    # A-B binary (elements at 0): AB at -1.0 is stable; A3B at -0.4 lies above AB + A (-0.5 at x_B = 0.25)
    inputs = [
        HullInput.per_atom("AB", Composition("LiO"), -1.0),
        HullInput.per_atom("A3B", Composition("Li3O"), -0.4),
        HullInput.per_atom("AB3", Composition("LiO3"), -0.6),
    ]
    results = compute_hulls(inputs, FORMATION_ENERGY).results
    # AB vs the hull of the others: A3B and AB3 mix to AB at (-0.4 - 0.6) / 2 = -0.5 → Ed = -0.5
    assert results["AB"].decomposition_energy == pytest.approx(-0.5)
    assert results["A3B"].decomposition_energy == pytest.approx(0.1)  # e_above_hull
    assert results["AB3"].decomposition_energy == pytest.approx(-0.1)  # stable: -0.6 vs AB + O at -0.5
    published = {"AB": -0.5, "A3B": 0.10003, "AB3": -0.098, "absent": 0.0}
    cmp = compare_decomposition_energies(published, results, fine_tol=1e-4, coarse_tol=5e-3)
    assert cmp.n_compared == 3
    assert cmp.n_within_fine == 2
    assert cmp.n_within_coarse == 3
    assert cmp.missing == ["absent"]
    assert cmp.worst[0][0] == "AB3"
