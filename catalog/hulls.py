"""Convex hulls of formation energy (pure: no Django), on top of ``pymatgen.analysis.phase_diagram``.

An entry is ``HullInput(key, composition, energy)`` where ``energy`` is in eV for the composition *as written*
(``Fe4O6`` → the energy of 10 atoms):

- ``kind="total_energy"``: total energies. Formation energies come from elemental references: the scheme's
  ``ElementalReference`` values (eV/atom, passed as ``references``) and/or elemental entries in the data; for each element
  the lowest of these is the reference (it is the terminal point of the hull). An entry with an element that has neither
  gets ``status="missing_references"`` — never an exception.
- ``kind="formation_energy"``: formation energies (elements at 0). Zero-energy terminal entries are added for every
  element, so elemental entries in the data are measured against 0.

``compute_hulls`` groups the entries by *maximal* chemical system (a system not contained in another system of the data)
and builds one phase diagram per maximal system: the hull of a sub-system is a face of its superset's hull, so every entry
is evaluated on the diagram of one maximal system that contains it. Maximal systems with ``patch_threshold`` or more
elements are built with ``PatchedPhaseDiagram`` (hull patches per sub-space instead of one high-dimensional hull).
Energies above the hull and decompositions are evaluated for all entries of a diagram at once (facet planes, numpy);
the few points that numerics put on no facet fall back to pymatgen's own facet search.

For stable entries ``decomposition_energy`` is how far the entry lies below the hull of all *other* compositions in its
chemical space (pymatgen ``get_decomp_and_phase_separation_energy(entry, stable_only=False)``, Bartel et al. 2020's
"decomposition enthalpy"; ≤ 0), solved as a linear programme. For other entries it follows the same pymatgen semantics:
``e_above_hull``, or, for a polymorph of a stable composition, ``e_above_hull`` plus that composition's decomposition
energy (its distance from the hull of the other compositions).
"""

from __future__ import annotations

import itertools
import math
from collections import defaultdict
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
from pymatgen.analysis.phase_diagram import PatchedPhaseDiagram, PDEntry, PhaseDiagram
from pymatgen.core import Composition
from scipy.optimize import linprog

TOTAL_ENERGY = "total_energy"
FORMATION_ENERGY = "formation_energy"
STABILITY_VALUE = "stability_value"
HULL_KINDS = (TOTAL_ENERGY, FORMATION_ENERGY)

STATUS_OK = "ok"
STATUS_MISSING_REFERENCES = "missing_references"

# Maximal chemical systems with at least this many elements are built with PatchedPhaseDiagram. Measured: an 8-element
# space took 29.5 s to build as one PhaseDiagram and 2.2 s patched, with identical energies above the hull.
DEFAULT_PATCH_THRESHOLD = 6
NUMERICAL_TOL = 1e-8  # pymatgen's PhaseDiagram.numerical_tol
_BARY_TOL = 1e-9  # pymatgen tests simplex membership at numerical_tol / 10
_FRACTION_TOL = 1e-8  # products with a smaller fraction are dropped from a decomposition, as pymatgen does


class HullError(ValueError):
    """The input cannot be turned into hulls (unknown kind, malformed composition)."""


@dataclass(frozen=True)
class HullInput:
    """One energy: ``energy`` in eV for ``composition`` as written (total or formation energy, by the scheme's kind)."""

    key: Hashable
    composition: Composition
    energy: float

    @classmethod
    def per_atom(cls, key: Hashable, composition: Composition | str, energy_per_atom: float) -> HullInput:
        comp = Composition(composition) if isinstance(composition, str) else composition
        return cls(key, comp, float(energy_per_atom) * comp.num_atoms)


@dataclass(frozen=True)
class DecompositionProduct:
    key: Hashable | None  # None for a synthetic terminal (element at its reference energy)
    formula: str  # reduced formula
    fraction: float  # fraction of the atoms


@dataclass
class HullResult:
    key: Hashable
    chemsys: str
    status: str = STATUS_OK
    formation_energy_per_atom: float | None = None
    e_above_hull: float | None = None
    is_stable: bool = False
    decomposition_energy: float | None = None
    decomposition: list[DecompositionProduct] = field(default_factory=list)
    note: str = ""


@dataclass
class HullReport:
    """What ``compute_hulls`` returns: per-entry results and per-chemical-system counts."""

    results: dict[Hashable, HullResult]
    systems: dict[str, dict[str, int]]  # chemsys -> {"n_entries": .., "n_stable": .., "n_missing": ..}
    n_diagrams: int = 0


def chemsys_of(composition: Composition) -> str:
    return "-".join(sorted(el.symbol for el in composition.elements))


