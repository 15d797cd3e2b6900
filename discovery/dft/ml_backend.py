"""An ML interatomic potential (CHGNet 0.4.2, weights inside the PyPI wheel) as a labelled pre-relaxer and ML energy.

Its energies form their own scheme, ``ML-CHGNet-0.4.2-<protocol hash>`` (``is_dft=False``): CHGNet is trained on Materials Project
GGA/GGA+U energies (MP2020-corrected), so its numbers are neither raw PBE nor DFT and must never enter a DFT hull.
Presets only change the relaxation thresholds (``fmax``, ``max_steps``).
"""

from __future__ import annotations

import contextlib
import io
import time
from pathlib import Path

from pymatgen.core import Structure

from catalog.protocols import protocol_hash
from discovery.dft.base import BackendUnavailable, DFTResult, SchemeSpec
from discovery.dft.presets import Preset

CHGNET_VERSION = "0.4.2"
_MODEL = None  # loading the weights takes seconds; one model per process


def _load_model():
    global _MODEL
    if _MODEL is None:
        try:
            from chgnet.model import CHGNet
        except ImportError as exc:
            raise BackendUnavailable(f"chgnet is not installed; pip install chgnet=={CHGNET_VERSION}") from exc
        with contextlib.redirect_stdout(io.StringIO()):
            _MODEL = CHGNet.load(verbose=False)
    return _MODEL


class CHGNetBackend:
    name = "ml"
    is_dft = False

    def __init__(self, **_options: object) -> None:
        pass

    def scheme_for(self, preset: Preset) -> SchemeSpec:
        protocol = {"code": f"CHGNet {CHGNET_VERSION}", "weights": "pretrained, shipped in the wheel",
                    "relaxation": f"FIRE, FrechetCellFilter to fmax {preset.fmax} eV/A", "level": "ML"}
        return SchemeSpec(
            # the protocol's hash in the name, as for every scheme: another fmax is another scheme
            name=f"ML-CHGNet-{CHGNET_VERSION}-{protocol_hash(protocol)[:6]}",
            protocol=protocol,
            level_of_theory=f"CHGNet {CHGNET_VERSION} universal potential (trained on MPtrj, GGA/GGA+U)",
            is_dft=False,
            correction_policy="implicit MP2020 (CHGNet learns MP-compatible energies); never mixed with DFT",
            description="ML energies and relaxed structures: a pre-relaxer and a cheap label, not a verification",
        )

    def run(self, structure: Structure, preset: Preset, *, workdir: Path, is_molecule: bool = False) -> DFTResult:
        from chgnet.model import StructOptimizer

        model = _load_model()
        t0 = time.perf_counter()
        relax_cell = preset.relax_cell and not is_molecule
        with contextlib.redirect_stdout(io.StringIO()):
            relaxed = StructOptimizer(model=model).relax(
                structure, fmax=preset.fmax, steps=max(preset.max_steps, 100), relax_cell=relax_cell, verbose=False
            )
        final: Structure = relaxed["final_structure"]
        trajectory = relaxed["trajectory"]
        prediction = model.predict_structure(final, task="e")
        energy_total = float(prediction["e"]) * len(final)
        seconds = time.perf_counter() - t0
        return DFTResult(
            energy_total=energy_total,
            structure=final,
            initial_structure=structure,
            scheme=self.scheme_for(preset),
            settings={"model": f"CHGNet {CHGNET_VERSION}", "fmax_eV_per_A": preset.fmax, "relax_cell": relax_cell,
                      "optimizer": "FIRE", "filter": "FrechetCellFilter" if relax_cell else None,
                      "preset": preset.name},
            relaxation={"steps": len(trajectory.energies), "converged": None,
                        "volume_change": final.volume / structure.volume - 1.0},
            timings={"total_s": seconds},
            log_excerpt=f"CHGNet relaxation: {len(trajectory.energies)} steps, E = {energy_total:.4f} eV",
        )
