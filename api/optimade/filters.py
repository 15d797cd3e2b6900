"""OPTIMADE filter strings → Django ``Q`` objects.

Parsing is the ``optimade`` package's (``LarkParser``, the grammar of the specification); this module's ``Transformer``
walks the tree into a small expression of leaves, AND, OR and NOT, and ``to_q`` turns it into ORM lookups. No SQL is
ever built from the filter text. Per the specification a comparison is never true for an entry whose property is
unknown, in either polarity: ``NOT (x < 1)`` does not return entries without ``x``; each leaf carries the "is known"
condition that its negation needs.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from datetime import datetime

from django.db.models import Exists, OuterRef, Q
from lark import Token, v_args
from optimade.filterparser import LarkParser
from optimade.filtertransformers import BaseTransformer
from pymatgen.core import Composition

from api.optimade.fields import COLUMNS, NOT_QUERYABLE, PROVIDER_PREFIX, pymatgen_anonymous
from catalog.models import MaterialOrigin


class FilterError(ValueError):
    """The filter is malformed or names an unknown property: a 400."""


class FilterNotImplemented(NotImplementedError):
    """The filter is valid OPTIMADE but asks for something this implementation does not support: a 501."""


NOTHING = Q(pk__in=[])
EVERYTHING = Q()

_LOOKUPS = {"=": "exact", "<": "lt", "<=": "lte", ">": "gt", ">=": "gte"}
_REVERSED = {">": "<", ">=": "<=", "<": ">", "<=": ">=", "=": "=", "!=": "!="}


@dataclass
class Leaf:
    q: Q
    known: Q = field(default_factory=Q)


@dataclass
class Node:
    op: str  # "and", "or", "not"
    children: list


def to_q(node, negated: bool = False) -> Q:
    if isinstance(node, Leaf):
        return (~node.q & node.known) if negated else node.q
    if node.op == "not":
        return to_q(node.children[0], not negated)
    parts = [to_q(child, negated) for child in node.children]
    combine_and = (node.op == "and") != negated
    result = parts[0]
    for part in parts[1:]:
        result = (result & part) if combine_and else (result | part)
    return result


def _compare_constants(left, op: str, right) -> bool:
    if op == "=":
        return left == right
    if op == "!=":
        return left != right
    try:
        return {"<": left < right, "<=": left <= right, ">": left > right, ">=": left >= right}[op]
    except TypeError as exc:
        raise FilterError(f"cannot compare {left!r} with {right!r}") from exc


@dataclass(frozen=True)
class Prop:
    name: str


@dataclass(frozen=True)
class UnknownProp:
    """Another provider's property: unknown for every entry here (the specification says so, no error)."""

    name: str


