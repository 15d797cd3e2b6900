"""Calculation presets: how hard a backend works for one energy. A preset is a *protocol*: every structure of its
scheme — metals, oxides, molecules — is computed with the same numbers, or energies could not share a hull.

- ``fast``: real DFT with a sparse k-mesh and loose thresholds, for demos and tests. One cutoff for every structure
  (500 eV: at 350 eV LiF's formation energy came out −1.05 eV/atom against −2.92 at 520 eV, because the F2 molecule is
  badly under-converged; and 350 → 500 eV moved Mg metal by 110 meV/atom, an error that does not cancel against
  MgO computed at 500). Crystals are pre-relaxed with CHGNet first (``prerelax``): only the starting geometry changes,
  the energy is GPAW's own at GPAW's own relaxed geometry. Measured (``benchmarks/results/dft_convergence.json``, 17
  formation energies against 900 eV): 500 eV is off by up to 27 meV/atom (AlN), 5.5 on average; the whole protocol
  (with its 0.5 Å⁻¹ k-spacing and 0.1 eV smearing) by 22 meV/atom on average, 67 at most.
- ``standard``: the production protocol. 700 eV keeps formation energies within 3.1 meV/atom of 900 eV (the study's
  10 meV/atom criterion is met from 600 eV); the whole protocol is within 6.5 meV/atom (2.3 on average) of 900 eV,
  0.15 Å⁻¹ and Pulay stress small in variable-cell relaxations with oxygen (cubic
  SrTiO3 shrank to a = 3.64 Å at 400 eV).
- ``bootstrap``: exactly the settings of the shared GPAW-PBE bootstrap set (520 eV everywhere, 0.25 Å⁻¹ k-spacing,
  Fermi–Dirac 0.05 eV, 0.01 eV for molecules, SCF 1e-5 eV, BFGS + FrechetCellFilter to 0.05 eV/Å, ≤ 60 steps), so its
  energies can be reproduced and extended consistently.

k-point spacing is in Å⁻¹ *including* the 2π: n_i = ceil(2π·|b_i| / spacing) with b_i the reciprocal vectors without 2π.
Bands: ``nbands_for`` (the VASP default rule), which always leaves empty bands — GPAW's own default caps the count at
the bound partial waves and gave one-atom Ca, Sr and Ba cells no empty band at all.
Spin: ferromagnetic start from ``MAGNETIC_MOMENTS`` for magnetic elements, as the Materials Project's default input
sets do; ``standard`` also tries a layered antiferromagnetic start where the cell allows (``magnetic_starts``) and keeps
the lower energy. No +U: campaigns over the oxides and fluorides the Materials Project treats with +U are refused on
GPAW (``PLUS_U_ELEMENTS``).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np

# The Materials Project applies GGA+U to oxides and fluorides of these elements (MPRelaxSet's U values). A protocol
# without +U puts their energies on another footing than MP's, and the GGA error for localised d electrons does not
# cancel against the metals: GPAW campaigns over these chemistries are refused until +U is part of the protocol.
PLUS_U_ELEMENTS = ("Co", "Cr", "Fe", "Mn", "Mo", "Ni", "V", "W")
PLUS_U_ANIONS = ("O", "F")

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
    ecut_eV: float  # plane-wave cutoff, the same for every structure of the scheme
    kpoint_spacing: float  # Å⁻¹ including 2π
    smearing_eV: float  # Fermi–Dirac width, solids
    molecule_smearing_eV: float
    scf_energy_eV: float  # SCF energy convergence criterion
    scf_maxiter: int
    fmax: float  # eV/Å (and the cell filter's stress in the same units), relaxation stops below it
    max_steps: int  # ionic steps (positions + cell); a relaxation that does not converge within it is retried once
    relax: bool = True
    relax_cell: bool = True
    final_single_point: bool = True
    # Relax crystals with the ML potential (CHGNet) before DFT, so the DFT relaxation starts near its minimum and needs
    # fewer of its expensive steps. Only the starting geometry changes: the energy and final structure are DFT's.
    prerelax: bool = False
    molecule_box: tuple[float, float, float] = (9.0, 9.5, 10.0)  # Å
    # Magnetic orderings tried (``magnetic_starts``): "FM" always; "AFM" adds a layered antiferromagnetic start where
    # the cell has two or more magnetic sites, evaluated at the relaxed geometry, the lower energy kept.
    magnetic_orderings: tuple[str, ...] = ("FM",)
    time_limit_s: int = 3600  # Celery soft time limit of one run (services.dft.time_limit_for adds inline references)
    # SCF fallbacks tried in order when the default SCF fails: mixer (beta, nmaxold, weight) and smearing factor.
    scf_fallbacks: tuple[dict, ...] = field(
        default=(
            {"mixer": {"beta": 0.05, "nmaxold": 5, "weight": 50.0}, "maxiter_factor": 2},
            {"mixer": {"beta": 0.02, "nmaxold": 8, "weight": 100.0}, "maxiter_factor": 3, "smearing_factor": 2.0},
        )
    )

    def kpoints_for(self, cell: np.ndarray, pbc: tuple[bool, bool, bool] = (True, True, True)) -> tuple[int, int, int]:
        """Γ-centred Monkhorst–Pack mesh with at most ``kpoint_spacing`` between points (Å⁻¹, 2π included)."""
        reciprocal = np.linalg.inv(np.asarray(cell, dtype=float)).T  # rows b_i with a_i·b_j = δ_ij (no 2π)
        mesh = []
        for periodic, b in zip(pbc, reciprocal, strict=True):
            mesh.append(max(1, math.ceil(2 * math.pi * float(np.linalg.norm(b)) / self.kpoint_spacing)) if periodic else 1)
        return (mesh[0], mesh[1], mesh[2])

    def protocol(self) -> dict:
        """Every number that decides an energy (a scheme stores it and its hash). The step budget and the time limit
        are left out: they decide whether a run finishes, not what a finished run gives."""
        return {
            "ecut_eV": self.ecut_eV,
            "kpoint_spacing_inv_A": self.kpoint_spacing,
            "kpoint_mesh": "Gamma-centred Monkhorst-Pack",
            "smearing": "fermi-dirac",
            "smearing_eV": self.smearing_eV,
            "molecule_smearing_eV": self.molecule_smearing_eV,
            "molecule_box_A": list(self.molecule_box),
            "scf_energy_eV": self.scf_energy_eV,
            "scf_fallbacks": list(self.scf_fallbacks),
            "relaxation": ("none" if not self.relax else
                           f"BFGS{', FrechetCellFilter' if self.relax_cell else ''} to fmax {self.fmax} eV/A"),
            "final_single_point": self.final_single_point,
            "bands": BAND_RULE,
            "spin": SPIN_POLICY if self.magnetic_orderings == ("FM",) else f"{SPIN_POLICY}; {AFM_POLICY}",
            "plus_u": PLUS_U_POLICY,
        }

    def as_dict(self) -> dict:
        return {
            "name": self.name,
            "ecut_eV": self.ecut_eV,
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


BAND_RULE = "max(nint(N_el + 2)/2 + max(N_atoms/2, 3), int(0.6 N_el)) + N_unpaired (VASP's default; N_el from the setups)"
SPIN_POLICY = "spin-polarised, ferromagnetic start (MAGNETIC_MOMENTS) when a magnetic element is present; O2 triplet"
AFM_POLICY = ("also a layered antiferromagnetic start (magnetic sites alternate in sign along c, then b, a) where "
              "the cell has two or more magnetic sites, as a single point at the ferromagnetic relaxed geometry; the "
              "lower energy is kept")
PLUS_U_POLICY = "none; GPAW campaigns over oxides/fluorides of Co, Cr, Fe, Mn, Mo, Ni, V, W are refused"


def magnetic_starts(symbols: list[str], frac_coords, orderings: tuple[str, ...] = ("FM",), *,
                    is_molecule: bool = False) -> list[tuple[str, list[float]]]:
    """Initial moments (μB per atom) of each ordering to try, ferromagnetic first; [] for a spin-paired system.

    "AFM" is a layered antiferromagnet: the magnetic sites, sorted by fractional c, b, a, alternate in sign, so the
    cell's net moment is zero for an even count. A cell with one magnetic site cannot order antiferromagnetically
    without a supercell: it keeps the ferromagnetic start only."""
    ferro = initial_magmoms(symbols, is_molecule=is_molecule)
    if ferro is None:
        return []
    starts = [("FM", ferro)]
    magnetic = [i for i, s in enumerate(symbols) if s in MAGNETIC_MOMENTS]
    if "AFM" in orderings and not is_molecule and len(magnetic) >= 2:
        coords = np.asarray(frac_coords, dtype=float) % 1.0
        order = sorted(magnetic, key=lambda i: (round(coords[i][2], 3), round(coords[i][1], 3), round(coords[i][0], 3)))
        afm = list(ferro)
        for rank, i in enumerate(order):
            afm[i] = ferro[i] if rank % 2 == 0 else -ferro[i]
        starts.append(("AFM", afm))
    return starts


def nbands_for(n_valence: float, n_atoms: int, n_unpaired: float = 0.0) -> int:
    """Bands to compute: VASP's default rule, which always leaves empty bands (at least one; ~20% for metals)."""
    occupied_plus = round(n_valence + 2) / 2 + max(n_atoms / 2, 3)
    return int(math.ceil(max(occupied_plus, int(0.6 * n_valence)) + n_unpaired))


def needs_plus_u(elements: Iterable[str]) -> list[str]:
    """The +U elements of a chemistry the Materials Project treats with GGA+U (an O or F compound of them)."""
    elements = set(elements)
    return sorted(elements & set(PLUS_U_ELEMENTS)) if elements & set(PLUS_U_ANIONS) else []


PRESETS: dict[str, Preset] = {
    "fast": Preset(
        name="fast", ecut_eV=500.0, kpoint_spacing=0.5, smearing_eV=0.1, molecule_smearing_eV=0.01,
        scf_energy_eV=1e-4, scf_maxiter=200, fmax=0.05, max_steps=30, time_limit_s=1800, prerelax=True,
    ),
    "standard": Preset(
        name="standard", ecut_eV=700.0, kpoint_spacing=0.22, smearing_eV=0.05,
        molecule_smearing_eV=0.01, scf_energy_eV=1e-5, scf_maxiter=300, fmax=0.03, max_steps=100, time_limit_s=6 * 3600,
        magnetic_orderings=("FM", "AFM"),
    ),
    "bootstrap": Preset(
        name="bootstrap", ecut_eV=520.0, kpoint_spacing=0.25, smearing_eV=0.05,
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
