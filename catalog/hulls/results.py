"""What goes into and comes out of a hull computation: inputs, results, kinds and statuses (pure: no Django)."""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass, field

from pymatgen.core import Composition

from catalog.energy_kinds import FORMATION_ENERGY, HULL_KINDS, STABILITY_VALUE, TOTAL_ENERGY

__all__ = ["FORMATION_ENERGY", "HULL_KINDS", "STABILITY_VALUE", "TOTAL_ENERGY"]  # re-exported by catalog.hulls


STATUS_OK = "ok"
STATUS_MISSING_REFERENCES = "missing_references"

# Chemical systems with at least this many elements get no hull of their own (see the module docstring). Measured on
# Bartel's MP data with this module's hull: 6 elements ~0.04 s, 7 ~0.15-0.25 s, 8 ~2.3 s, 9 ~60 s per system.
DEFAULT_PATCH_THRESHOLD = 7
NUMERICAL_TOL = 1e-8  # pymatgen's PhaseDiagram.numerical_tol


class HullError(ValueError):
    """The input cannot be turned into hulls (unknown kind, malformed composition)."""


@dataclass(frozen=True)
class HullInput:
    """One energy: ``energy`` in eV for ``composition`` as written (total or formation energy, by the scheme's kind)."""

    key: Hashable
    composition: Composition
    energy: float

    @classmethod
    def per_atom(cls, key: Hashable, composition: Composition | str, energy_per_atom: float) -> HullInput:
        comp = Composition(composition) if isinstance(composition, str) else composition
        return cls(key, comp, float(energy_per_atom) * comp.num_atoms)


@dataclass(frozen=True)
class DecompositionProduct:
    key: Hashable | None  # None for a synthetic terminal (element at its reference energy)
    formula: str  # reduced formula
    fraction: float  # fraction of the atoms


@dataclass
class HullResult:
    key: Hashable
    chemsys: str
    status: str = STATUS_OK
    formation_energy_per_atom: float | None = None
    e_above_hull: float | None = None
    is_stable: bool = False
    decomposition_energy: float | None = None
    decomposition: list[DecompositionProduct] = field(default_factory=list)
    note: str = ""


@dataclass
class HullReport:
    """What ``compute_hulls`` returns: per-entry results and per-chemical-system counts."""

    results: dict[Hashable, HullResult]
    systems: dict[str, dict[str, int]]  # chemsys -> {"n_entries": .., "n_stable": .., "n_missing": ..}
    n_diagrams: int = 0
