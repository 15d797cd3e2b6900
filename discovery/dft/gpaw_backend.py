"""Real plane-wave PBE DFT on this machine with GPAW (serial, built by scripts/install_gpaw.sh).

Recipe per structure: pre-relax crystals with CHGNet where the preset asks for it (fewer costly DFT steps), the
preset's one plane-wave cutoff, a Γ-centred k-mesh from the preset's spacing, bands by ``nbands_for`` (always some
empty), spin-polarise magnetic elements and the O2 molecule (triplet); relax positions and cell together with ASE's BFGS
on a ``FrechetCellFilter`` (molecules: positions only, in a fixed box, Γ point), then a final single point with a fresh
calculator on the relaxed cell, so the reported energy carries no basis-set (Pulay) error from the starting cell.
When an SCF cycle does not converge the preset's fallbacks (stronger mixing, more iterations, wider smearing) are tried
before giving up with ``SCFNotConverged``.
"""

from __future__ import annotations

import functools
import os
import resource
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from pymatgen.core import Structure
from pymatgen.io.ase import AseAtomsAdaptor

from catalog.protocols import protocol_hash
from discovery.dft.base import BackendUnavailable, DFTResult, PhysicsError, SCFNotConverged, SchemeSpec
from discovery.dft.presets import Preset, initial_magmoms, magnetic_starts, nbands_for

LOG_TAIL_LINES = 40
# A pre-relaxation that changes the volume by more than this went somewhere DFT should judge for itself: start from
# the structure as given instead.
MAX_PRERELAX_VOLUME_CHANGE = 0.5


