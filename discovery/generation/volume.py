"""Volume of a substituted child: rescale the parent's cell for the new ions.

Two models, both used as a *ratio* on the parent's (DFT-relaxed) volume so that their absolute bias cancels:
- ``IonicRadiusVolume`` (default): V_child / V_parent = Σ r_child³ / Σ r_parent³ over sites, Shannon radii;
- ``AtomicVolumeModel``: per-element volumes per atom fitted by ridge least squares on catalog structures
  (prior: the element's ground-state volume per atom from the Magpie table shipped with smact).
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Iterable, Mapping
from typing import Protocol

import numpy as np

from discovery.magpie import magpie_table

DEFAULT_RADIUS = 1.4  # Å, used when neither ionic nor atomic radius is known


class VolumeModel(Protocol):
    def scale(self, parent: Mapping[tuple[str, int | None], int], child: Mapping[tuple[str, int | None], int]) -> float:
        """V_child / V_parent for site counts keyed by (element, oxidation state or None)."""


@functools.lru_cache(maxsize=2048)
def ion_radius(element: str, charge: int | None) -> float:
    """Shannon ionic radius (Å) of element^charge; falls back to the element's average ionic or atomic radius."""
    from pymatgen.core import Element, Species

    radius = None
    if charge:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                radius = Species(element, charge).ionic_radius
        except (ValueError, KeyError):
            radius = None
    if radius is None:
        el = Element(element)
        radius = float(el.average_ionic_radius) or None
        if charge is None or radius is None:
            radius = float(el.atomic_radius) if el.atomic_radius is not None else radius
    return float(radius) if radius else DEFAULT_RADIUS


class IonicRadiusVolume:
    def scale(self, parent, child) -> float:
        num = sum(n * ion_radius(el, q) ** 3 for (el, q), n in child.items())
        den = sum(n * ion_radius(el, q) ** 3 for (el, q), n in parent.items())
        return num / den if den > 0 else 1.0


@functools.cache
def magpie_volume_per_atom() -> dict[str, float]:
    return magpie_table().column("GSvolume_pa")


class AtomicVolumeModel:
    """V_cell ≈ Σ_el n_el · v_el, v_el fitted on known structures with a ridge pull towards the Magpie prior."""

    def __init__(self, volumes: Mapping[str, float] | None = None):
        self.volumes = dict(volumes or magpie_volume_per_atom())

    @classmethod
    def fit(cls, structures: Iterable, alpha: float = 1.0) -> AtomicVolumeModel:
        prior = magpie_volume_per_atom()
        rows: list[dict[str, float]] = []
        targets: list[float] = []
        for s in structures:
            amounts = {el.symbol: float(n) for el, n in s.composition.items()}
            rows.append(amounts)
            targets.append(float(s.volume))
        elements = sorted({el for r in rows for el in r})
        index = {el: i for i, el in enumerate(elements)}
        x = np.zeros((len(rows), len(elements)))
        for i, r in enumerate(rows):
            for el, n in r.items():
                x[i, index[el]] = n
        p = np.array([prior.get(el, 15.0) for el in elements])
        y = np.asarray(targets)
        # minimise |x v - y|² + alpha·|v - p|²
        lhs = x.T @ x + alpha * np.eye(len(elements))
        rhs = x.T @ y + alpha * p
        v = np.linalg.solve(lhs, rhs)
        volumes = dict(prior)
        volumes.update({el: float(max(v[index[el]], 1.0)) for el in elements})
        return cls(volumes)

    def predict(self, amounts: Mapping[str, float]) -> float:
        return sum(n * self.volumes.get(el, 15.0) for el, n in amounts.items())

    def scale(self, parent, child) -> float:
        pa: dict[str, float] = {}
        ch: dict[str, float] = {}
        for (el, _), n in parent.items():
            pa[el] = pa.get(el, 0) + n
        for (el, _), n in child.items():
            ch[el] = ch.get(el, 0) + n
        den = self.predict(pa)
        return self.predict(ch) / den if den > 0 else 1.0
