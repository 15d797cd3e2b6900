#!/usr/bin/env python
"""Living-hull upkeep: incremental ``update_hulls`` vs rebuilding every touched PhaseDiagram per new energy.

Synthetic formation energies over 20 elements: thousands of composition-only records in overlapping binary, ternary and
quaternary systems of a formation-energy scheme (in the real database). Then 1,000 new energies arrive one at a time:

- ours: insert the record, call ``update_hulls(scheme, [chemsys])`` (one transaction: if the energy moved no vertex of
  its system's hull only that system is redone; otherwise the touched systems are found with the GIN array index and one
  diagram is built per maximal touched system; bulk upserts of HullEntry/ChemsysHull);
- baseline (naive, in memory, no database): for every touched system (the system and each stored superset) build a
  pymatgen ``PhaseDiagram`` from scratch and ask it ``get_decomp_and_e_above_hull`` for every entry of that system. The
  baseline computes less than ours (no decomposition energies, no database writes).

Both must agree: every e_above_hull the baseline computes equals ours (1e-6 eV/atom), and the incrementally kept state
equals a full recompute from scratch. Also timed: the same 1,000 energies inserted as one batch and updated by one
``update_hulls`` call (a second, identical scheme), and full recomputes.

Usage: python benchmarks/hull_upkeep.py [--records 4000] [--inserts 1000] [--baseline-inserts N]
"""

from __future__ import annotations

import argparse
import itertools
import random
import sys
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks.common import setup_django, write_result  # noqa: E402

ELEMENTS = [
    "Li",
    "Na",
    "K",
    "Mg",
    "Ca",
    "Sr",
    "Ba",
    "Al",
    "Ga",
    "Ti",
    "V",
    "Cr",
    "Mn",
    "Fe",
    "Co",
    "Ni",
    "Cu",
    "Zn",
    "O",
    "S",
]
TOL = 1e-6


def synthetic_energy(rng: random.Random, comp: dict[str, int], affinity: dict[frozenset, float]) -> float:
    """Formation energy per atom: pairwise mixing affinities (regular-solution-like) plus noise.

    The smooth part alone would put every composition on the hull (a convex mixing curve); the noise, skewed upwards,
    leaves a minority of phases on the hull, as in real databases (about 40% of MP compositions; fewer for candidates).
    """
    total = sum(comp.values())
    x = {el: n / total for el, n in comp.items()}
    e = sum(4 * x[a] * x[b] * affinity[frozenset((a, b))] for a, b in itertools.combinations(comp, 2))
    return e + rng.gauss(0.1, 0.1)


def random_composition(rng: random.Random, system: tuple[str, ...]) -> dict[str, int]:
    return {el: rng.randint(1, 4) for el in system}


def make_dataset(seed: int, n_records: int, n_inserts: int):
    rng = random.Random(seed)
    affinity = {frozenset(p): rng.uniform(-1.6, 0.2) for p in itertools.combinations(ELEMENTS, 2)}
    systems = (
        [tuple(sorted(s)) for s in rng.sample(list(itertools.combinations(ELEMENTS, 2)), 80)]
        + [tuple(sorted(s)) for s in rng.sample(list(itertools.combinations(ELEMENTS, 3)), 200)]
        + [tuple(sorted(s)) for s in rng.sample(list(itertools.combinations(ELEMENTS, 4)), 150)]
    )
    base = []
    for i in range(n_records):
        comp = random_composition(rng, systems[i % len(systems)] if i < len(systems) else rng.choice(systems))
        base.append((comp, synthetic_energy(rng, comp, affinity)))
    inserts = []
    for _ in range(n_inserts):
        if rng.random() < 0.1:  # a brand-new system now and then
            system = tuple(sorted(rng.sample(ELEMENTS, rng.choice((2, 3, 4)))))
        else:
            system = rng.choice(systems)
        comp = random_composition(rng, system)
        inserts.append((comp, synthetic_energy(rng, comp, affinity)))
    return base, inserts


def formula(comp: dict[str, int]) -> str:
    return "".join(f"{el}{n}" for el, n in sorted(comp.items()))


def reset_scheme(name: str):
    from catalog.models import EnergyRecord, Scheme

    EnergyRecord.objects.filter(scheme__name=name).delete()
    Scheme.objects.filter(name=name).delete()
    return Scheme.objects.create(
        name=name,
        kind=Scheme.Kind.FORMATION_ENERGY,
        description="hull_upkeep benchmark (synthetic)",
        display_priority=900,
    )


