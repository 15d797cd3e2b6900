"""Candidate generation (GNoME's two pipelines), pure Python: pymatgen objects in and out, no Django.

- ``substitution``: structural pipeline — data-driven full, pair and symmetry-aware partial substitutions (SAPS);
- ``compositional``: smact composition enumeration, composition-model ranking, pyxtal random symmetric structures;
- ``dedup``: StructureMatcher deduplication, pruned by formula and a scale-invariant descriptor;
- ``volume``: volume rescaling for substituted ions;
- ``chemistry``: fast oxidation-state and substitution-probability look-ups.
"""

from .base import GeneratedCandidate
from .compositional import (
    RandomStructureConfig,
    RidgeCompositionModel,
    enumerate_compositions,
    generate_compositional,
    random_structures,
    rank_compositions,
)
from .dedup import Deduplicator, deduplicate, descriptor, structure_key
from .substitution import SubstitutionConfig, SubstitutionGenerator, analyse_parent, generate_substitutions

__all__ = [
    "Deduplicator",
    "GeneratedCandidate",
    "RandomStructureConfig",
    "RidgeCompositionModel",
    "SubstitutionConfig",
    "SubstitutionGenerator",
    "analyse_parent",
    "deduplicate",
    "descriptor",
    "enumerate_compositions",
    "generate_compositional",
    "generate_substitutions",
    "random_structures",
    "rank_compositions",
    "structure_key",
]
