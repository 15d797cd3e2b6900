"""The one small interface every DFT backend implements, in the spirit of ASE's ``Calculator``.

A backend gets a structure and a preset and returns a relaxed structure with its total energy (eV) in a ``DFTResult``;
it says which energy *scheme* (level of theory) its energies belong to, so that energies of different backends or
presets are never mixed in one hull. Backends register by name (``register_backend``) and are looked up by the name
stored on a job (``get_backend``): GPAW here, VASP on a SLURM cluster, an ML potential as a labelled pre-relaxer.

Errors say whether trying again can help: ``TransientDFTError`` (a lost node, a full disk, a SLURM hiccup) is retried
with back-off; ``PhysicsError`` (SCF does not converge after the preset's fallbacks) is recorded with its reason and never
retried, because the same input gives the same answer.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from pymatgen.core import Structure

from catalog.protocols import protocol_hash
from discovery.dft.presets import Preset


class DFTError(Exception):
    """Base class of every error a backend raises on purpose."""

    retryable = False


class TransientDFTError(DFTError):
    """Something outside the physics failed (scheduler, node, file system): trying again may work."""

    retryable = True


class PhysicsError(DFTError):
    """The calculation itself failed (no SCF convergence after fallbacks, exploding relaxation): never retried."""


class SCFNotConverged(PhysicsError):
    pass


class ResultParseError(DFTError):
    """Output files are missing, truncated or not understood (e.g. a vasprun.xml cut off mid-run)."""


class BackendUnavailable(DFTError):
    """The backend's program or package is not installed here; the message says how to install it."""


@dataclass(frozen=True)
class SchemeSpec:
    """What the catalog needs to know about the level of theory of a backend+preset's energies."""

    name: str
    level_of_theory: str
    is_dft: bool
    correction_policy: str
    kind: str = "total_energy"
    description: str = ""
    # Every setting that decides an energy (code and versions, functional, setups, cutoff, k-points, smearing, bands,
    # spin, +U, thresholds). Empty for backends that declare none (test doubles): their schemes are not checked.
    protocol: dict[str, Any] = field(default_factory=dict)

    @property
    def protocol_hash(self) -> str:
        return protocol_hash(self.protocol) if self.protocol else ""


@dataclass
class DFTResult:
    """One finished calculation. ``energy_total`` (eV) belongs to ``structure`` (the relaxed cell) and ``scheme``."""

    energy_total: float
    structure: Structure
    scheme: SchemeSpec
    settings: dict[str, Any]
    initial_structure: Structure | None = None
    correction: float = 0.0  # eV, already included in energy_total (e.g. MP2020 for VASP)
    scf: dict[str, Any] = field(default_factory=dict)
    relaxation: dict[str, Any] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)  # seconds
    peak_memory_mb: float | None = None
    log_excerpt: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def natoms(self) -> int:
        return len(self.structure)

    @property
    def energy_per_atom(self) -> float:
        return self.energy_total / len(self.structure)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary stored on the job (``DFTJob.result``) and in the energy record's ``data``."""
        return {
            "energy_total": self.energy_total,
            "energy_per_atom": self.energy_per_atom,
            "correction": self.correction,
            "composition": self.structure.composition.formula.replace(" ", ""),
            "natoms": self.natoms,
            "scheme": self.scheme.name,
            "structure": self.structure.as_dict(),
            "initial_structure": self.initial_structure.as_dict() if self.initial_structure is not None else None,
            "settings": self.settings,
            "scf": self.scf,
            "relaxation": self.relaxation,
            "timings": self.timings,
            "peak_memory_mb": self.peak_memory_mb,
            "extra": self.extra,
        }


@runtime_checkable
class DFTBackend(Protocol):
    """What a backend implements. ``workdir`` is an empty directory the backend may fill with its files."""

    name: str
    is_dft: bool

    def scheme_for(self, preset: Preset) -> SchemeSpec: ...

    def run(self, structure: Structure, preset: Preset, *, workdir: Path, is_molecule: bool = False) -> DFTResult: ...


_REGISTRY: dict[str, Callable[..., DFTBackend]] = {}

# Built-in backends, imported only when asked for: GPAW and CHGNet are heavy imports.
_BUILTIN = {
    "gpaw": "discovery.dft.gpaw_backend:GPAWBackend",
    "vasp": "discovery.dft.vasp_backend:VaspBackend",
    "ml": "discovery.dft.ml_backend:CHGNetBackend",
}


def register_backend(name: str, factory: Callable[..., DFTBackend]) -> None:
    """Make a backend available under ``name`` (a class or any factory taking keyword options)."""
    _REGISTRY[name] = factory


def load_plugins(modules: list[str] | tuple[str, ...]) -> None:
    """Import modules that call ``register_backend`` (setting ``GNOMON_DFT_BACKEND_PLUGINS``)."""
    for module in modules:
        importlib.import_module(module)


def available_backends() -> list[str]:
    return sorted(set(_BUILTIN) | set(_REGISTRY))


def get_backend(name: str, **options: Any) -> DFTBackend:
    """A backend instance; ``options`` go to its constructor (e.g. the VASP backend's SLURM settings)."""
    if name in _REGISTRY:
        return _REGISTRY[name](**options)
    if name in _BUILTIN:
        module_name, cls_name = _BUILTIN[name].split(":")
        return getattr(importlib.import_module(module_name), cls_name)(**options)
    raise KeyError(f"unknown DFT backend {name!r}; known: {', '.join(available_backends())}")
