"""Gnomon's GPAW protocols against the Materials Project: formation energies, hull verdicts and polymorph order.

41 compounds — halides, oxides, nitrides, chalcogenides and intermetallics of s-, p- and d-block metals (13 with a
d-block element) — plus 8 higher-energy polymorphs of eight of them, and the 27 elemental references they need, are
relaxed with each protocol through Gnomon's own GPAW backend (``GPAWBackend.run``: CHGNet pre-relaxation for
``fast``, the production protocol starting from the ``fast`` geometry when it has one). Starting structures: the
relaxed cells of the shared GPAW-PBE bootstrap set where it has them, else standard prototypes built here (named
per compound in ``STRUCTURES``). Every relaxation is stored as soon as it finishes in
``benchmarks/results/dft_protocol_runs.json``, so the benchmark resumes; the summary in
``benchmarks/results/dft_protocol.json`` states n for everything it reports.

Against the Materials Project formation energies of the Bartel et al. 2020 table (MP's 2019 snapshot, with the
corrections of that time):

- ``formation_mae_raw_eV_per_atom``: raw PBE formation energies;
- ``formation_mae_corrected_eV_per_atom``: the same plus the MP2020 anion corrections (``catalog.corrections``);
- ``ehull_sign_agreement``: the hull of the benchmark's own compounds is built twice, from the protocol's energies and
  from MP's formation energies of the same compounds; among compounds with |e_above_hull_MP| ≥ 25 meV/atom, the
  fraction whose stable/unstable verdict agrees;
- ``polymorph_order_agreement``: of the polymorph pairs, the fraction the protocol orders like nature: the
  ambient-pressure phase below the high-pressure one (a pressure-induced transition B1 → B2, B4/B3 → B1 means the
  high-pressure phase lies higher at 0 GPa; the source of each pair is named in ``POLYMORPH_PAIRS``).

    .venv/bin/python benchmarks/dft_protocol.py --protocols fast [standard] [--only LABEL ...] [--summarise-only]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
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

RUNS_FILE = RESULTS_DIR / "dft_protocol_runs.json"
EHULL_THRESHOLD = 0.025  # eV/atom: verdicts closer to the MP hull than this are not counted (issue's definition)

# label → (prototype, lattice constant(s) in Å, source); "bootstrap" = the shared GPAW-PBE set's relaxed cell
STRUCTURES: dict[str, tuple[str, tuple[float, ...], str]] = {
    # halides
    "LiF-rocksalt": ("bootstrap", (), "bootstrap set"),
    "LiCl-rocksalt": ("bootstrap", (), "bootstrap set"),
    "NaF-rocksalt": ("bootstrap", (), "bootstrap set"),
    "NaCl-rocksalt": ("bootstrap", (), "bootstrap set"),
    "KF-rocksalt": ("bootstrap", (), "bootstrap set"),
    "KCl-rocksalt": ("bootstrap", (), "bootstrap set"),
    "RbCl-rocksalt": ("rocksalt", (6.59,), "rock salt, experimental a"),
    "KBr-rocksalt": ("rocksalt", (6.60,), "rock salt, experimental a"),
    # oxides and a fluoride
    "MgO-rocksalt": ("bootstrap", (), "bootstrap set"),
    "CaO-rocksalt": ("bootstrap", (), "bootstrap set"),
    "SrO-rocksalt": ("rocksalt", (5.16,), "rock salt, experimental a"),
    "ZnO-wurtzite": ("bootstrap", (), "bootstrap set"),
    "Li2O-antifluorite": ("bootstrap", (), "bootstrap set"),
    "Na2O-antifluorite": ("bootstrap", (), "bootstrap set"),
    "K2O-antifluorite": ("bootstrap", (), "bootstrap set"),
    "CaF2-fluorite": ("bootstrap", (), "bootstrap set"),
    # nitrides
    "AlN-wurtzite": ("bootstrap", (), "bootstrap set"),
    "TiN-rocksalt": ("rocksalt", (4.24,), "rock salt, experimental a"),
    "ZrN-rocksalt": ("rocksalt", (4.58,), "rock salt, experimental a"),
    "HfN-rocksalt": ("rocksalt", (4.52,), "rock salt, experimental a"),
    "ScN-rocksalt": ("rocksalt", (4.50,), "rock salt, experimental a"),
    "Li3N-Li3N": ("Li3N", (3.65, 3.87), "alpha-Li3N (P6/mmm), experimental a, c"),
    "Na3N-antiReO3": ("antiReO3", (4.73,), "anti-ReO3 (Pm-3m), as MP's metastable Na3N"),
    # chalcogenides
    "ZnSe-zincblende": ("zincblende", (5.67,), "zinc blende, experimental a"),
    "ZnTe-zincblende": ("zincblende", (6.10,), "zinc blende, experimental a"),
    "CdTe-zincblende": ("zincblende", (6.48,), "zinc blende, experimental a"),
    "MgSe-rocksalt": ("rocksalt", (5.46,), "rock salt, experimental a"),
    "CaSe-rocksalt": ("rocksalt", (5.92,), "rock salt, experimental a"),
    "CaTe-rocksalt": ("rocksalt", (6.36,), "rock salt, experimental a"),
    "Li2Se-antifluorite": ("antifluorite", (6.00,), "antifluorite, experimental a"),
    "Na2Se-antifluorite": ("antifluorite", (6.81,), "antifluorite, experimental a"),
    # intermetallics (s-, p- and d-block)
    "TiAl-L10": ("L10", (3.99, 4.07), "L1_0 gamma-TiAl, experimental a, c"),
    "Cu3Au-L12": ("L12", (3.75,), "L1_2, experimental a"),
    "CuAu-L10": ("L10", (3.96, 3.67), "L1_0 CuAu I, experimental a, c"),
    "CuAu3-L12": ("L12", (3.98,), "L1_2 (A3B with Au as A), experimental a"),
    "LiAl-B32": ("B32", (6.37,), "NaTl type (B32), experimental a"),
    "Li3Al-L12": ("L12", (4.30,), "L1_2 (hypothetical, metastable in MP), a estimated"),
    "Mg2Si-antifluorite": ("antifluorite", (6.35,), "antifluorite, experimental a"),
    "AlNi-B2": ("B2", (2.88,), "CsCl type (B2), experimental a"),
    "AlNi3-L12": ("L12", (3.57,), "L1_2 Ni3Al, experimental a"),
    "AlCo-B2": ("B2", (2.86,), "CsCl type (B2), experimental a"),
}
# the higher-energy polymorph of eight compounds above
POLYMORPHS: dict[str, tuple[str, tuple[float, ...], str]] = {
    "NaCl-cesiumchloride": ("bootstrap", (), "bootstrap set"),
    "KCl-cesiumchloride": ("bootstrap", (), "bootstrap set"),
    "LiF-cesiumchloride": ("bootstrap", (), "bootstrap set"),
    "CaO-cesiumchloride": ("bootstrap", (), "bootstrap set"),
    "MgO-wurtzite": ("bootstrap", (), "bootstrap set"),
    "ZnO-rocksalt": ("bootstrap", (), "bootstrap set"),
    "AlN-rocksalt": ("bootstrap", (), "bootstrap set"),
    "ZnSe-rocksalt": ("rocksalt", (5.20,), "rock salt, the high-pressure phase"),
}
# (ground state, higher polymorph, source of the order)
POLYMORPH_PAIRS = [
    ("NaCl-rocksalt", "NaCl-cesiumchloride", "B1 → B2 transition at ~30 GPa (Bassett et al. 1968)"),
    ("KCl-rocksalt", "KCl-cesiumchloride", "B1 → B2 transition at ~2 GPa (Vaidya & Kennedy 1971)"),
    ("LiF-rocksalt", "LiF-cesiumchloride", "B1 stable to > 100 GPa; B2 higher in PBE (bootstrap set: +0.1 eV/atom)"),
    ("CaO-rocksalt", "CaO-cesiumchloride", "B1 → B2 transition at ~60 GPa (Jeanloz et al. 1979)"),
    ("MgO-rocksalt", "MgO-wurtzite", "rock salt is MgO's only known phase; wurtzite far above (bootstrap set)"),
    ("ZnO-wurtzite", "ZnO-rocksalt", "B4 → B1 transition at ~9 GPa (Bates et al. 1962)"),
    ("AlN-wurtzite", "AlN-rocksalt", "B4 → B1 transition at ~17 GPa (Xia et al. 1993)"),
    ("ZnSe-zincblende", "ZnSe-rocksalt", "B3 → B1 transition at ~13 GPa (Smith & Martin 1965)"),
]
ELEMENTS = ["Li", "Na", "K", "Rb", "Mg", "Ca", "Sr", "Al", "Zn", "Cd", "Ti", "Zr", "Hf", "Sc", "Ni", "Co", "Cu", "Au",
            "Si", "O", "N", "F", "Cl", "Br", "Se", "Te"]


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def build(label: str, spec: tuple[str, tuple[float, ...], str], bootstrap: dict[str, Any]):
    """The starting structure of ``label`` (formula-prototype) from its spec."""
    from pymatgen.core import Composition, Lattice, Structure

    from discovery.dft.references import binary_prototype

    kind, a, _ = spec
    if kind == "bootstrap":
        return bootstrap[label]
    formula = label.split("-")[0]
    comp = Composition(formula)
    els = sorted(comp.elements, key=lambda e: e.X)  # cation first
    cat, an = els[0].symbol, els[-1].symbol
    if kind in ("rocksalt", "zincblende"):
        bond = a[0] / 2 if kind == "rocksalt" else a[0] * math.sqrt(3) / 4
        return binary_prototype(kind, cat, an, bond)
    if kind == "antifluorite":
        return binary_prototype("antifluorite", cat, an, a[0] * math.sqrt(3) / 4)
    if kind == "B2":
        return Structure(Lattice.cubic(a[0]), [els[0].symbol, els[1].symbol], [[0, 0, 0], [0.5, 0.5, 0.5]])
    if kind == "L12":  # A3B: B at the corner, A at the face centres; A is the element with 3 atoms
        major = max(comp.elements, key=lambda e: comp[e]).symbol
        minor = min(comp.elements, key=lambda e: comp[e]).symbol
        return Structure(Lattice.cubic(a[0]), [minor, major, major, major],
                         [[0, 0, 0], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]])
    if kind == "L10":  # AB layered along c: primitive tetragonal cell a/√2
        first, second = sorted(comp.elements, key=lambda e: e.symbol)
        return Structure(Lattice.tetragonal(a[0] / math.sqrt(2), a[1]), [first.symbol, second.symbol],
                         [[0, 0, 0], [0.5, 0.5, 0.5]])
    if kind == "B32":  # NaTl type: two interpenetrating diamond lattices (Fd-3m 8a / 8b)
        fcc = Lattice([[0, a[0] / 2, a[0] / 2], [a[0] / 2, 0, a[0] / 2], [a[0] / 2, a[0] / 2, 0]])
        x, y = els[0].symbol, els[1].symbol
        return Structure(fcc, [x, x, y, y], [[0, 0, 0], [0.25, 0.25, 0.25], [0.5, 0.5, 0.5], [0.75, 0.75, 0.75]])
    if kind == "antiReO3":  # A3X: X at the corner, A at the edge centres
        return Structure(Lattice.cubic(a[0]), [an, cat, cat, cat], [[0, 0, 0], [0.5, 0, 0], [0, 0.5, 0], [0, 0, 0.5]])
    if kind == "Li3N":
        return Structure(Lattice.hexagonal(a[0], a[1]), ["N", "Li", "Li", "Li"],
                         [[0, 0, 0], [0, 0, 0.5], [1 / 3, 2 / 3, 0], [2 / 3, 1 / 3, 0]])
    raise ValueError(f"{label}: unknown prototype {kind}")


def bootstrap_structures() -> dict[str, Any]:
    from pymatgen.entries.computed_entries import ComputedStructureEntry

    entries = json.loads((data_dir() / "gpaw-pbe-bootstrap" / "entries.json").read_text())
    return {e["data"]["label"]: ComputedStructureEntry.from_dict(e).structure for e in entries}


def mp_formation_energies() -> dict[str, float]:
    """Reduced formula → MP formation energy (eV/atom) from the Bartel et al. 2020 table."""
    import csv

    from pymatgen.core import Composition

    out = {}
    for split in ("train", "val", "test"):
        with open(data_dir() / "bartel2020_mp_stability" / "Ef" / f"{split}.csv", newline="") as handle:
            for row in csv.DictReader(handle):
                out[Composition(row["formula"]).reduced_formula] = float(row["target"])
    return out


def relax(backend, structure, preset, label: str, is_molecule: bool) -> dict[str, Any]:
    t0 = time.process_time()
    wall = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="gnomon-protocol-") as tmp:
        result = backend.run(structure, preset, workdir=Path(tmp), is_molecule=is_molecule)
    return {"label": label, "energy_per_atom_eV": result.energy_per_atom, "formula": result.structure.composition.reduced_formula,
            "converged": result.relaxation.get("converged"), "steps": result.relaxation.get("steps"),
            "structure": result.structure.as_dict(), "nbands": result.settings.get("nbands"),
            "cpu_s": round(time.process_time() - t0, 1), "wall_s": round(time.perf_counter() - wall, 1)}


def _formation(run: dict | None, mu: dict[str, float]) -> float | None:
    """Formation energy (eV/atom) of a converged run against the protocol's own elemental references."""
    from pymatgen.core import Composition

    if run is None or run.get("converged") is False:
        return None
    comp = Composition(run["formula"])
    if not all(el.symbol in mu for el in comp.elements):
        return None
    return run["energy_per_atom_eV"] - sum(mu[el.symbol] * comp.get_atomic_fraction(el) for el in comp.elements)


