"""Real DFT with GPAW (slow, but run in CI): a 2-atom ``fast`` relaxation, and the shared bootstrap set reproduced.

Total GPAW time here is kept to about a minute on an idle 2-core machine.
"""

from __future__ import annotations

import dataclasses
import json

import pytest
from pymatgen.core import Lattice, Structure
from pymatgen.entries.computed_entries import ComputedStructureEntry

from discovery.dft import get_backend, get_preset

pytest.importorskip("gpaw", reason="GPAW is not installed: run scripts/install_gpaw.sh")
pytestmark = pytest.mark.slow


def test_fast_preset_relaxes_nacl_with_real_dft(tmp_path):
    start = Structure.from_spacegroup("Fm-3m", Lattice.cubic(5.55), ["Na", "Cl"],
                                      [[0, 0, 0], [0.5, 0.5, 0.5]]).get_primitive_structure()
    result = get_backend("gpaw").run(start, get_preset("fast"), workdir=tmp_path)

    assert result.scheme.name.startswith("GPAW-PBE-fast-") and result.scheme.is_dft
    assert result.settings["ecut_eV"] == 500.0 and result.settings["kpts"] == [4, 4, 4]
    assert result.settings["nbands"] > result.settings["n_valence_electrons"] / 2  # empty bands
    assert result.settings["spinpol"] is False and result.settings["xc"] == "PBE"
    assert result.scf["final"]["converged"] and result.scf["final"]["iterations"] > 0
    # a squeezed cell (a = 5.55 Å) expands towards PBE's 5.68 Å
    a_conventional = result.structure.lattice.a * 2**0.5
    assert 5.58 < a_conventional < 5.80
    # CHGNet pre-relaxed the cell first; GPAW then relaxed it to its own minimum
    assert result.relaxation["prerelax"]["used"] is True and result.settings["prerelax"].startswith("CHGNet")
    assert result.relaxation["prerelax"]["volume_change"] > 0.01
    assert result.relaxation["converged"] is True and result.relaxation["volume_change"] > 0.01
    assert -3.5 < result.energy_per_atom < -3.2  # GPAW energies are relative to the PAW reference atoms
    assert result.timings["total_s"] > 0 and result.peak_memory_mb > 50
    assert "BFGS:" in result.log_excerpt and "Xc:" in result.log_excerpt  # GPAW's energy terms + the relaxation log
    assert "Local magnetic moments" not in result.log_excerpt  # CHGNet's magmoms did not switch spin on


@pytest.mark.parametrize("label", ["Na-bcc", "NaCl-rocksalt"])
def test_bootstrap_preset_reproduces_the_shared_gpaw_set(label, shared_data_dir, tmp_path):
    """Same settings as ../shared/data/gpaw-pbe-bootstrap (README there): energies agree within 5 meV/atom.

    A single point on the set's relaxed structure checks cutoff, k-mesh, smearing and setups without paying for a
    relaxation."""
    path = shared_data_dir / "gpaw-pbe-bootstrap" / "entries.json"
    if not path.exists():
        pytest.skip(f"{path} not found: set GNOMON_DATA_DIR to shared/data")
    entries = {e["data"]["label"]: ComputedStructureEntry.from_dict(e) for e in json.loads(path.read_text())}
    reference = entries[label]
    preset = dataclasses.replace(get_preset("bootstrap"), relax=False)
    result = get_backend("gpaw").run(reference.structure, preset, workdir=tmp_path)
    assert result.settings["kpts"] == list(reference.data["kpts"]) or label != "Na-bcc"
    difference = abs(result.energy_per_atom - reference.energy_per_atom)
    assert difference < 0.005, f"{label}: {result.energy_per_atom:.5f} vs {reference.energy_per_atom:.5f} eV/atom"


