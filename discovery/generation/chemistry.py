"""Fast chemistry helpers for generation: oxidation states, charge balance, ionic substitution probabilities.

pymatgen's ``Composition.oxi_state_guesses`` takes ~60 ms a formula; generation asks it tens of thousands of times, so
this module keeps its own small, cached solver over ICSD oxidation-state statistics (shipped with smact) and a lazily
built view of pymatgen's data-mined substitution table (Hautier et al., Inorg. Chem. 50, 656 (2011)).
"""

from __future__ import annotations

import functools
import json
import math
from collections import defaultdict
from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np
import smact

_SMACT_DATA = Path(smact.__file__).resolve().parent / "data"

# Oxidation states reported for fewer than this fraction of an element's ICSD entries are ignored by the strict set.
COMMON_STATE_MIN_FRACTION = 0.01
MAX_ENUMERATION = 200_000  # product of state-list lengths above which a composition is not enumerated


@functools.cache
def _icsd_counts() -> dict[str, dict[int, int]]:
    rows = json.loads((_SMACT_DATA / "oxidation_states_icsd24_counts.json").read_text())
    counts: dict[str, dict[int, int]] = defaultdict(dict)
    for row in rows:
        if row["results_count"] > 0 and row["oxidation_state"] != 0:
            counts[row["element"]][int(row["oxidation_state"])] = int(row["results_count"])
    return dict(counts)


@functools.cache
def _smact_state_file(name: str) -> dict[str, tuple[int, ...]]:
    states: dict[str, tuple[int, ...]] = {}
    for line in (_SMACT_DATA / name).read_text().splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        parts = line.split()
        states[parts[0]] = tuple(int(p) for p in parts[1:] if int(p) != 0)
    return states


@functools.cache
def oxidation_state_probabilities(element: str) -> dict[int, float]:
    """P(state | element) from ICSD 2024 report counts (smact's table)."""
    counts = _icsd_counts().get(element, {})
    total = sum(counts.values())
    return {state: n / total for state, n in counts.items()} if total else {}


@functools.cache
def allowed_states(element: str, relaxed: bool = False) -> tuple[int, ...]:
    """Oxidation states considered for ``element``.

    Strict: ICSD states seen in at least 1% of the element's reports. Relaxed (GNoME-style, compositional pipeline):
    every state smact lists from ICSD with more than five reports, plus the strict ones.
    """
    probs = oxidation_state_probabilities(element)
    strict = {s for s, p in probs.items() if p >= COMMON_STATE_MIN_FRACTION}
    if relaxed:
        strict |= set(_smact_state_file("oxidation_states_icsd24_filtered.txt").get(element, ()))
    return tuple(sorted(strict, key=lambda s: -probs.get(s, 0.0)))


