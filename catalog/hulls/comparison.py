"""Computed decomposition energies against published ones (the Bartel et al. 2020 check in ``benchmarks/``)."""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from dataclasses import dataclass

from catalog.hulls.results import HullResult


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
