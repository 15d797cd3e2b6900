"""Structural pipeline: data-driven ionic substitutions of parent crystals, full and symmetry-aware partial ("SAPS").

For each parent:
1. symmetry analysis with spglib (primitive cell, Wyckoff orbits, the site permutation of every symmetry operation);
2. oxidation states from ICSD statistics (``chemistry.guess_oxidation_states``); a parent with no charge-neutral
   assignment is treated as an intermetallic (element-level substitutions, no charge check);
3. proposals, ranked by Hautier's conditional substitution probabilities (product over the substitutions):
   - ``full``: every site of one element → another ion;
   - ``pair``: two elements at once (reaches aliovalent pairs such as Sr²⁺Ti⁴⁺ → La³⁺Al³⁺);
   - ``partial``: a symmetry-distinct subset of one Wyckoff orbit (or one whole orbit of an element that occupies
     several) → another ion. This breaks the parent's symmetry in a controlled way: subsets are enumerated up to the
     parent's space-group operations, so every child is a distinct decoration;
4. charge balance kept where oxidation states are meaningful (children that cannot be balanced are dropped);
5. the cell is rescaled isotropically for the new ions (``volume.IonicRadiusVolume`` by default).

Pure: pymatgen objects in, ``GeneratedCandidate`` out; no Django.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import spglib
from pymatgen.core import Structure

from catalog.parallel import map_in_processes

from .base import GeneratedCandidate
from .chemistry import (
    composition_amounts,
    element_substitutes,
    guess_oxidation_states,
    ion_substitutes,
    is_charge_balanced,
)
from .volume import IonicRadiusVolume, VolumeModel

logger = logging.getLogger(__name__)

CRYSTAL_SYSTEMS = [
    (2, "triclinic"),
    (15, "monoclinic"),
    (74, "orthorhombic"),
    (142, "tetragonal"),
    (167, "trigonal"),
    (194, "hexagonal"),
    (230, "cubic"),
]


def crystal_system_of(number: int) -> str:
    for upper, name in CRYSTAL_SYSTEMS:
        if number <= upper:
            return name
    raise ValueError(number)


@dataclass
class SubstitutionConfig:
    threshold: float = 1e-3  # minimum conditional substitution probability
    top_k: int = 8  # substitutes per ion for full substitutions
    top_k_pair: int = 4  # substitutes per ion in pair substitutions
    top_k_partial: int = 4  # substitutes per ion in partial substitutions
    pairs: bool = True
    partial: bool = True
    max_partial: int = 2  # subsets of size ≤ max_partial (and their complements) within an orbit
    max_sites_for_partial: int = 48  # larger cells: whole-orbit partials only
    supercell: tuple[int, int, int] | None = None  # expand primitive parents (e.g. (2, 1, 1)) before substituting
    # Primitive cells smaller than this are doubled (then quadrupled) so that partial substitutions can order ions
    # across cells: a 2-atom rock salt has no partial substitution, its doubled cell has (Na,K)Cl orderings.
    min_sites: int = 4
    max_children_per_parent: int | None = 40
    allowed_elements: frozenset[str] | None = None
    max_elements: int | None = None
    symprec: float = 0.1
    charge_balance: bool = True

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["allowed_elements"] = sorted(self.allowed_elements) if self.allowed_elements else None
        return d


@dataclass
class ParentInfo:
    id: Any
    lattice: np.ndarray
    frac: np.ndarray
    species: list[str]
    spacegroup: int
    orbits: list[np.ndarray]  # site indices of each Wyckoff orbit
    wyckoffs: list[str]  # letter per orbit
    perms: np.ndarray | None  # (n_ops, n_sites) site permutation of each symmetry operation
    oxidation: dict[str, int] | None
    formula: str = ""
    elements: frozenset[str] = field(default_factory=frozenset)
    # (lattice, frac) of the primitive cell when the sites above are an expanded supercell of it: the supercell's
    # first sites are the primitive's, in order. Full and pair substitutions keep the primitive translations, so
    # their children are built on it (a doubled MgCl2 would cost twice the DFT and could exceed a size cap).
    primitive: tuple[np.ndarray, np.ndarray] | None = None

    @property
    def crystal_system(self) -> str:
        return crystal_system_of(self.spacegroup)


def _site_permutations(lattice, frac, numbers, rotations, translations, tol=0.3) -> np.ndarray | None:
    new = np.einsum("oij,nj->oni", rotations, frac) + translations[:, None, :]
    diff = new[:, :, None, :] - frac[None, None, :, :]
    diff -= np.round(diff)
    dist = np.linalg.norm(diff @ lattice, axis=-1)
    # forbid mapping onto a different species
    dist = np.where(numbers[None, None, :] == numbers[None, :, None], dist, np.inf)
    perms = np.argmin(dist, axis=-1)
    ok = np.take_along_axis(dist, perms[..., None], axis=-1)[..., 0] < tol
    if not ok.all():
        return None
    return perms


def analyse_parent(
    structure: Structure,
    parent_id: Any = None,
    symprec: float = 0.1,
    max_sites_for_partial: int = 48,
    supercell: tuple[int, int, int] | None = None,
    min_sites: int = 0,
):
    """Symmetry and chemistry of one parent (reduced to its primitive cell, then optionally expanded to
    ``supercell``, or to the smallest of 2×1×1, 2×2×1, 2×2×2 with ≥ ``min_sites`` sites, so that partial
    substitutions can order sites across primitive cells); None when spglib fails."""
    lattice = np.array(structure.lattice.matrix, dtype=float)
    frac = np.array(structure.frac_coords, dtype=float) % 1.0
    numbers = np.array(structure.atomic_numbers)
    species = [sp.symbol for sp in structure.species]
    if not structure.is_ordered:
        return None
    try:
        ds = spglib.get_symmetry_dataset((lattice, frac, numbers), symprec=symprec)
        if ds is None:
            return None
        if len(set(ds.mapping_to_primitive.tolist())) < len(numbers):  # not primitive: reduce, keep orientation
            lat, pos, nums = spglib.standardize_cell(
                (lattice, frac, numbers), to_primitive=True, no_idealize=True, symprec=symprec
            )
            lattice, frac, numbers = np.array(lat), np.array(pos) % 1.0, np.array(nums)
            symbol_of = {z: el for z, el in zip(structure.atomic_numbers, species, strict=True)}
            species = [symbol_of[int(z)] for z in numbers]
            ds = spglib.get_symmetry_dataset((lattice, frac, numbers), symprec=symprec)
            if ds is None:
                return None
    except Exception as exc:  # noqa: BLE001 - spglib raises on degenerate cells; skip the parent
        logger.debug("spglib failed for parent %s: %s", parent_id, exc)
        return None
    primitive = None
    if supercell is None and len(numbers) < min_sites:
        supercell = next((sc for sc in ((2, 1, 1), (2, 2, 1)) if len(numbers) * np.prod(sc) >= min_sites), (2, 2, 2))
    if supercell is not None and tuple(supercell) != (1, 1, 1):
        primitive = (lattice.copy(), frac.copy())
        scale = np.array(supercell, dtype=int)
        offsets = np.array(list(itertools.product(*(range(n) for n in scale))), dtype=float)
        frac = ((frac[None, :, :] + offsets[:, None, :]) / scale).reshape(-1, 3)
        numbers = np.tile(numbers, len(offsets))
        species = species * len(offsets)
        lattice = lattice * scale[:, None]
        ds = spglib.get_symmetry_dataset((lattice, frac, numbers), symprec=symprec)
        if ds is None:
            return None
    eq = np.asarray(ds.equivalent_atoms)
    orbits, wyckoffs = [], []
    for rep in sorted(set(eq.tolist())):
        sites = np.flatnonzero(eq == rep)
        orbits.append(sites)
        wyckoffs.append(str(ds.wyckoffs[rep]))
    perms = None
    if len(numbers) <= max_sites_for_partial:
        perms = _site_permutations(lattice, frac, numbers, np.asarray(ds.rotations), np.asarray(ds.translations))
    amounts = composition_amounts(species)
    oxidation = guess_oxidation_states(amounts)
    return ParentInfo(
        id=parent_id,
        lattice=lattice,
        frac=frac,
        species=species,
        spacegroup=int(ds.number),
        orbits=orbits,
        wyckoffs=wyckoffs,
        perms=perms,
        oxidation=oxidation,
        formula=structure.composition.reduced_formula,
        elements=frozenset(species),
        primitive=primitive,
    )


def distinct_subsets(orbit: np.ndarray, k: int, perms: np.ndarray | None) -> list[tuple[int, ...]]:
    """Subsets of size k of an orbit, one per class under the parent's symmetry operations."""
    seen: set[tuple[int, ...]] = set()
    out: list[tuple[int, ...]] = []
    for combo in itertools.combinations(orbit.tolist(), k):
        if perms is None:
            out.append(combo)
            continue
        images = np.sort(perms[:, list(combo)], axis=1)
        canon = min(map(tuple, images.tolist()))
        if canon in seen:
            continue
        seen.add(canon)
        out.append(combo)
    return out


