"""Calculation protocols: one immutable record of the settings behind every energy of a scheme. Pure (stdlib only).

A hull is only as good as the consistency of the energies on it: two energies computed at different cutoffs, k-point
densities or band counts differ by more than most hull distances (350 → 500 eV moves Mg metal by ~110 meV/atom). So a
scheme carries its protocol and its hash, every energy written into it carries the hash of the protocol it was
computed with, and an energy of another protocol is refused by name (``ProtocolMismatch``).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

HASH_LENGTH = 12  # hex characters of sha256: enough to tell protocols apart, short enough to read


class ProtocolMismatch(ValueError):  # noqa: N818 - reads as what happened
    """An energy (or a scheme definition) comes from another protocol than the scheme's; the message names both."""


def protocol_hash(protocol: Mapping[str, Any]) -> str:
    """Stable hash of a protocol: sorted keys, no whitespace, so equal settings always give the same hash."""
    text = json.dumps(protocol, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:HASH_LENGTH]


def describe(protocol: Mapping[str, Any], keys: tuple[str, ...] = ("code", "ecut_eV", "kpoint_spacing_inv_A",
                                                                      "smearing_eV", "setups")) -> str:
    """A short human summary of a protocol for error messages."""
    shown = [f"{k}={protocol[k]}" for k in keys if k in protocol]
    return ", ".join(shown) or "no settings recorded"


def differences(a: Mapping[str, Any], b: Mapping[str, Any]) -> list[str]:
    """The settings in which two protocols differ, as 'key: a → b'."""
    return [f"{k}: {a.get(k)!r} → {b.get(k)!r}" for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)]


# The Materials Project's GGA/GGA+U protocol (pymatgen's MPRelaxSet, MP2020 corrections): the MP datasets carry it, and
# the VASP backend's results with the same input set join their hull, as GNoME compared its candidates with MP.
MATERIALS_PROJECT_GGA_U: dict[str, Any] = {
    "code": "VASP",
    "xc": "PBE (GGA), GGA+U for oxides and fluorides of Co, Cr, Fe, Mn, Mo, Ni, V, W",
    "input_set": "pymatgen MPRelaxSet (520 eV, 1000 k-points per reciprocal atom, MP PAW PBE potentials)",
    "corrections": "MaterialsProject2020Compatibility (anion and U corrections)",
}

# The shared GPAW-PBE bootstrap set, as its README records it: Debian's PAW setups, 520 eV for every structure, and
# GPAW's own default band count (capped at the bound partial waves: one-atom Ca had no empty band).
GPAW_BOOTSTRAP_SET: dict[str, Any] = {
    "code": "GPAW 26.7.0",
    "xc": "PBE",
    "mode": "PW",
    "setups": "Debian gpaw-data 0.9.20000",
    "ecut_eV": 520.0,
    "kpoint_spacing_inv_A": 0.25,
    "kpoint_mesh": "Gamma-centred Monkhorst-Pack",
    "smearing": "fermi-dirac",
    "smearing_eV": 0.05,
    "molecule_smearing_eV": 0.01,
    "scf_energy_eV": 1e-5,
    "relaxation": "BFGS, FrechetCellFilter to fmax 0.05 eV/A",
    "bands": "GPAW default (capped at the bound partial waves)",
    "spin": "O2 triplet; no magnetic elements in the set",
    "plus_u": "none",
}
