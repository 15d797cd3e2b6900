"""Starting structures for a hull from nothing: elemental reference phases and common binary prototypes.

Elements start in their ground-state lattices (experimental lattice constants; the relaxation finds the PBE ones);
H2, N2, O2, F2, Cl2, Br2 and I2 are molecules in a 9.0 × 9.5 × 10.0 Å box (the box breaks the symmetry so the molecule's
orientation is defined). Binaries come in the prototypes that hold most simple ionic solids: rocksalt, CsCl, zincblende
and wurtzite for AB, fluorite for AB2, antifluorite for A2B, with a lattice constant guessed from Shannon ionic radii.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from itertools import product

from pymatgen.core import Element, Lattice, Species, Structure

MOLECULES: dict[str, float] = {"H": 0.75, "N": 1.10, "O": 1.21, "F": 1.42, "Cl": 1.99, "Br": 2.28, "I": 2.67}  # bond, Å

# Ground-state lattices: (prototype, a [Å], c [Å] for hcp, graphite and the trigonal chains). Carbon's is graphite:
# PBE puts it below diamond, and a diamond reference would make every carbide look too stable.
ELEMENT_LATTICES: dict[str, tuple[str, float, float | None]] = {
    "Li": ("bcc", 3.44, None), "Na": ("bcc", 4.23, None), "K": ("bcc", 5.23, None), "Rb": ("bcc", 5.59, None),
    "Cs": ("bcc", 6.05, None), "Ba": ("bcc", 5.02, None), "V": ("bcc", 3.03, None), "Cr": ("bcc", 2.88, None),
    "Fe": ("bcc", 2.87, None), "Nb": ("bcc", 3.30, None), "Mo": ("bcc", 3.15, None), "Ta": ("bcc", 3.30, None),
    "W": ("bcc", 3.16, None),
    "Ca": ("fcc", 5.58, None), "Sr": ("fcc", 6.08, None), "Al": ("fcc", 4.05, None), "Ni": ("fcc", 3.52, None),
    "Cu": ("fcc", 3.61, None), "Pd": ("fcc", 3.89, None), "Ag": ("fcc", 4.09, None), "Pt": ("fcc", 3.92, None),
    "Au": ("fcc", 4.08, None), "Pb": ("fcc", 4.95, None), "Rh": ("fcc", 3.80, None), "Ir": ("fcc", 3.84, None),
    "Mg": ("hcp", 3.21, 5.21), "Zn": ("hcp", 2.66, 4.95), "Be": ("hcp", 2.29, 3.58), "Ti": ("hcp", 2.95, 4.68),
    "Zr": ("hcp", 3.23, 5.15), "Hf": ("hcp", 3.19, 5.05), "Sc": ("hcp", 3.31, 5.27), "Y": ("hcp", 3.65, 5.73),
    "Co": ("hcp", 2.51, 4.07), "Cd": ("hcp", 2.98, 5.62), "Ru": ("hcp", 2.71, 4.28), "Os": ("hcp", 2.73, 4.32),
    "C": ("graphite", 2.464, 6.711), "Si": ("diamond", 5.43, None), "Ge": ("diamond", 5.66, None),
    "Sn": ("diamond", 6.49, None),
    "Se": ("trigonal", 4.366, 4.954), "Te": ("trigonal", 4.457, 5.929),
}  # fmt: skip
# Trigonal Se and Te (P3_121, helical chains; experimental a, c): the chain atom's x on Wyckoff 3a (x, 0, 1/3).
TRIGONAL_CHAIN_X = {"Se": 0.2254, "Te": 0.2636}


def reference_elements() -> frozenset[str]:
    """Elements with a reference phase Gnomon can build: a campaign over any other element is refused at launch."""
    return frozenset(MOLECULES) | frozenset(ELEMENT_LATTICES)

ANIONS: dict[str, int] = {"O": -2, "S": -2, "Se": -2, "Te": -2, "N": -3, "P": -3, "F": -1, "Cl": -1, "Br": -1, "I": -1}

AB_PROTOTYPES = ("rocksalt", "cesiumchloride", "zincblende", "wurtzite")


class UnsupportedElement(ValueError):
    pass


@dataclass(frozen=True)
class ReferenceStructure:
    """A starting structure with a label such as ``Na-bcc`` or ``NaCl-rocksalt``."""

    label: str
    structure: Structure
    is_molecule: bool = False


def molecule_in_box(element: str, box: tuple[float, float, float] = (9.0, 9.5, 10.0)) -> Structure:
    bond = MOLECULES[element]
    lattice = Lattice.orthorhombic(*box)
    centre = [box[0] / 2, box[1] / 2, box[2] / 2]
    return Structure(lattice, [element, element], [[centre[0], centre[1], centre[2] - bond / 2],
                                                   [centre[0], centre[1], centre[2] + bond / 2]],
                     coords_are_cartesian=True)


def elemental_reference(element: str, box: tuple[float, float, float] = (9.0, 9.5, 10.0)) -> ReferenceStructure:
    """The starting structure of an element's reference phase (molecule in a box for the gaseous/halogen elements)."""
    if element in MOLECULES:
        return ReferenceStructure(f"{element}2-molecule", molecule_in_box(element, box), is_molecule=True)
    if element not in ELEMENT_LATTICES:
        raise UnsupportedElement(
            f"no ground-state lattice known for {element}; add it to discovery.dft.references.ELEMENT_LATTICES"
        )
    kind, a, c = ELEMENT_LATTICES[element]
    if kind == "bcc":
        structure = Structure(Lattice([[-a / 2, a / 2, a / 2], [a / 2, -a / 2, a / 2], [a / 2, a / 2, -a / 2]]),
                              [element], [[0, 0, 0]])
    elif kind == "fcc":
        structure = Structure(_fcc(a), [element], [[0, 0, 0]])
    elif kind == "hcp":
        structure = Structure(Lattice.hexagonal(a, c), [element, element], [[1 / 3, 2 / 3, 0.25], [2 / 3, 1 / 3, 0.75]])
    elif kind == "graphite":  # Bernal (AB) stacking, P6_3/mmc
        structure = Structure(Lattice.hexagonal(a, c), [element] * 4,
                              [[0, 0, 0.25], [0, 0, 0.75], [1 / 3, 2 / 3, 0.25], [2 / 3, 1 / 3, 0.75]])
    elif kind == "trigonal":
        x = TRIGONAL_CHAIN_X[element]
        structure = Structure(Lattice.hexagonal(a, c), [element] * 3, [[x, 0, 1 / 3], [0, x, 2 / 3], [-x, -x, 0]])
    else:  # diamond
        structure = Structure(_fcc(a), [element, element], [[0, 0, 0], [0.25, 0.25, 0.25]])
    return ReferenceStructure(f"{element}-{kind}", structure)