def maximal_systems(systems: Iterable[Iterable[str] | str]) -> list[frozenset[str]]:
    """The systems not strictly contained in another one (``"Fe-O"`` strings or element collections)."""
    sets = {frozenset(s.split("-")) if isinstance(s, str) else frozenset(s) for s in systems}
    ordered = sorted(sets, key=lambda s: (-len(s), sorted(s)))
    by_element: dict[str, list[frozenset[str]]] = defaultdict(list)
    result: list[frozenset[str]] = []
    for space in ordered:
        first = min(space, key=lambda el: len(by_element[el]))
        if any(space <= bigger for bigger in by_element[first]):
            continue
        result.append(space)
        for el in space:
            by_element[el].append(space)
    return result


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


def _terminal_entry(el: str) -> PDEntry:
    # named to sort after any data entry: on a tie at 0 eV/atom pymatgen keeps the data entry on the hull
    return PDEntry(Composition(el), 0.0, name=f"~terminal-{el}", attribute=None)


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

    if kind == TOTAL_ENERGY:
        refs = formation_energy_references(items, references)
    else:
        refs = None

    results: dict[Hashable, HullResult] = {}
    systems: dict[str, dict[str, int]] = {}
    ok_items: list[tuple[HullInput, float, frozenset[str]]] = []  # (input, formation energy per atom, elements)
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
        ok_items.append((it, e_form, els))

    # Group by maximal system; evaluate each entry once, on one maximal system that contains it.
    by_system: dict[frozenset[str], list[int]] = defaultdict(list)
    for idx, (_, _, els) in enumerate(ok_items):
        by_system[els].append(idx)
    maximal = maximal_systems(by_system.keys())
    # the maximal systems containing each system; each system's entries are evaluated on the first one
    owner: dict[frozenset[str], frozenset[str]] = {}
    members: dict[frozenset[str], list[frozenset[str]]] = defaultdict(list)
    max_by_el: dict[str, list[frozenset[str]]] = defaultdict(list)
    for m in maximal:
        for el in m:
            max_by_el[el].append(m)
    for space in by_system:
        first = min(space, key=lambda el: len(max_by_el[el]))
        containing = [m for m in max_by_el[first] if space <= m]
        for m in containing:
            members[m].append(space)
        # prefer the smallest containing system: a smaller diagram, the same hull face
        owner[space] = min(containing, key=lambda m: (len(m), sorted(m)))

    n_diagrams = 0
    for m in maximal:
        own_spaces = [s for s in members[m] if owner[s] == m]
        wanted = [
            idx for s in own_spaces for idx in by_system[s] if target_set is None or ok_items[idx][0].key in target_set
        ]
        if not wanted:
            continue
        idx_all = [idx for s in members[m] for idx in by_system[s]]
        _evaluate_system(
            m,
            [ok_items[i] for i in idx_all],
            {ok_items[i][0].key for i in wanted},
            results,
            patch_threshold,
            decomposition_energies,
        )
        n_diagrams += 1
        if progress is not None:
            progress(len(wanted))

    for res in results.values():
        if res.is_stable:
            systems[res.chemsys]["n_stable"] += 1
    return HullReport(results=results, systems=systems, n_diagrams=n_diagrams)


def _evaluate_system(
    space: frozenset[str],
    data: list[tuple[HullInput, float, frozenset[str]]],
    wanted: set[Hashable],
    results: dict[Hashable, HullResult],
    patch_threshold: int,
    decomposition_energies: bool,
) -> None:
    entries: list[PDEntry] = []
    for it, e_form, _ in data:
        entries.append(PDEntry(it.composition, e_form * it.composition.num_atoms, name=str(it.key), attribute=it.key))
    terminals = [_terminal_entry(el) for el in sorted(space)]
    pd = build_phase_diagram(entries + terminals, patch_threshold)

    targets = [(e, els) for e, (_, _, els) in zip(entries, data, strict=True) if e.attribute in wanted]
    # group queries by the (sub-)diagram that holds them
    groups: dict[int, tuple[PhaseDiagram, list[PDEntry]]] = {}
    outside: list[PDEntry] = []  # in no hull patch (a positive-formation-energy entry spanning its own space)
    for e, _ in targets:
        try:
            sub = pd.get_pd_for_entry(e) if isinstance(pd, PatchedPhaseDiagram) else pd
        except ValueError:
            outside.append(e)
            continue
        groups.setdefault(id(sub), (sub, []))[1].append(e)
    stable_ids = {id(e) for e in pd.stable_entries}
    for sub, queries in groups.values():
        _evaluate_on_diagram(sub, queries, stable_ids, results)
    for e in outside:
        decomp, hull = _lp_lower_hull(e.composition, list(pd.stable_entries))
        _store(results, e, e.energy_per_atom - hull, False, decomp)

    if decomposition_energies:
        stable_comps = {e.composition.reduced_composition for e in pd.stable_entries}
        _decomposition_energies(space, entries, terminals, targets, results, stable_comps)


