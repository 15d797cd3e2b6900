"""``compute_hulls``: group entries by maximal chemical system, one hull each, many-element systems by LP."""

from __future__ import annotations

import itertools
import math
from collections import defaultdict
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence

from pymatgen.analysis.phase_diagram import PatchedPhaseDiagram, PDEntry, PhaseDiagram
from pymatgen.core import Composition

from catalog.hulls.facets import Diagram
from catalog.hulls.items import Item
from catalog.hulls.lp import LinearProgrammes, LPSystem
from catalog.hulls.results import (
    DEFAULT_PATCH_THRESHOLD,
    HULL_KINDS,
    STABILITY_VALUE,
    STATUS_MISSING_REFERENCES,
    TOTAL_ENERGY,
    HullError,
    HullInput,
    HullReport,
    HullResult,
)


def chemsys_of(composition: Composition) -> str:
    return "-".join(sorted(el.symbol for el in composition.elements))


_ENUMERATE_LIMIT = 12  # spaces with more elements are compared pairwise instead of enumerating their subsets


def _proper_subsets(space: frozenset[str]):
    els = sorted(space)
    for k in range(1, len(els)):
        for combo in itertools.combinations(els, k):
            yield frozenset(combo)


def maximal_systems(systems: Iterable[Iterable[str] | str]) -> list[frozenset[str]]:
    """The systems not strictly contained in another one (``"Fe-O"`` strings or element collections).

    Every system marks its proper subsets (at most 2^n, n ≤ 12) as not maximal: linear in the number of systems.
    """
    sets = {frozenset(s.split("-")) if isinstance(s, str) else frozenset(s) for s in systems}
    contained: set[frozenset[str]] = set()
    big = [s for s in sets if len(s) > _ENUMERATE_LIMIT]
    for space in sets:
        if len(space) <= _ENUMERATE_LIMIT:
            contained.update(sub for sub in _proper_subsets(space) if sub in sets)
    for space in big:
        contained.update(other for other in sets if other < space)
    return sorted(sets - contained, key=lambda s: (-len(s), sorted(s)))


def _subsystems_in(space: frozenset[str], present: Mapping[frozenset[str], object] | set) -> list[frozenset[str]]:
    """The systems of ``present`` contained in ``space`` (itself included)."""
    if len(space) <= _ENUMERATE_LIMIT:
        found = [sub for sub in _proper_subsets(space) if sub in present]
    else:
        found = [other for other in present if other < space]
    if space in present:
        found.append(space)
    return found


def build_phase_diagram(entries: Sequence[PDEntry], patch_threshold: int = DEFAULT_PATCH_THRESHOLD) -> PhaseDiagram:
    """``PhaseDiagram`` for small spaces, ``PatchedPhaseDiagram`` from ``patch_threshold`` elements up."""
    elements = {el for e in entries for el in e.composition.elements}
    if len(elements) >= patch_threshold:
        return PatchedPhaseDiagram(entries)
    return PhaseDiagram(entries)


def formation_energy_references(
    inputs: Iterable[HullInput], references: Mapping[str, float] | None = None
) -> dict[str, float]:
    """Reference energy per atom of each element: the lowest of the given references and the data's elemental entries."""
    refs: dict[str, float] = {str(el): float(v) for el, v in (references or {}).items()}
    for item in inputs:
        comp = item.composition
        if comp.is_element:
            el = comp.elements[0].symbol
            e_pa = item.energy / comp.num_atoms
            if el not in refs or e_pa < refs[el]:
                refs[el] = e_pa
    return refs


