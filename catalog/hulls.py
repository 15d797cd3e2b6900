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
and builds one hull per maximal system: the hull of a sub-system is a face of its superset's hull, so every entry is
evaluated on the diagram of one maximal system that contains it (the way ``PatchedPhaseDiagram`` patches a large space).
Hulls are pymatgen's (``PhaseDiagram._compute``'s steps on precomputed arrays, ``get_facets``); energies above the hull and
decompositions are evaluated for all entries of a diagram at once (facet planes, numpy), and the few points that numerics
put on no facet fall back to pymatgen's own facet search.

Many-element systems (``patch_threshold`` elements or more, default 7) never get a hull of their own: qhull's cost explodes
with the dimension (measured on Bartel's MP data, one 9-element system with 764 phases: 60 s as a ``PhaseDiagram``,
128 s as a ``PatchedPhaseDiagram`` because the 9-element phase makes its own patch). Their sub-systems are hull patches as
above, and each of their own compositions is solved as a linear programme against every phase of its space — what
``PatchedPhaseDiagram`` falls back to for compositions no patch covers.

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
from pymatgen.analysis.phase_diagram import PatchedPhaseDiagram, PDEntry, PhaseDiagram, get_facets
from pymatgen.core import Composition, Element
from scipy.optimize import linprog

TOTAL_ENERGY = "total_energy"
FORMATION_ENERGY = "formation_energy"
STABILITY_VALUE = "stability_value"
HULL_KINDS = (TOTAL_ENERGY, FORMATION_ENERGY)

STATUS_OK = "ok"
STATUS_MISSING_REFERENCES = "missing_references"

# Chemical systems with at least this many elements get no hull of their own (see the module docstring). Measured on
# Bartel's MP data with this module's hull: 6 elements ~0.04 s, 7 ~0.15-0.25 s, 8 ~2.3 s, 9 ~60 s per system.
DEFAULT_PATCH_THRESHOLD = 7
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
    ok: list[_Item] = []
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
        ok.append(_Item.make(it, e_form, els, cs))

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

    lp = _LinearProgrammes()
    pending: list[tuple[_Diagram | _LPSystem, list[int]]] = []
    n_diagrams = 0
    for m in maximal:
        # whole chemical systems are evaluated when one of their entries is wanted (decomposition energies need them)
        own = [s for s in members[m] if owner[s] == m and is_wanted(s)]
        if not own:
            continue
        rows = [i for s in members[m] for i in by_system[s]]
        diagram = _Diagram(m, [ok[i] for i in rows])
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

    high_lp = _LinearProgrammes()
    systems_lp: list[tuple[_LPSystem, list[int]]] = []
    for space in high:
        if not is_wanted(space):
            continue
        rows = [i for sub in _subsystems_in(space, by_system) for i in by_system[sub]]
        local = {row: j for j, row in enumerate(rows)}
        system = _LPSystem(space, [ok[i] for i in rows])
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


_FORMULAS: dict[tuple, str] = {}
_FRACTIONS: dict[int, tuple[Composition, dict[str, float], tuple]] = {}


def _fractions(comp: Composition) -> tuple[dict[str, float], tuple]:
    """Atomic fractions and a hashable reduced-composition key, cached per Composition object."""
    hit = _FRACTIONS.get(id(comp))
    if hit is not None and hit[0] is comp:
        return hit[1], hit[2]
    fractions = {el.symbol: comp.get_atomic_fraction(el) for el in comp.elements}
    rkey = tuple(sorted((el, round(x, 10)) for el, x in fractions.items()))
    if len(_FRACTIONS) > 500_000:
        _FRACTIONS.clear()
    _FRACTIONS[id(comp)] = (comp, fractions, rkey)
    return fractions, rkey


