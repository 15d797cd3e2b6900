"""Small formatting helpers for the UI templates."""

from __future__ import annotations

import re

from django import template
from django.utils.html import format_html_join
from django.utils.safestring import mark_safe

register = template.Library()
_FORMULA_PART = re.compile(r"([A-Z][a-z]?|\(|\))(\d*\.?\d*)")


@register.filter
def formula_html(formula: str):
    """'LiFePO4' → 'LiFePO<sub>4</sub>' (escaped)."""
    if not formula:
        return ""
    parts = _FORMULA_PART.findall(formula)
    if "".join(a + b for a, b in parts) != formula:
        return formula
    return format_html_join("", "{}{}", ((sym, mark_safe(f"<sub>{n}</sub>") if n else "") for sym, n in parts))  # noqa: S308 - n is digits only


@register.filter
def ev(value, digits: int = 3):
    """An energy in eV or eV/atom with fixed decimals; an em dash when missing."""
    if value is None or value == "":
        return "—"
    try:
        return f"{float(value):.{int(digits)}f}"
    except (TypeError, ValueError):
        return "—"


@register.filter
def num(value, digits: int = 3):
    return ev(value, digits)


@register.filter
def pct(value):
    if value is None:
        return "—"
    return f"{100 * float(value):.0f}%"