def _lp_lower_hull(comp: Composition, candidates: Sequence[PDEntry]) -> tuple[dict[PDEntry, float], float]:
    """Lowest energy per atom reachable at ``comp`` by mixing ``candidates`` (those inside its chemical space)."""
    els = [el.symbol for el in comp.elements]
    space = set(els)
    usable = [c for c in candidates if {el.symbol for el in c.composition.elements} <= space]
    a_eq = np.array([[c.composition.get_atomic_fraction(el) for c in usable] for el in els])
    b_eq = np.array([comp.get_atomic_fraction(el) for el in els])
    res = linprog([c.energy_per_atom for c in usable], A_eq=a_eq, b_eq=b_eq, bounds=(0, None), method="highs")
    if res.status != 0:  # pragma: no cover - the terminals always make the problem feasible
        raise HullError(f"no decomposition of {comp.reduced_formula}: {res.message}")
    decomp = {c: float(x) for c, x in zip(usable, res.x, strict=True) if x > _FRACTION_TOL}
    return decomp, float(res.fun)


def _facet_planes(pd: PhaseDiagram) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For each facet: the plane E(x) = [x, 1]·p, the inverse of the barycentric system, and the vertex energies."""
    facets = np.asarray(pd.facets, dtype=int)
    verts = pd.qhull_data[facets]  # (F, dim, dim): dim-1 coordinates + energy per atom
    mat = verts.copy()
    mat[:, :, -1] = 1.0  # rows [x_i, 1]
    energies = verts[:, :, -1]
    inv_t = np.linalg.inv(np.transpose(mat, (0, 2, 1)))  # barycentric λ = inv_t @ [x, 1]
    planes = np.einsum("fij,fi->fj", inv_t, energies)  # E(x) = λ·e = [x, 1]·(inv_tᵀ e)
    return planes, inv_t, energies


def _evaluate_on_diagram(
    pd: PhaseDiagram, queries: list[PDEntry], stable_ids: set[int], results: dict[Hashable, HullResult]
) -> None:
    elements = pd.elements
    if pd.dim == 1:
        ref = pd.el_refs[elements[0]]
        for e in queries:
            stable = id(e) in stable_ids or e is ref
            _store(results, e, 0.0 if stable else e.energy_per_atom - ref.energy_per_atom, stable, {ref: 1.0})
        return
    planes, inv_t, energies = _facet_planes(pd)
    coords = np.array([[e.composition.get_atomic_fraction(el) for el in elements[1:]] + [1.0] for e in queries])
    e_pa = np.array([e.energy_per_atom for e in queries])
    chunk = max(1, 4_000_000 // max(1, len(planes)))
    for start in range(0, len(queries), chunk):
        q = coords[start : start + chunk]
        best = np.argmax(q @ planes.T, axis=1)
        bary = np.einsum("nij,nj->ni", inv_t[best], q)
        for row, (f, lam) in enumerate(zip(best, bary, strict=True)):
            e = queries[start + row]
            if lam.min() < -_BARY_TOL:  # numerically on no facet: let pymatgen search
                decomp = pd.get_decomposition(e.composition)
                hull = sum(p.energy_per_atom * amt for p, amt in decomp.items())
            else:
                facet = pd.facets[f]
                decomp = {
                    pd.qhull_entries[v]: float(a) for v, a in zip(facet, lam, strict=True) if abs(a) > NUMERICAL_TOL
                }
                hull = float(lam @ energies[f])
            stable = id(e) in stable_ids
            _store(results, e, 0.0 if stable else float(e_pa[start + row] - hull), stable, decomp)


def _store(results: dict[Hashable, HullResult], e: PDEntry, e_hull: float, stable: bool, decomp: dict) -> None:
    comp = e.composition
    products = [
        DecompositionProduct(key=p.attribute, formula=p.composition.reduced_formula, fraction=float(amt))
        for p, amt in sorted(decomp.items(), key=lambda kv: -kv[1])
    ]
    if stable:
        products = [DecompositionProduct(key=e.attribute, formula=comp.reduced_formula, fraction=1.0)]
    results[e.attribute] = HullResult(
        key=e.attribute,
        chemsys=chemsys_of(comp),
        formation_energy_per_atom=e.energy_per_atom,
        e_above_hull=max(e_hull, 0.0) if e_hull > -NUMERICAL_TOL else e_hull,
        is_stable=stable,
        decomposition_energy=None,
        decomposition=products,
    )


def _decomposition_energies(
    space: frozenset[str],
    entries: list[PDEntry],
    terminals: list[PDEntry],
    targets: list[tuple[PDEntry, frozenset[str]]],
    results: dict[Hashable, HullResult],
    stable_comps: set[Composition],
) -> None:
    """Bartel's decomposition energy: for stable entries an LP against every other composition of the space."""
    els = sorted(space)
    col = {el: i for i, el in enumerate(els)}
    # the lowest entry per reduced composition, as pymatgen's qhull_entries (terminals sit at 0)
    lowest: dict[Composition, PDEntry] = {}
    for e in itertools.chain(terminals, entries):
        rc = e.composition.reduced_composition
        if rc not in lowest or e.energy_per_atom < lowest[rc].energy_per_atom:
            lowest[rc] = e
    cands = [e for e in lowest.values() if e.energy_per_atom < PhaseDiagram.formation_energy_tol or e.is_element]
    frac = np.zeros((len(cands), len(els)))
    for i, e in enumerate(cands):
        for el, amt in e.composition.fractional_composition.items():
            frac[i, col[el.symbol]] = amt
    energy = np.array([e.energy_per_atom for e in cands])
    inside = frac > 0

    stable_ed: dict[Composition, float] = {}

    def ed_for(entry: PDEntry, entry_els: frozenset[str]) -> float:
        rc = entry.composition.reduced_composition
        if rc in stable_ed:
            return stable_ed[rc]
        if entry.composition.is_element:
            stable_ed[rc] = 0.0
            return 0.0
        cols = [col[el] for el in sorted(entry_els)]
        outside = np.ones(len(els), dtype=bool)
        outside[cols] = False
        ok = ~inside[:, outside].any(axis=1)
        target = np.zeros(len(els))
        for el, amt in entry.composition.fractional_composition.items():
            target[col[el.symbol]] = amt
        same = np.all(np.abs(frac - target) <= Composition.amount_tolerance, axis=1)
        ok &= ~same
        a_eq = frac[ok][:, cols].T
        res = linprog(energy[ok], A_eq=a_eq, b_eq=target[cols], bounds=(0, None), method="highs")
        if res.status != 0:  # pragma: no cover - the terminals always make the problem feasible
            raise HullError(f"no decomposition of {entry.composition.reduced_formula} into other phases: {res.message}")
        stable_ed[rc] = lowest[rc].energy_per_atom - float(res.fun)
        return stable_ed[rc]

    # stable compositions first, then polymorphs of stable compositions reuse their value
    ordered = sorted(targets, key=lambda t: not results[t[0].attribute].is_stable)
    for e, e_els in ordered:
        res = results[e.attribute]
        if res.is_stable:
            res.decomposition_energy = ed_for(e, e_els)
        else:
            rc = e.composition.reduced_composition
            if rc in stable_ed:
                res.decomposition_energy = res.e_above_hull + stable_ed[rc]
            elif rc in stable_comps:
                res.decomposition_energy = res.e_above_hull + ed_for(lowest[rc], e_els)
            else:
                res.decomposition_energy = res.e_above_hull


