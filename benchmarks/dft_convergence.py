"""Convergence study of Gnomon's GPAW protocols: at which cutoff and k-point density do formation energies settle?

Fixed geometries (the relaxed cells of the shared GPAW-PBE bootstrap set: 11 elemental references — metals and the
O2, N2, F2, Cl2 molecules — and 17 binary compounds in their lowest prototype), single points through Gnomon's own
GPAW backend (``GPAWBackend.run`` with relaxation off), so every other setting (PAW setups, band rule, smearing, spin)
is the protocol's own. Formation energies (eV/atom) are compared within each scan:

- ``cutoff``: plane-wave cutoffs 350 … 900 eV at k-spacing 0.3 Å⁻¹, against 900 eV;
- ``kpoints``: k-spacings 0.6 … 0.15 Å⁻¹ at 600 eV, against 0.15 Å⁻¹ (molecules are Γ-only and skip it);
- ``protocols``: each preset of ``discovery.dft.presets`` as it is, against the reference protocol (900 eV,
  0.15 Å⁻¹, 0.05 eV smearing): the measured error of the cheap and the production protocol.

Every single point is stored as soon as it finishes in ``benchmarks/results/dft_convergence_runs.json``; a re-run
skips what is there, so the study resumes after an interruption. ``benchmarks/results/dft_convergence.json`` (the
standard shape) summarises what has been computed so far, with n stated.

    .venv/bin/python benchmarks/dft_convergence.py [--phases cutoff kpoints protocols] [--summarise-only]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

from benchmarks.common import RESULTS_DIR, data_dir, write_result  # noqa: E402

RUNS_FILE = RESULTS_DIR / "dft_convergence_runs.json"
ELEMENTS = ["Li-bcc", "Na-bcc", "K-bcc", "Ca-fcc", "Al-fcc", "Mg-hcp", "Zn-hcp",
            "O2-molecule", "N2-molecule", "F2-molecule", "Cl2-molecule"]
COMPOUNDS = ["LiF-rocksalt", "LiCl-rocksalt", "NaF-rocksalt", "NaCl-rocksalt", "KF-rocksalt", "KCl-rocksalt",
             "MgO-rocksalt", "CaO-rocksalt", "ZnO-wurtzite", "AlN-wurtzite", "Li2O-antifluorite", "Na2O-antifluorite",
             "K2O-antifluorite", "CaF2-fluorite", "MgF2-fluorite", "ZnF2-fluorite", "CaCl2-fluorite"]
CUTOFFS_EV = [350, 400, 450, 500, 550, 600, 700, 900]
CUTOFF_SCAN_K = 0.3
KSPACINGS = [0.6, 0.5, 0.4, 0.3, 0.25, 0.2, 0.15]
KSCAN_CUTOFF_EV = 600
REFERENCE = {"ecut_eV": 900.0, "kpoint_spacing": 0.15, "smearing_eV": 0.05}
TOLERANCE_EV_PER_ATOM = 0.010


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def load_structures() -> dict[str, Any]:
    from pymatgen.entries.computed_entries import ComputedStructureEntry

    entries = json.loads((data_dir() / "gpaw-pbe-bootstrap" / "entries.json").read_text())
    wanted = set(ELEMENTS) | set(COMPOUNDS)
    out = {}
    for raw in entries:
        label = raw["data"]["label"]
        if label in wanted:
            out[label] = ComputedStructureEntry.from_dict(raw).structure
    missing = wanted - set(out)
    if missing:
        raise SystemExit(f"not in the bootstrap set: {sorted(missing)}")
    return out


def run_key(label: str, ecut: float, kspacing: float, smearing: float) -> str:
    return f"{label}|{ecut:g}|{kspacing:g}|{smearing:g}"


def single_point(backend, structure, label: str, preset) -> dict[str, Any]:
    is_molecule = label.endswith("-molecule")
    t0 = time.process_time()
    wall0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="gnomon-conv-") as tmp:
        result = backend.run(structure, preset, workdir=Path(tmp), is_molecule=is_molecule)
    return {"label": label, "energy_per_atom_eV": result.energy_total / len(structure),
            "nbands": result.settings.get("nbands"), "kpts": result.settings.get("kpts"),
            "cpu_s": round(time.process_time() - t0, 1), "wall_s": round(time.perf_counter() - wall0, 1)}


def plan(phases: list[str]) -> list[tuple[str, str, dict[str, float]]]:
    """(phase, label, overrides) in the order they run: the cheap, most informative runs first."""
    from discovery.dft.presets import PRESETS

    labels = ELEMENTS + COMPOUNDS
    jobs = []
    if "cutoff" in phases:
        for ecut in CUTOFFS_EV:
            jobs += [("cutoff", label, {"ecut_eV": float(ecut), "kpoint_spacing": CUTOFF_SCAN_K,
                                        "smearing_eV": REFERENCE["smearing_eV"]}) for label in labels]
    if "protocols" in phases:
        for name in ("fast", "standard"):
            p = PRESETS[name]
            jobs += [("protocols", label, {"ecut_eV": p.ecut_eV, "kpoint_spacing": p.kpoint_spacing,
                                           "smearing_eV": p.smearing_eV}) for label in labels]
        jobs += [("protocols", label, dict(REFERENCE)) for label in labels]
    if "kpoints" in phases:
        for k in KSPACINGS:
            jobs += [("kpoints", label, {"ecut_eV": float(KSCAN_CUTOFF_EV), "kpoint_spacing": k,
                                         "smearing_eV": REFERENCE["smearing_eV"]})
                     for label in labels if not label.endswith("-molecule")]
    return jobs


def formation_energies(energies: dict[str, float], structures: dict[str, Any]) -> dict[str, float]:
    """Ef (eV/atom) of each compound whose elements are all present in ``energies`` (labels → eV/atom)."""
    mu = {structures[label].composition.elements[0].symbol: e for label, e in energies.items() if label in ELEMENTS}
    out = {}
    for label in COMPOUNDS:
        if label not in energies:
            continue
        comp = structures[label].composition
        if all(el.symbol in mu for el in comp.elements):
            n = comp.num_atoms
            out[label] = energies[label] - sum(amount * mu[el.symbol] for el, amount in comp.items()) / n
    return out


def summarise(runs: dict[str, dict], structures: dict[str, Any]) -> None:
    from discovery.dft.presets import PRESETS

    def energies_at(ecut: float, k: float, smearing: float) -> dict[str, float]:
        return {label: runs[key]["energy_per_atom_eV"] for label in ELEMENTS + COMPOUNDS
                if (key := run_key(label, ecut, k if not label.endswith("-molecule") else 0, smearing)) in runs}

    smear = REFERENCE["smearing_eV"]
    metrics: dict[str, Any] = {"n_structures": len(ELEMENTS) + len(COMPOUNDS), "n_single_points": len(runs)}
    def scan(points: list[tuple[str, dict[str, float]]], ref: dict[str, float]) -> dict[str, dict]:
        """Per scan point: max |ΔEf| (eV/atom) over the compounds against ``ref``, the worst one and every ΔEf."""
        rows = {}
        for key, energies in points:
            ef = formation_energies(energies, structures)
            errors = {c: round(ef[c] - ref[c], 4) for c in sorted(set(ef) & set(ref))}
            if errors:
                rows[key] = {"n": len(errors), "max_abs_dEf_eV_per_atom": max(abs(v) for v in errors.values()),
                             "worst": max(errors, key=lambda c: abs(errors[c])), "dEf": errors}
        return rows

    ref = formation_energies(energies_at(CUTOFFS_EV[-1], CUTOFF_SCAN_K, smear), structures)
    cutoff_rows = scan([(str(e), energies_at(e, CUTOFF_SCAN_K, smear)) for e in CUTOFFS_EV[:-1]], ref)
    metrics["cutoff_scan"] = {"kpoint_spacing": CUTOFF_SCAN_K, "reference_ecut_eV": CUTOFFS_EV[-1], "by_cutoff": cutoff_rows}
    converged = [int(e) for e, row in cutoff_rows.items()
                 if row["max_abs_dEf_eV_per_atom"] <= TOLERANCE_EV_PER_ATOM and row["n"] == len(COMPOUNDS)]
    metrics["cutoff_converged_eV"] = min(converged) if converged else None
    ref_k = formation_energies(energies_at(KSCAN_CUTOFF_EV, KSPACINGS[-1], smear), structures)
    k_rows = scan([(str(k), energies_at(KSCAN_CUTOFF_EV, k, smear)) for k in KSPACINGS[:-1]], ref_k)
    metrics["kpoint_scan"] = {"ecut_eV": KSCAN_CUTOFF_EV, "reference_spacing": KSPACINGS[-1], "by_spacing": k_rows}
    # the protocols against the reference protocol
    ref_p = formation_energies(energies_at(REFERENCE["ecut_eV"], REFERENCE["kpoint_spacing"], smear), structures)
    protocol_rows = {}
    for name in ("fast", "standard"):
        p = PRESETS[name]
        ef = formation_energies(energies_at(p.ecut_eV, p.kpoint_spacing, p.smearing_eV), structures)
        common = sorted(set(ef) & set(ref_p))
        if common:
            errors = [abs(ef[c] - ref_p[c]) for c in common]
            cpu = [runs[run_key(lab, p.ecut_eV, 0 if lab.endswith("-molecule") else p.kpoint_spacing, p.smearing_eV)]
                   ["cpu_s"] for lab in common]
            protocol_rows[name] = {"n": len(common), "ecut_eV": p.ecut_eV, "kpoint_spacing": p.kpoint_spacing,
                                   "mae_dEf_eV_per_atom": round(sum(errors) / len(errors), 4),
                                   "max_abs_dEf_eV_per_atom": round(max(errors), 4),
                                   "mean_cpu_s_per_compound_single_point": round(sum(cpu) / len(cpu), 1)}
    metrics["protocols_vs_reference"] = {"reference": REFERENCE, "by_protocol": protocol_rows}
    write_result("dft_convergence", metrics, None, None, extra={
        "tolerance_eV_per_atom": TOLERANCE_EV_PER_ATOM,
        "structures": "relaxed cells of the shared GPAW-PBE bootstrap set (data/gpaw-pbe-bootstrap/entries.json)",
        "method": "single points through discovery.dft.gpaw_backend.GPAWBackend with relaxation off",
    })


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--phases", nargs="+", default=["cutoff", "protocols", "kpoints"],
                        choices=["cutoff", "protocols", "kpoints"])
    parser.add_argument("--summarise-only", action="store_true")
    options = parser.parse_args()
    from discovery.dft.gpaw_backend import GPAWBackend
    from discovery.dft.presets import PRESETS

    structures = load_structures()
    runs: dict[str, dict] = json.loads(RUNS_FILE.read_text()) if RUNS_FILE.exists() else {}
    if not options.summarise_only:
        backend = GPAWBackend()
        base = dataclasses.replace(PRESETS["standard"], relax=False, prerelax=False, final_single_point=True)
        jobs = plan(options.phases)
        todo = [(phase, label, o) for phase, label, o in jobs
                if run_key(label, o["ecut_eV"], 0 if label.endswith("-molecule") else o["kpoint_spacing"],
                           o["smearing_eV"]) not in runs]
        log(f"{len(jobs)} single points planned, {len(jobs) - len(todo)} already done")
        for i, (phase, label, overrides) in enumerate(todo, 1):
            key = run_key(label, overrides["ecut_eV"], 0 if label.endswith("-molecule") else overrides["kpoint_spacing"],
                          overrides["smearing_eV"])
            if key in runs:  # the same point planned by two phases
                continue
            preset = dataclasses.replace(base, **overrides)
            try:
                runs[key] = {"phase": phase, **single_point(backend, structures[label], label, preset)}
            except Exception as exc:  # noqa: BLE001 - record it and go on with the others
                runs[key] = {"phase": phase, "label": label, "error": f"{type(exc).__name__}: {exc}"}
            log(f"{i}/{len(todo)} {phase} {key}: {runs[key].get('energy_per_atom_eV', runs[key].get('error'))}")
            RUNS_FILE.write_text(json.dumps(runs, indent=1, sort_keys=True) + "\n")
            if i % 10 == 0:
                summarise({k: v for k, v in runs.items() if "error" not in v}, structures)
    summarise({k: v for k, v in runs.items() if "error" not in v}, structures)


if __name__ == "__main__":
    main()
