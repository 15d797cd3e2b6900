"""Compositional pipeline ("AIRSS" in GNoME): compositions first, then random symmetric structures.

1. ``enumerate_compositions``: every stoichiometry of up to ``max_elements`` elements from an element space that some
   choice of oxidation states makes neutral (smact's ``neutral_ratios``). Relaxed as in GNoME: the oxidation-state set
   is every ICSD state with more than five reports (smact), and the electronegativity (Pauling) ordering is recorded
   but not required unless ``require_pauling``.
2. ``rank_compositions(compositions, model)``: a composition-only model predicts formation energy per atom; with known
   phases given, compositions are ranked by the predicted distance to the hull of those phases, else by the energy.
   ``RidgeCompositionModel`` is the baseline (fraction-weighted Magpie statistics + element fractions, ridge least
   squares); any object with ``predict(formulas) -> array`` fits the interface.
3. ``random_structures``: pyxtal random symmetric crystals for one composition, several space groups and formula
   units, each space group pre-checked for compatibility with the stoichiometry. The recipe records composition,
   space group, Z and seed.

Pure: no Django.
"""

from __future__ import annotations

import csv
import functools
import hashlib
import itertools
import json
import logging
import math
import os
import random
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import smact
from pymatgen.core import Composition

from catalog.parallel import map_in_processes, pool_size
from discovery.magpie import magpie_table

from .base import GeneratedCandidate
from .chemistry import allowed_states, electronegativity_ordered

logger = logging.getLogger(__name__)

# --- 1. enumeration -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CompositionProposal:
    formula: str  # reduced formula
    amounts: tuple[tuple[str, int], ...]  # reduced integer amounts, sorted by element
    oxidation_states: tuple[tuple[str, int], ...]
    pauling_ok: bool

    @property
    def chemsys(self) -> str:
        return "-".join(el for el, _ in self.amounts)

    @property
    def natoms(self) -> int:
        return sum(n for _, n in self.amounts)


