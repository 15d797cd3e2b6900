"""Magpie elemental properties (the table smact ships): the one source of element-level descriptors in Gnomon.

The compositional model's features, the volume prior of substituted children and the screening networks' initial
element embeddings all read it, so they agree on what an element "is". Pure: no Django.
"""

from __future__ import annotations

import csv
import functools
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import smact

MAGPIE_CSV = Path(smact.__file__).resolve().parent / "data" / "magpie.csv"


@dataclass(frozen=True)
class MagpieTable:
    elements: tuple[str, ...]
    properties: tuple[str, ...]
    values: np.ndarray  # elements × properties; NaN where the table has no value

    def filled(self) -> np.ndarray:
        """Values with each missing entry replaced by its property's mean over the elements that have it."""
        return np.where(np.isnan(self.values), np.nanmean(self.values, axis=0)[None, :], self.values)

    def column(self, prop: str) -> dict[str, float]:
        """One property per element, leaving out the elements without a value."""
        j = self.properties.index(prop)
        return {el: float(v) for el, v in zip(self.elements, self.values[:, j], strict=True) if np.isfinite(v)}


@functools.cache
def magpie_table() -> MagpieTable:
    with MAGPIE_CSV.open(encoding="utf-8-sig") as fh:
        rows = list(csv.DictReader(fh))
    key = next(k for k in rows[0] if k.lower() == "element")
    properties = tuple(k for k in rows[0] if k != key)

    def number(text: str) -> float:
        try:
            return float(text)
        except (TypeError, ValueError):
            return np.nan

    values = np.array([[number(row[p]) for p in properties] for row in rows])
    return MagpieTable(tuple(row[key] for row in rows), properties, values)


def element_embedding(symbols: Sequence[str], dim: int) -> np.ndarray:
    """A ``len(symbols) × min(dim, rank)`` matrix whose rows place chemically similar elements near each other.

    The leading principal components of the standardised Magpie properties (electronegativity, radius, group, row,
    valence electrons, …) over the whole table, scaled to unit variance like a freshly initialised embedding; a row
    does not depend on which other symbols are asked for. A campaign's first screening model sees a few hundred
    crystals: with randomly initialised embeddings every element must be learnt from its own few occurrences, while
    these rows let what is learnt about Na carry over to K. The table has 22 properties, so at most 22 columns.
    Elements missing from the table get zeros (the mean row).
    """
    components = _principal_components()
    rank = min(dim, components.shape[1])
    scaled = components[:, :rank] / (components[:, :rank].std() or 1.0)
    index = {el: i for i, el in enumerate(magpie_table().elements)}
    return np.array([scaled[index[s]] if s in index else np.zeros(rank) for s in symbols]).reshape(len(symbols), rank)


@functools.cache
def _principal_components() -> np.ndarray:
    values = magpie_table().values
    std = np.nanstd(values, axis=0)
    std[std == 0] = 1.0
    z = np.nan_to_num((values - np.nanmean(values, axis=0)) / std)  # a missing property sits at its mean
    u, s, _ = np.linalg.svd(z - z.mean(axis=0), full_matrices=False)
    return u * s
