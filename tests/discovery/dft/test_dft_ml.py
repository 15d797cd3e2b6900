"""The ML backend (CHGNet 0.4.2, weights in the wheel): a labelled pre-relaxer whose energies never enter a DFT hull."""

from __future__ import annotations

import pytest
from pymatgen.core import Lattice, Structure

from discovery.dft import get_backend, get_preset

pytest.importorskip("chgnet", reason="chgnet is not installed")


@pytest.mark.slow
def test_chgnet_relaxes_nacl_towards_its_known_lattice_constant(tmp_path):
    start = Structure.from_spacegroup("Fm-3m", Lattice.cubic(5.40), ["Na", "Cl"],
                                      [[0, 0, 0], [0.5, 0.5, 0.5]]).get_primitive_structure()
    result = get_backend("ml").run(start, get_preset("fast"), workdir=tmp_path)
    assert result.scheme.name.startswith("ML-CHGNet-0.4.2-") and result.scheme.is_dft is False
    a = result.structure.lattice.a * 2**0.5
    assert 5.55 < a < 5.85  # experiment 5.64 Å, PBE 5.68 Å
    assert -3.9 < result.energy_per_atom < -3.2  # MP (corrected GGA) NaCl is about -3.4 eV/atom