def enumerate_compositions(
    elements: Iterable[str],
    max_elements: int = 3,
    *,
    min_elements: int = 2,
    max_stoich: int = 6,
    max_atoms: int = 20,
    relaxed: bool = True,
    require_pauling: bool = False,
) -> list[CompositionProposal]:
    """Charge-neutral stoichiometries in the element space (one oxidation state per element), deduplicated."""
    elements = sorted(set(elements))
    seen: dict[str, CompositionProposal] = {}
    for n in range(min_elements, max_elements + 1):
        for combo in itertools.combinations(elements, n):
            state_lists = [allowed_states(el, relaxed) for el in combo]
            if any(not s for s in state_lists):
                continue
            for states in itertools.product(*state_lists):
                if not any(q < 0 for q in states) or not any(q > 0 for q in states):
                    continue
                ratios = smact.neutral_ratios(states, threshold=max_stoich)
                if not ratios:
                    continue
                ox = dict(zip(combo, states, strict=True))
                pauling = electronegativity_ordered(ox)
                if require_pauling and not pauling:
                    continue
                for ratio in ratios:
                    g = functools.reduce(math.gcd, ratio)
                    ratio = tuple(r // g for r in ratio)
                    if sum(ratio) > max_atoms:
                        continue
                    amounts = tuple(zip(combo, ratio, strict=True))
                    formula = Composition(dict(amounts)).reduced_formula
                    prev = seen.get(formula)
                    if prev is None or (pauling and not prev.pauling_ok):
                        seen[formula] = CompositionProposal(formula, amounts, tuple(ox.items()), pauling)
    return sorted(seen.values(), key=lambda c: (len(c.amounts), c.formula))


# --- 2. composition-only model ------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=300_000)
def _fractions(formula: str) -> tuple[tuple[str, float], ...]:
    comp = Composition(formula)
    return tuple((el.symbol, float(f)) for el, f in comp.fractional_composition.items())


class CompositionFeaturizer:
    """Fraction-weighted mean and standard deviation of the Magpie elemental properties, plus element fractions."""

    def __init__(self):
        table = magpie_table()
        self.elements, self.table, self.props = list(table.elements), table.filled(), list(table.properties)
        self.index = {el: i for i, el in enumerate(self.elements)}

    def fractions_matrix(self, formulas: Sequence[str]) -> np.ndarray:
        x = np.zeros((len(formulas), len(self.elements)))
        for i, f in enumerate(formulas):
            for el, frac in _fractions(f):
                j = self.index.get(el)
                if j is not None:
                    x[i, j] = frac
        return x

    def transform(self, formulas: Sequence[str]) -> np.ndarray:
        x = self.fractions_matrix(formulas)
        mean = x @ self.table
        var = np.clip(x @ (self.table**2) - mean**2, 0, None)
        n_el = (x > 0).sum(axis=1, keepdims=True)
        max_frac = x.max(axis=1, keepdims=True)
        return np.hstack([x, mean, np.sqrt(var), n_el, max_frac])


class CompositionModel(Protocol):
    def predict(self, formulas: Sequence[str]) -> np.ndarray:
        """Formation energy per atom, eV/atom."""


class RidgeCompositionModel:
    """Baseline composition-only formation-energy model: standardised features, ridge regression (closed form).

    With ``quadratic=True`` the Magpie means and standard deviations also enter squared and as pairwise products of
    the means: still linear least squares, noticeably better on Ef.
    """

    def __init__(self, alpha: float = 1.0, quadratic: bool = True):
        self.alpha = alpha
        self.quadratic = quadratic
        self.featurizer = CompositionFeaturizer()
        self.mu: np.ndarray | None = None
        self.sigma: np.ndarray | None = None
        self.coef: np.ndarray | None = None

    def _features(self, formulas: Sequence[str]) -> np.ndarray:
        f = self.featurizer.transform(formulas)
        if not self.quadratic:
            return f
        n_el = len(self.featurizer.elements)
        n_p = len(self.featurizer.props)
        mean = f[:, n_el : n_el + n_p]
        std = f[:, n_el + n_p : n_el + 2 * n_p]
        iu = np.triu_indices(n_p)
        pairs = (mean[:, :, None] * mean[:, None, :])[:, iu[0], iu[1]]
        return np.hstack([f, std**2, pairs, mean * std])

    def fit(self, formulas: Sequence[str], targets: Sequence[float]) -> RidgeCompositionModel:
        x = self._features(formulas)
        y = np.asarray(targets, dtype=float)
        self.mu = x.mean(axis=0)
        self.sigma = x.std(axis=0) + 1e-8
        z = np.hstack([(x - self.mu) / self.sigma, np.ones((len(x), 1))])
        reg = self.alpha * np.eye(z.shape[1])
        reg[-1, -1] = 0.0
        self.coef = np.linalg.solve(z.T @ z + reg, z.T @ y)
        return self

    def predict(self, formulas: Sequence[str]) -> np.ndarray:
        if self.coef is None:
            raise RuntimeError("model is not fitted")
        x = self._features(formulas)
        z = np.hstack([(x - self.mu) / self.sigma, np.ones((len(x), 1))])
        return z @ self.coef

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": "ridge-magpie",
            "alpha": self.alpha,
            "quadratic": self.quadratic,
            "mu": self.mu.tolist(),
            "sigma": self.sigma.tolist(),
            "coef": self.coef.tolist(),
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> RidgeCompositionModel:
        m = cls(alpha=d["alpha"], quadratic=d["quadratic"])
        m.mu, m.sigma, m.coef = (np.array(d[k]) for k in ("mu", "sigma", "coef"))
        return m

    def save(self, path: str | os.PathLike) -> None:
        """Written to a temporary file and renamed, so a process loading it never reads half a file."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f".{path.name}.{os.getpid()}.partial")
        partial.write_text(json.dumps(self.to_dict()))
        partial.replace(path)

    @classmethod
    def load(cls, path: str | os.PathLike) -> RidgeCompositionModel:
        return cls.from_dict(json.loads(Path(path).read_text()))


def read_formula_csv(path: str | os.PathLike) -> tuple[list[str], np.ndarray]:
    """``formula,target`` CSV (Bartel et al. 2020 splits)."""
    formulas, targets = [], []
    with open(path) as fh:
        for row in csv.DictReader(fh):
            formulas.append(row["formula"])
            targets.append(float(row["target"]))
    return formulas, np.array(targets)


def train_baseline(bartel_dir: str | os.PathLike, alpha: float = 1.0) -> RidgeCompositionModel:
    """Ridge baseline on Bartel 2020's Ef train + validation splits."""
    f1, y1 = read_formula_csv(Path(bartel_dir) / "Ef" / "train.csv")
    f2, y2 = read_formula_csv(Path(bartel_dir) / "Ef" / "val.csv")
    return RidgeCompositionModel(alpha=alpha).fit(f1 + f2, np.concatenate([y1, y2]))


@dataclass
class RankedComposition:
    formula: str
    predicted_ef: float
    predicted_e_above_hull: float | None
    proposal: CompositionProposal | None = None

    @property
    def score(self) -> float:
        return self.predicted_e_above_hull if self.predicted_e_above_hull is not None else self.predicted_ef


def rank_compositions(
    compositions: Sequence[CompositionProposal | str],
    model: CompositionModel,
    known_phases: Mapping[str, float] | None = None,
) -> list[RankedComposition]:
    """Compositions ranked best first by a composition-only model.

    ``known_phases``: reduced formula → formation energy per atom (eV/atom, elements at 0) of phases already known;
    when given, each composition is placed on the hull of the known phases of its chemical system and ranked by the
    predicted energy above (negative: below) that hull — GNoME's criterion — otherwise by predicted Ef.
    """
    props = [c if isinstance(c, CompositionProposal) else None for c in compositions]
    formulas = [
        c.formula if isinstance(c, CompositionProposal) else Composition(c).reduced_formula for c in compositions
    ]
    pred = np.asarray(model.predict(formulas), dtype=float) if formulas else np.zeros(0)
    ehull: list[float | None] = [None] * len(formulas)
    if known_phases is not None and formulas:
        ehull = list(hull_distances(formulas, pred, known_phases))
    out = [RankedComposition(f, float(p), e, pr) for f, p, e, pr in zip(formulas, pred, ehull, props, strict=True)]
    out.sort(key=lambda r: r.score)
    return out


def hull_distances(formulas: Sequence[str], ef: Sequence[float], known_phases: Mapping[str, float]) -> np.ndarray:
    """Energy of each (formula, Ef) relative to the hull of ``known_phases`` (same-formula phases excluded)."""
    from pymatgen.analysis.phase_diagram import PDEntry, PhaseDiagram

    known = [(Composition(f), e) for f, e in known_phases.items()]
    by_chemsys: dict[frozenset, list[int]] = {}
    comps = [Composition(f) for f in formulas]
    for i, c in enumerate(comps):
        by_chemsys.setdefault(frozenset(el.symbol for el in c.elements), []).append(i)
    out = np.zeros(len(formulas))
    for els, idxs in by_chemsys.items():
        entries = [PDEntry(Composition({el: 1}), 0.0) for el in els]
        for c, e in known:
            if {el.symbol for el in c.elements} <= els and len(c.elements) > 1:
                entries.append(PDEntry(c, e * c.num_atoms))
        for i in idxs:
            own = comps[i].reduced_formula
            pool = [en for en in entries if en.composition.reduced_formula != own]
            pd = PhaseDiagram(pool)
            entry = PDEntry(comps[i], float(ef[i]) * comps[i].num_atoms)
            out[i] = pd.get_e_above_hull(entry, allow_negative=True)
    return out


# --- 3. random symmetric structures -------------------------------------------------------------------------------


@functools.cache
def _group(number: int):
    from pyxtal.symmetry import Group

    return Group(number)


@functools.lru_cache(maxsize=100_000)
def compatible_space_groups(amounts: tuple[int, ...]) -> tuple[int, ...]:
    """Space groups (2–230) whose Wyckoff positions can hold these atom counts with some free parameter."""
    out = []
    for sg in range(2, 231):
        try:
            ok, freedom = _group(sg).check_compatible(list(amounts))
        except Exception:  # noqa: BLE001, S112 - pyxtal raises on some corner cases; treat as incompatible
            continue
        if ok and freedom:
            out.append(sg)
    return tuple(out)


def _seed_for(formula: str, index: int, seed: int) -> int:
    h = hashlib.sha256(f"{formula}|{index}|{seed}".encode()).hexdigest()
    return int(h[:8], 16)


@dataclass
class RandomStructureConfig:
    n_structures: int = 4  # per composition
    z_values: tuple[int, ...] = (1, 2, 4)  # formula units per (conventional) cell
    max_atoms: int = 24  # per conventional cell
    space_groups: tuple[int, ...] | None = None  # restrict; default: every compatible one
    factor: float = 1.1  # pyxtal's volume factor
    max_attempts: int = 3  # per structure


def random_structures(
    composition: CompositionProposal | str,
    config: RandomStructureConfig | None = None,
    seed: int = 0,
    extra_recipe: Mapping[str, Any] | None = None,
) -> list[GeneratedCandidate]:
    """``config.n_structures`` random symmetric crystals of one composition (pyxtal), each recipe reproducible."""
    from pyxtal import pyxtal

    cfg = config or RandomStructureConfig()
    if isinstance(composition, CompositionProposal):
        amounts = dict(composition.amounts)
        formula = composition.formula
    else:
        comp = Composition(composition).reduced_composition
        amounts = {el.symbol: int(n) for el, n in comp.items()}
        formula = comp.reduced_formula
    species = sorted(amounts)
    base = [amounts[el] for el in species]
    options: list[tuple[int, int]] = []
    for z in cfg.z_values:
        counts = tuple(n * z for n in base)
        if sum(counts) > cfg.max_atoms:
            continue
        for sg in compatible_space_groups(counts):
            if cfg.space_groups is None or sg in cfg.space_groups:
                options.append((sg, z))
    if not options:
        return []
    rng = random.Random(_seed_for(formula, 0, seed))
    out: list[GeneratedCandidate] = []
    picks = rng.sample(options, min(len(options), cfg.n_structures * cfg.max_attempts))
    for k, (sg, z) in enumerate(picks):
        if len(out) >= cfg.n_structures:
            break
        struct_seed = _seed_for(formula, k + 1, seed)
        crystal = pyxtal()
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                crystal.from_random(3, sg, species, [n * z for n in base], factor=cfg.factor, random_state=struct_seed)
            if not crystal.valid:
                continue
            structure = crystal.to_pymatgen()
        except Exception as exc:  # noqa: BLE001 - pyxtal gives up on some (sg, Z) draws; try the next one
            logger.debug("pyxtal failed for %s sg=%s z=%s: %s", formula, sg, z, exc)
            continue
        recipe = {
            "composition": formula,
            "spacegroup": sg,
            "z": z,
            "seed": struct_seed,
            "generator": "pyxtal.from_random",
            "factor": cfg.factor,
            **(dict(extra_recipe) if extra_recipe else {}),
        }
        out.append(GeneratedCandidate.from_structure(structure, "compositional", recipe, None, 0.0))
    return out


# One composition to build structures for: the proposal (or a plain reduced formula), recipe extras, ranking score.
CompositionWork = tuple["CompositionProposal | str", dict[str, Any], float]


def _random_worker(args) -> list[GeneratedCandidate]:
    items, config, seed = args
    return build_random_structures(items, config, seed)


def build_random_structures(
    items: Sequence[CompositionWork], config: RandomStructureConfig | None = None, seed: int = 0
) -> list[GeneratedCandidate]:
    """Random structures for each planned composition, in one process (seeds depend on the formula, not the order)."""
    out = []
    for comp, extra, score in items:
        for c in random_structures(comp, config, seed, extra):
            c.score = score
            c._structure = None  # arrays travel; the structure is rebuilt on demand
            out.append(c)
    return out


def work_to_json(items: Sequence[CompositionWork]) -> list[dict[str, Any]]:
    """Planned compositions as JSON (to hand them to another process or host)."""
    out = []
    for comp, extra, score in items:
        proposal = (
            {"formula": comp.formula, "amounts": [list(a) for a in comp.amounts],
             "oxidation_states": [list(o) for o in comp.oxidation_states], "pauling_ok": comp.pauling_ok}
            if isinstance(comp, CompositionProposal) else {"formula": comp}
        )
        out.append({"composition": proposal, "extra": extra, "score": score})
    return out


def work_from_json(rows: Sequence[dict[str, Any]]) -> list[CompositionWork]:
    items: list[CompositionWork] = []
    for row in rows:
        c = row["composition"]
        comp: CompositionProposal | str = (
            CompositionProposal(c["formula"], tuple((el, int(n)) for el, n in c["amounts"]),
                                tuple((el, int(q)) for el, q in c["oxidation_states"]), bool(c["pauling_ok"]))
            if "amounts" in c else c["formula"]
        )
        items.append((comp, dict(row["extra"]), float(row["score"])))
    return items


@dataclass
class CompositionalResult:
    n_compositions: int = 0
    ranked: list[RankedComposition] = field(default_factory=list)
    work: list[CompositionWork] = field(default_factory=list)  # the top compositions to build, best first
    candidates: list[GeneratedCandidate] = field(default_factory=list)


def plan_compositional(
    elements: Iterable[str],
    max_elements: int = 3,
    model: CompositionModel | None = None,
    *,
    top_n: int = 50,
    known_phases: Mapping[str, float] | None = None,
    enumeration: Mapping[str, Any] | None = None,
) -> CompositionalResult:
    """Enumerate and rank (if a model is given) the compositions; ``work`` holds the ``top_n`` to build structures for.

    Cheap (milliseconds per thousand compositions); the structures are the expensive part, so they are built apart
    (``build_random_structures``), in any number of pieces, in any process."""
    comps = enumerate_compositions(elements, max_elements, **dict(enumeration or {}))
    result = CompositionalResult(n_compositions=len(comps))
    if model is not None:
        ranked = rank_compositions(comps, model, known_phases)
    else:
        ranked = [RankedComposition(c.formula, math.nan, None, c) for c in comps]
    result.ranked = ranked
    for rank, r in enumerate(ranked[:top_n]):
        extra = {"rank": rank, "predicted_ef": None if math.isnan(r.predicted_ef) else round(r.predicted_ef, 4)}
        if r.predicted_e_above_hull is not None:
            extra["predicted_e_above_hull"] = round(r.predicted_e_above_hull, 4)
        if r.proposal is not None:
            extra["oxidation_states"] = dict(r.proposal.oxidation_states)
            extra["pauling_ok"] = r.proposal.pauling_ok
        score = -r.score if not math.isnan(r.score) else 0.0
        result.work.append((r.proposal or r.formula, extra, score))
    return result


def generate_compositional(
    elements: Iterable[str],
    max_elements: int = 3,
    model: CompositionModel | None = None,
    *,
    top_n: int = 50,
    known_phases: Mapping[str, float] | None = None,
    structure_config: RandomStructureConfig | None = None,
    seed: int = 0,
    workers: int = 1,
    enumeration: Mapping[str, Any] | None = None,
) -> CompositionalResult:
    """Enumerate, rank (if a model is given), then build random structures for the ``top_n`` compositions."""
    result = plan_compositional(elements, max_elements, model, top_n=top_n, known_phases=known_phases,
                                enumeration=enumeration)
    items = result.work
    workers = pool_size(workers, len(items) // 2)  # a process for fewer than two compositions costs more than it saves
    chunks = [items[i::workers] for i in range(workers)]
    for part in map_in_processes(_random_worker, [(c, structure_config, seed) for c in chunks], workers):
        result.candidates.extend(part)
    return result
