"""How OPTIMADE structure properties map onto catalog columns, for filtering and for responses alike.

Two OPTIMADE formulas are not stored as such: ``chemical_formula_reduced`` (elements in alphabetical order) and
``chemical_formula_anonymous`` (largest amount first). Each is derived from an indexed column by one fixed SQL
expression (no user input in it), and the response values come from the same derivation mirrored in Python, so that a
filter and the value it is checked against always agree.
"""

from __future__ import annotations

import re
from math import gcd

from django.db.models import F, TextField
from django.db.models.expressions import RawSQL
from django.db.models.functions import TruncSecond
from pymatgen.core import Composition

PROVIDER_PREFIX = "gnomon"

# pymatgen's reduced formula leaves a few compounds unreduced (peroxides: Li2O2 for LiO, H2O2 for HO; its own table);
# OPTIMADE's chemical_formula_reduced divides every amount by their greatest common divisor.
UNREDUCED_BY_PYMATGEN: dict[str, str] = {
    written: reduced for reduced, written in Composition.special_formulas.items() if len(Composition(reduced)) > 1
}
assert all(k.isalnum() and v.isalnum() for k, v in UNREDUCED_BY_PYMATGEN.items())  # constants inside the SQL below

# Reduced formula, alphabetical: the count of each element is read from pymatgen's reduced formula (which writes O2,
# H2, N2, F2, Cl2 for the elements and the compounds above unreduced: undone here).
REDUCED_FORMULA_SQL = """(CASE
  WHEN "catalog_material"."nelements" = 1 THEN "catalog_material"."elements"[1]
""" + "".join(f"""  WHEN "catalog_material"."formula_reduced" = '{written}' THEN '{reduced}'
""" for written, reduced in sorted(UNREDUCED_BY_PYMATGEN.items())) + """  ELSE (SELECT string_agg(el || COALESCE(NULLIF(substring("catalog_material"."formula_reduced"
                                                          FROM el || '([0-9.]*)(?![a-z])'), '1'), ''),
                          '' ORDER BY el COLLATE "C")
        FROM unnest("catalog_material"."elements") AS el)
END) COLLATE "C\""""  # noqa: S608 - constants only (pymatgen's table, checked above)

# Anonymous formula, largest amount first: pymatgen writes amounts in ascending order, so reverse them.
ANONYMOUS_FORMULA_SQL = """(SELECT string_agg(chr((64 + rank)::int) || CASE WHEN amount IN ('', '1') THEN '' ELSE amount END,
                          '' ORDER BY rank)
  FROM (SELECT row_number() OVER (ORDER BY position DESC) AS rank, match[1] AS amount
        FROM regexp_matches("catalog_material"."formula_anonymous", '[A-Z][a-z]*([0-9.]*)', 'g')
             WITH ORDINALITY AS tokens(match, position)) AS ranked) COLLATE "C\""""

_ANON_TOKEN = re.compile(r"[A-Z][a-z]*([0-9.]*)")


def reduced_formula(formula_reduced: str, elements: list[str]) -> str:
    """Python twin of ``REDUCED_FORMULA_SQL``."""
    if len(elements) == 1:
        return elements[0]
    if formula_reduced in UNREDUCED_BY_PYMATGEN:
        return UNREDUCED_BY_PYMATGEN[formula_reduced]
    parts = []
    for el in sorted(elements):
        match = re.search(re.escape(el) + r"([0-9.]*)(?![a-z])", formula_reduced)
        amount = match.group(1) if match else ""
        parts.append(el + ("" if amount in ("", "1") else amount))
    return "".join(parts)


def anonymous_formula(formula_anonymous: str) -> str:
    """Python twin of ``ANONYMOUS_FORMULA_SQL``."""
    amounts = [m.group(1) for m in _ANON_TOKEN.finditer(formula_anonymous)][::-1]
    return "".join(chr(65 + i) + ("" if a in ("", "1") else a) for i, a in enumerate(amounts))


def pymatgen_anonymous(optimade_anonymous: str) -> str | None:
    """'A3BC' → pymatgen's 'ABC3' (amounts ascending), to use the indexed column; None if not whole amounts."""
    amounts = []
    for match in re.finditer(r"[A-Z][a-z]*(\d*)", optimade_anonymous):
        amounts.append(int(match.group(1) or 1))
    if (
        not amounts
        or "".join(m.group(0) for m in re.finditer(r"[A-Z][a-z]*(\d*)", optimade_anonymous)) != optimade_anonymous
    ):
        return None
    divisor = 0
    for a in amounts:
        divisor = gcd(divisor, a)
    if divisor == 0:
        return None
    return "".join(
        chr(65 + i) + ("" if a == 1 else str(a)) for i, a in enumerate(sorted(x // divisor for x in amounts))
    )


def annotations() -> dict:
    """Derived columns, added to a queryset only when a filter or sort uses them."""
    return {
        "opt_formula_reduced": RawSQL(REDUCED_FORMULA_SQL, (), output_field=TextField()),  # noqa: S611 - constant SQL
        "opt_formula_anonymous": RawSQL(ANONYMOUS_FORMULA_SQL, (), output_field=TextField()),  # noqa: S611 - constant SQL
        "opt_last_modified": TruncSecond("updated_at"),
    }


# OPTIMADE property → (kind, column or annotation). Kinds: string, integer, float, timestamp, list, constant.
COLUMNS = {
    "id": ("string", "public_id"),
    "last_modified": ("timestamp", "opt_last_modified"),
    "chemical_formula_descriptive": ("string", "formula_reduced"),
    "chemical_formula_reduced": ("string", "opt_formula_reduced"),
    "chemical_formula_anonymous": ("string", "opt_formula_anonymous"),
    "elements": ("elements", "elements"),
    "nelements": ("integer", "nelements"),
    "nsites": ("integer", "nsites"),
    "space_group_it_number": ("integer", "spacegroup_number"),
    "nperiodic_dimensions": ("constant", 3),
    "structure_features": ("features", None),
    f"_{PROVIDER_PREFIX}_e_above_hull": ("float", "e_above_hull"),
    f"_{PROVIDER_PREFIX}_formation_energy_per_atom": ("float", "formation_energy_per_atom"),
    f"_{PROVIDER_PREFIX}_is_stable": ("boolean", "is_stable"),
    f"_{PROVIDER_PREFIX}_scheme": ("string", "hull_scheme__name"),
    f"_{PROVIDER_PREFIX}_verdict": ("string", "verdict"),
    f"_{PROVIDER_PREFIX}_crystal_system": ("string", "crystal_system"),
    f"_{PROVIDER_PREFIX}_origin": ("origin", None),
    f"_{PROVIDER_PREFIX}_campaign": ("campaign", None),
}
# Served but not filterable (OPTIONAL queryability in the specification): a filter on them is a 501.
NOT_QUERYABLE = {
    f"_{PROVIDER_PREFIX}_missing_competitors",
    f"_{PROVIDER_PREFIX}_reference_verdict",
    "elements_ratios",
    "dimension_types",
    "lattice_vectors",
    "cartesian_site_positions",
    "species",
    "species_at_sites",
    "type",
}
SORTABLE = {
    "id": F("public_id"),
    "last_modified": F("updated_at"),
    "chemical_formula_descriptive": F("formula_reduced"),
    "nelements": F("nelements"),
    "nsites": F("nsites"),
    "space_group_it_number": F("spacegroup_number"),
    f"_{PROVIDER_PREFIX}_e_above_hull": F("e_above_hull"),
    f"_{PROVIDER_PREFIX}_formation_energy_per_atom": F("formation_energy_per_atom"),
}