class DjangoQueryTransformer(BaseTransformer):
    """Lark tree of an OPTIMADE filter → expression of ``Leaf``/``Node`` (see ``to_q``)."""

    def __init__(self):
        super().__init__(mapper=None)

    # --- structure of the expression -------------------------------------------------------------------------
    def filter(self, arg):
        return arg[0] if arg else Leaf(EVERYTHING)

    def expression(self, arg):
        return arg[0] if len(arg) == 1 else Node("or", list(arg))

    def expression_clause(self, arg):
        return arg[0] if len(arg) == 1 else Node("and", list(arg))

    def expression_phrase(self, arg):
        return Node("not", [arg[1]]) if len(arg) == 2 else arg[0]

    # --- values --------------------------------------------------------------------------------------------------
    def property(self, args):
        if len(args) > 1:
            raise FilterNotImplemented(
                f"nested or relationship properties ('{'.'.join(map(str, args))}') are not supported"
            )
        name = str(args[0])
        if name in COLUMNS or name in NOT_QUERYABLE:
            return Prop(name)
        if name.startswith("_") and not name.startswith(f"_{PROVIDER_PREFIX}_"):
            return UnknownProp(name)
        raise FilterError(f"'{name}' is not a known or searchable property")

    def value_list(self, arg):
        for value in arg:
            if isinstance(value, Token) and str(value) in _LOOKUPS | {"!=": None}:
                raise FilterNotImplemented("operators inside value lists are not supported")
        return list(arg)

    def value_zip(self, arg):
        raise FilterNotImplemented("correlated list queries (':') are not supported")

    def value_zip_list(self, arg):
        raise FilterNotImplemented("correlated list queries (':') are not supported")

    def set_zip_op_rhs(self, arg):
        raise FilterNotImplemented("correlated list queries (':') are not supported")

    def property_zip_addon(self, arg):
        raise FilterNotImplemented("correlated list queries (':') are not supported")

    # --- right-hand sides become (kind, payload) pairs, resolved against the property in *_comparison ----------
    @v_args(inline=True)
    def value_op_rhs(self, operator, value):
        return ("op", str(operator), value)

    def known_op_rhs(self, arg):
        return ("known", arg[1] == "KNOWN")

    def fuzzy_string_op_rhs(self, arg):
        value = arg[2] if isinstance(arg[1], Token) and arg[1].type == "WITH" else arg[1]
        return ("fuzzy", str(arg[0]), value)

    def set_op_rhs(self, arg):
        if len(arg) == 2:
            return ("has", "ANY", [arg[1]])
        if str(arg[1]) in ("ALL", "ANY", "ONLY"):
            return ("has", str(arg[1]), arg[2])
        raise FilterNotImplemented("HAS with a comparison operator is not supported")

    def length_op_rhs(self, arg):
        if len(arg) == 2:
            return ("length", "=", arg[1])
        return ("length", str(arg[1]), arg[2])

    def constant_first_comparison(self, arg):
        constant, operator, other = arg[0], str(arg[1]), arg[2]
        if not isinstance(other, (Prop, UnknownProp)):
            return Leaf(EVERYTHING if _compare_constants(constant, operator, other) else NOTHING)
        return self.property_first_comparison([other, ("op", _REVERSED[operator], constant)])

    def property_first_comparison(self, arg):
        prop, rhs = arg[0], arg[1]
        if isinstance(prop, UnknownProp):
            return Leaf(EVERYTHING if rhs == ("known", False) else NOTHING)
        if prop.name in NOT_QUERYABLE:
            raise FilterNotImplemented(f"filtering on '{prop.name}' is not supported")
        kind, column = COLUMNS[prop.name]
        handler = getattr(self, f"_{kind}")
        return handler(prop.name, column, rhs)

    # --- one handler per kind of property ---------------------------------------------------------------------
    @staticmethod
    def _known(column: str, rhs) -> Leaf | None:
        if rhs[0] == "known":
            isnull = Q(**{f"{column}__isnull": True})
            return Leaf(~isnull if rhs[1] else isnull)
        return None

    def _scalar(self, name, column, rhs, python_type, describe: str) -> Leaf:
        known = self._known(column, rhs)
        if known:
            return known
        if rhs[0] != "op":
            raise FilterError(f"'{name}' is {describe}; use =, !=, <, <=, >, >=")
        _, operator, value = rhs
        value = python_type(name, value)
        not_null = Q(**{f"{column}__isnull": False})
        if operator == "!=":
            return Leaf(~Q(**{column: value}) & not_null, not_null)
        return Leaf(Q(**{f"{column}__{_LOOKUPS[operator]}": value}), not_null)

    @staticmethod
    def _as_number(name, value):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise FilterError(f"'{name}' is a number; compare it with a number, not {value!r}")
        if isinstance(value, float) and not math.isfinite(value):  # 1e999 parses as inf: int(inf) was a 500
            raise FilterError(f"'{name}' must be compared with a finite number, not {value!r}")
        return value

    @staticmethod
    def _as_string(name, value):
        if not isinstance(value, str):
            raise FilterError(f"'{name}' is a string; compare it with a quoted string, not {value!r}")
        return value

    @staticmethod
    def _as_timestamp(name, value):
        if not isinstance(value, str):
            raise FilterError(f"'{name}' is a timestamp; compare it with a quoted RFC 3339 date-time")
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError as exc:
            raise FilterError(f"'{value}' is not an RFC 3339 date-time (e.g. \"2026-01-31T12:00:00Z\")") from exc
        if parsed.tzinfo is None:
            raise FilterError(f"'{value}' has no time zone; add 'Z' or an offset")
        return parsed

    def _integer(self, name, column, rhs):
        return self._scalar(name, column, rhs, self._as_number, "an integer")

    def _float(self, name, column, rhs):
        return self._scalar(name, column, rhs, self._as_number, "a number")

    def _timestamp(self, name, column, rhs):
        return self._scalar(name, column, rhs, self._as_timestamp, "a timestamp")

    def _boolean(self, name, column, rhs):
        known = self._known(column, rhs)
        if known:
            return known
        if (
            rhs[0] != "op"
            or rhs[1] not in ("=", "!=")
            or not isinstance(rhs[2], str)
            or rhs[2] not in ("true", "false")
        ):
            raise FilterNotImplemented(f"'{name}' is a boolean: filter it with IS KNOWN / IS UNKNOWN or = \"true\"")
        value = (rhs[2] == "true") == (rhs[1] == "=")
        not_null = Q(**{f"{column}__isnull": False})
        return Leaf(Q(**{column: value}), not_null)

    def _string(self, name, column, rhs):
        if rhs[0] == "fuzzy":
            _, operator, value = rhs
            value = self._as_string(name, value)
            lookup = {"CONTAINS": "contains", "STARTS": "startswith", "ENDS": "endswith"}[operator]
            return Leaf(Q(**{f"{column}__{lookup}": value}), Q(**{f"{column}__isnull": False}))
        leaf = self._scalar(name, column, rhs, self._as_string, "a string")
        if rhs[0] == "op" and rhs[1] == "=":
            # Narrow through pymatgen's indexed columns first; the derived value keeps the exact semantics.
            leaf.q &= _indexed_formula(name, rhs[2])
        return leaf

    def _elements(self, name, column, rhs):
        if rhs[0] == "length":
            return self._integer("nelements", "nelements", ("op", rhs[1], rhs[2]))
        if rhs[0] == "known":
            return Leaf(EVERYTHING if rhs[1] else NOTHING)
        if rhs[0] != "has":
            raise FilterError("'elements' is a list; use HAS, HAS ALL, HAS ANY, HAS ONLY or LENGTH")
        _, mode, values = rhs
        symbols = [self._as_string(name, v) for v in values]
        lookup = {"ALL": "contains", "ANY": "overlap", "ONLY": "contained_by"}[mode]
        return Leaf(Q(**{f"elements__{lookup}": symbols}))

    def _constant(self, name, value, rhs):
        if rhs[0] == "known":
            return Leaf(EVERYTHING if rhs[1] else NOTHING)
        if rhs[0] != "op":
            raise FilterError(f"'{name}' is an integer; use =, !=, <, <=, >, >=")
        return Leaf(EVERYTHING if _compare_constants(value, rhs[1], self._as_number(name, rhs[2])) else NOTHING)

    def _features(self, name, column, rhs):
        """Catalog structures are ordered 3D crystals: ``structure_features`` is always empty."""
        if rhs[0] == "known":
            return Leaf(EVERYTHING if rhs[1] else NOTHING)
        if rhs[0] == "length":
            return Leaf(EVERYTHING if _compare_constants(0, rhs[1], self._as_number(name, rhs[2])) else NOTHING)
        if rhs[0] == "has":
            return Leaf(NOTHING if rhs[2] or rhs[1] != "ONLY" else EVERYTHING)
        raise FilterError("'structure_features' is a list; use HAS or LENGTH")

    def _origin(self, name, column, rhs):
        if rhs[0] == "known":
            return Leaf(EVERYTHING if rhs[1] else NOTHING)
        if rhs[0] != "has" or rhs[1] == "ONLY":
            raise FilterNotImplemented(f"'{name}' supports HAS, HAS ALL and HAS ANY")
        datasets = [self._as_string(name, v) for v in rhs[2]]

        def has(names):
            return Q(Exists(MaterialOrigin.objects.filter(material=OuterRef("pk"), dataset__in=names)))

        if rhs[1] == "ANY":
            return Leaf(has(datasets))
        q = EVERYTHING
        for dataset in datasets:
            q &= has([dataset])
        return Leaf(q)

    def _campaign(self, name, column, rhs):
        campaigns = MaterialOrigin.objects.filter(material=OuterRef("pk"), kind=MaterialOrigin.Kind.CAMPAIGN)
        if rhs[0] == "known":
            found = Q(Exists(campaigns))
            return Leaf(found if rhs[1] else ~found)
        if rhs[0] != "op" or rhs[1] != "=":
            raise FilterNotImplemented(f"'{name}' supports = and IS KNOWN / IS UNKNOWN")
        value = self._as_number(name, rhs[2])
        return Leaf(Q(Exists(campaigns.filter(campaign_id=value))), Q(Exists(campaigns)))


