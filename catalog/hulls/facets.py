"""Hulls of one chemical system: pymatgen's ``PhaseDiagram._compute`` steps on precomputed arrays, facet planes for
e_above_hull and decompositions of many entries at once, pymatgen's own search for the few numerics leave on no facet."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from pymatgen.analysis.phase_diagram import PDEntry, PhaseDiagram, get_facets
from pymatgen.core import Element

from catalog.hulls.items import Item
from catalog.hulls.lp import LinearProgrammes
from catalog.hulls.results import NUMERICAL_TOL, DecompositionProduct, HullResult

BARY_TOL = 1e-9  # pymatgen tests simplex membership at numerical_tol / 10

@dataclass
class Hull:
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
    def from_pymatgen(cls, pd: PhaseDiagram) -> Hull:
        return cls(
            elements=[el.symbol for el in pd.elements],
            facets=np.asarray(pd.facets, dtype=int).reshape(len(pd.facets), -1),
            qhull_data=np.asarray(pd.qhull_data),
            qhull_ids=np.array([e.attribute for e in pd.qhull_entries], dtype=int),
            el_refs={el.symbol: e.attribute for el, e in pd.el_refs.items()},
            make_pymatgen=lambda: pd,
        )


class Diagram:
    """One maximal chemical system: its hull(s) and the numbers needed to query them quickly."""

    def __init__(self, space: frozenset[str], items: list[Item]) -> None:
        self.space = space
        self.els = sorted(space)
        self.col = {el: i for i, el in enumerate(self.els)}
        self.items = list(items) + [Item.terminal(el) for el in self.els]
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

    def _hull(self) -> Hull:
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

        return Hull(self.els, facets, qhull_data, qhull_ids, el_refs, make_pymatgen)

    def pymatgen_diagram(self) -> PhaseDiagram:
        """The pymatgen ``PhaseDiagram`` of this system (e.g. for plotting)."""
        return self.hull.make_pymatgen()

    # -- e_above_hull and decompositions -------------------------------------------------------------------------------
    def evaluate(self, queries: list[int]) -> None:
        self._evaluate_on(self.hull, queries)

    def _evaluate_on(self, hull: Hull, js: list[int]) -> None:
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
                if lam.min() < -BARY_TOL:  # numerically on no facet: let pymatgen search
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
    def plan_decomposition_energies(self, queries: list[int], lp: LinearProgrammes) -> None:
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

    def _ed_of(self, rkey: tuple, lp: LinearProgrammes) -> float:
        value = self.ed_problem[rkey]
        if isinstance(value, int):
            return float(self.epa[self.lowest[rkey]] - lp.values[value])
        return float(value)

    def decomposition_energy(self, j: int, lp: LinearProgrammes) -> float:
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