def summarise(runs: dict[str, dict], protocols: list[str]) -> None:
    from pymatgen.analysis.phase_diagram import PDEntry, PhaseDiagram
    from pymatgen.core import Composition

    from catalog.corrections import mp2020_correction_per_atom
    from discovery.dft.presets import PRESETS

    mp = mp_formation_energies()
    compounds = list(STRUCTURES)
    metrics: dict[str, Any] = {"n_compounds_planned": len(compounds), "n_polymorph_pairs_planned": len(POLYMORPH_PAIRS)}
    per_protocol = {}
    for name in protocols:
        done = {k.split("|", 1)[1]: v for k, v in runs.items() if k.startswith(f"{name}|") and "error" not in v}
        mu = {el: done[f"{el}-ref"]["energy_per_atom_eV"] for el in ELEMENTS if f"{el}-ref" in done}

        rows = {}
        for label in compounds:
            ef = _formation(done.get(label), mu)
            formula = Composition(label.split("-")[0]).reduced_formula
            if ef is None or formula not in mp:
                continue
            corrected = ef + mp2020_correction_per_atom(formula)
            rows[label] = {"formula": formula, "ef_raw": round(ef, 4), "ef_corrected": round(corrected, 4),
                           "ef_mp": round(mp[formula], 4), "cpu_s": done[label]["cpu_s"]}
        n = len(rows)
        out: dict[str, Any] = {"n_compounds": n}
        if n:
            out["formation_mae_raw_eV_per_atom"] = round(sum(abs(r["ef_raw"] - r["ef_mp"]) for r in rows.values()) / n, 4)
            out["formation_mae_corrected_eV_per_atom"] = round(
                sum(abs(r["ef_corrected"] - r["ef_mp"]) for r in rows.values()) / n, 4)
            out["mean_cpu_s_per_compound"] = round(sum(r["cpu_s"] for r in rows.values()) / n, 1)
            # hull verdicts: the same compounds on two hulls (this protocol's corrected Ef, and MP's Ef)
            mine = [PDEntry(Composition(el), 0.0, name=el) for el in {e.symbol for r in rows.values()
                                                                        for e in Composition(r["formula"]).elements}]
            theirs = list(mine)
            for label, r in rows.items():
                natoms = Composition(r["formula"]).num_atoms
                mine.append(PDEntry(Composition(r["formula"]), r["ef_corrected"] * natoms, name=label))
                theirs.append(PDEntry(Composition(r["formula"]), r["ef_mp"] * natoms, name=label))
            pd_mine, pd_theirs = PhaseDiagram(mine), PhaseDiagram(theirs)
            e_mine = {e.name: pd_mine.get_e_above_hull(e) for e in mine if e.name in rows}
            e_mp = {e.name: pd_theirs.get_e_above_hull(e) for e in theirs if e.name in rows}
            counted = [k for k in rows if e_mp[k] >= EHULL_THRESHOLD or e_mp[k] <= 1e-9]
            counted = [k for k in counted if not (0 < e_mp[k] < EHULL_THRESHOLD)]
            agree = [k for k in counted if (e_mine[k] <= 1e-9) == (e_mp[k] <= 1e-9)]
            out["ehull_sign_agreement"] = round(len(agree) / len(counted), 3) if counted else None
            out["ehull_sign_n"] = len(counted)
            out["ehull_sign_disagreements"] = sorted(set(counted) - set(agree))
            out["unstable_in_mp"] = sorted(k for k in counted if e_mp[k] > 1e-9)
        pairs = []
        for low, high, source in POLYMORPH_PAIRS:
            if low in done and high in done and done[low].get("converged") is not False \
                    and done[high].get("converged") is not False:
                delta = done[high]["energy_per_atom_eV"] - done[low]["energy_per_atom_eV"]
                pairs.append({"pair": f"{low} < {high}", "delta_eV_per_atom": round(delta, 4), "agrees": delta > 0,
                              "source": source})
        out["polymorph_pairs"] = pairs
        out["polymorph_order_agreement"] = round(sum(p["agrees"] for p in pairs) / len(pairs), 3) if pairs else None
        out["n_polymorph_pairs"] = len(pairs)
        out["settings"] = PRESETS[name].as_dict()
        out["compounds"] = rows
        out["unconverged"] = sorted(k for k, v in done.items() if v.get("converged") is False)
        per_protocol[name] = out
    metrics["by_protocol"] = per_protocol
    write_result("dft_protocol", metrics, None, None, extra={
        "reference": "Materials Project formation energies from Bartel et al. 2020 (MP snapshot of 2019, corrections "
                     "of that time): not MP2020-corrected data",
        "structures": {k: v[2] for k, v in {**STRUCTURES, **POLYMORPHS}.items()},
        "ehull_threshold_eV_per_atom": EHULL_THRESHOLD,
    })


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--protocols", nargs="+", default=["fast"], choices=["fast", "standard"])
    parser.add_argument("--only", nargs="+", help="labels to run (e.g. NaCl-rocksalt Na-ref)")
    parser.add_argument("--summarise-only", action="store_true")
    options = parser.parse_args()
    runs: dict[str, dict] = json.loads(RUNS_FILE.read_text()) if RUNS_FILE.exists() else {}
    if not options.summarise_only:
        from pymatgen.core import Structure

        from discovery.dft.gpaw_backend import GPAWBackend
        from discovery.dft.presets import PRESETS
        from discovery.dft.references import elemental_reference

        backend = GPAWBackend()
        bootstrap = bootstrap_structures()
        jobs = [(f"{el}-ref", elemental_reference(el).structure, elemental_reference(el).is_molecule) for el in ELEMENTS]
        jobs += [(label, build(label, spec, bootstrap), False) for label, spec in {**STRUCTURES, **POLYMORPHS}.items()]
        if options.only:
            jobs = [j for j in jobs if j[0] in options.only]
        for name in options.protocols:
            preset = PRESETS[name]
            todo = [j for j in jobs if f"{name}|{j[0]}" not in runs]
            log(f"{name}: {len(jobs)} relaxations planned, {len(jobs) - len(todo)} done")
            for i, (label, structure, is_molecule) in enumerate(todo, 1):
                start, used = structure, dataclasses.replace(preset)
                cheap = runs.get(f"fast|{label}")
                if name != "fast" and cheap and "structure" in cheap:  # production starts from the cheap geometry
                    start = Structure.from_dict(cheap["structure"])
                try:
                    runs[f"{name}|{label}"] = relax(backend, start, used, label, is_molecule)
                except Exception as exc:  # noqa: BLE001 - record and go on
                    runs[f"{name}|{label}"] = {"label": label, "error": f"{type(exc).__name__}: {exc}"}
                run = runs[f"{name}|{label}"]
                log(f"{name} {i}/{len(todo)} {label}: {run.get('energy_per_atom_eV', run.get('error'))} "
                    f"({run.get('cpu_s', '-')} s CPU)")
                RUNS_FILE.write_text(json.dumps(runs, indent=1, sort_keys=True) + "\n")
                summarise(runs, options.protocols)
    summarise(runs, options.protocols)


if __name__ == "__main__":
    main()
