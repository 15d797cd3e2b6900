"""Which screened candidates go to DFT: an optimistic, diversity-capped rule stated in one place.

Rule (a lower confidence bound, as in GNoME's active learning): score = predicted e_above_hull − κ·std (eV/atom).
1. keep candidates with a finite score ≤ ``threshold``;
2. sort by score, lowest first (ties: lower mean, then input order);
3. walk down the list taking a candidate unless its chemsys already has ``max_per_chemsys`` picks, or its reduced
   formula already has ``max_per_formula`` picks;
4. stop at ``top_n`` picks.
The formula cap spreads a round over compositions: without it, in a binary system the structural pipeline's many
polymorphs of one favoured formula (Li2O2, Li2O3) filled every pick and a ground state of another (Li2O) waited.
κ > 0 favours uncertain candidates (exploration); κ = 0 ranks by the mean alone. A campaign may anneal κ over its
rounds (``annealed_kappa``): explore while its model has seen little of the element space, exploit once it has learnt
from the campaign's own DFT results.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class AcquisitionRule:
    kappa: float = 1.0
    threshold: float = 0.05  # eV/atom; GNoME-like: near or below the current hull
    top_n: int = 100
    max_per_chemsys: int | None = 10
    max_per_formula: int | None = None

    def __post_init__(self) -> None:
        if self.kappa < 0:
            raise ValueError(f"kappa must be ≥ 0, got {self.kappa}")
        if self.top_n < 0:
            raise ValueError(f"top_n must be ≥ 0, got {self.top_n}")
        if self.max_per_chemsys is not None and self.max_per_chemsys < 1:
            raise ValueError(f"max_per_chemsys must be ≥ 1 or None, got {self.max_per_chemsys}")
        if self.max_per_formula is not None and self.max_per_formula < 1:
            raise ValueError(f"max_per_formula must be ≥ 1 or None, got {self.max_per_formula}")

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def score(self, e_above_hull: float, std: float) -> float:
        return e_above_hull - self.kappa * std


def annealed_kappa(start: float, final: float | None, round_index: int, rounds: int) -> float:
    """κ for one round: linear from ``start`` (round 0) to ``final`` (last round); ``final=None`` keeps ``start``."""
    if final is None or rounds <= 1:
        return start
    fraction = min(max(round_index, 0), rounds - 1) / (rounds - 1)
    return start + (final - start) * fraction


@dataclass(frozen=True)
class Scored:
    """One screened candidate as the rule sees it; ``key`` is whatever identifies it to the caller."""

    key: Any
    chemsys: str
    e_above_hull: float  # predicted, eV/atom
    std: float  # ensemble spread, eV/atom
    formula: str = ""  # reduced formula, for the per-formula cap


def select(candidates: Sequence[Scored], rule: AcquisitionRule) -> list[Scored]:
    """Apply the rule above; returns the picks in order of selection."""
    ranked = []
    for order, candidate in enumerate(candidates):
        score = rule.score(candidate.e_above_hull, candidate.std)
        if math.isfinite(score) and score <= rule.threshold:
            ranked.append((score, candidate.e_above_hull, order, candidate))
    ranked.sort(key=lambda item: item[:3])
    picks: list[Scored] = []
    per_chemsys: Counter[str] = Counter()
    per_formula: Counter[str] = Counter()
    for *_, candidate in ranked:
        if len(picks) >= rule.top_n:
            break
        if rule.max_per_chemsys is not None and per_chemsys[candidate.chemsys] >= rule.max_per_chemsys:
            continue
        if rule.max_per_formula is not None and per_formula[candidate.formula] >= rule.max_per_formula:
            continue
        per_chemsys[candidate.chemsys] += 1
        per_formula[candidate.formula] += 1
        picks.append(candidate)
    return picks
