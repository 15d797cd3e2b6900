"""The periodic table's layout (grid positions) for the element picker; computed once."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from pymatgen.core import Element


@dataclass(frozen=True)
class Cell:
    symbol: str
    name: str
    z: int
    row: int  # CSS grid row (1-7 main table, 9-10 lanthanoids/actinoids)
    col: int  # CSS grid column 1-18
    category: str


def _category(el: Element) -> str:
    for attr, name in (
        ("is_alkali", "alkali"),
        ("is_alkaline", "alkaline"),
        ("is_lanthanoid", "lanthanoid"),
        ("is_actinoid", "actinoid"),
        ("is_transition_metal", "transition"),
        ("is_noble_gas", "noble"),
        ("is_halogen", "halogen"),
        ("is_metalloid", "metalloid"),
        ("is_post_transition_metal", "post-transition"),
    ):
        if getattr(el, attr, False):
            return name
    return "nonmetal"


@cache
def periodic_cells() -> tuple[Cell, ...]:
    cells = []
    for z in range(1, 119):
        el = Element.from_Z(z)
        if 57 <= z <= 71:
            row, col = 9, 3 + (z - 57)
        elif 89 <= z <= 103:
            row, col = 10, 3 + (z - 89)
        else:
            row, col = el.row, el.group
        cells.append(Cell(el.symbol, el.long_name, z, row, col, _category(el)))
    return tuple(cells)
