#!/usr/bin/env python
"""Reproduce Bartel et al. (2020)'s published decomposition energies from their formation energies.

Data: ``<GNOMON_DATA_DIR>/bartel2020_mp_stability`` (Ef and Ed CSVs joined on formula; 85,014 MP compositions). Every
composition becomes a composition-only ``EnergyRecord`` of a formation-energy scheme (elements at 0); all hulls are built
with ``recompute_hulls`` (and, for comparison, with the pure engine alone), and each computed decomposition energy is
compared with the published Ed: for unstable compounds that is the energy above the hull, for stable ones the distance
below the hull of all *other* compositions (pymatgen ``get_decomp_and_phase_separation_energy(stable_only=False)``).

Baseline: pymatgen itself — one ``PhaseDiagram`` per chemical system and ``get_decomp_and_phase_separation_energy`` per
composition — timed on a random sample of chemical systems (its answers must equal ours to 1e-6 eV/atom) and
extrapolated per composition to the whole set.

Usage: python benchmarks/bartel_hulls.py [--baseline-systems 20] [--no-db]
"""

from __future__ import annotations

import argparse
import csv
import os
import random
import sys
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks.common import setup_django, write_result  # noqa: E402

DATASET = "bartel2020_mp_stability"
SCHEME = "bench:bartel2020-mp"


def data_dir() -> Path:
    """``GNOMON_DATA_DIR`` if set, else ``settings.DATA_DIR``."""
    if os.environ.get("GNOMON_DATA_DIR"):
        return Path(os.environ["GNOMON_DATA_DIR"])
    from django.conf import settings

    return Path(settings.DATA_DIR)


def load_bartel(root: Path) -> list[tuple[str, float, float]]:
    """(formula, Ef, Ed) for every composition, Ef and Ed joined on formula across the train/val/test splits."""
    ef: dict[str, float] = {}
    ed: dict[str, float] = {}
    for split in ("train", "val", "test"):
        for folder, target in (("Ef", ef), ("Ed", ed)):
            with open(root / DATASET / folder / f"{split}.csv", newline="") as fh:
                for row in csv.DictReader(fh):
                    target[row["formula"]] = float(row["target"])
    missing = set(ef) ^ set(ed)
    if missing:
        print(f"warning: {len(missing)} formulas appear in only one of Ef/Ed; they are left out")
    return [(f, ef[f], ed[f]) for f in ef if f in ed]


