"""Convex hulls of formation energy (pure: no Django), on top of ``pymatgen.analysis.phase_diagram``.

An entry is ``HullInput(key, composition, energy)`` where ``energy`` is in eV for the composition *as written*
(``Fe4O6`` → the energy of 10 atoms):

- ``kind="total_energy"``: total energies. Formation energies come from elemental references: the scheme's
  ``ElementalReference`` values (eV/atom, passed as ``references``) and/or elemental entries in the data; for each element
  the lowest of these is the reference (it is the terminal point of the hull). An entry with an element that has neither
  gets ``status="missing_references"`` — never an exception.
- ``kind="formation_energy"``: formation energies (elements at 0). Zero-energy terminal entries are added for every
  element, so elemental entries in the data are measured against 0.

``compute_hulls`` groups the entries by *maximal* chemical system (a system not contained in another system of the data)
and builds one hull per maximal system: the hull of a sub-system is a face of its superset's hull, so every entry is
evaluated on the diagram of one maximal system that contains it (the way ``PatchedPhaseDiagram`` patches a large space).
Hulls are pymatgen's (``PhaseDiagram._compute``'s steps on precomputed arrays, ``get_facets``); energies above the hull and
decompositions are evaluated for all entries of a diagram at once (facet planes, numpy), and the few points that numerics
put on no facet fall back to pymatgen's own facet search.

Many-element systems (``patch_threshold`` elements or more, default 7) never get a hull of their own: qhull's cost explodes
with the dimension (measured on Bartel's MP data, one 9-element system with 764 phases: 60 s as a ``PhaseDiagram``,
128 s as a ``PatchedPhaseDiagram`` because the 9-element phase makes its own patch). Their sub-systems are hull patches as
above, and each of their own compositions is solved as a linear programme against every phase of its space — what
``PatchedPhaseDiagram`` falls back to for compositions no patch covers.

For stable entries ``decomposition_energy`` is how far the entry lies below the hull of all *other* compositions in its
chemical space (pymatgen ``get_decomp_and_phase_separation_energy(entry, stable_only=False)``, Bartel et al. 2020's
"decomposition enthalpy"; ≤ 0), solved as a linear programme. For other entries it follows the same pymatgen semantics:
``e_above_hull``, or, for a polymorph of a stable composition, ``e_above_hull`` plus that composition's decomposition
energy (its distance from the hull of the other compositions).

The package: ``results`` (inputs, results, kinds), ``compute`` (the entry point), ``facets`` (hulls of one system),
``lp`` (linear programmes), ``items`` (one phase as numbers), ``comparison`` (against published Ed values).
"""

from catalog.hulls.comparison import EdComparison, compare_decomposition_energies
from catalog.hulls.compute import (
    build_phase_diagram,
    chemsys_of,
    compute_hulls,
    formation_energy_references,
    maximal_systems,
)
from catalog.hulls.results import (
    DEFAULT_PATCH_THRESHOLD,
    FORMATION_ENERGY,
    HULL_KINDS,
    NUMERICAL_TOL,
    STABILITY_VALUE,
    STATUS_MISSING_REFERENCES,
    STATUS_OK,
    TOTAL_ENERGY,
    DecompositionProduct,
    HullError,
    HullInput,
    HullReport,
    HullResult,
)

__all__ = [
    "DEFAULT_PATCH_THRESHOLD", "FORMATION_ENERGY", "HULL_KINDS", "NUMERICAL_TOL", "STABILITY_VALUE",
    "STATUS_MISSING_REFERENCES", "STATUS_OK", "TOTAL_ENERGY", "DecompositionProduct", "EdComparison", "HullError",
    "HullInput", "HullReport", "HullResult", "build_phase_diagram", "chemsys_of", "compare_decomposition_energies",
    "compute_hulls", "formation_energy_references", "maximal_systems",
]
