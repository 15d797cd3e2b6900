"""Descriptors of a crystal that the catalog indexes and searches by (pure: no Django)."""

from __future__ import annotations

import hashlib
import itertools
import logging
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
from pymatgen.core import Composition, Structure
from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

logger = logging.getLogger(__name__)

DEFAULT_SYMPREC = 0.1  # Å; spglib's tolerance as used by the Materials Project
# Å. The largest real unit cells (virus and ribosome crystals) are ~10³ Å; pymatgen's primitive-cell search stalls
# on vectors of ~10⁶ Å, so anything beyond 10⁴ Å is a broken file.
MAX_LATTICE_LENGTH = 1e4


@dataclass(frozen=True)
class StructureDescription:
    formula_reduced: str
    formula_anonymous: str
    elements: tuple[str, ...]
    chemsys: str
    nsites: int
    volume: float  # Å³
    density: float  # g/cm³
    spacegroup_number: int | None
    spacegroup_symbol: str
    crystal_system: str
    symprec: float
    fingerprint: str


def chemsys_of(composition: Composition | str) -> str:
    """'Fe-Li-O' style chemical system: sorted element symbols joined by '-'."""
    comp = Composition(composition) if isinstance(composition, str) else composition
    return "-".join(sorted(el.symbol for el in comp.elements))


def parse_chemsys(chemsys: str) -> tuple[str, ...]:
    return tuple(sorted(part for part in chemsys.split("-") if part))


def sub_chemsystems(elements: Iterable[str]) -> list[str]:
    """Every chemical system inside ``elements``, itself and the elements included (a hull needs all of them):
    Fe-O → Fe, O, Fe-O."""
    elements = sorted(set(elements))
    return ["-".join(c) for n in range(1, len(elements) + 1) for c in itertools.combinations(elements, n)]


def volume_bucket(structure: Structure) -> int:
    """Coarse volume per atom (2 Å³ bins): a cheap pre-filter before StructureMatcher."""
    return int(structure.volume / len(structure) // 2)


def fingerprint_of(formula_reduced: str, structure: Structure) -> str:
    """Dedup bucket: same reduced formula and similar volume per atom. StructureMatcher makes the final call."""
    key = f"{formula_reduced}|{volume_bucket(structure)}"
    return hashlib.sha1(key.encode(), usedforsecurity=False).hexdigest()[:16]


def check_cell(structure: Structure) -> None:
    """Reject cells no crystal can have, before spglib and the duplicate matcher see them.

    A NaN coordinate makes spglib die with SIGSEGV, taking a whole import with it; a lattice vector of 10⁶ Å makes
    ``get_primitive_structure`` (used by the duplicate matcher) loop for minutes; the volume alone can stay finite
    (a 1e308 Å off-diagonal term); and PostgreSQL's JSON refuses NaN/Infinity.
    """
    lattice = structure.lattice
    if not (np.isfinite(lattice.matrix).all() and np.isfinite(lattice.abc).all() and np.isfinite(lattice.angles).all()):
        raise ValueError(f"impossible lattice: lengths {lattice.abc} Å, angles {lattice.angles}°")
    if max(lattice.abc) > MAX_LATTICE_LENGTH:
        raise ValueError(f"impossible lattice: a vector of {max(lattice.abc):.3g} Å (more than {MAX_LATTICE_LENGTH:g} Å)")
    if not np.isfinite(structure.frac_coords).all() or not np.isfinite(structure.cart_coords).all():
        raise ValueError("site coordinates are not finite numbers")


MIN_INTERATOMIC_DISTANCE = 0.5  # Å; the shortest real bond (H2) is 0.74 Å: closer atoms are a broken or merged file


def closest_pair(structure: Structure, cutoff: float = MIN_INTERATOMIC_DISTANCE) -> tuple[int, int, float] | None:
    """The two sites (indices, periodic images included) closest to each other if nearer than ``cutoff`` Å, else None."""
    centers, points, images, distances = structure.get_neighbor_list(cutoff)
    pairs = [(float(d), int(i), int(j)) for i, j, image, d in zip(centers, points, images, distances, strict=True)
             if not (i == j and not np.any(image))]
    if not pairs:
        return None
    d, i, j = min(pairs)
    return min(i, j), max(i, j), d


def describe(structure: Structure, symprec: float = DEFAULT_SYMPREC) -> StructureDescription:
    """Searchable descriptors. Raises ValueError for a cell with non-finite geometry (see check_cell)."""
    check_cell(structure)
    comp = structure.composition
    formula_reduced = comp.reduced_formula
    spg_number: int | None = None
    spg_symbol = ""
    crystal_system = ""
    try:
        analyzer = SpacegroupAnalyzer(structure, symprec=symprec)
        spg_number = analyzer.get_space_group_number()
        spg_symbol = analyzer.get_space_group_symbol()
        crystal_system = analyzer.get_crystal_system()
    except Exception as exc:  # noqa: BLE001 - spglib fails on degenerate cells; the material is still worth keeping
        logger.warning("symmetry analysis failed for %s: %s", formula_reduced, exc)
    return StructureDescription(
        formula_reduced=formula_reduced,
        formula_anonymous=comp.anonymized_formula,
        elements=tuple(sorted(el.symbol for el in comp.elements)),
        chemsys=chemsys_of(comp),
        nsites=len(structure),
        volume=float(structure.volume),
        density=float(structure.density),
        spacegroup_number=spg_number,
        spacegroup_symbol=spg_symbol,
        crystal_system=crystal_system,
        symprec=symprec,
        fingerprint=fingerprint_of(formula_reduced, structure),
    )