def pymatgen_baseline(rows, n_systems: int, seed: int, ours: dict):
    """pymatgen on whole chemical systems: time per composition and the largest difference from our results."""
    from pymatgen.analysis.phase_diagram import PDEntry, PhaseDiagram
    from pymatgen.core import Composition

    entries = [PDEntry(Composition(f), ef * Composition(f).num_atoms, name=f) for f, ef, _ in rows]
    by_system: dict[frozenset, list] = {}
    for e in entries:
        by_system.setdefault(frozenset(el.symbol for el in e.composition.elements), []).append(e)
    rng = random.Random(seed)
    candidates = sorted((s for s, es in by_system.items() if len(s) >= 3 and len(es) >= 5), key=sorted)
    systems = rng.sample(candidates, min(n_systems, len(candidates)))
    n, worst, elapsed, n_off = 0, 0.0, 0.0, 0
    for space in systems:
        t = time.perf_counter()
        pool = [e for s, es in by_system.items() if s <= space for e in es]
        pool += [PDEntry(Composition(el), 0.0, name=f"~{el}") for el in space]
        pd = PhaseDiagram(pool)
        values = {}
        for e in by_system[space]:
            values[e.name] = pd.get_decomp_and_phase_separation_energy(e, stable_only=False)[1]
        elapsed += time.perf_counter() - t
        for name, value in values.items():
            worst = max(worst, abs(value - ours[name]))
            n_off += abs(value - ours[name]) > 1e-6
        n += len(values)
    return {
        "systems": len(systems),
        "compositions": n,
        "seconds": elapsed,
        "max_abs_diff_vs_ours_ev": worst,
        "n_diff_over_1e-6_ev": n_off,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--baseline-systems", type=int, default=20)
    parser.add_argument("--seed", type=int, default=97)
    parser.add_argument("--no-db", action="store_true", help="pure engine only (no EnergyRecord/HullEntry rows)")
    opts = parser.parse_args()
    setup_django()
    warnings.simplefilter("ignore")
    from pymatgen.core import Composition

    from catalog.hulls import FORMATION_ENERGY, HullInput, compare_decomposition_energies, compute_hulls

    t0 = time.perf_counter()
    rows = load_bartel(data_dir())
    published = {f: ed for f, _, ed in rows}
    t_load = time.perf_counter() - t0
    print(f"{len(rows)} compositions loaded in {t_load:.1f} s")

    # --- pure engine --------------------------------------------------------------------------------------------
    t = time.perf_counter()
    inputs = [HullInput.per_atom(f, Composition(f), ef) for f, ef, _ in rows]
    report = compute_hulls(inputs, FORMATION_ENERGY)
    t_pure = time.perf_counter() - t
    pure = compare_decomposition_energies(published, report.results)
    ours = {k: r.decomposition_energy for k, r in report.results.items()}
    n_stable = sum(r.is_stable for r in report.results.values())
    print(
        f"pure engine: {t_pure:.1f} s, {report.n_diagrams} diagrams; Ed within 0.1 meV/atom: {pure.n_within_fine}/"
        f"{pure.n_compared}, within 5 meV/atom: {pure.n_within_coarse}; max |diff| {pure.max_abs_diff:.4f} eV/atom"
    )

    # --- the service on the database ----------------------------------------------------------------------------
    db = None
    if not opts.no_db:
        from catalog.models import EnergyRecord, HullEntry, Scheme
        from catalog.services.hulls import recompute_hulls

        EnergyRecord.objects.filter(scheme__name=SCHEME).delete()
        Scheme.objects.filter(name=SCHEME).delete()
        scheme = Scheme.objects.create(
            name=SCHEME,
            kind=Scheme.Kind.FORMATION_ENERGY,
            level_of_theory="GGA/GGA+U (Materials Project, c. 2019)",
            correction_policy="MP2020-era corrections as published",
            description="Bartel et al., npj Comput. Mater. 6, 97 (2020): MP formation energies (benchmark)",
            display_priority=950,
        )
        t = time.perf_counter()
        records = []
        for f, ef, _ in rows:
            comp = Composition(f)
            els = sorted(el.symbol for el in comp.elements)
            records.append(
                EnergyRecord(
                    scheme=scheme,
                    source_key=f,
                    composition=f,
                    elements=els,
                    chemsys="-".join(els),
                    natoms=comp.num_atoms,
                    formation_energy_per_atom=ef,
                    produced_by=f"{DATASET}/Ef",
                )
            )
        EnergyRecord.objects.bulk_create(records, batch_size=5000)
        t_insert = time.perf_counter() - t
        t = time.perf_counter()
        (service,) = recompute_hulls(scheme)
        t_service = time.perf_counter() - t
        stored = dict(
            HullEntry.objects.filter(scheme=scheme).values_list("energy_record__source_key", "decomposition_energy")
        )
        from catalog.hulls import HullResult

        as_results = {k: HullResult(key=k, chemsys="", decomposition_energy=v) for k, v in stored.items()}
        db_cmp = compare_decomposition_energies(published, as_results)
        db_vs_pure = max(abs(stored[k] - ours[k]) for k in ours)
        db = {
            "insert_records_s": round(t_insert, 2),
            "recompute_hulls_s": round(t_service, 2),
            "chemical_systems": len(service.touched_systems),
            "maximal_systems": len(service.maximal_systems),
            "hull_entries": service.n_entries,
            "within_0.1meV": db_cmp.n_within_fine,
            "within_5meV": db_cmp.n_within_coarse,
            "max_abs_diff_db_vs_pure_ev": db_vs_pure,
        }
        print(f"service: insert {t_insert:.1f} s, recompute_hulls {t_service:.1f} s; {db}")

    # --- baseline: pymatgen on a sample of systems ------------------------------------------------------------------
    base = pymatgen_baseline(rows, opts.baseline_systems, opts.seed, ours)
    per_comp = base["seconds"] / max(1, base["compositions"])
    extrapolated = per_comp * len(rows)
    # pymatgen finds stable compounds' decomposition energies with SLSQP (tolerance 1e-8 on amounts), ours with an exact
    # LP: they agree to ~1e-5 eV/atom at worst, far inside the 0.1 meV/atom comparison
    assert base["max_abs_diff_vs_ours_ev"] <= 1e-4, f"pymatgen and ours differ by {base['max_abs_diff_vs_ours_ev']}"
    print(f"pymatgen baseline: {base}; extrapolated {extrapolated:.0f} s for all compositions")

    metrics = {
        "compositions": pure.n_compared,
        "ed_within_0.1meV": pure.n_within_fine,
        "ed_within_5meV": pure.n_within_coarse,
        "ed_within_0.1meV_fraction": round(pure.n_within_fine / pure.n_compared, 4),
        "pure_engine_all_hulls_s": round(t_pure, 2),
        "recompute_hulls_db_s": db["recompute_hulls_s"] if db else None,
        "ed_within_5meV_fraction": round(pure.n_within_coarse / pure.n_compared, 4),
        "max_abs_diff_ev": round(pure.max_abs_diff, 6),
        "stable_compositions": n_stable,
        "diagrams": report.n_diagrams,
        "chemical_systems": len(report.systems),
        "load_csv_s": round(t_load, 2),
        "worst": [{"formula": k, "published": v, "computed": c} for k, v, c in pure.worst],
        "database": db,
    }
    baseline = {
        "pymatgen_per_composition_ms": round(1000 * per_comp, 3),
        "pymatgen_extrapolated_all_s": round(extrapolated, 1),
        "pymatgen_sample": base,
        "what": "pymatgen PhaseDiagram per chemical system + get_decomp_and_phase_separation_energy(stable_only=False) "
        "per composition, timed on a random sample of systems and extrapolated per composition",
    }
    path = write_result("bartel_hulls", metrics, baseline, round(extrapolated / t_pure, 1))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