@dataclass
class _Item:
    key: Hashable | None
    composition: Composition
    e_form: float  # eV/atom
    els: frozenset[str]
    chemsys: str
    fractions: dict[str, float]
    rkey: tuple  # reduced composition, hashable and sortable

    @property
    def formula(self) -> str:
        """Reduced formula, cached per reduced composition (pymatgen's is slow to compute)."""
        formula = _FORMULAS.get(self.rkey)
        if formula is None:
            if len(_FORMULAS) > 1_000_000:
                _FORMULAS.clear()
            formula = _FORMULAS[self.rkey] = self.composition.reduced_formula
        return formula

    @classmethod
    def make(cls, it: HullInput, e_form: float, els: frozenset[str], chemsys: str) -> _Item:
        fractions, rkey = _fractions(it.composition)
        return cls(it.key, it.composition, e_form, els, chemsys, fractions, rkey)

    @classmethod
    def terminal(cls, el: str) -> _Item:
        return cls(None, Composition(el), 0.0, frozenset((el,)), el, {el: 1.0}, ((el, 1.0),))


class _LinearProgrammes:
    """Many small LPs (lowest energy of a composition from a set of phases) solved as one block-diagonal LP."""

    MAX_VARIABLES = 200_000

    def __init__(self) -> None:
        self.problems: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []  # (A (d×m), b (d), c (m))
        self.values: list[float] = []
        self.solutions: list[np.ndarray] = []

    def add(self, a: np.ndarray, b: np.ndarray, c: np.ndarray) -> int:
        self.problems.append((a, b, c))
        return len(self.problems) - 1

    def solve(self) -> None:
        from scipy.sparse import block_diag

        self.values = [math.nan] * len(self.problems)
        self.solutions = [np.empty(0)] * len(self.problems)
        start = 0
        while start < len(self.problems):
            stop, n_var = start, 0
            while stop < len(self.problems) and (
                stop == start or n_var + self.problems[stop][0].shape[1] <= self.MAX_VARIABLES
            ):
                n_var += self.problems[stop][0].shape[1]
                stop += 1
            chunk = self.problems[start:stop]
            a_eq = block_diag([p[0] for p in chunk], format="csc")
            b_eq = np.concatenate([p[1] for p in chunk])
            c = np.concatenate([p[2] for p in chunk])
            res = linprog(
                c,
                A_eq=a_eq,
                b_eq=b_eq,
                bounds=(0, None),
                method="highs",
                options={"primal_feasibility_tolerance": 1e-10, "dual_feasibility_tolerance": 1e-10},
            )
            if res.status != 0:  # pragma: no cover - the terminals always make every problem feasible
                raise HullError(f"decomposition-energy LP failed: {res.message}")
            offset = 0
            for k, (a, _, cost) in enumerate(chunk):
                m = a.shape[1]
                self.values[start + k] = float(cost @ res.x[offset : offset + m])
                self.solutions[start + k] = res.x[offset : offset + m]
                offset += m
            start = stop


@dataclass
class _Hull:
    """A lower convex hull in pymatgen's layout (``PhaseDiagram`` attributes), with entries as local indices."""

    elements: list[str]
    facets: np.ndarray  # (F, dim) rows of qhull_data
    qhull_data: np.ndarray  # (n, dim): the last dim-1 atomic fractions, energy per atom
    qhull_ids: np.ndarray  # (n,) local entry index of each qhull_data row
    el_refs: dict[str, int]
    make_pymatgen: Callable[[], PhaseDiagram]

    @property
    def dim(self) -> int:
        return len(self.elements)

    @property
    def stable(self) -> set[int]:
        return {int(self.qhull_ids[v]) for v in np.unique(self.facets)}

    @classmethod
    def from_pymatgen(cls, pd: PhaseDiagram) -> _Hull:
        return cls(
            elements=[el.symbol for el in pd.elements],
            facets=np.asarray(pd.facets, dtype=int).reshape(len(pd.facets), -1),
            qhull_data=np.asarray(pd.qhull_data),
            qhull_ids=np.array([e.attribute for e in pd.qhull_entries], dtype=int),
            el_refs={el.symbol: e.attribute for el, e in pd.el_refs.items()},
            make_pymatgen=lambda: pd,
        )


