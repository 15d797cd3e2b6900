"""DFT verification backends (pure: no Django). Backends take a pymatgen Structure and return a ``DFTResult``.

``get_backend("gpaw")`` / ``"vasp"`` / ``"ml"`` returns an implementation of ``DFTBackend``; presets live in
``presets.py``; elemental references and binary prototypes for building a hull from nothing in ``references.py``.
"""

from discovery.dft.base import (
    BackendUnavailable,
    DFTBackend,
    DFTError,
    DFTResult,
    PhysicsError,
    ResultParseError,
    SCFNotConverged,
    SchemeSpec,
    TransientDFTError,
    available_backends,
    get_backend,
    register_backend,
)
from discovery.dft.presets import PRESETS, Preset, get_preset

__all__ = [
    "PRESETS",
    "BackendUnavailable",
    "DFTBackend",
    "DFTError",
    "DFTResult",
    "PhysicsError",
    "Preset",
    "ResultParseError",
    "SCFNotConverged",
    "SchemeSpec",
    "TransientDFTError",
    "available_backends",
    "get_backend",
    "get_preset",
    "register_backend",
]
