"""Presets, the backend registry and the reference structures (pure: no database, no DFT)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from pymatgen.core import Lattice, Structure

from discovery.dft import PRESETS, get_backend, get_preset
from discovery.dft.base import DFTBackend, register_backend
from discovery.dft.presets import initial_magmoms, nbands_for
from discovery.dft.references import binary_prototype, bootstrap_set, elemental_reference
from tests.discovery.dft_support import SlowFakeBackend


def test_one_cutoff_for_every_structure_of_a_protocol():
    """Metals, oxides and molecules of one scheme share the cutoff: 350 → 500 eV moves Mg metal by ~110 meV/atom, an
    error that would not cancel against MgO computed at 500 eV."""
    for preset in PRESETS.values():
        assert not hasattr(preset, "cutoff_for") and preset.protocol()["ecut_eV"] == preset.ecut_eV
    assert get_preset("bootstrap").ecut_eV == 520.0  # the shared seed set's settings


def test_band_rule_always_leaves_empty_bands():
    # one-atom Ca, Sr, Ba (10 valence electrons with the semicore): GPAW's default gave 5 bands, none empty
    assert nbands_for(10, 1) == 9
    for n_valence, n_atoms in ((10, 1), (8, 1), (60, 8), (7, 2), (240, 40)):
        assert nbands_for(n_valence, n_atoms) >= n_valence / 2 + 1
    assert nbands_for(12, 2, n_unpaired=2) == nbands_for(12, 2) + 2  # spin: room for the majority electrons


def test_protocol_hash_changes_with_any_number_and_names_the_scheme():
    import dataclasses

    from catalog.protocols import protocol_hash

    fast = get_preset("fast")
    assert protocol_hash(fast.protocol()) == protocol_hash(dict(reversed(list(fast.protocol().items()))))
    for change in ({"ecut_eV": 520.0}, {"kpoint_spacing": 0.4}, {"smearing_eV": 0.05}, {"fmax": 0.03}):
        assert protocol_hash(dataclasses.replace(fast, **change).protocol()) != protocol_hash(fast.protocol())
    # the step budget decides whether a run finishes, not what a finished run gives
    assert protocol_hash(dataclasses.replace(fast, max_steps=60).protocol()) == protocol_hash(fast.protocol())


def test_kpoint_mesh_matches_the_bootstrap_convention():
    # Li bcc, a = 3.44 Å: the seed set used 11x11x11 at 0.25 1/Å (ceil(2π|b|/0.25), |b| without 2π).
    li = elemental_reference("Li").structure
    li = Structure(Lattice(li.lattice.matrix * 3.4368 / 3.44), ["Li"], [[0, 0, 0]])
    assert get_preset("bootstrap").kpoints_for(li.lattice.matrix) == (11, 11, 11)
    mesh = get_preset("fast").kpoints_for(np.eye(3) * 4.0)
    assert mesh == (math.ceil(2 * math.pi / 4.0 / 0.5),) * 3
    assert get_preset("fast").kpoints_for(np.eye(3) * 4.0, pbc=(True, True, False))[2] == 1


def test_spin_polarisation_for_o2_and_magnetic_elements_only():
    assert initial_magmoms(["O", "O"], is_molecule=True) == [1.0, 1.0]  # triplet O2
    assert initial_magmoms(["Mg", "O"]) is None
    assert initial_magmoms(["Fe", "O"]) == [4.0, 0.0]
    assert initial_magmoms(["Cl", "Cl"], is_molecule=True) is None


def test_unknown_preset_and_backend_name_what_is_known():
    with pytest.raises(KeyError, match="fast"):
        get_preset("fastest")
    with pytest.raises(KeyError, match="gpaw"):
        get_backend("castep")


def test_registry_returns_registered_backends_that_satisfy_the_protocol():
    register_backend("slow-fake", SlowFakeBackend)
    backend = get_backend("slow-fake")
    assert isinstance(backend, DFTBackend)
    assert backend.scheme_for(PRESETS["fast"]).name == "TEST-fake-fast"


def test_ml_scheme_is_labelled_and_never_dft():
    spec = get_backend("ml").scheme_for(PRESETS["fast"])
    assert spec.name.startswith("ML-CHGNet-0.4.2-") and spec.is_dft is False and spec.protocol["level"] == "ML"


def test_vasp_scheme_is_mp2020_compatible():
    spec = get_backend("vasp").scheme_for(PRESETS["standard"])
    assert spec.name == "MP2020" and spec.is_dft and "MP2020" in spec.correction_policy


def test_elemental_references_use_ground_state_lattices_and_molecules_in_a_box():
    na = elemental_reference("Na")
    assert na.label == "Na-bcc" and len(na.structure) == 1 and not na.is_molecule
    mg = elemental_reference("Mg")
    assert mg.label == "Mg-hcp" and len(mg.structure) == 2
    o2 = elemental_reference("O")
    assert o2.is_molecule and o2.label == "O2-molecule"
    assert o2.structure.lattice.abc == pytest.approx((9.0, 9.5, 10.0))
    assert o2.structure.get_distance(0, 1) == pytest.approx(1.21)


@pytest.mark.parametrize(
    ("prototype", "natoms", "spacegroup"),
    [("rocksalt", 2, 225), ("cesiumchloride", 2, 221), ("zincblende", 2, 216), ("wurtzite", 4, 186),
     ("fluorite", 3, 225), ("antifluorite", 3, 225)],
)
def test_binary_prototypes_have_their_space_groups(prototype, natoms, spacegroup):
    structure = binary_prototype(prototype, "Mg", "O", 2.1)
    assert len(structure) == natoms
    assert structure.get_space_group_info()[1] == spacegroup
    # nearest cation-anion distance (periodic images included) is the requested bond
    cation = next(site for site in structure if site.specie.symbol == "Mg")
    nearest = min(n.nn_distance for n in structure.get_neighbors(cation, 3.5) if n.specie.symbol == "O")
    assert nearest == pytest.approx(2.1, abs=1e-3)


def test_bootstrap_set_for_li_na_mg_o_cl_is_charge_balanced():
    labels = {ref.label for ref in bootstrap_set(["Li", "Na", "Mg", "O", "Cl"])}
    assert {"Li-bcc", "Na-bcc", "Mg-hcp", "O2-molecule", "Cl2-molecule"} <= labels
    assert {"NaCl-rocksalt", "MgO-rocksalt", "MgO-wurtzite", "Li2O-antifluorite", "MgCl2-fluorite"} <= labels
    assert "LiO-rocksalt" not in labels and "NaCl2-fluorite" not in labels
    assert "LiO-rocksalt" in {r.label for r in bootstrap_set(["Li", "O"], all_prototypes=True)}


def test_trigonal_chalcogen_references_are_the_helical_chain_crystals():
    from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

    from discovery.dft.references import elemental_reference, reference_elements

    for element, nearest in (("Se", 2.37), ("Te", 2.83)):  # Å, measured intrachain bonds
        structure = elemental_reference(element).structure
        assert SpacegroupAnalyzer(structure, symprec=0.01).get_space_group_symbol() in ("P3_121", "P3_221")
        distances = structure.distance_matrix[structure.distance_matrix > 0]
        assert abs(distances.min() - nearest) < 0.08
    assert {"Se", "Te", "O", "Cl", "Mg"} <= reference_elements() and "Mn" not in reference_elements()
    graphite = elemental_reference("C").structure  # not diamond: PBE puts graphite lower
    assert SpacegroupAnalyzer(graphite, symprec=0.01).get_space_group_symbol() == "P6_3/mmc"
    assert abs(graphite.distance_matrix[graphite.distance_matrix > 0].min() - 1.42) < 0.01


def test_magnetic_starts_add_a_layered_antiferromagnet_where_the_cell_allows():
    from discovery.dft.presets import PRESETS, SPIN_POLICY, magnetic_starts

    # two Ni on alternate (111) layers of a doubled NiO cell: FM and AFM; one Ni: FM only; no magnetic element: none
    symbols, coords = ["Ni", "Ni", "O", "O"], [[0, 0, 0], [0.5, 0.5, 0.5], [0.25, 0.25, 0.25], [0.75, 0.75, 0.75]]
    starts = dict(magnetic_starts(symbols, coords, ("FM", "AFM")))
    assert list(starts) == ["FM", "AFM"]
    assert starts["FM"][:2] == [starts["FM"][0]] * 2 and starts["FM"][0] > 0
    assert starts["AFM"][0] == -starts["AFM"][1] and starts["AFM"][2:] == [0.0, 0.0]
    assert [name for name, _ in magnetic_starts(symbols, coords, ("FM",))] == ["FM"]  # the fast protocol
    assert [name for name, _ in magnetic_starts(["Ni", "O"], [[0, 0, 0], [0.5, 0.5, 0.5]], ("FM", "AFM"))] == ["FM"]
    assert magnetic_starts(["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]], ("FM", "AFM")) == []
    # the production protocol says so in its record (and so hashes apart); fast keeps the FM-only policy
    assert PRESETS["fast"].protocol()["spin"] == SPIN_POLICY
    assert "antiferromagnetic" in PRESETS["standard"].protocol()["spin"]
