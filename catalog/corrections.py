"""MP2020-style anion corrections, so raw DFT formation energies can be set beside the Materials Project's. Pure.

The Materials Project adds a fitted energy per anion atom (oxide, fluoride, nitride, selenide, ...) to its GGA(+U)
energies (Wang et al., Sci. Rep. 11, 15496 (2021)). Gnomon stores raw energies and builds its hulls from them; a
"corrected" formation energy is computed beside, labelled as such, only to compare with MP numbers. The values are
read from pymatgen's own ``MP2020Compatibility.yaml`` (one source, the library's). Only the composition corrections
apply here: no GGA/GGA+U mixing (Gnomon's GPAW protocol has no +U and refuses the chemistries that would need it).
"""

from __future__ import annotations

import functools
from pathlib import Path

from pymatgen.core import Composition, Element

# Oxygen in these compounds is not an oxide ion; MP2020 corrects them as peroxides/superoxides (detected by formula).
_O_O_BONDED = {"peroxide": ("Li2O2", "Na2O2", "K2O2", "CaO2", "MgO2", "ZnO2"), "superoxide": ("LiO2", "NaO2", "KO2")}


@functools.cache
def mp2020_composition_corrections() -> dict[str, float]:
    """eV per anion atom, from pymatgen's MP2020Compatibility.yaml."""
    import pymatgen.analysis.compatibility as compatibility
    from monty.serialization import loadfn

    table = loadfn(Path(compatibility.__file__).parent / "MP2020Compatibility.yaml")
    return {str(k): float(v) for k, v in table["Corrections"]["CompositionCorrections"].items()}


def mp2020_correction_per_atom(composition: Composition | str) -> float:
    """The MP2020 composition correction (eV/atom) of a compound: the anion's value × its atoms / all atoms.

    The anion is the most electronegative element, as in MP2020; an element compound or an anion without a value
    gets 0."""
    comp = Composition(composition)
    if len(comp.elements) < 2:
        return 0.0
    anion = max(comp.elements, key=lambda el: (el.X, el.Z))
    table = mp2020_composition_corrections()
    if anion == Element("O"):
        kind = next((k for k, formulas in _O_O_BONDED.items() if comp.reduced_formula in formulas), "oxide")
        value = table[kind]
    else:
        value = table.get(anion.symbol, 0.0)
    return value * comp[anion] / comp.num_atoms
