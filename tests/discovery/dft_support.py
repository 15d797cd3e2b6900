"""Test support for the DFT jobs: a deliberately slow fake backend with toy energies.

The real Celery worker of the kill tests imports this module through ``GNOMON_DFT_BACKEND_PLUGINS``, which registers
the backend there too.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from pymatgen.core import Structure

from discovery.dft.base import DFTResult, PhysicsError, SchemeSpec, TransientDFTError, register_backend
from discovery.dft.presets import Preset

TOY_ELEMENT_ENERGY = {"Na": -1.3, "Cl": -1.8, "Li": -1.9, "O": -4.9, "Mg": -1.6, "F": -1.7}


class SlowFakeBackend:
    """Sleeps ``GNOMON_TEST_DFT_SLEEP`` seconds, then returns a toy energy: a stand-in for a long DFT run.

    Structures with the property ``fail`` ("physics" or "transient") raise the matching error; "unconverged" returns
    a relaxation that stopped at its step limit.
    """

    name = "slow-fake"
    is_dft = False

    def __init__(self, **_options: object) -> None:
        pass

    def scheme_for(self, preset: Preset) -> SchemeSpec:
        return SchemeSpec(name=f"TEST-fake-{preset.name}", level_of_theory="toy energies for tests", is_dft=False,
                          correction_policy="none")

    def run(self, structure: Structure, preset: Preset, *, workdir: Path, is_molecule: bool = False) -> DFTResult:
        workdir.mkdir(parents=True, exist_ok=True)
        (workdir / "started").write_text(str(os.getpid()))
        failure = structure.properties.get("fail") if hasattr(structure, "properties") else None
        if failure == "physics":
            raise PhysicsError("SCF did not converge after 2 fallbacks (fake)")
        if failure == "transient":
            raise TransientDFTError("node lost (fake)")
        time.sleep(float(os.environ.get("GNOMON_TEST_DFT_SLEEP", "0")))
        comp = structure.composition
        energy = sum(TOY_ELEMENT_ENERGY.get(el.symbol, -1.0) * amt for el, amt in comp.items())
        if len(comp.elements) > 1:
            energy -= 1.0 * comp.num_atoms
        # "unconverged": the relaxation used up its step budget (the structure keeps the property, so it always does)
        relaxation = {"converged": failure != "unconverged", "steps": preset.max_steps if failure else 3}
        return DFTResult(energy_total=float(energy), structure=structure, initial_structure=structure,
                         scheme=self.scheme_for(preset), settings={"fake": True, "preset": preset.name},
                         scf={"converged": True}, relaxation=relaxation, timings={"total_s": 0.0},
                         log_excerpt="fake run")


register_backend("slow-fake", SlowFakeBackend)


def _slow_hull_updates() -> None:
    """In a worker started with ``GNOMON_TEST_HULL_SLEEP``: every hull update first leaves a marker file in the DFT
    work directory, then sleeps, so a test can kill the worker in the middle of one."""
    delay = float(os.environ.get("GNOMON_TEST_HULL_SLEEP", "0"))
    if not delay:
        return
    from catalog.services import hulls

    original = hulls.update_hulls

    def update_hulls(*args, **kwargs):
        marker = Path(os.environ.get("GNOMON_DFT_WORKDIR", ".")) / "hull-update-started"
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.write_text(str(os.getpid()))
        time.sleep(delay)
        return original(*args, **kwargs)

    hulls.update_hulls = update_hulls


_slow_hull_updates()
