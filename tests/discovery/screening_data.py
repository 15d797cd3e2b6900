"""Small crystals with a learnable synthetic target, for the screening tests (built here, never downloaded).

Rock-salt and CsCl binaries of alkali/alkaline-earth cations with halide/chalcogenide anions. The target mimics a
formation energy per atom: more negative the larger the electronegativity difference, 0.2 eV/atom higher for the
CsCl polymorph. A graph network can learn it; the training mean cannot.
"""

from __future__ import annotations

import itertools

import numpy as np
from pymatgen.core import Element, Lattice, Structure

CATIONS = ("Li", "Na", "K", "Rb", "Mg", "Ca", "Sr", "Ba")
ANIONS = ("F", "Cl", "Br", "I", "O", "S")


FCC = ((0, 0, 0), (0.5, 0.5, 0), (0.5, 0, 0.5), (0, 0.5, 0.5))
ROCKSALT_ANIONS = ((0.5, 0.5, 0.5), (0, 0, 0.5), (0, 0.5, 0), (0.5, 0, 0))
"""The conventional rock-salt cell written out: ``Structure.from_spacegroup`` rebuilds pymatgen's SpaceGroup (about
1 s on a loaded 2-core machine) on every call, which made building these 192 crystals take over a minute."""


def binary(cation: str, anion: str, prototype: str = "rocksalt", scale: float = 1.0) -> Structure:
    bond = (Element(cation).atomic_radius + Element(anion).atomic_radius) * scale
    if prototype == "rocksalt":
        return Structure(Lattice.cubic(2 * bond), [cation] * 4 + [anion] * 4, [*FCC, *ROCKSALT_ANIONS])
    return Structure(Lattice.cubic(2 * bond / 3**0.5), [cation, anion], [[0, 0, 0], [0.5, 0.5, 0.5]])


def synthetic_energy(cation: str, anion: str, prototype: str) -> float:
    """eV/atom; a learnable stand-in for a formation energy."""
    return -(Element(anion).X - Element(cation).X) / 2 + (0.2 if prototype == "cscl" else 0.0)


def synthetic_dataset(scales: int = 2, seed: int = 0) -> tuple[list[Structure], list[float], list[str]]:
    rng = np.random.default_rng(seed)
    structures, targets, chemsys = [], [], []
    for cation, anion in itertools.product(CATIONS, ANIONS):
        for prototype in ("rocksalt", "cscl"):
            for scale in rng.uniform(0.96, 1.04, scales):
                structure = binary(cation, anion, prototype, scale)
                structures.append(structure)
                targets.append(synthetic_energy(cation, anion, prototype))
                chemsys.append(structure.composition.chemical_system)
    return structures, targets, chemsys


def out_of_distribution() -> list[Structure]:
    """Elements the synthetic set never has, in prototypes it has: their embeddings are untrained."""
    return [binary("Cs", "Te"), binary("Ag", "Se", "cscl"), binary("Tl", "N"), binary("Cu", "Au", "cscl")]
