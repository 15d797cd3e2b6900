"""Deduplication of generated crystals, within a batch and against known structures (catalog, earlier candidates).

``StructureMatcher`` (pymatgen defaults: ltol 0.2, stol 0.3, angle_tol 5°, primitive cells, volumes scaled) makes every
final call. It costs ~2 ms a pair, so pairs are pruned first:
1. only structures with the same reduced formula are compared;
2. within a formula, each structure gets a cheap descriptor that is invariant to cell choice, rotation, site order
   and volume — per species pair the mean nearest-neighbour distance and per species the mean of the six nearest
   neighbour distances, all in units of (V/N)^⅓ — and the matcher only sees pairs whose descriptors differ by less
   than ``tol`` (max-norm), closest first. This is the continuous form of "bucket by a coarse invariant and look in
   neighbouring buckets": no bucket edges to fall across. Its recall against all-pairs matching is measured in
   ``benchmarks/generation.py``;
3. pairs whose descriptors agree to better than ``trust_below`` are called duplicates without the matcher (on 2,602
   same-formula pairs of perovskite children, all 580 pairs below 0.05 were StructureMatcher matches, and matches
   were seen up to 0.35; set ``trust_below=0`` to always ask the matcher). ``tol`` 0.3 rather than 0.35 let 7 of
   1,316 duplicates through on 9,574 children of 800 perov_5 parents and needed 43% less CPU;
4. the matcher is asked about the ``max_matcher_calls`` closest structures only (a non-match costs ~20–50 ms on
   pseudo-cubic cells, where it tries every lattice mapping).

Pure: arrays or pymatgen structures in; no Django.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from pymatgen.analysis.structure_matcher import StructureMatcher
from pymatgen.core import Lattice, Structure

from catalog.parallel import map_in_processes, pool_size

from .base import GeneratedCandidate, reduced_formula_of

N_NEIGHBOURS = 6
DEFAULT_TOL = 0.3  # descriptor distance beyond which StructureMatcher is not asked
DEFAULT_TRUST_BELOW = 0.05  # descriptor distance below which a pair is called a duplicate without StructureMatcher

_OFFSETS = np.array([[i, j, k] for i in (-1, 0, 1) for j in (-1, 0, 1) for k in (-1, 0, 1)], dtype=float)


def _arrays(obj) -> tuple[np.ndarray, np.ndarray, list[str]]:
    if isinstance(obj, GeneratedCandidate):
        return obj.lattice, obj.frac, obj.species
    if isinstance(obj, Structure):
        return np.array(obj.lattice.matrix), np.array(obj.frac_coords), [sp.symbol for sp in obj.species]
    lattice, frac, species = obj
    return np.asarray(lattice, float), np.asarray(frac, float), list(species)


def _structure(obj) -> Structure:
    if isinstance(obj, GeneratedCandidate):
        return obj.structure
    if isinstance(obj, Structure):
        return obj
    lattice, frac, species = obj
    return Structure(Lattice(lattice), species, frac, validate_proximity=False)


def descriptor(lattice: np.ndarray, frac: np.ndarray, species: Sequence[str]) -> np.ndarray:
    """Cell-, rotation-, order- and scale-invariant vector; its layout depends only on the set of elements."""
    lattice = np.asarray(lattice, dtype=float)
    n = len(species)
    volume = abs(np.linalg.det(lattice))
    m = lattice
    if np.prod(np.linalg.norm(lattice, axis=1)) / volume > 1.6:  # skewed cell: 27 images may miss neighbours
        m = Lattice(lattice).get_lll_reduced_lattice().matrix
    cart = (np.asarray(frac) % 1.0) @ lattice
    if m is not lattice:
        f = cart @ np.linalg.inv(m)
        cart = (f - np.floor(f)) @ m
    images = (cart[None, :, :] + (_OFFSETS @ m)[:, None, :]).reshape(-1, 3)  # (27 n, 3), image-major
    diff = cart[:, None, :] - images[None, :, :]
    d = np.sqrt(np.einsum("ijk,ijk->ij", diff, diff))  # (n, 27 n)
    d[d < 1e-6] = np.inf
    d *= (n / volume) ** (1.0 / 3.0)
    elements = sorted(set(species))
    codes = np.array([elements.index(el) for el in species])
    image_codes = np.tile(codes, len(_OFFSETS))
    nearest_by_species = np.stack([d[:, image_codes == b].min(axis=1) for b in range(len(elements))], axis=1)
    nearest = np.partition(d, N_NEIGHBOURS, axis=1)[:, :N_NEIGHBOURS] if d.shape[1] > N_NEIGHBOURS else d
    nearest = np.sort(nearest, axis=1)
    onehot = np.zeros((len(elements), n))
    onehot[codes, np.arange(n)] = 1.0
    onehot /= onehot.sum(axis=1, keepdims=True)
    out = np.concatenate([onehot @ nearest_by_species, onehot @ nearest], axis=1).ravel()
    out[~np.isfinite(out)] = 10.0
    return out


def structure_key(lattice: np.ndarray, frac: np.ndarray, species: Sequence[str]) -> str:
    """Deterministic content hash of one cell as given (formula, lattice and rounded sites): a row identity, not a
    similarity measure — identical inputs give identical keys, so re-running a generation is idempotent."""
    lat = Lattice(lattice)
    parts = [reduced_formula_of(list(species))]
    parts.append(",".join(f"{x:.3f}" for x in (*lat.abc, *lat.angles)))
    sites = sorted(
        f"{el}:{x % 1.0:.3f}:{y % 1.0:.3f}:{z % 1.0:.3f}" for el, (x, y, z) in zip(species, frac, strict=True)
    )
    parts.append(";".join(s.replace("1.000", "0.000") for s in sites))
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:32]


@dataclass
class DedupStats:
    n_in: int = 0
    n_kept: int = 0
    n_duplicate_batch: int = 0
    n_duplicate_reference: int = 0
    n_matcher_calls: int = 0
    n_descriptor_matches: int = 0
    n_formulas: int = 0

    def merge(self, other: DedupStats) -> None:
        for k in vars(self):
            setattr(self, k, getattr(self, k) + getattr(other, k))


@dataclass
class _Group:
    desc: list[np.ndarray] = field(default_factory=list)
    items: list[Any] = field(default_factory=list)  # structure-like objects
    ids: list[Any] = field(default_factory=list)
    is_reference: list[bool] = field(default_factory=list)
    _matrix: np.ndarray | None = None

    def matrix(self) -> np.ndarray:
        if self._matrix is None or len(self._matrix) != len(self.desc):
            self._matrix = np.vstack(self.desc) if self.desc else np.zeros((0, 0))
        return self._matrix


class Deduplicator:
    """Incremental: ``add_reference`` known structures, then ``add`` new ones; ``add`` says whether one is new."""

    def __init__(
        self,
        matcher: StructureMatcher | None = None,
        tol: float = DEFAULT_TOL,
        use_descriptor: bool = True,
        trust_below: float = DEFAULT_TRUST_BELOW,
        max_matcher_calls: int | None = 4,
    ):
        self.matcher = matcher or StructureMatcher()
        self.max_matcher_calls = max_matcher_calls
        self.tol = tol
        self.trust_below = trust_below if use_descriptor else 0.0
        self.use_descriptor = use_descriptor
        self.groups: dict[str, _Group] = {}
        self.stats = DedupStats()

    def _group(self, formula: str) -> _Group:
        g = self.groups.get(formula)
        if g is None:
            g = self.groups[formula] = _Group()
            self.stats.n_formulas += 1
        return g

    def add_reference(self, obj, ref_id: Any = None) -> None:
        lattice, frac, species = _arrays(obj)
        g = self._group(reduced_formula_of(species))
        g.desc.append(descriptor(lattice, frac, species))
        g.items.append(obj)
        g.ids.append(ref_id)
        g.is_reference.append(True)

    def find_match(self, obj) -> tuple[int, _Group, np.ndarray] | tuple[None, _Group, np.ndarray]:
        lattice, frac, species = _arrays(obj)
        g = self._group(reduced_formula_of(species))
        desc = descriptor(lattice, frac, species)
        if g.desc:
            mat = g.matrix()
            if self.use_descriptor:
                dist = np.abs(mat - desc[None, :]).max(axis=1)
                order = np.argsort(dist, kind="stable")
                order = order[dist[order] < self.tol]
                if len(order) and dist[order[0]] < self.trust_below:
                    self.stats.n_descriptor_matches += 1
                    return int(order[0]), g, desc
                if self.max_matcher_calls is not None:
                    order = order[: self.max_matcher_calls]  # the closest few; farther ones rarely match
            else:
                order = np.arange(len(g.desc))
            if len(order):
                s_new = _structure(obj)
                for idx in order:
                    self.stats.n_matcher_calls += 1
                    if self.matcher.fit(s_new, _structure(g.items[idx])):
                        return int(idx), g, desc
        return None, g, desc

    def add(self, obj, obj_id: Any = None) -> tuple[bool, Any]:
        """(True, None) when new (and now remembered), else (False, id of the structure it duplicates)."""
        self.stats.n_in += 1
        idx, g, desc = self.find_match(obj)
        if idx is not None:
            if g.is_reference[idx]:
                self.stats.n_duplicate_reference += 1
            else:
                self.stats.n_duplicate_batch += 1
            return False, g.ids[idx]
        g.desc.append(desc)
        g.items.append(obj)
        g.ids.append(obj_id)
        g.is_reference.append(False)
        self.stats.n_kept += 1
        return True, None

    def filter(self, objs: Iterable, limit: int | None = None) -> list:
        kept = []
        for i, obj in enumerate(objs):
            new, _ = self.add(obj, i)
            if new:
                kept.append(obj)
                if limit is not None and len(kept) >= limit:
                    break
        return kept


def _dedup_worker(args) -> tuple[list[int], DedupStats]:
    items, references, tol, use_descriptor, trust_below = args
    dd = Deduplicator(tol=tol, use_descriptor=use_descriptor, trust_below=trust_below)
    for ref_id, ref in references:
        dd.add_reference(ref, ref_id)
    kept = [i for i, obj in items if dd.add(obj, i)[0]]
    return kept, dd.stats


def _partition(formula: str, workers: int) -> int:
    return int(hashlib.md5(formula.encode(), usedforsecurity=False).hexdigest()[:8], 16) % workers


def deduplicate(
    candidates: Sequence,
    references: Iterable[tuple[Any, Any]] = (),
    *,
    tol: float = DEFAULT_TOL,
    use_descriptor: bool = True,
    trust_below: float = DEFAULT_TRUST_BELOW,
    workers: int = 1,
) -> tuple[list[int], DedupStats]:
    """Indices of ``candidates`` to keep (first of each group of duplicates, in input order), and statistics.

    ``references`` are (id, structure-like) pairs already known (catalog materials, earlier candidates); candidates
    matching one are dropped. Formulas are independent, so ``workers`` processes each take a share of the formulas.
    """
    formulas = [
        (c.formula if isinstance(c, GeneratedCandidate) else reduced_formula_of(_arrays(c)[2])) for c in candidates
    ]
    wanted = set(formulas)
    refs = []
    for ref_id, ref in references:
        f = reduced_formula_of(_arrays(ref)[2])
        if f in wanted:
            refs.append((f, ref_id, ref))
    workers = pool_size(workers)
    if workers == 1:
        kept, stats = _dedup_worker(
            (list(enumerate(candidates)), [(rid, r) for _, rid, r in refs], tol, use_descriptor, trust_below)
        )
        return kept, stats
    jobs = []
    for w in range(workers):
        items = [
            (i, c) for i, (c, f) in enumerate(zip(candidates, formulas, strict=True)) if _partition(f, workers) == w
        ]
        rs = [(rid, r) for f, rid, r in refs if _partition(f, workers) == w]
        jobs.append((items, rs, tol, use_descriptor, trust_below))
    kept: list[int] = []
    stats = DedupStats()
    for part, st in map_in_processes(_dedup_worker, jobs, workers):
        kept.extend(part)
        stats.merge(st)
    kept.sort()
    return kept, stats