@dataclass
class _Proposal:
    score: float
    kind: str
    # (site indices, from element, from charge, to element, to charge)
    ops: list[tuple[tuple[int, ...], str, int | None, str, int | None]]
    wyckoff: list[str]


def _ion(el: str, q: int | None) -> str:
    if q is None:
        return el
    sign = "+" if q > 0 else "-"
    return f"{el}{abs(q) if abs(q) != 1 else ''}{sign}"


class SubstitutionGenerator:
    """Proposes and builds substituted children of parent crystals (see module docstring)."""

    def __init__(self, config: SubstitutionConfig | None = None, volume_model: VolumeModel | None = None):
        self.config = config or SubstitutionConfig()
        self.volume_model = volume_model or IonicRadiusVolume()
        self.failures: list[tuple[Any, str]] = []  # (parent id, reason) of parents skipped by ``generate``

    # -- proposals ---------------------------------------------------------------------------------------------------
    def _substitutes(self, info: ParentInfo, el: str, k: int) -> list[tuple[str, int | None, float]]:
        cfg = self.config
        if info.oxidation is not None:
            q = info.oxidation[el]
            subs = [(e, qq, p) for e, qq, p in ion_substitutes(el, q, cfg.threshold)]
        else:
            subs = [(e, None, p) for e, p in element_substitutes(el, cfg.threshold)]
        if cfg.allowed_elements is not None:
            subs = [s for s in subs if s[0] in cfg.allowed_elements]
        return subs[:k]

    def _acceptable(self, info: ParentInfo, ops, species_after: dict[str, int]) -> bool:
        cfg = self.config
        elements = set(species_after)
        if cfg.allowed_elements is not None and not elements <= cfg.allowed_elements:
            return False
        if cfg.max_elements is not None and len(elements) > cfg.max_elements:
            return False
        if len(elements) < 2:
            return False
        if cfg.charge_balance and info.oxidation is not None:
            # isovalent substitutions keep the parent's assignment neutral; anything else is checked
            if not all(q_to == q_from for _, _, q_from, _, q_to in ops):
                return is_charge_balanced(species_after)
        return True

    def _after(self, info: ParentInfo, ops) -> dict[str, int]:
        counts = composition_amounts(info.species)
        for sites, el_from, _, el_to, _ in ops:
            counts[el_from] -= len(sites)
            counts[el_to] = counts.get(el_to, 0) + len(sites)
        return {el: n for el, n in counts.items() if n > 0}

    def propose(self, info: ParentInfo) -> list[_Proposal]:
        cfg = self.config
        ox = info.oxidation
        proposals: list[_Proposal] = []
        elements = sorted(info.elements)
        sites_of = {el: tuple(i for i, s in enumerate(info.species) if s == el) for el in elements}

        def charge(el):
            return ox[el] if ox is not None else None

        def add(kind, ops, score, wyck):
            after = self._after(info, ops)
            if self._acceptable(info, ops, after):
                proposals.append(_Proposal(score, kind, ops, wyck))

        # full substitutions of one element
        for el in elements:
            for new_el, new_q, p in self._substitutes(info, el, cfg.top_k):
                if new_el in info.elements:
                    continue
                add("full", [(sites_of[el], el, charge(el), new_el, new_q)], p, [])
        # pairs
        if cfg.pairs:
            for el1, el2 in itertools.combinations(elements, 2):
                for n1, q1, p1 in self._substitutes(info, el1, cfg.top_k_pair):
                    if n1 in info.elements:
                        continue
                    for n2, q2, p2 in self._substitutes(info, el2, cfg.top_k_pair):
                        if n2 in info.elements or n2 == n1:
                            continue
                        ops = [
                            (sites_of[el1], el1, charge(el1), n1, q1),
                            (sites_of[el2], el2, charge(el2), n2, q2),
                        ]
                        add("pair", ops, p1 * p2, [])
        # partial substitutions within Wyckoff orbits
        if cfg.partial:
            for orbit, wyck in zip(info.orbits, info.wyckoffs, strict=True):
                el = info.species[orbit[0]]
                m = len(orbit)
                whole_element = m == len(sites_of[el])
                sizes = {k for k in range(1, m + 1) if k <= cfg.max_partial or k >= m - cfg.max_partial}
                if whole_element:
                    sizes.discard(m)
                if not sizes:
                    continue
                perms = info.perms if len(info.species) <= cfg.max_sites_for_partial else None
                if perms is None:
                    sizes = {m} if not whole_element else set()
                subs = self._substitutes(info, el, cfg.top_k_partial)
                for k in sorted(sizes):
                    for subset in distinct_subsets(orbit, k, perms):
                        for new_el, new_q, p in subs:
                            add("partial", [(subset, el, charge(el), new_el, new_q)], p, [f"{wyck}:{k}/{m}"])
        proposals.sort(key=lambda pr: -pr.score)
        if cfg.max_children_per_parent is not None:
            proposals = proposals[: cfg.max_children_per_parent]
        return proposals

    # -- children ----------------------------------------------------------------------------------------------------
    def realise(self, info: ParentInfo, proposal: _Proposal) -> GeneratedCandidate:
        lattice, frac, species = info.lattice, info.frac, list(info.species)
        ops = proposal.ops
        if proposal.kind in ("full", "pair") and info.primitive is not None:
            lattice, frac = info.primitive
            species = species[: len(frac)]
            ops = [([i for i in sites if i < len(frac)], *rest) for sites, *rest in ops]
        charges = [info.oxidation[s] if info.oxidation else None for s in species]
        before: dict[tuple[str, int | None], int] = {}
        for s, q in zip(species, charges, strict=True):
            before[(s, q)] = before.get((s, q), 0) + 1
        subs_recipe = []
        for (sites, el_from, q_from, el_to, q_to), wyck in itertools.zip_longest(ops, proposal.wyckoff):
            for i in sites:
                species[i] = el_to
                charges[i] = q_to
            subs_recipe.append(
                {
                    "from": _ion(el_from, q_from),
                    "to": _ion(el_to, q_to),
                    "sites": list(map(int, sites)),
                    **({"orbit": wyck} if wyck else {}),
                }
            )
        after: dict[tuple[str, int | None], int] = {}
        for s, q in zip(species, charges, strict=True):
            after[(s, q)] = after.get((s, q), 0) + 1
        vscale = float(self.volume_model.scale(before, after))
        lattice = lattice * vscale ** (1.0 / 3.0)
        recipe = {
            "parent": info.id,
            "parent_formula": info.formula,
            "parent_spacegroup": info.spacegroup,
            "kind": proposal.kind,
            "substitutions": subs_recipe,
            "probability": float(proposal.score),
            "volume_scale": round(vscale, 5),
            "charge_balanced": info.oxidation is not None,
        }
        return GeneratedCandidate(lattice, frac, species, "structural", recipe, info.id, float(proposal.score))

    def children(self, structure: Structure, parent_id: Any = None) -> list[GeneratedCandidate]:
        cfg = self.config
        info = analyse_parent(structure, parent_id, cfg.symprec, cfg.max_sites_for_partial, cfg.supercell, cfg.min_sites)
        if info is None:
            return []
        return [self.realise(info, p) for p in self.propose(info)]

    def generate(self, parents: Iterable[tuple[Any, Structure]]) -> list[GeneratedCandidate]:
        """Children of every parent; a parent that breaks the analysis is skipped and named in ``self.failures``
        (one odd crystal in the catalog never sinks a round's generation)."""
        out: list[GeneratedCandidate] = []
        for pid, s in parents:
            try:
                out.extend(self.children(s, pid))
            except Exception as exc:  # noqa: BLE001 - any parent-specific failure: skip it, keep the others
                logger.warning("substitution skipped parent %s (%s): %s: %s", pid, s.composition.reduced_formula,
                               type(exc).__name__, exc)
                self.failures.append((pid, f"{type(exc).__name__}: {exc}"))
        return out


def _worker(args) -> list[GeneratedCandidate]:
    config, volume_model, parents = args
    return SubstitutionGenerator(config, volume_model).generate(parents)


def generate_substitutions(
    parents: Sequence[tuple[Any, Structure]],
    config: SubstitutionConfig | None = None,
    volume_model: VolumeModel | None = None,
    workers: int = 1,
    chunk_size: int = 250,
) -> list[GeneratedCandidate]:
    """Children of all parents, ranked by substitution probability (best first); ``workers`` processes."""
    config = config or SubstitutionConfig()
    chunks = [list(parents[i : i + chunk_size]) for i in range(0, len(parents), chunk_size)]
    out = []
    for part in map_in_processes(_worker, [(config, volume_model, c) for c in chunks], workers):
        out.extend(part)
    out.sort(key=lambda c: -c.score)
    return out
