"""Linear programmes: decomposition energies in batches, and whole many-element systems without a hull."""

from __future__ import annotations

import math

import numpy as np
from pymatgen.analysis.phase_diagram import PhaseDiagram
from scipy.optimize import linprog

from catalog.hulls.items import Item
from catalog.hulls.results import NUMERICAL_TOL, DecompositionProduct, HullError, HullResult


class LinearProgrammes:
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



class LPSystem:
    """A chemical system with ``patch_threshold`` or more elements: its compositions are LPs, no hull is built.

    For an entry at composition c with energy E: ``rivals`` = the lowest mix of every *other* composition of the space
    (an LP). The hull energy at c is min(rivals, lowest E at c); the entry is stable when it is the lowest at c and
    strictly below its rivals; the decomposition energy is E - rivals in every case (pymatgen's semantics).
    """

    def __init__(self, space: frozenset[str], items: list[Item]) -> None:
        self.els = sorted(space)
        self.col = {el: i for i, el in enumerate(self.els)}
        self.items = list(items) + [Item.terminal(el) for el in self.els]
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

    def plan(self, queries: list[int], lp: LinearProgrammes) -> None:
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

    def result(self, j: int, lp: LinearProgrammes) -> HullResult:
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