def test_scheme_names_carry_the_protocol_hash():
    from catalog.protocols import GPAW_BOOTSTRAP_SET, protocol_hash

    backend = get_backend("gpaw")
    specs = {p: backend.scheme_for(get_preset(p)) for p in ("fast", "standard", "bootstrap")}
    for name, spec in specs.items():
        assert spec.is_dft and spec.name == f"GPAW-PBE-{name}-{protocol_hash(spec.protocol)[:6]}"
        assert spec.protocol["setups"] and spec.protocol["code"].startswith("GPAW")
    # the shared seed set was computed with Debian's setups and GPAW's default bands: another protocol, another scheme
    assert specs["bootstrap"].protocol_hash != protocol_hash(GPAW_BOOTSTRAP_SET)
    assert specs["bootstrap"].name != "GPAW-PBE-bootstrap"


def test_one_atom_alkaline_earth_cells_get_empty_bands():
    backend = get_backend("gpaw")
    for element, a in (("Ca", 5.58), ("Sr", 6.08), ("Ba", 5.02)):
        structure = Structure.from_spacegroup("Fm-3m" if element != "Ba" else "Im-3m", Lattice.cubic(a), [element],
                                              [[0, 0, 0]]).get_primitive_structure()
        settings = backend.settings_for(structure, get_preset("fast"), is_molecule=False)
        assert settings["n_valence_electrons"] == 10  # 3s3p4s (Ca), 4s4p5s (Sr), 5s5p6s (Ba) in the PBE setups
        assert settings["nbands"] >= 9  # GPAW's own default was 5: every state filled, none empty


class _ExplodingPotential:
    """Stands in for CHGNet where the test needs a pre-relaxation that fails or goes astray."""

    def __init__(self, outcome):
        self.outcome = outcome

    def __call__(self, **_options):
        return self

    def run(self, structure, preset, *, workdir, is_molecule=False):
        if isinstance(self.outcome, Exception):
            raise self.outcome
        swollen = structure.copy(site_properties={"magmom": [0.7] * len(structure)})  # as CHGNet writes them
        swollen.scale_lattice(structure.volume * self.outcome)
        return dataclasses.replace(_fake_result(structure), structure=swollen)


def _fake_result(structure):
    from discovery.dft.base import DFTResult, SchemeSpec

    return DFTResult(energy_total=-1.0, structure=structure, scheme=SchemeSpec("ML", "ML", False, "none"),
                     settings={"model": "fake"}, relaxation={"steps": 3})


@pytest.mark.parametrize(
    ("outcome", "reason"),
    [(RuntimeError("weights missing"), "CHGNet failed: RuntimeError: weights missing"), (3.0, "volume changed by +200%")],
)
def test_a_failed_or_wild_prerelaxation_starts_dft_from_the_input(outcome, reason, monkeypatch, tmp_path):
    from discovery.dft import gpaw_backend, ml_backend

    monkeypatch.setattr(ml_backend, "CHGNetBackend", _ExplodingPotential(outcome))
    start = Structure(Lattice.cubic(3.0), ["Na"], [[0, 0, 0]])
    structure, info = gpaw_backend._prerelax(start, get_preset("fast"), tmp_path)
    assert structure is start and info["used"] is False and reason in info["reason"]


def test_a_prerelaxation_hands_on_the_geometry_but_not_the_ml_magnetic_moments(monkeypatch, tmp_path):
    from discovery.dft import gpaw_backend, ml_backend

    monkeypatch.setattr(ml_backend, "CHGNetBackend", _ExplodingPotential(1.1))
    start = Structure(Lattice.cubic(5.6), ["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    structure, info = gpaw_backend._prerelax(start, get_preset("fast"), tmp_path)
    assert info["used"] is True and structure.volume == pytest.approx(start.volume * 1.1)
    assert "magmom" not in structure.site_properties and [str(s) for s in structure.species] == ["Na", "Cl"]


def test_molecules_are_not_prerelaxed():
    backend = get_backend("gpaw")
    cl2 = Structure(Lattice.cubic(9.0), ["Cl", "Cl"], [[0.5, 0.5, 0.5], [0.5, 0.5, 0.72]])
    assert backend.settings_for(cl2, get_preset("fast"), is_molecule=True)["prerelax"] == "none"
    assert backend.settings_for(cl2, get_preset("fast"), is_molecule=False)["prerelax"].startswith("CHGNet")
    assert backend.settings_for(cl2, get_preset("standard"), is_molecule=False)["prerelax"] == "none"