def _indexed_formula(name: str, value: str) -> Q:
    if name == "chemical_formula_anonymous":
        indexed = pymatgen_anonymous(value)
        return Q(formula_anonymous=indexed) if indexed else EVERYTHING
    if name == "chemical_formula_reduced":
        try:
            return Q(formula_reduced=Composition(value).reduced_formula)
        except Exception:  # noqa: BLE001 - not a formula pymatgen reads: no narrowing, the exact check still applies
            return EVERYTHING
    return EVERYTHING


_PARSER = None


def parse_filter(text: str) -> Q:
    """An OPTIMADE filter → ``Q``; ``FilterError`` (400) or ``FilterNotImplemented`` (501) otherwise."""
    global _PARSER
    if _PARSER is None:
        _PARSER = LarkParser(version=(1, 2, 0))
    try:
        tree = _PARSER.parse(text)
    except Exception as exc:  # noqa: BLE001 - optimade raises its own BadRequest for any grammar error
        detail = getattr(exc, "detail", str(exc))
        raise FilterError(detail) from exc
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            expression = DjangoQueryTransformer().transform(tree)
        except Exception as exc:  # noqa: BLE001 - lark wraps our errors in VisitError
            original = getattr(exc, "orig_exc", exc)
            if isinstance(original, (FilterError, FilterNotImplemented)):
                raise original from None
            if isinstance(original, NotImplementedError):
                raise FilterNotImplemented(str(original)) from None
            raise FilterError(f"cannot interpret the filter: {original}") from None
    return to_q(expression)
