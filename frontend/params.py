"""Request parameters → ``catalog.selectors.MaterialQuery``. The names match MaterialQuery's fields (and the API's)."""

from __future__ import annotations

from functools import cache

from django.http import QueryDict

from catalog.selectors import CRYSTAL_SYSTEMS, ORDERABLE_FIELDS, InvalidQuery, MaterialQuery, normalize_elements

PAGE_SIZES = (25, 50, 100)
DEFAULT_PAGE_SIZE = 25
DEFAULT_ORDERING = "e_above_hull"


def _int(params: QueryDict, name: str) -> int | None:
    raw = params.get(name, "").strip()
    if not raw:
        return None
    try:
        return int(raw)
    except ValueError:
        raise InvalidQuery(name, f"'{raw}' is not a whole number") from None


def _float(params: QueryDict, name: str) -> float | None:
    raw = params.get(name, "").strip()
    if not raw:
        return None
    try:
        return float(raw)
    except ValueError:
        raise InvalidQuery(name, f"'{raw}' is not a number") from None


def _elements(params: QueryDict, name: str) -> tuple[str, ...]:
    values = [v for raw in params.getlist(name) for v in raw.split(",")]
    return normalize_elements(values, param=name) if any(v.strip() for v in values) else ()


@cache
def _spacegroup_symbols() -> dict[str, int]:
    """Hermann–Mauguin symbols (short, full, with setting) → number, from spglib's table of the 530 Hall settings."""
    import spglib

    symbols: dict[str, int] = {}
    for hall_number in range(1, 531):
        sg = spglib.get_spacegroup_type(hall_number)
        for symbol in (sg.international_short, sg.international_full, sg.international):
            symbols.setdefault(symbol.replace(" ", "").lower(), sg.number)
    return symbols


def spacegroup_number(raw: str) -> int | None:
    """'225' or a Hermann–Mauguin symbol such as 'Fm-3m' or 'P4_2/mnm' (case and spaces ignored)."""
    raw = (raw or "").strip()
    if not raw:
        return None
    if raw.isascii() and raw.isdigit():  # "¹".isdigit() is True, and int() refuses it
        return int(raw)
    number = _spacegroup_symbols().get(raw.replace(" ", "").lower())
    if number is None:
        raise InvalidQuery("spacegroup", f"'{raw}' is not a space group number or symbol")
    return number


def ordering_of(params: QueryDict) -> str:
    value = params.get("ordering", "").strip() or DEFAULT_ORDERING
    if value.lstrip("-") not in ORDERABLE_FIELDS:
        raise InvalidQuery("ordering", f"cannot sort by '{value}'")
    return value


def query_from_params(params: QueryDict) -> MaterialQuery:
    """Build the search; raises ``InvalidQuery`` naming the bad parameter.

    ``q`` is the one search box: text with a '-' is a chemical system (``Li-Fe-O``, ``Li-*-O``), anything else a formula
    (``LiFePO4`` or anonymous ``ABO3``). ``chemsys`` and ``formula`` may also be given explicitly.
    """
    q = params.get("q", "").strip()
    chemsys = params.get("chemsys", "").strip()
    formula = params.get("formula", "").strip()
    if q:
        if "-" in q or q == "*":
            chemsys = chemsys or q
        else:
            formula = formula or q
    stable = params.get("is_stable", "").strip().lower()
    crystal_system = params.get("crystal_system", "").strip().lower()
    if crystal_system and crystal_system not in CRYSTAL_SYSTEMS:
        raise InvalidQuery("crystal_system", f"'{crystal_system}' is not a crystal system")
    return MaterialQuery(
        elements=_elements(params, "elements"),
        exclude_elements=_elements(params, "exclude_elements"),
        only_elements=_elements(params, "only_elements"),
        chemsys=chemsys,
        formula=formula,
        nelements=_int(params, "nelements"),
        nelements_min=_int(params, "nelements_min"),
        nelements_max=_int(params, "nelements_max"),
        e_above_hull_min=_float(params, "e_above_hull_min"),
        e_above_hull_max=_float(params, "e_above_hull_max"),
        is_stable=True if stable in {"1", "true", "on", "yes"} else None,
        verdict=params.get("verdict", "").strip().lower(),
        spacegroup_number=spacegroup_number(params.get("spacegroup", "") or params.get("spacegroup_number", "")),
        crystal_system=crystal_system,
        origin=params.get("origin", "").strip(),
        campaign=_int(params, "campaign"),
        ordering=(ordering_of(params),),
    )


def page_of(params: QueryDict) -> tuple[int, int]:
    """(page number from 1, page size)."""
    try:
        page = max(1, int(params.get("page", "1")))
    except ValueError:
        page = 1
    try:
        size = int(params.get("page_size", DEFAULT_PAGE_SIZE))
    except ValueError:
        size = DEFAULT_PAGE_SIZE
    return min(page, 10_000), size if size in PAGE_SIZES else DEFAULT_PAGE_SIZE
