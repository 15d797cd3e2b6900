"""One phase as the hull code sees it: formation energy per atom, elements, atomic fractions, reduced-composition key."""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass

from pymatgen.core import Composition

from catalog.hulls.results import HullInput

_FORMULAS: dict[tuple, str] = {}
def fractions_of(comp: Composition) -> tuple[dict[str, float], tuple]:
    """Atomic fractions and a hashable reduced-composition key (sorted (element, fraction) pairs)."""
    total = comp.num_atoms
    fractions = {el.symbol: amount / total for el, amount in comp.items()}
    rkey = tuple(sorted((el, round(x, 10)) for el, x in fractions.items()))
    return fractions, rkey


@dataclass
class Item:
    key: Hashable | None
    composition: Composition
    e_form: float  # eV/atom
    els: frozenset[str]
    chemsys: str
    fractions: dict[str, float]
    rkey: tuple  # reduced composition, hashable and sortable

    @property
    def formula(self) -> str:
        """Reduced formula, cached per reduced composition (pymatgen's is slow to compute)."""
        formula = _FORMULAS.get(self.rkey)
        if formula is None:
            if len(_FORMULAS) > 1_000_000:
                _FORMULAS.clear()
            formula = _FORMULAS[self.rkey] = self.composition.reduced_formula
        return formula

    @classmethod
    def make(cls, it: HullInput, e_form: float, els: frozenset[str], chemsys: str) -> Item:
        fractions, rkey = fractions_of(it.composition)
        return cls(it.key, it.composition, e_form, els, chemsys, fractions, rkey)

    @classmethod
    def terminal(cls, el: str) -> Item:
        return cls(None, Composition(el), 0.0, frozenset((el,)), el, {el: 1.0}, ((el, 1.0),))