def _radius(element: str, oxidation_state: int) -> float:
    try:
        radius = Species(element, oxidation_state).ionic_radius
    except (ValueError, KeyError):
        radius = None
    if radius is None:
        radius = float(Element(element).atomic_radius or 1.5)
    return float(radius)


def bond_length_guess(cation: str, cation_charge: int, anion: str, anion_charge: int) -> float:
    """Cation–anion distance (Å): sum of Shannon ionic radii."""
    return _radius(cation, cation_charge) + _radius(anion, anion_charge)


def _fcc(a: float) -> Lattice:
    """Primitive fcc lattice of the cubic constant ``a`` (Å)."""
    return Lattice([[0, a / 2, a / 2], [a / 2, 0, a / 2], [a / 2, a / 2, 0]])


def binary_prototype(prototype: str, cation: str, anion: str, bond: float) -> Structure:
    """Primitive cell of ``prototype`` with nearest-neighbour distance ``bond`` (Å). AB2 = fluorite, A2B = antifluorite.

    Built from explicit primitive cells (Structure.from_spacegroup takes seconds per call)."""
    if prototype == "rocksalt":
        return Structure(_fcc(2 * bond), [cation, anion], [[0, 0, 0], [0.5, 0.5, 0.5]])
    if prototype == "cesiumchloride":
        return Structure(Lattice.cubic(2 * bond / math.sqrt(3)), [cation, anion], [[0, 0, 0], [0.5, 0.5, 0.5]])
    if prototype == "zincblende":
        return Structure(_fcc(4 * bond / math.sqrt(3)), [cation, anion], [[0, 0, 0], [0.25, 0.25, 0.25]])
    if prototype == "wurtzite":
        a = bond / (0.375 * math.sqrt(8 / 3))
        return Structure(Lattice.hexagonal(a, a * math.sqrt(8 / 3)), [cation, cation, anion, anion],
                         [[1 / 3, 2 / 3, 0], [2 / 3, 1 / 3, 0.5], [1 / 3, 2 / 3, 0.375], [2 / 3, 1 / 3, 0.875]])
    if prototype in ("fluorite", "antifluorite"):
        # fluorite AB2: A on the fcc sites, B in both tetrahedral holes; antifluorite A2B swaps the roles.
        fcc, tet = (cation, anion) if prototype == "fluorite" else (anion, cation)
        return Structure(_fcc(4 * bond / math.sqrt(3)), [fcc, tet, tet],
                         [[0, 0, 0], [0.25, 0.25, 0.25], [0.75, 0.75, 0.75]])
    raise ValueError(f"unknown prototype {prototype!r}; known: {', '.join((*AB_PROTOTYPES, 'fluorite', 'antifluorite'))}")


def cation_charge(element: str) -> int | None:
    states = [s for s in Element(element).common_oxidation_states if s > 0]
    return min(states) if states else None


def binary_prototypes(cation: str, anion: str, *, all_prototypes: bool = False) -> list[ReferenceStructure]:
    """Charge-balanced prototypes for a cation–anion pair (all six with ``all_prototypes``)."""
    q_cat, q_an = cation_charge(cation), ANIONS[anion]
    if q_cat is None:
        return []
    bond = bond_length_guess(cation, q_cat, anion, q_an)
    wanted: list[tuple[str, str]] = []
    if all_prototypes or q_cat == -q_an:
        wanted += [(p, f"{cation}{anion}") for p in AB_PROTOTYPES]
    if all_prototypes or q_cat == -2 * q_an:
        wanted.append(("fluorite", f"{cation}{anion}2"))
    if all_prototypes or 2 * q_cat == -q_an:
        wanted.append(("antifluorite", f"{cation}2{anion}"))
    return [ReferenceStructure(f"{formula}-{prototype}", binary_prototype(prototype, cation, anion, bond))
            for prototype, formula in wanted]


def bootstrap_set(elements: list[str], *, all_prototypes: bool = False,
                  box: tuple[float, float, float] = (9.0, 9.5, 10.0)) -> list[ReferenceStructure]:
    """Elemental references, then binary prototypes for every (cation, anion) pair among ``elements``."""
    elements = sorted(set(elements), key=lambda el: Element(el).Z)
    references = [elemental_reference(el, box) for el in elements]
    cations = [el for el in elements if el not in ANIONS and cation_charge(el) is not None]
    anions = [el for el in elements if el in ANIONS]
    binaries = [ref for cat, an in product(cations, anions) for ref in binary_prototypes(cat, an,
                                                                                          all_prototypes=all_prototypes)]
    return references + binaries
