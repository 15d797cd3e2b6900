"""Structures for a composition that no catalog crystal has: decorate known crystals of the same stoichiometry.

A competing phase that a reference table lists by composition only (the Materials Project rows of Bartel et al. 2020
carry no structure) still has to be computed before a verdict in its system can be confirmed. The classic answer is
prototype substitution (Hautier et al. 2011; GNoME's SAPS in a simple form): take every known crystal whose anonymous
formula matches (AB2 for MgCl2: CdCl2, CdI2, fluorite, rutile, ...), put the target's elements on its sites (anion on
the anion site: anti-structures are skipped), rescale
the cell to the new atoms' volumes, and drop duplicates. The caller ranks what comes out (screening model) and computes
the best few; the result is a *searched* structure, never a known one, and is recorded as such.

Pure pymatgen: no Django.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from pymatgen.analysis.structure_matcher import StructureMatcher
from pymatgen.core import Composition, Element, Structure

from discovery.generation.volume import magpie_volume_per_atom


@dataclass(frozen=True)
class SearchedStructure:
    formula: str  # the target's reduced formula
    structure: Structure
    prototype_id: int | str  # the known crystal it was decorated from
    prototype_formula: str
    mapping: tuple[tuple[str, str], ...]  # (prototype element, target element)


def species_mapping(prototype: Composition, target: Composition) -> dict[str, str] | None:
    """Prototype element → target element, matching reduced amounts; ties broken by electronegativity order (the
    more electronegative element takes the more electronegative site: anion on anion). None if the stoichiometries
    differ."""
    proto_amounts = prototype.reduced_composition.get_el_amt_dict()
    target_amounts = target.reduced_composition.get_el_amt_dict()
    if sorted(proto_amounts.values()) != sorted(target_amounts.values()):
        return None

    def key(amounts: dict[str, float], el: str) -> tuple[float, float]:
        x = Element(el).X
        return amounts[el], x if x == x else 0.0  # NaN electronegativity (noble gases) sorts first

    proto = sorted(proto_amounts, key=lambda el: key(proto_amounts, el))
    tgt = sorted(target_amounts, key=lambda el: key(target_amounts, el))
    return dict(zip(proto, tgt, strict=True))


def keeps_roles(mapping: dict[str, str]) -> bool:
    """Whether the decoration keeps the prototype's chemistry: an element never takes the place of one more
    electronegative than itself while a less electronegative one takes the more electronegative site (anion on the
    anion site). Anti-structures fail it: MgCl2 on antifluorite Li2O would put Mg on O's site and Cl on Li's."""
    pairs = [(Element(a).X, Element(b).X) for a, b in mapping.items()]
    pairs = [(x, y) for x, y in pairs if x == x and y == y]  # NaN electronegativities (noble gases): no constraint
    return all((x1 - x2) * (y1 - y2) >= 0 for (x1, y1) in pairs for (x2, y2) in pairs)


def _volume_ratio(mapping: dict[str, str], prototype: Composition) -> float:
    volumes = magpie_volume_per_atom()
    old = sum(n * volumes.get(el.symbol, 20.0) for el, n in prototype.items())
    new = sum(n * volumes.get(mapping[el.symbol], 20.0) for el, n in prototype.items())
    return new / old if old > 0 else 1.0


def decorate(prototype: Structure, target: Composition) -> tuple[Structure, dict[str, str]] | None:
    """``prototype`` with the target's elements on its sites and its volume rescaled; None if they do not fit."""
    mapping = species_mapping(prototype.composition, target)
    if mapping is None or not keeps_roles(mapping):
        return None
    child = prototype.copy()
    child.replace_species({Element(old): Element(new) for old, new in mapping.items()})
    child.scale_lattice(prototype.volume * _volume_ratio(mapping, prototype.composition))
    return child, mapping


def prototype_structures(formula: str, prototypes: Iterable[tuple[int | str, Structure]],
                         max_sites: int, known: Iterable[Structure] = ()) -> list[SearchedStructure]:
    """Every distinct decoration of the given prototypes (cells of at most ``max_sites`` atoms) with ``formula``'s
    elements, in the prototypes' order; duplicates by ``StructureMatcher`` dropped, the first kept, and so are
    structures that match one in ``known`` (crystals of the formula already in the catalog or being computed)."""
    target = Composition(formula)
    reduced = target.reduced_formula
    out: list[SearchedStructure] = []
    matcher = StructureMatcher()
    known = list(known)
    for pid, prototype in prototypes:
        if len(prototype) > max_sites or prototype.composition.reduced_formula == reduced:
            continue
        decorated = decorate(prototype, target)
        if decorated is None:
            continue
        child, mapping = decorated
        if any(matcher.fit(child, seen.structure) for seen in out) or any(matcher.fit(child, k) for k in known):
            continue
        out.append(SearchedStructure(reduced, child, pid, prototype.composition.reduced_formula,
                                     tuple(sorted(mapping.items()))))
    return out


def rank_searched(found: Sequence[SearchedStructure], energies: Sequence[float | None]) -> list[SearchedStructure]:
    """Lowest predicted energy first; structures the model could not score keep their order, after the others."""
    scored = [(e if e is not None else float("inf"), i) for i, e in enumerate(energies)]
    return [found[i] for _, i in sorted(scored)]