def record(scheme, key: str, comp: dict[str, int], e_form: float):
    from catalog.models import EnergyRecord

    els = sorted(comp)
    return EnergyRecord(
        scheme=scheme,
        source_key=key,
        composition=formula(comp),
        elements=els,
        chemsys="-".join(els),
        natoms=float(sum(comp.values())),
        formation_energy_per_atom=e_form,
        produced_by="benchmarks/hull_upkeep.py",
    )


class NaiveBaseline:
    """Rebuild every touched PhaseDiagram from scratch per inserted energy (pymatgen only, in memory)."""

    def __init__(self):
        self.entries_by_system: dict[frozenset, list] = {}
        self.e_above_hull: dict[int, float] = {}

    def add(self, rec_id: int, comp: dict[str, int], e_form: float):
        from pymatgen.analysis.phase_diagram import PDEntry
        from pymatgen.core import Composition

        c = Composition(comp)
        entry = PDEntry(c, e_form * c.num_atoms, name=str(rec_id), attribute=rec_id)
        self.entries_by_system.setdefault(frozenset(comp), []).append(entry)

    def update(self, system: frozenset):
        from pymatgen.analysis.phase_diagram import PDEntry, PhaseDiagram
        from pymatgen.core import Composition

        touched = [s for s in self.entries_by_system if s >= system]
        for s in touched:
            entries = [e for sub, es in self.entries_by_system.items() if sub <= s for e in es]
            entries += [PDEntry(Composition(el), 0.0, name=f"~{el}") for el in s]
            pd = PhaseDiagram(entries)
            for e in self.entries_by_system[s]:
                _, e_hull = pd.get_decomp_and_e_above_hull(e, allow_negative=True)
                self.e_above_hull[e.attribute] = e_hull
        return len(touched)


def snapshot(scheme) -> dict[int, tuple]:
    from catalog.models import HullEntry

    return {
        rid: (e_hull, stable, ed)
        for rid, e_hull, stable, ed in HullEntry.objects.filter(scheme=scheme).values_list(
            "energy_record_id", "e_above_hull", "is_stable", "decomposition_energy"
        )
    }


