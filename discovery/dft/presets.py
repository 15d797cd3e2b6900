"""Calculation presets: how hard a backend works for one energy.

- ``fast``: real DFT with a sparse k-mesh and loose thresholds, for demos and tests (2-atom cells in seconds to a minute).
  Crystals are pre-relaxed with CHGNet first (``prerelax``): a 4-atom KNaF2 ordering then needed 5 GPAW BFGS steps of
  about 40 s each on this 2-core machine. The energy is still GPAW's own, at GPAW's own relaxed geometry.
  Its cutoff still follows the hardest element: at 350 eV LiF's formation energy came out −1.05 eV/atom against −2.92 at
  520 eV because the F2 molecule is badly under-converged, so O/F/N raise the cutoff even in ``fast``.
- ``standard``: converged settings for production. Variable-cell relaxations with oxygen need 600–800 eV (Pulay stress
  shrank cubic SrTiO3 to a = 3.64 Å at 400 eV), hence 700 eV when O/F/N are present.
- ``bootstrap``: exactly the settings of the shared GPAW-PBE bootstrap set (520 eV everywhere, 0.25 Å⁻¹ k-spacing,
  Fermi–Dirac 0.05 eV, 0.01 eV for molecules, SCF 1e-5 eV, BFGS + FrechetCellFilter to 0.05 eV/Å, ≤ 60 steps), so its
  energies can be reproduced and extended consistently.

k-point spacing is in Å⁻¹ *including* the 2π: n_i = ceil(2π·|b_i| / spacing) with b_i the reciprocal vectors without 2π.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np

# Elements whose PAW setups need a higher plane-wave cutoff than the preset's default (eV).
HARD_ELEMENTS = ("O", "F", "N", "H", "C")

# Initial magnetic moments (μB/atom) for elements that may order magnetically; their compounds are spin-polarised.
MAGNETIC_MOMENTS: dict[str, float] = {
    "V": 3.0, "Cr": 4.0, "Mn": 5.0, "Fe": 4.0, "Co": 3.0, "Ni": 2.0, "Cu": 1.0,
    "Mo": 3.0, "Ru": 2.0, "Rh": 1.0,
    "Ce": 1.0, "Pr": 2.0, "Nd": 3.0, "Sm": 5.0, "Eu": 7.0, "Gd": 7.0, "Tb": 6.0, "Dy": 5.0, "Ho": 4.0, "Er": 3.0,
    "Tm": 2.0, "Yb": 1.0,
}  # fmt: skip

# Molecules whose ground state is spin-polarised: O2 is a triplet (2 μB per molecule → 1 μB per atom).
MOLECULE_MOMENTS: dict[str, float] = {"O": 1.0}


@dataclass(frozen=True)
class Preset:
    name: str
    ecut_eV: float  # plane-wave cutoff when no hard element is present
    ecut_hard_eV: float  # cutoff when any of HARD_ELEMENTS is present
    kpoint_spacing: float  # Å⁻¹ including 2π
    smearing_eV: float  # Fermi–Dirac width, solids
    molecule_smearing_eV: float
    scf_energy_eV: float  # SCF energy convergence criterion
    scf_maxiter: int
    fmax: float  # eV/Å, relaxation stops below it
    max_steps: int  # ionic steps (positions + cell)
    relax: bool = True
    relax_cell: bool = True
    final_single_point: bool = True
    # Relax crystals with the ML potential (CHGNet) before DFT, so the DFT relaxation starts near its minimum and needs
    # fewer of its expensive steps. Only the starting geometry changes: the energy and final structure are DFT's.
    prerelax: bool = False
    molecule_box: tuple[float, float, float] = (9.0, 9.5, 10.0)  # Å
    time_limit_s: int = 3600  # hard Celery time limit of one job
    # SCF fallbacks tried in order when the default SCF fails: mixer (beta, nmaxold, weight) and smearing factor.
    scf_fallbacks: tuple[dict, ...] = field(
        default=(
            {"mixer": {"beta": 0.05, "nmaxold": 5, "weight": 50.0}, "maxiter_factor": 2},
            {"mixer": {"beta": 0.02, "nmaxold": 8, "weight": 100.0}, "maxiter_factor": 3, "smearing_factor": 2.0},
        )
    )

    def cutoff_for(self, elements: Iterable[str]) -> float:
        """Plane-wave cutoff (eV) following the hardest element present."""
        return self.ecut_hard_eV if any(el in HARD_ELEMENTS for el in elements) else self.ecut_eV

    def kpoints_for(self, cell: np.ndarray, pbc: tuple[bool, bool, bool] = (True, True, True)) -> tuple[int, int, int]:
        """Γ-centred Monkhorst–Pack mesh with at most ``kpoint_spacing`` between points (Å⁻¹, 2π included)."""
        reciprocal = np.linalg.inv(np.asarray(cell, dtype=float)).T  # rows b_i with a_i·b_j = δ_ij (no 2π)
        mesh = []
        for periodic, b in zip(pbc, reciprocal, strict=True):
            mesh.append(max(1, math.ceil(2 * math.pi * float(np.linalg.norm(b)) / self.kpoint_spacing)) if periodic else 1)
        return (mesh[0], mesh[1], mesh[2])

    def as_dict(self) -> dict:
        return {
            "name": self.name,
            "ecut_eV": self.ecut_eV,
            "ecut_hard_eV": self.ecut_hard_eV,
            "kpoint_spacing_inv_A": self.kpoint_spacing,
            "smearing_eV": self.smearing_eV,
            "molecule_smearing_eV": self.molecule_smearing_eV,
            "scf_energy_eV": self.scf_energy_eV,
            "scf_maxiter": self.scf_maxiter,
            "fmax_eV_per_A": self.fmax,
            "max_steps": self.max_steps,
            "relax": self.relax,
            "relax_cell": self.relax_cell,
            "prerelax": self.prerelax,
            "molecule_box_A": list(self.molecule_box),
            "time_limit_s": self.time_limit_s,
        }


PRESETS: dict[str, Preset] = {
    "fast": Preset(
        name="fast", ecut_eV=350.0, ecut_hard_eV=500.0, kpoint_spacing=0.5, smearing_eV=0.1, molecule_smearing_eV=0.01,
        scf_energy_eV=1e-4, scf_maxiter=200, fmax=0.05, max_steps=30, time_limit_s=1800, prerelax=True,
    ),
    "standard": Preset(
        name="standard", ecut_eV=520.0, ecut_hard_eV=700.0, kpoint_spacing=0.22, smearing_eV=0.05,
        molecule_smearing_eV=0.01, scf_energy_eV=1e-5, scf_maxiter=300, fmax=0.03, max_steps=100, time_limit_s=6 * 3600,
    ),
    "bootstrap": Preset(
        name="bootstrap", ecut_eV=520.0, ecut_hard_eV=520.0, kpoint_spacing=0.25, smearing_eV=0.05,
        molecule_smearing_eV=0.01, scf_energy_eV=1e-5, scf_maxiter=300, fmax=0.05, max_steps=60, time_limit_s=3 * 3600,
    ),
}  # fmt: skip


def get_preset(name: str) -> Preset:
    try:
        return PRESETS[name]
    except KeyError:
        raise KeyError(f"unknown DFT preset {name!r}; known: {', '.join(PRESETS)}") from None


def initial_magmoms(symbols: list[str], *, is_molecule: bool = False) -> list[float] | None:
    """Initial moments (μB) per atom, or None when the system is run spin-paired."""
    table = MOLECULE_MOMENTS if is_molecule else MAGNETIC_MOMENTS
    if not any(s in table for s in symbols):
        return None
    return [table.get(s, 0.0) for s in symbols]
