"""Predicted stability: a predicted formation energy placed against the current convex hull of its chemical system.

Energies are formation energies per atom (eV/atom, elements at 0) of one scheme. The result is signed: the distance
above the lower hull of the known phases, negative when the candidate would lie below it (a new stable phase, by
that much). pymatgen's ``PhaseDiagram`` does the geometry; one diagram per chemical system serves every candidate in it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from pymatgen.analysis.phase_diagram import PDEntry, PhaseDiagram
from pymatgen.core import Composition, Element


class HullReferences:
    """Known phases of one scheme as (composition, formation energy per atom); builds hulls per chemsys lazily."""

    def __init__(self, phases: Iterable[tuple[Composition | str, float]]):
        self._phases = [(Composition(c), float(e)) for c, e in phases]
        self._diagrams: dict[frozenset[str], PhaseDiagram] = {}

    def diagram(self, elements: Iterable[str]) -> PhaseDiagram:
        key = frozenset(elements)
        if key not in self._diagrams:
            entries = [PDEntry(Composition({el: 1}), 0.0, name=el) for el in sorted(key)]
            for composition, energy in self._phases:
                if {el.symbol for el in composition.elements} <= key:
                    entries.append(PDEntry(composition, energy * composition.num_atoms))
            self._diagrams[key] = PhaseDiagram(entries, elements=[Element(el) for el in sorted(key)])
        return self._diagrams[key]

    def e_above_hull(self, composition: Composition | str, formation_energy_per_atom: float) -> float:
        comp = Composition(composition)
        diagram = self.diagram(el.symbol for el in comp.elements)
        return float(formation_energy_per_atom - diagram.get_hull_energy_per_atom(comp))

    def e_above_hull_many(self, items: Sequence[tuple[Composition | str, float]]) -> list[float]:
        return [self.e_above_hull(c, e) for c, e in items]
