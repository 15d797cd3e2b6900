"""Shared test fixtures: real PostgreSQL through pytest-django; small structures built here, never downloaded."""

from __future__ import annotations

import pytest
from pymatgen.core import Lattice, Structure


@pytest.fixture
def rocksalt_nacl() -> Structure:
    fcc = [(0, 0, 0), (0.5, 0.5, 0), (0.5, 0, 0.5), (0, 0.5, 0.5)]
    octahedral = [(0.5, 0.5, 0.5), (0, 0, 0.5), (0, 0.5, 0), (0.5, 0, 0)]  # from_spacegroup would take 0.4 s
    return Structure(Lattice.cubic(5.69), ["Na"] * 4 + ["Cl"] * 4, fcc + octahedral)


@pytest.fixture
def perovskite_srtio3() -> Structure:
    return Structure.from_spacegroup(
        "Pm-3m", Lattice.cubic(3.905), ["Sr", "Ti", "O"], [[0, 0, 0], [0.5, 0.5, 0.5], [0.5, 0.5, 0]]
    )
