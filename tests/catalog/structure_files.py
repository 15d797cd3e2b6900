"""Writes many small, distinct crystal files (CIF and POSCAR) with a known share of corrupt ones, for import tests.

Files are written from text templates, not through CifWriter/Poscar, so 10,000 of them take about a second. Every good
file is a different material: perovskites ABX3 over pairs of cations and a few anions, each in volume variants 40 %
apart (outside the importer's ±15 % duplicate window), so the import must create exactly one material per good file.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

CATIONS = ("Li Na K Rb Cs Be Mg Ca Sr Ba Sc Y La Ti Zr Hf V Nb Ta Cr Mo W Mn Fe Co Ni Cu Zn Ga In Sn Pb Bi Ce Nd "
           "Sm Gd Al Ag Cd").split()
ANIONS = ("O", "F", "Cl", "Br", "S")
VOLUME_STEP = 1.4  # lattice volume ratio between variants of one formula: far outside the ±15 % duplicate window
CORRUPTIONS = ("truncated", "garbage", "impossible_lattice", "unknown_element")

CIF_TEMPLATE = """data_{name}
_symmetry_space_group_name_H-M   'P 1'
_cell_length_a   {a:.6f}
_cell_length_b   {a:.6f}
_cell_length_c   {a:.6f}
_cell_angle_alpha   {alpha:.4f}
_cell_angle_beta   {alpha:.4f}
_cell_angle_gamma   {alpha:.4f}
_symmetry_Int_Tables_number   1
loop_
 _symmetry_equiv_pos_site_id
 _symmetry_equiv_pos_as_xyz
  1  'x, y, z'
loop_
 _atom_site_type_symbol
 _atom_site_label
 _atom_site_symmetry_multiplicity
 _atom_site_fract_x
 _atom_site_fract_y
 _atom_site_fract_z
 _atom_site_occupancy
  {A}  {A}0  1  0.000000  0.000000  0.000000  1
  {B}  {B}1  1  0.500000  0.500000  0.500000  1
  {X}  {X}2  1  0.500000  0.500000  0.000000  1
  {X}  {X}3  1  0.500000  0.000000  0.500000  1
  {X}  {X}4  1  0.000000  0.500000  0.500000  1
"""

POSCAR_TEMPLATE = """{name}
1.0
{a:.6f} 0.000000 0.000000
0.000000 {a:.6f} 0.000000
0.000000 0.000000 {c:.6f}
{A} {B} {X}
1 1 3
direct
0.000000 0.000000 0.000000 {A}
0.500000 0.500000 0.500000 {B}
0.500000 0.500000 0.000000 {X}
0.500000 0.000000 0.500000 {X}
0.000000 0.500000 0.500000 {X}
"""


@dataclass(frozen=True)
class GeneratedFiles:
    good: list[Path]
    bad: dict[Path, str]  # path -> corruption kind


def perovskite_specs() -> Iterator[tuple[str, str, str, float]]:
    """(A, B, X, lattice constant in Å), every one a distinct material; ~3,900 formulas × variants, enough for 10k."""
    formulas = [(a, b, x) for x in ANIONS for a, b in itertools.combinations(CATIONS, 2)]
    for variant in range(8):
        for a, b, x in formulas:
            yield a, b, x, 3.9 * VOLUME_STEP ** (variant / 3)


def render(fmt: str, name: str, a_el: str, b_el: str, x_el: str, a: float) -> str:
    if fmt == "cif":
        return CIF_TEMPLATE.format(name=name, a=a, alpha=90.0, A=a_el, B=b_el, X=x_el)
    return POSCAR_TEMPLATE.format(name=name, a=a, c=a, A=a_el, B=b_el, X=x_el)


def corrupt(kind: str, fmt: str, name: str, a_el: str, b_el: str, x_el: str, a: float, rng: random.Random) -> bytes:
    """A file that must be rejected: cut off mid-row, random bytes, a cell that cannot exist, or a made-up element."""
    if kind == "truncated":
        text = render(fmt, name, a_el, b_el, x_el, a)
        return text[: text.index("0.500000 0.500000 0.500000") + 4].encode()  # ends inside the second site's row
    if kind == "garbage":
        return rng.randbytes(rng.randint(1, 400))
    if kind == "impossible_lattice":
        if fmt == "cif":  # angles summing to more than 360°: no real cell has them
            return CIF_TEMPLATE.format(name=name, a=a, alpha=150.0, A=a_el, B=b_el, X=x_el).encode()
        return POSCAR_TEMPLATE.format(name=name, a=a, c=0.0, A=a_el, B=b_el, X=x_el).encode()  # a zero-length vector
    if kind == "unknown_element":
        return render(fmt, name, "Xx", b_el, x_el, a).encode()
    raise ValueError(f"unknown corruption {kind!r}")


def write_structure_files(directory: Path, count: int, corrupt_every: int = 100, seed: int = 0) -> GeneratedFiles:
    """``count`` files in ``directory`` (CIF and POSCAR alternating), every ``corrupt_every``-th one corrupt."""
    rng = random.Random(seed)
    specs = perovskite_specs()
    good: list[Path] = []
    bad: dict[Path, str] = {}
    for index in range(count):
        fmt = "cif" if index % 2 == 0 else "poscar"
        name = f"s{index:06d}"
        path = directory / f"{name}.{'cif' if fmt == 'cif' else 'vasp'}"
        a_el, b_el, x_el, a = next(specs)
        if index % corrupt_every == corrupt_every - 1:
            kind = CORRUPTIONS[(index // corrupt_every) % len(CORRUPTIONS)]
            path.write_bytes(corrupt(kind, fmt, name, a_el, b_el, x_el, a, rng))
            bad[path] = kind
        else:
            path.write_text(render(fmt, name, a_el, b_el, x_el, a))
            good.append(path)
    return GeneratedFiles(good=good, bad=bad)