@dataclass
class EdComparison:
    """How many computed decomposition energies reproduce published ones (eV/atom), within two tolerances."""

    n_compared: int
    n_within_fine: int
    n_within_coarse: int
    fine_tol: float
    coarse_tol: float
    max_abs_diff: float
    missing: list[Hashable]
    worst: list[tuple[Hashable, float, float]]  # (key, published, computed), largest differences first


def compare_decomposition_energies(
    published: Mapping[Hashable, float],
    results: Mapping[Hashable, HullResult],
    fine_tol: float = 1e-4,
    coarse_tol: float = 5e-3,
    n_worst: int = 10,
) -> EdComparison:
    """Compare ``HullResult.decomposition_energy`` with published values (e.g. Bartel et al. 2020's Ed)."""
    diffs: list[tuple[float, Hashable, float, float]] = []
    missing: list[Hashable] = []
    for key, value in published.items():
        res = results.get(key)
        if res is None or res.decomposition_energy is None:
            missing.append(key)
            continue
        diffs.append((abs(res.decomposition_energy - value), key, value, res.decomposition_energy))
    diffs.sort(key=lambda d: -d[0])
    return EdComparison(
        n_compared=len(diffs),
        n_within_fine=sum(d[0] <= fine_tol for d in diffs),
        n_within_coarse=sum(d[0] <= coarse_tol for d in diffs),
        fine_tol=fine_tol,
        coarse_tol=coarse_tol,
        max_abs_diff=diffs[0][0] if diffs else 0.0,
        missing=missing,
        worst=[(k, v, c) for _, k, v, c in diffs[:n_worst]],
    )
