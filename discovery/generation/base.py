"""What every generation pipeline hands back."""

from __future__ import annotations

import functools
from typing import Any

import numpy as np
from pymatgen.core import Composition, Lattice, Structure


@functools.lru_cache(maxsize=100_000)
def _reduced_formula(counts: tuple[tuple[str, int], ...]) -> str:
    return Composition(dict(counts)).reduced_formula


def reduced_formula_of(species: list[str]) -> str:
    counts: dict[str, int] = {}
    for el in species:
        counts[el] = counts.get(el, 0) + 1
    return _reduced_formula(tuple(sorted(counts.items())))


class GeneratedCandidate:
    """A proposed crystal with how it was made.

    Held as plain arrays (lattice rows in Å, fractional coordinates, element symbols) so that tens of thousands can be
    made and deduplicated cheaply; ``structure`` builds the pymatgen object on first use.
    ``recipe`` is JSON-serialisable: for the structural pipeline the parent and the substitutions applied (species,
    sites, Wyckoff orbit); for the compositional pipeline the composition, space group, Z and random seed.
    """

    __slots__ = ("lattice", "frac", "species", "pipeline", "recipe", "parent_id", "score", "_structure", "_formula")

    def __init__(
        self,
        lattice,
        frac,
        species,
        pipeline: str,
        recipe: dict[str, Any] | None = None,
        parent_id: Any = None,
        score: float = 0.0,
    ):
        self.lattice = np.asarray(lattice, dtype=float)
        self.frac = np.asarray(frac, dtype=float)
        self.species = list(species)
        self.pipeline = pipeline
        self.recipe = recipe or {}
        self.parent_id = parent_id
        self.score = score
        self._structure: Structure | None = None
        self._formula: str | None = None

    @classmethod
    def from_structure(cls, structure: Structure, pipeline: str, recipe=None, parent_id=None, score=0.0):
        obj = cls(
            structure.lattice.matrix,
            structure.frac_coords,
            [sp.symbol for sp in structure.species],
            pipeline,
            recipe,
            parent_id,
            score,
        )
        obj._structure = structure
        return obj

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready (lattice rows in Å, fractional coordinates): how a candidate travels between processes and hosts."""
        return {"lattice": self.lattice.tolist(), "frac": self.frac.tolist(), "species": self.species,
                "pipeline": self.pipeline, "recipe": self.recipe, "parent_id": self.parent_id, "score": self.score}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> GeneratedCandidate:
        return cls(d["lattice"], d["frac"], d["species"], d["pipeline"], d.get("recipe"), d.get("parent_id"),
                   float(d.get("score", 0.0)))

    @property
    def structure(self) -> Structure:
        if self._structure is None:
            self._structure = Structure(Lattice(self.lattice), self.species, self.frac, validate_proximity=False)
        return self._structure

    @property
    def formula(self) -> str:
        if self._formula is None:
            self._formula = reduced_formula_of(self.species)
        return self._formula

    @property
    def nsites(self) -> int:
        return len(self.species)

    @property
    def volume(self) -> float:
        return float(abs(np.linalg.det(self.lattice)))

    def __repr__(self) -> str:
        return f"GeneratedCandidate({self.formula}, {self.pipeline}, score={self.score:.3g})"
