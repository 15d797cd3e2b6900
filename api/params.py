"""Shapes of the API's string parameters, as regular expressions used both to validate and in the OpenAPI schema.

One definition for both means the schema promises exactly what the server accepts (schemathesis checks it).
"""

from __future__ import annotations

import re

from pymatgen.core.periodic_table import Element

from catalog.selectors import ORDERABLE_FIELDS

ELEMENT = "(?:" + "|".join(sorted((e.symbol for e in Element), key=lambda s: (-len(s), s))) + ")"
ELEMENT_LIST = rf"^{ELEMENT}(?:,{ELEMENT})*$"
CHEMSYS = rf"^(?:{ELEMENT}|\*)(?:-(?:{ELEMENT}|\*)){{0,9}}$"
CHEMSYS_EXACT = rf"^{ELEMENT}(?:-{ELEMENT}){{0,9}}$"
FORMULA = r"^(?:[A-Z][a-z]?(?:[1-9][0-9]{0,3})?){1,12}$"
ORIGIN = r"^[A-Za-z0-9_.:+\-]{1,120}$"

ORDERING_ALIASES = {"energy_above_hull": "e_above_hull"}  # API sort key → selector's name
API_ORDERING_FIELDS = tuple(
    sorted({next((k for k, v in ORDERING_ALIASES.items() if v == f), f) for f in ORDERABLE_FIELDS})
)
_SORT_KEY = "-?(?:" + "|".join(API_ORDERING_FIELDS) + ")"
ORDERING = rf"^{_SORT_KEY}(?:,{_SORT_KEY})*$"


def names_pattern(names) -> str:
    name = "(?:" + "|".join(sorted(names, key=lambda s: (-len(s), s))) + ")"
    return rf"^{name}(?:,{name})*$"


def matches(pattern: str, value: str) -> bool:
    return re.fullmatch(pattern.strip("^$"), value) is not None


def dedupe_chemsys(chemsys: str) -> str:
    """A chemical system is a set: 'Fe-Fe-O' means 'Fe-O'; wildcards keep their count."""
    parts = chemsys.split("-")
    seen: list[str] = []
    for part in parts:
        if part == "*" or part not in seen:
            seen.append(part)
    return "-".join(seen)