def max_diff(a: dict[int, tuple], b: dict[int, tuple]) -> float:
    assert a.keys() == b.keys(), "different hull entries"
    worst = 0.0
    for k, va in a.items():
        vb = b[k]
        assert va[1] == vb[1], f"stability of record {k} differs"
        worst = max(worst, abs(va[0] - vb[0]), abs(va[2] - vb[2]))
    return worst


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--records", type=int, default=4000)
    parser.add_argument("--inserts", type=int, default=1000)
    parser.add_argument("--baseline-inserts", type=int, default=None, help="run the baseline on the first N only")
    parser.add_argument("--seed", type=int, default=2020)
    opts = parser.parse_args()
    setup_django()
    warnings.simplefilter("ignore")
    from catalog.models import EnergyRecord
    from catalog.services.hulls import recompute_hulls, update_hulls

    base, inserts = make_dataset(opts.seed, opts.records, opts.inserts)
    n_baseline = opts.inserts if opts.baseline_inserts is None else min(opts.baseline_inserts, opts.inserts)

    # --- per-insert scheme ------------------------------------------------------------------------------------------
    scheme = reset_scheme("bench:hull-upkeep")
    base_rows = EnergyRecord.objects.bulk_create(
        [record(scheme, f"base-{i}", c, e) for i, (c, e) in enumerate(base)], batch_size=2000
    )
    t = time.perf_counter()
    (full_initial,) = recompute_hulls(scheme)
    t_full_initial = time.perf_counter() - t
    n_systems_initial = len(full_initial.touched_systems)
    print(f"initial: {len(base_rows)} records in {n_systems_initial} systems; full recompute {t_full_initial:.2f} s")

    naive = NaiveBaseline()
    for row, (comp, e) in zip(base_rows, base, strict=True):
        naive.add(row.pk, comp, e)

    t_ours = t_insert = t_naive = 0.0
    n_touched_naive = n_diagrams_ours = n_fast = 0
    ours_naive_part = 0.0
    for i, (comp, e) in enumerate(inserts):
        t = time.perf_counter()
        row = record(scheme, f"new-{i}", comp, e)
        row.save()
        t_insert += time.perf_counter() - t
        t = time.perf_counter()
        report = update_hulls(scheme, [row.chemsys])
        dt = time.perf_counter() - t
        t_ours += dt
        n_diagrams_ours += report.n_diagrams
        n_fast += report.hull_unchanged
        naive.add(row.pk, comp, e)
        if i < n_baseline:
            ours_naive_part += dt
            t = time.perf_counter()
            n_touched_naive += naive.update(frozenset(comp))
            t_naive += time.perf_counter() - t
        if i == n_baseline - 1:  # the baseline's latest e_above_hull for every entry it recomputed must equal ours
            now = snapshot(scheme)
            diff_naive = max(abs(now[k][0] - v) for k, v in naive.e_above_hull.items())
            assert diff_naive <= TOL, f"ours and the naive baseline differ by {diff_naive} eV/atom"
        if (i + 1) % 100 == 0:
            print(f"  {i + 1} inserts: ours {t_ours:.1f} s, naive {t_naive:.1f} s ({min(i + 1, n_baseline)} inserts)")

    incremental = snapshot(scheme)
    stable_fraction = sum(v[1] for v in incremental.values()) / len(incremental)
    t = time.perf_counter()
    (full_final,) = recompute_hulls(scheme)
    t_full_final = time.perf_counter() - t
    diff_full = max_diff(incremental, snapshot(scheme))
    assert diff_full <= TOL, f"incremental and full recompute differ by {diff_full} eV/atom"
    print(
        f"per-insert: ours {t_ours:.1f} s, naive {t_naive:.1f} s on {n_baseline}; full recompute {t_full_final:.2f} s"
    )

    # --- batch scheme: the same data, the 1,000 energies inserted together and updated by one call ----------------
    batch_scheme = reset_scheme("bench:hull-upkeep-batch")
    EnergyRecord.objects.bulk_create(
        [record(batch_scheme, f"base-{i}", c, e) for i, (c, e) in enumerate(base)], batch_size=2000
    )
    recompute_hulls(batch_scheme)
    new_rows = EnergyRecord.objects.bulk_create(
        [record(batch_scheme, f"new-{i}", c, e) for i, (c, e) in enumerate(inserts)], batch_size=2000
    )
    t = time.perf_counter()
    batch_report = update_hulls(batch_scheme, {r.chemsys for r in new_rows})
    t_batch = time.perf_counter() - t
    batch_state = snapshot(batch_scheme)
    # same records (by source key) must have the same results as the per-insert scheme
    key_of = dict(EnergyRecord.objects.filter(scheme=scheme).values_list("pk", "source_key"))
    batch_key_of = dict(EnergyRecord.objects.filter(scheme=batch_scheme).values_list("source_key", "pk"))
    diff_batch = max_diff({batch_key_of[key_of[k]]: v for k, v in incremental.items()}, batch_state)
    assert diff_batch <= TOL, f"batch and per-insert upkeep differ by {diff_batch} eV/atom"
    print(f"batch: {t_batch:.2f} s for {len(new_rows)} energies ({batch_report.n_diagrams} diagrams)")

    naive_per_insert = t_naive / n_baseline
    ours_per_insert = ours_naive_part / n_baseline
    speedup = naive_per_insert / ours_per_insert
    metrics = {
        "per_insert_total_s": round(t_ours, 3),
        "per_insert_mean_ms": round(1000 * t_ours / len(inserts), 2),
        "batch_update_s": round(t_batch, 3),
        "full_recompute_initial_s": round(t_full_initial, 3),
        "full_recompute_final_s": round(t_full_final, 3),
        "speedup_batch_vs_naive": round(naive_per_insert * len(inserts) / t_batch, 1),
        "records_initial": len(base),
        "systems_initial": n_systems_initial,
        "records_final": len(base) + len(inserts),
        "systems_final": len(full_final.touched_systems),
        "inserts": len(inserts),
        "diagrams_built_per_insert_ours": round(n_diagrams_ours / len(inserts), 2),
        "inserts_hull_unchanged_fast_path": n_fast,
        "stable_fraction_final": round(stable_fraction, 3),
        "record_insert_s": round(t_insert, 3),
        "max_abs_diff_vs_naive_ev": diff_naive,
        "max_abs_diff_incremental_vs_full_ev": diff_full,
        "max_abs_diff_batch_vs_per_insert_ev": diff_batch,
        "elements": len(ELEMENTS),
    }
    baseline = {
        "naive_per_insert_mean_ms": round(1000 * naive_per_insert, 2),
        "naive_total_s": round(t_naive, 3),
        "naive_inserts_timed": n_baseline,
        "naive_total_extrapolated_s": round(naive_per_insert * len(inserts), 1),
        "diagrams_built_per_insert_naive": round(n_touched_naive / n_baseline, 2),
        "what": "pymatgen PhaseDiagram rebuilt for every touched system per inserted energy, e_above_hull of its entries; "
        "in memory, no decomposition energies, no database writes",
    }
    path = write_result("hull_upkeep", metrics, baseline, round(speedup, 1))
    print(f"speedup per insert {speedup:.1f}x, batch {metrics['speedup_batch_vs_naive']}x; wrote {path}")


if __name__ == "__main__":
    main()
