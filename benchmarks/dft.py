"""DFT benchmark: wall time and peak memory per GPAW job for 2-, 5- and 8-atom cells with the fast and standard presets,
formation energies of NaCl, MgO and LiF next to the Materials Project's, and jobs/hour for 2 worker processes.

Every calculation runs in its own subprocess (so peak memory is per job) and strictly one at a time (the machine has
2 cores shared with others); results are written to ``benchmarks/results/dft.json`` after every calculation, so a run
that is stopped early keeps what it measured. ``--plan`` picks what to run, e.g.

    .venv/bin/python benchmarks/dft.py --plan fast-sizes,formation-fast,standard-2
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
RESULTS = ROOT / "benchmarks" / "results" / "dft.json"

SIZES = {2: "NaCl-rocksalt-primitive", 5: "SrTiO3-cubic-perovskite", 8: "NaCl-rocksalt-conventional"}
FORMATION = {"NaCl": ("Na", "Cl"), "MgO": ("Mg", "O"), "LiF": ("Li", "F")}
MP_FORMULAS = {"NaCl": "Cl1Na1", "MgO": "Mg1O1", "LiF": "F1Li1"}


def structure_for(label: str):
    from pymatgen.core import Lattice, Structure

    from discovery.dft.references import binary_prototype, elemental_reference

    if label == "NaCl-rocksalt-primitive":
        return binary_prototype("rocksalt", "Na", "Cl", 2.84), False
    if label == "NaCl-rocksalt-conventional":
        return Structure.from_spacegroup("Fm-3m", Lattice.cubic(5.68), ["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]]), False
    if label == "SrTiO3-cubic-perovskite":
        return Structure.from_spacegroup("Pm-3m", Lattice.cubic(3.94), ["Sr", "Ti", "O"],
                                         [[0, 0, 0], [0.5, 0.5, 0.5], [0.5, 0.5, 0]]), False
    if label in {"NaCl", "MgO", "LiF"}:
        cation, anion = FORMATION[label]
        bonds = {"NaCl": 2.84, "MgO": 2.11, "LiF": 2.01}
        return binary_prototype("rocksalt", cation, anion, bonds[label]), False
    ref = elemental_reference(label)
    return ref.structure, ref.is_molecule


def run_one(label: str, preset: str) -> dict:
    """Runs in the child process: one GPAW job, printed as JSON."""
    import tempfile

    from discovery.dft import get_backend, get_preset

    structure, is_molecule = structure_for(label)
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="gnomon-bench-") as workdir:
        result = get_backend("gpaw").run(structure, get_preset(preset), workdir=Path(workdir), is_molecule=is_molecule)
    return {
        "label": label, "preset": preset, "natoms": len(structure), "wall_s": time.perf_counter() - t0,
        "peak_memory_mb": result.peak_memory_mb, "energy_total": result.energy_total,
        "energy_per_atom": result.energy_per_atom, "ecut_eV": result.settings["ecut_eV"],
        "kpts": result.settings["kpts"], "spinpol": result.settings["spinpol"],
        "relaxation_steps": result.relaxation.get("steps"), "relaxed": result.relaxation.get("converged"),
        "volume_change": result.relaxation.get("volume_change"), "timings": result.timings,
        "scf_iterations_final": result.scf["final"].get("iterations"),
    }


def measure(label: str, preset: str, results: dict) -> dict:
    key = f"{label}@{preset}"
    if key in results["runs"]:
        return results["runs"][key]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    print(f"==> {key}", flush=True)
    out = subprocess.run([sys.executable, __file__, "--one", label, preset], env=env, capture_output=True, text=True,
                         check=False)
    if out.returncode != 0:
        run = {"label": label, "preset": preset, "error": out.stderr[-2000:]}
    else:
        run = json.loads(out.stdout.strip().splitlines()[-1])
    results["runs"][key] = run
    save(results)
    print(f"    {json.dumps({k: run.get(k) for k in ('natoms', 'wall_s', 'peak_memory_mb', 'energy_per_atom')})}",
          flush=True)
    return run


def mp_formation_energies() -> dict[str, float]:
    data = Path(os.environ.get("GNOMON_DATA_DIR", ROOT.parent / "shared" / "data")) / "bartel2020_mp_stability" / "Ef"
    wanted = {v: k for k, v in MP_FORMULAS.items()}
    found: dict[str, float] = {}
    for name in ("train.csv", "val.csv", "test.csv"):
        path = data / name
        if path.exists():
            with path.open() as fh:
                for row in csv.DictReader(fh):
                    if row["formula"] in wanted:
                        found[wanted[row["formula"]]] = float(row["target"])
    return found


def formation(preset: str, results: dict) -> None:
    from catalog.corrections import mp2020_correction_per_atom

    mp = mp_formation_energies()
    table = results.setdefault("formation_energies", {})
    for compound, (cation, anion) in FORMATION.items():
        parts = [measure(x, preset, results) for x in (cation, anion, compound)]
        if any("error" in p for p in parts):
            continue
        e_cat, e_an, e_comp = (p["energy_per_atom"] for p in parts)
        e_form = e_comp - (e_cat + e_an) / 2
        table[f"{compound}@{preset}"] = {
            "gpaw_eV_per_atom": e_form,
            "gpaw_plus_mp2020_anion_correction_eV_per_atom": e_form + mp2020_correction_per_atom(compound),
            "mp_eV_per_atom": mp.get(compound),
            "note": "GPAW: raw PBE vs the bcc/hcp metal and the X2 molecule (Gnomon's hulls use these); MP: Bartel et "
                    "al. 2020 table (MP's 2019 snapshot with the corrections of that time, not MP2020); the middle "
                    "column adds the MP2020 anion correction (catalog.corrections, pymatgen's table) to the GPAW "
                    "value, for comparison only",
        }
        save(results)


def throughput(results: dict) -> None:
    """Jobs/hour with 2 single-threaded worker processes on 2 cores, from measured per-job wall times."""
    est = {}
    for preset in ("fast", "standard"):
        times = [r["wall_s"] for k, r in results["runs"].items() if r.get("preset") == preset and "wall_s" in r
                 and r["label"] in SIZES.values()]
        if times:
            mean = sum(times) / len(times)
            est[preset] = {"mean_job_s": mean, "jobs_per_hour_2_workers": 2 * 3600 / mean, "n_jobs_measured": len(times),
                           "basis": "2 workers x 3600 s / mean measured wall time of the 2-, 5- and 8-atom jobs (one "
                                     "DFT process at a time, single-threaded); see machine.load_average"}
    results["throughput_estimate"] = est
    save(results)


def summarise(results: dict) -> None:
    """The shared result shape: metrics of the fast preset against the standard preset as the baseline.

    speedup = mean standard-preset job time / mean fast-preset job time over the same 2-, 5- and 8-atom cells;
    formation MAE of the fast preset against MP over NaCl, MgO and LiF, raw (what the hulls use) and with the MP2020
    anion corrections added (for comparison only).
    """
    from datetime import UTC, datetime

    from benchmarks.common import machine_description

    estimate = results.get("throughput_estimate", {})
    fast, standard = estimate.get("fast", {}), estimate.get("standard", {})
    compared = [v for k, v in results.get("formation_energies", {}).items()
                if k.endswith("@fast") and v.get("mp_eV_per_atom") is not None]
    raw = [abs(v["gpaw_eV_per_atom"] - v["mp_eV_per_atom"]) for v in compared]
    errors = [abs(v["gpaw_plus_mp2020_anion_correction_eV_per_atom"] - v["mp_eV_per_atom"]) for v in compared]
    results["benchmark"] = "dft"
    results["date"] = datetime.now(UTC).isoformat(timespec="seconds")
    results["summary_of"] = "the stored runs below (each measured when it ran; machine_load gives the load then)"
    results["machine"] = machine_description()
    results["metrics"] = {
        "fast_mean_job_s": fast.get("mean_job_s"),
        "fast_jobs_per_hour_2_workers_estimated": fast.get("jobs_per_hour_2_workers"),
        "fast_formation_mae_raw_eV_per_atom": sum(raw) / len(raw) if raw else None,
        "fast_formation_mae_corrected_eV_per_atom": sum(errors) / len(errors) if errors else None,
        "n_formation_compounds": len(errors),
        "reference": "Bartel et al. 2020 table: MP's 2019 snapshot with the corrections of that time (not MP2020)",
        "scope": "three rock salts (NaCl, MgO, LiF): no transition metal, no magnetism, no polymorphs; the protocol "
                 "benchmark is benchmarks/dft_protocol.py",
        "protocol": results.get("protocol_note", "the presets of discovery/dft/presets.py when the runs were made"),
    }
    results["baseline"] = {"standard_mean_job_s": standard.get("mean_job_s"),
                           "standard_jobs_per_hour_2_workers_estimated": standard.get("jobs_per_hour_2_workers")}
    if fast.get("mean_job_s") and standard.get("mean_job_s"):
        results["speedup"] = standard["mean_job_s"] / fast["mean_job_s"]


def save(results: dict) -> None:
    summarise(results)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2, default=str))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--one", nargs=2, metavar=("LABEL", "PRESET"), help=argparse.SUPPRESS)
    parser.add_argument("--plan", default="fast-sizes,formation-fast,standard-2,standard-8,standard-5",
                        help="comma-separated: fast-sizes, standard-2, standard-5, standard-8, formation-fast, "
                             "formation-standard")
    parser.add_argument("--fresh", action="store_true", help="forget earlier results in benchmarks/results/dft.json")
    parser.add_argument("--summarise-only", action="store_true", help="rewrite the summary of the stored runs")
    args = parser.parse_args()
    if args.one:
        print(json.dumps(run_one(*args.one), default=str))
        return
    results = {"runs": {}} if args.fresh or not RESULTS.exists() else json.loads(RESULTS.read_text())
    if args.summarise_only:
        save(results)
        return
    results["machine_load"] = {"cpus": os.cpu_count(), "platform": platform.platform(),
                               "load_average_at_start": os.getloadavg()}
    for step in args.plan.split(","):
        if step == "fast-sizes":
            for label in SIZES.values():
                measure(label, "fast", results)
        elif step.startswith("standard-"):
            measure(SIZES[int(step.split("-")[1])], "standard", results)
        elif step.startswith("formation-"):
            formation(step.split("-")[1], results)
        throughput(results)
    results["machine_load"]["load_average_at_end"] = os.getloadavg()
    save(results)
    print(json.dumps({k: v for k, v in results.items() if k != "runs"}, indent=2, default=str))


if __name__ == "__main__":
    main()