class _Diagram:
    """One maximal chemical system: its hull(s) and the numbers needed to query them quickly."""

    def __init__(self, space: frozenset[str], items: list[_Item]) -> None:
        self.space = space
        self.els = sorted(space)
        self.col = {el: i for i, el in enumerate(self.els)}
        self.items = list(items) + [_Item.terminal(el) for el in self.els]
        n, dim = len(self.items), len(self.els)
        self.frac = np.zeros((n, dim))
        for j, item in enumerate(self.items):
            for el, x in item.fractions.items():
                self.frac[j, self.col[el]] = x
        self.epa = np.array([item.e_form for item in self.items])
        self.inside = self.frac > 0
        self.lowest = self._lowest_per_composition()
        self._entries: list[PDEntry] | None = None
        self.hull = self._hull()
        self.stable = self.hull.stable
        self.stable_rkeys = {self.items[j].rkey for j in self.stable}
        self.e_hull: dict[int, float] = {}
        self.decomp: dict[int, dict[int, float]] = {}
        self.ed_problem: dict[tuple, int | float] = {}  # reduced composition -> LP index, or a value

    @property
    def entries(self) -> list[PDEntry]:
        """pymatgen entries (formation energies), made only when a pymatgen diagram is needed."""
        if self._entries is None:
            self._entries = [
                PDEntry(item.composition, item.e_form * item.composition.num_atoms, name=self._name(j), attribute=j)
                for j, item in enumerate(self.items)
            ]
        return self._entries

    def _name(self, j: int) -> str:
        item = self.items[j]
        # terminals sort after data entries: on a tie at 0 eV/atom pymatgen keeps the data entry on the hull
        return str(item.key) if item.key is not None else f"~terminal-{item.chemsys}"

    def _lowest_per_composition(self) -> dict[tuple, int]:
        lowest: dict[tuple, int] = {}
        for j in sorted(range(len(self.items)), key=lambda j: (self.epa[j], self._name(j))):
            lowest.setdefault(self.items[j].rkey, j)
        return lowest

    def _hull(self) -> _Hull:
        """pymatgen's ``PhaseDiagram._compute`` on precomputed numbers: same entries on the hull, same facets."""
        min_idx = sorted(self.lowest.values())
        el_refs = {el: self.lowest[((el, 1.0),)] for el in self.els}
        ref = np.array([self.epa[el_refs[el]] for el in self.els])
        form = self.epa[min_idx] - self.frac[min_idx] @ ref
        idx = [j for j, f in zip(min_idx, form, strict=True) if f < -PhaseDiagram.formation_energy_tol]
        idx += [el_refs[el] for el in self.els if el_refs[el] not in idx]
        dim = len(self.els)
        qhull_data = np.column_stack([self.frac[idx][:, 1:], self.epa[idx]])
        if dim == 1:
            facets = np.array([[int(np.argmin(qhull_data[:, -1]))]])
        else:
            extra = np.zeros(dim) + 1 / dim
            extra[-1] = np.max(qhull_data) + 1
            data = np.concatenate([qhull_data, [extra]], axis=0)
            facets = np.asarray(get_facets(data), dtype=int)
            facets = facets[facets.max(axis=1) != len(data) - 1]  # drop the upper hull (facets on the extra point)
            mats = data[facets].copy()
            mats[:, :, -1] = 1
            facets = facets[np.abs(np.linalg.det(mats)) > 1e-14]  # drop vertical facets
        qhull_ids = np.array(idx, dtype=int)

        def make_pymatgen() -> PhaseDiagram:
            computed = {
                "facets": [list(f) for f in facets],
                "all_entries": self.entries,
                "qhull_data": qhull_data,
                "el_refs": [(Element(el), self.entries[el_refs[el]]) for el in self.els],
                "qhull_entries": [self.entries[j] for j in idx],
            }
            return PhaseDiagram(self.entries, elements=[Element(el) for el in self.els], computed_data=computed)

        return _Hull(self.els, facets, qhull_data, qhull_ids, el_refs, make_pymatgen)

    def pymatgen_diagram(self) -> PhaseDiagram:
        """The pymatgen ``PhaseDiagram`` of this system (e.g. for plotting)."""
        return self.hull.make_pymatgen()

    # -- e_above_hull and decompositions -------------------------------------------------------------------------------
    def evaluate(self, queries: list[int]) -> None:
        self._evaluate_on(self.hull, queries)

    def _evaluate_on(self, hull: _Hull, js: list[int]) -> None:
        if hull.dim == 1:
            ref = hull.el_refs[hull.elements[0]]
            for j in js:
                self.e_hull[j] = 0.0 if j in self.stable else float(self.epa[j] - self.epa[ref])
                self.decomp[j] = {ref: 1.0}
            return
        cols = [self.col[el] for el in hull.elements[1:]]
        facets = hull.facets
        verts = hull.qhull_data[facets]  # (F, dim, dim): dim-1 coordinates + energy per atom
        mat = verts.copy()
        mat[:, :, -1] = 1.0
        energies = verts[:, :, -1]
        inv_t = np.linalg.inv(np.transpose(mat, (0, 2, 1)))  # barycentric λ = inv_t @ [x, 1]
        planes = np.einsum("fij,fi->fj", inv_t, energies)  # E(x) = λ·e = [x, 1]·(inv_tᵀ e)
        js_arr = np.array(js)
        coords = np.column_stack([self.frac[js_arr][:, cols], np.ones(len(js))])
        chunk = max(1, 4_000_000 // max(1, len(planes)))
        pd: PhaseDiagram | None = None
        for start in range(0, len(js), chunk):
            q = coords[start : start + chunk]
            best = np.argmax(q @ planes.T, axis=1)
            bary = np.einsum("nij,nj->ni", inv_t[best], q)
            hull_e = np.einsum("ni,ni->n", bary, energies[best])
            for row in range(len(q)):
                j = js[start + row]
                lam = bary[row]
                if lam.min() < -_BARY_TOL:  # numerically on no facet: let pymatgen search
                    pd = pd or hull.make_pymatgen()
                    decomp = pd.get_decomposition(self.items[j].composition)
                    self.decomp[j] = {p.attribute: float(a) for p, a in decomp.items()}
                    h = sum(p.energy_per_atom * a for p, a in decomp.items())
                else:
                    facet = facets[best[row]]
                    self.decomp[j] = {
                        int(hull.qhull_ids[v]): float(a)
                        for v, a in zip(facet, lam, strict=True)
                        if abs(a) > NUMERICAL_TOL
                    }
                    h = hull_e[row]
                self.e_hull[j] = 0.0 if j in self.stable else float(self.epa[j] - h)

    def result(self, j: int) -> HullResult:
        item = self.items[j]
        stable = j in self.stable
        e_hull = self.e_hull[j]
        if stable:
            products = [DecompositionProduct(key=item.key, formula=item.formula, fraction=1.0)]
        else:
            products = [
                DecompositionProduct(key=self.items[p].key, formula=self.items[p].formula, fraction=amt)
                for p, amt in sorted(self.decomp[j].items(), key=lambda kv: -kv[1])
            ]
        return HullResult(
            key=item.key,
            chemsys=item.chemsys,
            formation_energy_per_atom=float(item.e_form),
            e_above_hull=max(e_hull, 0.0) if e_hull > -NUMERICAL_TOL else e_hull,
            is_stable=stable,
            decomposition=products,
        )

    # -- decomposition energies (Bartel's Ed) --------------------------------------------------------------------------
    def plan_decomposition_energies(self, queries: list[int], lp: _LinearProgrammes) -> None:
        """One LP per stable composition among the queries: its energy against the hull of every other composition.

        Only the phases that can form that hull enter the LP: the hull vertices of the space (but the composition
        itself) and the entries hidden under the hull by this composition (those whose decomposition contains it).
        """
        hidden: dict[int, list[int]] = defaultdict(list)  # stable entry -> entries whose decomposition uses it
        for j in queries:
            if j not in self.stable:
                for p in self.decomp[j]:
                    hidden[p].append(j)
        stable_list = np.array(sorted(self.stable))
        for j in queries:
            item = self.items[j]
            if j not in self.stable or item.rkey in self.ed_problem:
                continue
            if len(item.els) == 1:
                self.ed_problem[item.rkey] = 0.0
                continue
            cols = [self.col[el] for el in sorted(item.els)]
            outside = np.ones(len(self.els), dtype=bool)
            outside[cols] = False
            in_space = stable_list[~self.inside[stable_list][:, outside].any(axis=1)]
            cands = {int(c) for c in in_space if self.items[c].rkey != item.rkey}
            cands.update(
                h
                for h in hidden.get(j, ())
                if self.items[h].els <= item.els and self.items[h].rkey != item.rkey and self.epa[h] < 0
            )
            cands_arr = np.array(sorted(cands))
            a = self.frac[cands_arr][:, cols].T
            b = self.frac[j, cols]
            self.ed_problem[item.rkey] = lp.add(a, b, self.epa[cands_arr])

    def _ed_of(self, rkey: tuple, lp: _LinearProgrammes) -> float:
        value = self.ed_problem[rkey]
        if isinstance(value, int):
            return float(self.epa[self.lowest[rkey]] - lp.values[value])
        return float(value)

    def decomposition_energy(self, j: int, lp: _LinearProgrammes) -> float:
        """pymatgen ``get_decomp_and_phase_separation_energy(entry, stable_only=False)`` semantics."""
        item = self.items[j]
        if j in self.stable:
            return self._ed_of(item.rkey, lp)
        e_hull = self.e_hull[j]
        if len(item.els) == 1:  # an element above its reference: the element's own Ed is 0
            return e_hull
        if item.rkey in self.stable_rkeys:  # a polymorph of a stable composition
            return e_hull + self._ed_of(item.rkey, lp)
        return e_hull


class _LPSystem:
    """A chemical system with ``patch_threshold`` or more elements: its compositions are LPs, no hull is built.

    For an entry at composition c with energy E: ``rivals`` = the lowest mix of every *other* composition of the space
    (an LP). The hull energy at c is min(rivals, lowest E at c); the entry is stable when it is the lowest at c and
    strictly below its rivals; the decomposition energy is E - rivals in every case (pymatgen's semantics).
    """

    def __init__(self, space: frozenset[str], items: list[_Item]) -> None:
        self.els = sorted(space)
        self.col = {el: i for i, el in enumerate(self.els)}
        self.items = list(items) + [_Item.terminal(el) for el in self.els]
        self.frac = np.zeros((len(self.items), len(self.els)))
        for j, item in enumerate(self.items):
            for el, x in item.fractions.items():
                self.frac[j, self.col[el]] = x
        self.epa = np.array([item.e_form for item in self.items])
        lowest: dict[tuple, int] = {}
        for j in sorted(range(len(self.items)), key=lambda j: (self.epa[j], str(self.items[j].key))):
            lowest.setdefault(self.items[j].rkey, j)
        self.lowest = lowest
        self.problem: dict[tuple, int] = {}
        self.cands: dict[tuple, np.ndarray] = {}

    def plan(self, queries: list[int], lp: _LinearProgrammes) -> None:
        pool = np.array(
            [
                j
                for j in self.lowest.values()
                if self.epa[j] < -PhaseDiagram.formation_energy_tol or self.items[j].key is None
            ]
        )
        for j in queries:
            rkey = self.items[j].rkey
            if rkey in self.problem:
                continue
            cands = np.array([c for c in pool if self.items[c].rkey != rkey])
            self.cands[rkey] = cands
            self.problem[rkey] = lp.add(self.frac[cands].T, self.frac[j], self.epa[cands])

    def result(self, j: int, lp: _LinearProgrammes) -> HullResult:
        item = self.items[j]
        k = self.problem[item.rkey]
        rivals = lp.values[k]
        low = self.lowest[item.rkey]
        e_low = float(self.epa[low])
        stable = j == low and e_low < rivals - NUMERICAL_TOL
        e = float(self.epa[j])
        if stable:
            products = [DecompositionProduct(key=item.key, formula=item.formula, fraction=1.0)]
            e_hull = 0.0
        elif e_low < rivals - NUMERICAL_TOL:  # a polymorph of a stable composition
            products = [DecompositionProduct(key=self.items[low].key, formula=self.items[low].formula, fraction=1.0)]
            e_hull = e - e_low
        else:
            x = lp.solutions[k]
            order = np.argsort(-x)
            products = [
                DecompositionProduct(key=self.items[c].key, formula=self.items[c].formula, fraction=float(x[o]))
                for o in order
                if x[o] > NUMERICAL_TOL
                for c in (int(self.cands[item.rkey][o]),)
            ]
            e_hull = max(e - rivals, 0.0)
        return HullResult(
            key=item.key,
            chemsys=item.chemsys,
            formation_energy_per_atom=e,
            e_above_hull=e_hull,
            is_stable=stable,
            decomposition_energy=e - rivals,
            decomposition=products,
            note="many-element system: evaluated by linear programming against every phase of its space",
        )


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