def _tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def peak_memory_mb() -> float:
    """Peak resident memory of this process so far (MB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


class GPAWBackend:
    name = "gpaw"
    is_dft = True

    def __init__(self, **_options: Any) -> None:
        # One thread per DFT process: workers scale by processes, and threaded BLAS on shared cores only thrashes.
        # (Read when GPAW's extension loads the system OpenBLAS; set them in the worker's environment to be sure.)
        for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS"):
            os.environ.setdefault(var, "1")
        try:
            import gpaw  # noqa: F401
        except ImportError as exc:
            raise BackendUnavailable(
                "GPAW is not installed in this environment; run scripts/install_gpaw.sh (needs libxc, OpenBLAS, FFTW)"
            ) from exc
        import gpaw

        self.version = gpaw.__version__

    def protocol(self, preset: Preset) -> dict[str, Any]:
        """The scheme's protocol: code and PAW setups with their versions, PBE, and the preset's numbers."""
        return {"code": f"GPAW {self.version}", "xc": "PBE", "mode": "PW", "setups": _setups_description(),
                **preset.protocol()}

    def scheme_for(self, preset: Preset) -> SchemeSpec:
        protocol = self.protocol(preset)
        return SchemeSpec(
            # the protocol's hash in the name: changing a preset's numbers makes a new scheme, never joins an old one
            name=f"GPAW-PBE-{preset.name}-{protocol_hash(protocol)[:6]}",
            level_of_theory=(
                f"GPAW {self.version}, PBE, PAW, plane waves {preset.ecut_eV:g} eV for every structure, "
                f"k-spacing {preset.kpoint_spacing} 1/Å"
            ),
            is_dft=True,
            correction_policy="none (raw PBE; no anion or U corrections)",
            description=f"Gnomon's GPAW backend, preset {preset.name!r}: {preset.as_dict()}",
            protocol=protocol,
        )

    def settings_for(self, structure: Structure, preset: Preset, *, is_molecule: bool) -> dict[str, Any]:
        """Every setting that determines the energy, recorded with the result."""
        symbols = [site.specie.symbol for site in structure]
        mesh = (1, 1, 1) if is_molecule else preset.kpoints_for(structure.lattice.matrix)
        magmoms = initial_magmoms(symbols, is_molecule=is_molecule)
        n_valence = sum(_valence_electrons(s) for s in symbols)
        return {
            "code": f"GPAW {self.version}",
            "xc": "PBE",
            "mode": "PW",
            "ecut_eV": preset.ecut_eV,
            "kpts": list(mesh),
            "kpoint_spacing_inv_A": None if is_molecule else preset.kpoint_spacing,
            "smearing": "fermi-dirac",
            "smearing_eV": preset.molecule_smearing_eV if is_molecule else preset.smearing_eV,
            "scf_energy_eV": preset.scf_energy_eV,
            "scf_maxiter": preset.scf_maxiter,
            "n_valence_electrons": n_valence,
            "nbands": nbands_for(n_valence, len(symbols), sum(abs(m) for m in magmoms or [])),
            "spinpol": magmoms is not None,
            "initial_magmoms": magmoms,
            "molecule_in_box": is_molecule,
            "relaxation": (
                "none"
                if not preset.relax
                else f"BFGS{'' if is_molecule or not preset.relax_cell else ', FrechetCellFilter'}, "
                f"fmax {preset.fmax} eV/A, at most {preset.max_steps} steps"
            ),
            "final_single_point": preset.final_single_point,
            "prerelax": "CHGNet (ML), starting geometry only" if preset.prerelax and not is_molecule else "none",
            "setups": _setups_description(),
            "preset": preset.as_dict(),
        }

    def _calculator(self, settings: dict[str, Any], txt: Path, fallback: dict | None):
        from gpaw import GPAW, PW, FermiDirac

        width = settings["smearing_eV"] * (fallback or {}).get("smearing_factor", 1.0)
        params: dict[str, Any] = {
            "mode": PW(settings["ecut_eV"]),
            "xc": "PBE",
            "kpts": {"size": settings["kpts"], "gamma": True},
            "occupations": FermiDirac(width),
            "nbands": int(settings["nbands"]),
            "convergence": {"energy": settings["scf_energy_eV"]},
            "maxiter": int(settings["scf_maxiter"] * (fallback or {}).get("maxiter_factor", 1)),
            "txt": str(txt),
        }
        if settings["spinpol"]:
            params["spinpol"] = True
        if fallback and "mixer" in fallback:
            params["mixer"] = dict(fallback["mixer"])
        return GPAW(**params)

    def _with_scf_fallbacks(self, step: str, settings: dict, preset: Preset, workdir: Path,
                            attempt: Callable[[Any], Any]) -> tuple[Any, dict]:
        """Run ``attempt(calculator)``, retrying with each SCF fallback when the SCF does not converge."""
        errors: list[str] = []
        for i, fallback in enumerate((None, *preset.scf_fallbacks)):
            calc = self._calculator(settings, workdir / f"{step}-{i}.txt", fallback)
            try:
                value = attempt(calc)
            except Exception as exc:  # noqa: BLE001 - GPAW's ConvergenceError family, matched by name below
                if "ConvergenceError" not in type(exc).__name__:
                    raise
                errors.append(f"{step} try {i}: {type(exc).__name__}: {exc}")
                continue
            niter = None
            try:
                niter = int(calc.get_number_of_iterations())
            except Exception:  # noqa: BLE001, S110 - the iteration count is informative only
                pass
            return value, {"converged": True, "fallback": i, "fallback_settings": fallback, "iterations": niter,
                           "errors": errors, "log": f"{step}-{i}.txt"}
        raise SCFNotConverged(
            f"SCF did not converge in step {step!r} after {len(preset.scf_fallbacks)} fallbacks: {'; '.join(errors)}"
        )

    def run(self, structure: Structure, preset: Preset, *, workdir: Path, is_molecule: bool = False) -> DFTResult:
        from ase.filters import FrechetCellFilter
        from ase.optimize import BFGS

        workdir = Path(workdir)
        workdir.mkdir(parents=True, exist_ok=True)
        settings = self.settings_for(structure, preset, is_molecule=is_molecule)
        timings: dict[str, float] = {}
        t_start = time.perf_counter()
        start_structure, prerelax = structure, {"used": False}
        if preset.prerelax and not is_molecule:
            t_pre = time.perf_counter()
            start_structure, prerelax = _prerelax(structure, preset, workdir / "prerelax")
            timings["prerelax_s"] = time.perf_counter() - t_pre
        atoms = AseAtomsAdaptor.get_atoms(start_structure)
        if is_molecule:
            atoms.pbc = True  # periodic box, Γ only: what the bootstrap set did
        # Spin comes from the recipe alone: a "magmom" site property (CHGNet writes one; so may imported data) would
        # otherwise make GPAW spin-polarise a non-magnetic cell behind the settings' back, at twice the cost.
        atoms.set_initial_magnetic_moments(settings["initial_magmoms"] or [0.0] * len(atoms))
        t0 = time.perf_counter()
        relaxation: dict[str, Any] = {"steps": 0, "converged": None}
        scf: dict[str, Any] = {}

        if preset.relax:
            def relax(calc):
                atoms.calc = calc
                target = atoms if (is_molecule or not preset.relax_cell) else FrechetCellFilter(atoms)
                opt = BFGS(target, logfile=str(workdir / "relax.log"), trajectory=str(workdir / "relax.traj"))
                converged = opt.run(fmax=preset.fmax, steps=preset.max_steps)
                return converged, opt.get_number_of_steps()

            (converged, steps), scf["relaxation"] = self._with_scf_fallbacks("relax", settings, preset, workdir, relax)
            relaxation = {"steps": int(steps), "converged": bool(converged), "fmax": preset.fmax}
            timings["relaxation_s"] = time.perf_counter() - t0
            if not np.all(np.isfinite(atoms.get_positions())) or atoms.get_volume() <= 0:
                raise PhysicsError(f"relaxation of {structure.composition.reduced_formula} produced an invalid cell")

        t1 = time.perf_counter()
        final_atoms = atoms.copy()
        if settings["initial_magmoms"] is not None:
            final_atoms.set_initial_magnetic_moments(settings["initial_magmoms"])

        def single_point(calc):
            final_atoms.calc = calc
            energy = float(final_atoms.get_potential_energy())
            magmom = None
            if settings["spinpol"]:
                try:
                    magmom = float(final_atoms.get_magnetic_moment())
                except Exception:  # noqa: BLE001 - informative only
                    magmom = None
            forces = final_atoms.get_forces()
            stress = None if is_molecule else final_atoms.get_stress().tolist()
            return energy, magmom, float(np.abs(forces).max()) if len(forces) else 0.0, stress

        if preset.final_single_point or not preset.relax:
            (energy, magmom, max_force, stress), scf["final"] = self._with_scf_fallbacks(
                "final", settings, preset, workdir, single_point
            )
        else:  # pragma: no cover - every preset ends with a single point
            energy, magmom, max_force, stress = single_point(atoms.calc)
        orderings = {"FM": energy} if settings["spinpol"] else {}
        starts = magnetic_starts([a.symbol for a in final_atoms], final_atoms.get_scaled_positions(),
                                 preset.magnetic_orderings, is_molecule=is_molecule)
        for name, moments in starts[1:]:  # other orderings at the relaxed geometry; the lowest energy is kept
            final_atoms.set_initial_magnetic_moments(moments)
            (e, m, f, st), scf[f"final-{name}"] = self._with_scf_fallbacks(
                f"final-{name}", settings, preset, workdir, single_point)
            orderings[name] = e
            if e < energy:
                energy, magmom, max_force, stress = e, m, f, st
                scf["final"] = scf[f"final-{name}"]
                settings["initial_magmoms"] = moments
        if orderings:
            settings["magnetic_ordering"] = min(orderings, key=orderings.get)
        timings["final_single_point_s"] = time.perf_counter() - t1
        timings["total_s"] = time.perf_counter() - t_start

        relaxed = AseAtomsAdaptor.get_structure(final_atoms)
        final_log = workdir / scf["final"]["log"]
        return DFTResult(
            energy_total=energy,
            structure=relaxed,
            initial_structure=structure,
            scheme=self.scheme_for(preset),
            settings=settings,
            scf=scf,
            relaxation={**relaxation, "prerelax": prerelax, "final_max_force_eV_per_A": max_force, "final_stress_eV_per_A3": stress,
                        "volume_change": relaxed.volume / structure.volume - 1.0},
            timings=timings,
            peak_memory_mb=peak_memory_mb(),
            log_excerpt=_tail(final_log) + ("\n--- relax.log ---\n" + _tail(workdir / "relax.log", 15)
                                            if preset.relax else ""),
            extra={"magnetic_moment": magmom, "magnetic_orderings_eV": orderings},
        )


def _prerelax(structure: Structure, preset: Preset, workdir: Path) -> tuple[Structure, dict[str, Any]]:
    """CHGNet's relaxed structure as DFT's starting point, or the input with the reason when that is not possible."""
    from discovery.dft.ml_backend import CHGNetBackend

    try:
        result = CHGNetBackend().run(structure, preset, workdir=workdir)
    except BackendUnavailable as exc:
        return structure, {"used": False, "reason": str(exc)}
    except Exception as exc:  # noqa: BLE001 - a failed pre-relaxation only costs DFT steps, never the job
        return structure, {"used": False, "reason": f"CHGNet failed: {type(exc).__name__}: {exc}"}
    change = result.structure.volume / structure.volume - 1.0
    info = {"model": result.settings.get("model"), "steps": result.relaxation.get("steps"), "volume_change": change,
            "energy_per_atom_ml": result.energy_per_atom}
    if not np.isfinite(change) or abs(change) > MAX_PRERELAX_VOLUME_CHANGE:
        return structure, {**info, "used": False, "reason": f"volume changed by {change:+.0%}; DFT starts from the input"}
    # Only the geometry moves on: the input's species and site properties, not CHGNet's predicted magnetic moments.
    relaxed = result.structure
    start = Structure(relaxed.lattice, structure.species_and_occu, relaxed.frac_coords,
                      site_properties=structure.site_properties)
    return start, {**info, "used": True}


@functools.cache
def _valence_electrons(symbol: str) -> float:
    """Valence electrons of the element's PBE PAW setup (Ca: 10, with the 3s3p semicore)."""
    from gpaw.setup import create_setup

    return float(create_setup(symbol, "PBE").Nv)


def _setups_description() -> str:
    try:
        import gpaw_data

        return f"gpaw-data {gpaw_data.__version__} (PyPI)"
    except ImportError:
        return "GPAW_SETUP_PATH / Debian gpaw-data (/usr/share/gpaw-setups)"