def _integer_amounts(amounts: Mapping[str, float]) -> dict[str, int] | None:
    out = {}
    for el, amt in amounts.items():
        rounded = round(amt)
        if abs(amt - rounded) > 1e-6 or rounded <= 0:
            return None
        out[el] = int(rounded)
    g = 0
    for v in out.values():
        g = math.gcd(g, v)
    return {el: v // g for el, v in out.items()} if g else None


@functools.lru_cache(maxsize=200_000)
def _best_assignment(items: tuple[tuple[str, int], ...], relaxed: bool) -> tuple[tuple[str, int], ...] | None:
    elements = [el for el, _ in items]
    amounts = np.array([n for _, n in items], dtype=np.int64)
    state_lists = [allowed_states(el, relaxed) for el in elements]
    if any(not states for states in state_lists):
        return None
    size = 1
    for states in state_lists:
        size *= len(states)
    if size > MAX_ENUMERATION:
        state_lists = [states[:4] for states in state_lists]
    grids = np.meshgrid(*[np.array(st, dtype=np.int64) for st in state_lists], indexing="ij")
    combos = np.stack([g.ravel() for g in grids], axis=1)  # (n_combos, n_elements)
    ok = (combos @ amounts == 0) & (combos < 0).any(axis=1) & (combos > 0).any(axis=1)
    if not ok.any():
        return None
    combos = combos[ok]
    logp = [
        np.log(np.array([max(oxidation_state_probabilities(el).get(int(q), 1e-4), 1e-4) for q in combos[:, j]]))
        for j, el in enumerate(elements)
    ]
    scores = sum(amounts[j] * logp[j] for j in range(len(elements)))
    best = combos[int(np.argmax(scores))]
    return tuple((el, int(q)) for el, q in zip(elements, best, strict=True))


def guess_oxidation_states(amounts: Mapping[str, float], relaxed: bool = False) -> dict[str, int] | None:
    """Most probable charge-neutral assignment of one oxidation state per element, or None when there is none.

    Cached by reduced integer formula; ~µs once warm, against ~60 ms for ``Composition.oxi_state_guesses``.
    """
    ints = _integer_amounts(amounts)
    if ints is None or len(ints) < 2:
        return None
    result = _best_assignment(tuple(sorted(ints.items())), relaxed)
    return dict(result) if result is not None else None


@functools.lru_cache(maxsize=200_000)
def _balance_exists(items: tuple[tuple[str, int], ...], relaxed: bool) -> bool:
    reachable = {0}
    for el, n in items:
        states = allowed_states(el, relaxed)
        if not states:
            return False
        reachable = {r + n * q for r in reachable for q in states}
    return 0 in reachable


def is_charge_balanced(amounts: Mapping[str, float], relaxed: bool = False) -> bool:
    """Whether some choice of one oxidation state per element makes the formula neutral (existence only: fast)."""
    ints = _integer_amounts(amounts)
    if ints is None or len(ints) < 2:
        return False
    return _balance_exists(tuple(sorted(ints.items())), relaxed)


# --- substitution probabilities ----------------------------------------------------------------------------------


LAMBDA_ALPHA = -5.0  # pymatgen's weight for never-observed substitutions


@functools.cache
def _lambda_table() -> list:
    import pymatgen.core.structure_prediction as sp_pkg

    path = Path(sp_pkg.__file__).resolve().parent / "data" / "lambda.json"
    return json.loads(path.read_text())


def _parse_ion(text: str) -> tuple[str, int]:
    from pymatgen.core import Species

    sp = Species.from_str(text)
    return sp.symbol, int(round(sp.oxi_state or 0))


@functools.cache
def _table_species() -> tuple[tuple[str, int], ...]:
    ions = set()
    for row in _lambda_table():
        if "D1+" in row:
            continue
        ions.add(_parse_ion(row[0]))
        ions.add(_parse_ion(row[1]))
    return tuple(sorted(ions))


@functools.cache
def _cond_prob_matrix() -> tuple[dict[tuple[str, int], int], np.ndarray]:
    """cond_prob[new, old] for every pair of ions, as pymatgen's ``SubstitutionProbability.cond_prob`` computes it
    (exp(λ(new, old)) / p(old), with p(s) = Σ_t exp(λ(s, t))), built in one go from the same lambda table."""
    ions = _table_species()
    index = {ion: i for i, ion in enumerate(ions)}
    lam = np.full((len(ions), len(ions)), LAMBDA_ALPHA)
    for row in _lambda_table():
        if "D1+" in row:
            continue
        i, j = index[_parse_ion(row[0])], index[_parse_ion(row[1])]
        lam[i, j] = lam[j, i] = float(row[2])
    weights = np.exp(lam)
    px = weights.sum(axis=1)
    return index, weights / px[None, :]


@functools.lru_cache(maxsize=4096)
def ion_substitutes(element: str, charge: int, threshold: float = 1e-3) -> tuple[tuple[str, int, float], ...]:
    """Ions that replace ``element^charge`` with conditional probability ≥ threshold, best first.

    Probabilities are pymatgen's data-mined ``cond_prob(new, old)`` (same numbers, computed in one go); only ions
    with the same charge sign are returned, and never the ion itself. Empty when the ion is not in the table.
    """
    index, cond = _cond_prob_matrix()
    j = index.get((element, charge))
    if j is None:
        return ()
    ions = _table_species()
    out = []
    for i in np.flatnonzero(cond[:, j] >= threshold):
        el, q = ions[i]
        if (q > 0) != (charge > 0) or (el == element and q == charge):
            continue
        out.append((el, q, float(cond[i, j])))
    out.sort(key=lambda t: -t[2])
    return tuple(out)


@functools.lru_cache(maxsize=1024)
def element_substitutes(element: str, threshold: float = 1e-3) -> tuple[tuple[str, float], ...]:
    """Element-level substitutes (for phases without meaningful oxidation states): max over the element's ions."""
    best: dict[str, float] = {}
    for el, q in _table_species():
        if el != element:
            continue
        for new_el, _, p in ion_substitutes(el, q, threshold):
            if new_el != element and p > best.get(new_el, 0.0):
                best[new_el] = p
    return tuple(sorted(best.items(), key=lambda t: -t[1]))


def electronegativity_ordered(oxidation_states: Mapping[str, int]) -> bool:
    """Pauling test: every anion more electronegative than every cation (elements without data pass)."""
    from smact import Element

    cations, anions = [], []
    for el, q in oxidation_states.items():
        try:
            chi = Element(el).pauling_eneg
        except (NameError, KeyError, ValueError):
            chi = None
        if chi is None:
            continue
        (anions if q < 0 else cations).append(chi)
    return not cations or not anions or max(cations) < min(anions)


def composition_amounts(species: Iterable[str]) -> dict[str, int]:
    counts: dict[str, int] = defaultdict(int)
    for el in species:
        counts[el] += 1
    return dict(counts)