def compute_hulls(
    inputs: Iterable[HullInput],
    kind: str,
    references: Mapping[str, float] | None = None,
    *,
    targets: Iterable[Hashable] | None = None,
    patch_threshold: int = DEFAULT_PATCH_THRESHOLD,
    decomposition_energies: bool = True,
    progress: Callable[[int], None] | None = None,
) -> HullReport:
    """Hull results for every input (or only for ``targets``; all inputs still take part in the hulls).

    ``references``: eV/atom per element symbol (total-energy schemes only). ``progress(n)`` is called after each diagram
    with the number of entries it evaluated.
    """
    if kind == STABILITY_VALUE:
        raise HullError("a stability_value scheme never builds a hull")
    if kind not in HULL_KINDS:
        raise HullError(f"unknown scheme kind {kind!r}; expected one of {HULL_KINDS}")
    items = list(inputs)
    keys = [it.key for it in items]
    if len(set(keys)) != len(keys):
        raise HullError("entry keys must be unique")
    target_set = None if targets is None else set(targets)
    refs = formation_energy_references(items, references) if kind == TOTAL_ENERGY else None

    results: dict[Hashable, HullResult] = {}
    systems: dict[str, dict[str, int]] = {}
    ok: list[Item] = []
    for it in items:
        comp = it.composition
        if comp.num_atoms <= 0:
            raise HullError(f"entry {it.key!r} has an empty composition")
        els = frozenset(el.symbol for el in comp.elements)
        cs = "-".join(sorted(els))
        counts = systems.setdefault(cs, {"n_entries": 0, "n_stable": 0, "n_missing": 0})
        counts["n_entries"] += 1
        if refs is not None:
            missing = sorted(els - refs.keys())
            if missing:
                counts["n_missing"] += 1
                if target_set is None or it.key in target_set:
                    results[it.key] = HullResult(
                        key=it.key,
                        chemsys=cs,
                        status=STATUS_MISSING_REFERENCES,
                        note=f"no elemental reference for {', '.join(missing)}",
                    )
                continue
            if comp.is_element:  # exactly 0 for the entry that defines the reference
                e_form = it.energy / comp.num_atoms - refs[comp.elements[0].symbol]
            else:
                e_form = (it.energy - sum(amt * refs[el.symbol] for el, amt in comp.items())) / comp.num_atoms
        else:
            e_form = it.energy / comp.num_atoms
        if not math.isfinite(e_form):
            raise HullError(f"entry {it.key!r} has a non-finite energy")
        ok.append(Item.make(it, e_form, els, cs))

    # Systems with fewer than patch_threshold elements: one hull per maximal such system, each system evaluated once on
    # the smallest maximal system that contains it. Systems with more: no high-dimensional hull at all (the patches
    # are the lower systems' hulls); each of their compositions is an LP against every phase of its space.
    patch_threshold = max(3, patch_threshold)
    by_system: dict[frozenset[str], list[int]] = defaultdict(list)
    for idx, item in enumerate(ok):
        by_system[item.els].append(idx)
    low = {s: v for s, v in by_system.items() if len(s) < patch_threshold}
    high = [s for s in by_system if len(s) >= patch_threshold]
    maximal = maximal_systems(low)
    members = {m: _subsystems_in(m, low) for m in maximal}
    owner: dict[frozenset[str], frozenset[str]] = {}
    for m in sorted(maximal, key=lambda m: (len(m), sorted(m))):  # the smallest diagram that has this face
        for space in members[m]:
            owner.setdefault(space, m)

    def is_wanted(space: frozenset[str]) -> bool:
        return target_set is None or any(ok[i].key in target_set for i in by_system[space])

    lp = LinearProgrammes()
    pending: list[tuple[Diagram | LPSystem, list[int]]] = []
    n_diagrams = 0
    for m in maximal:
        # whole chemical systems are evaluated when one of their entries is wanted (decomposition energies need them)
        own = [s for s in members[m] if owner[s] == m and is_wanted(s)]
        if not own:
            continue
        rows = [i for s in members[m] for i in by_system[s]]
        diagram = Diagram(m, [ok[i] for i in rows])
        local = {row: j for j, row in enumerate(rows)}
        queries = [local[i] for s in own for i in by_system[s]]
        diagram.evaluate(queries)
        wanted = [j for j in queries if target_set is None or diagram.items[j].key in target_set]
        for j in wanted:
            results[diagram.items[j].key] = diagram.result(j)
        if decomposition_energies:
            diagram.plan_decomposition_energies(queries, lp)
            pending.append((diagram, wanted))
        n_diagrams += 1
        if progress is not None:
            progress(len(wanted))
    if decomposition_energies:
        lp.solve()
        for diagram, wanted in pending:
            for j in wanted:
                results[diagram.items[j].key].decomposition_energy = diagram.decomposition_energy(j, lp)

    high_lp = LinearProgrammes()
    systems_lp: list[tuple[LPSystem, list[int]]] = []
    for space in high:
        if not is_wanted(space):
            continue
        rows = [i for sub in _subsystems_in(space, by_system) for i in by_system[sub]]
        local = {row: j for j, row in enumerate(rows)}
        system = LPSystem(space, [ok[i] for i in rows])
        queries = [local[i] for i in by_system[space]]
        system.plan(queries, high_lp)
        wanted = [j for j in queries if target_set is None or system.items[j].key in target_set]
        systems_lp.append((system, wanted))
    high_lp.solve()
    for system, wanted in systems_lp:
        for j in wanted:
            results[system.items[j].key] = system.result(j, high_lp)
        if progress is not None:
            progress(len(wanted))

    for res in results.values():
        if res.is_stable:
            systems[res.chemsys]["n_stable"] += 1
    return HullReport(results=results, systems=systems, n_diagrams=n_diagrams)
