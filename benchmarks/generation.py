#!/usr/bin/env python
"""Candidate generation benchmark: Gnomon's pipelines against pymatgen's naive route, measured in the same run.

Structural pipeline (parents: perov_5 CIFs parsed directly, no database):
- ours: ``generate_substitutions`` (full, pair and symmetry-aware partial substitutions) + ``deduplicate`` (formula
  groups, descriptor pruning, StructureMatcher) against the batch and the parents, on ``--workers`` processes;
- baseline: pymatgen's ``SubstitutionPredictor`` (threshold 1e-3) applied to each oxidation-decorated parent with
  ``replace_species``, charge-balanced children kept, then all-pairs ``StructureMatcher`` within each formula;
  on a subset of parents (it is far slower);
- dedup recall: on a subset, descriptor-pruned dedup against all-pairs StructureMatcher (missed duplicates, false
  merges).
Compositional pipeline:
- smact enumeration counts and time, the ridge composition baseline on Bartel et al. 2020 (Ef MAE on the test split,
  and stability calls made by placing predicted Ef on the hull of all other compounds, scored against the published
  Ed: precision, recall, F1, DAF), and pyxtal random structures (success rate, time).

Writes ``benchmarks/results/generation.json``.
"""

from __future__ import annotations

import argparse
import collections
import csv
import json
import os
import platform
import random
import resource
import sys
import time
import warnings
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
RESULTS = Path(__file__).resolve().parent / "results"
DATA = Path(os.environ.get("GNOMON_DATA_DIR", ROOT.parent / "shared" / "data"))

warnings.filterwarnings("ignore")
csv.field_size_limit(10**9)


def machine() -> str:
    from importlib.metadata import version

    cpu = platform.processor()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    libs = ", ".join(f"{n} {version(n)}" for n in ("numpy", "pymatgen", "spglib", "smact", "pyxtal"))
    return f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}, {libs}"


def cpu_seconds() -> float:
    """CPU time of this process and its finished children (worker pools are shut down before it is read)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def load_average() -> float | None:
    try:
        return float(Path("/proc/loadavg").read_text().split()[0])
    except OSError:
        return None


# --- data ----------------------------------------------------------------------------------------------------------


def _parse_rows(rows):
    from pymatgen.io.cif import CifParser

    out = []
    for mid, cif in rows:
        try:
            out.append((mid, CifParser.from_str(cif).parse_structures(primitive=False)[0]))
        except Exception:  # noqa: BLE001, S112 - a broken CIF is not a parent
            continue
    return out


def load_perov5(n: int, workers: int):
    rows = []
    for split in ("test", "val"):
        with open(DATA / "cdvae" / "perov_5" / f"{split}.csv") as fh:
            for row in csv.DictReader(fh):
                rows.append((f"perov5:{split}:{row['material_id']}", row["cif"]))
    rows = rows[:n]
    chunks = [rows[i::workers] for i in range(workers)]
    with ProcessPoolExecutor(max_workers=workers) as pool:
        parts = list(pool.map(_parse_rows, chunks))
    out = [p for part in parts for p in part]
    order = {mid: i for i, (mid, _) in enumerate(rows)}
    out.sort(key=lambda p: order[p[0]])
    return out


# --- structural: ours ----------------------------------------------------------------------------------------------


from discovery.generation.dedup import DEFAULT_TOL  # noqa: E402


def run_ours(parents, workers: int, max_children: int, supercell=None, tol: float | None = None) -> dict:
    from discovery.generation import SubstitutionConfig, deduplicate, generate_substitutions

    cfg = SubstitutionConfig(max_children_per_parent=max_children, supercell=supercell)
    c0 = cpu_seconds()
    load0 = load_average()
    t0 = time.perf_counter()
    cands = generate_substitutions(parents, cfg, workers=workers)
    t1 = time.perf_counter()
    kw = {"tol": tol} if tol is not None else {}
    kept, stats = deduplicate(cands, references=parents, workers=workers, **kw)
    t2 = time.perf_counter()
    cpu = cpu_seconds() - c0
    kinds = collections.Counter(cands[i].recipe["kind"] for i in kept)
    total = t2 - t0
    return {
        "parents": len(parents),
        "max_children_per_parent": max_children,
        "supercell": supercell,
        "generated": len(cands),
        "deduplicated": len(kept),
        "by_kind": dict(kinds),
        "duplicates_in_batch": stats.n_duplicate_batch,
        "duplicates_of_parents": stats.n_duplicate_reference,
        "matcher_calls": stats.n_matcher_calls,
        "descriptor_matches": stats.n_descriptor_matches,
        "formulas": stats.n_formulas,
        "seconds_generate": round(t1 - t0, 2),
        "seconds_dedup": round(t2 - t1, 2),
        "seconds_total": round(total, 2),
        "deduplicated_per_minute": round(len(kept) / total * 60, 1),
        "cpu_seconds": round(cpu, 2),
        "deduplicated_per_cpu_minute": round(len(kept) / cpu * 60, 1),
        "workers": workers,
        "descriptor_tol": tol if tol is not None else DEFAULT_TOL,
        "load_average_at_start": load0,
    }


# --- structural: naive baseline ------------------------------------------------------------------------------------


def naive_children(parent, threshold=1e-3):
    from pymatgen.analysis.structure_prediction.substitution_probability import SubstitutionPredictor

    s = parent.copy()
    guesses = s.composition.oxi_state_guesses(max_sites=-1)
    if not guesses:
        return []
    s.add_oxidation_state_by_element(guesses[0])
    species = sorted({sp for sp in s.species}, key=str)
    predictor = SubstitutionPredictor(threshold=threshold)
    try:
        preds = predictor.list_prediction(species, to_this_composition=False)
    except ValueError:  # an ion outside the table
        return []
    out = []
    for pred in preds:
        subs = pred["substitutions"]
        if all(a == b for a, b in subs.items()):
            continue
        child = s.copy()
        child.replace_species(subs)
        if abs(child.charge) < 1e-6:
            child.remove_oxidation_states()
            out.append(child)
    return out


def run_naive(parents) -> dict:
    from pymatgen.analysis.structure_matcher import StructureMatcher

    c0 = cpu_seconds()
    t0 = time.perf_counter()
    children = []
    for _, p in parents:
        children.extend(naive_children(p))
    t1 = time.perf_counter()
    sm = StructureMatcher()
    groups = collections.defaultdict(list)
    kept = 0
    calls = 0
    for c in children:
        g = groups[c.composition.reduced_formula]
        dup = False
        for k in g:
            calls += 1
            if sm.fit(c, k):
                dup = True
                break
        if not dup:
            g.append(c)
            kept += 1
    t2 = time.perf_counter()
    cpu = cpu_seconds() - c0
    return {
        "parents": len(parents),
        "generated": len(children),
        "deduplicated": kept,
        "matcher_calls": calls,
        "seconds_generate": round(t1 - t0, 2),
        "seconds_dedup": round(t2 - t1, 2),
        "seconds_total": round(t2 - t0, 2),
        "deduplicated_per_minute": round(kept / (t2 - t0) * 60, 1),
        "cpu_seconds": round(cpu, 2),
        "deduplicated_per_cpu_minute": round(kept / cpu * 60, 1),
    }


# --- dedup recall ----------------------------------------------------------------------------------------------------


def run_recall(parents, max_children: int, max_group: int = 40) -> dict:
    """Descriptor-pruned dedup vs all-pairs StructureMatcher on the same candidates (groups capped at max_group)."""
    from pymatgen.analysis.structure_matcher import StructureMatcher

    from discovery.generation import Deduplicator, SubstitutionConfig, generate_substitutions

    cands = generate_substitutions(parents, SubstitutionConfig(max_children_per_parent=max_children))
    groups = collections.defaultdict(list)
    for c in cands:
        if len(groups[c.formula]) < max_group:
            groups[c.formula].append(c)
    multi = {f: g for f, g in groups.items() if len(g) > 1}
    sm = StructureMatcher()
    t0 = time.perf_counter()
    n_items = sum(len(g) for g in multi.values())
    truth_kept = 0
    pairs = 0
    for g in multi.values():
        reps = []
        for c in g:
            if not any(sm.fit(c.structure, r.structure) for r in reps):
                reps.append(c)
            pairs += len(reps)
        truth_kept += len(reps)
    t_truth = time.perf_counter() - t0
    t0 = time.perf_counter()
    dd = Deduplicator()
    kept_by_formula = collections.defaultdict(list)
    merges = []
    for g in multi.values():
        for i, c in enumerate(g):
            new, match = dd.add(c, (c.formula, i))
            if new:
                kept_by_formula[c.formula].append(c)
            else:
                merges.append((c, groups[match[0]][match[1]]))
    t_ours = time.perf_counter() - t0
    false_merges = sum(1 for a, b in merges if not sm.fit(a.structure, b.structure))
    missed = 0
    for kept in kept_by_formula.values():  # kept pairs that the matcher calls equal: duplicates we let through
        for i in range(len(kept)):
            if any(sm.fit(kept[i].structure, kept[j].structure) for j in range(i)):
                missed += 1
    ours_kept = sum(len(v) for v in kept_by_formula.values())
    true_dups = n_items - truth_kept
    return {
        "candidates_in_shared_formulas": n_items,
        "formulas": len(multi),
        "all_pairs_kept": truth_kept,
        "all_pairs_true_duplicates": true_dups,
        "all_pairs_seconds": round(t_truth, 2),
        "ours_kept": ours_kept,
        "ours_seconds": round(t_ours, 2),
        "ours_matcher_calls": dd.stats.n_matcher_calls,
        "ours_descriptor_matches": dd.stats.n_descriptor_matches,
        "missed_duplicates": missed,
        "false_merges": false_merges,
        "duplicate_recall": round(1 - missed / true_dups, 4) if true_dups else None,
    }


# --- compositional ----------------------------------------------------------------------------------------------------


def _stability_chunk(args):
    """Predicted and recomputed decomposition energies for test compounds, each against all other compounds."""
    from pymatgen.analysis.phase_diagram import PDEntry, PhaseDiagram
    from pymatgen.core import Composition

    items, pool_by_chemsys = args
    out = []
    for formula, pred_ef, true_ef, chemsys in items:
        entries = pool_by_chemsys[chemsys]
        comp = Composition(formula)
        own = comp.reduced_formula
        others = [PDEntry(Composition(f), e * Composition(f).num_atoms) for f, e in entries if f != own]
        others += [PDEntry(Composition(el), 0.0) for el in chemsys.split("-")]
        pd = PhaseDiagram(others)
        n = comp.num_atoms
        e_pred = pd.get_e_above_hull(PDEntry(comp, pred_ef * n), allow_negative=True)
        e_true = pd.get_e_above_hull(PDEntry(comp, true_ef * n), allow_negative=True)
        out.append((formula, e_pred, e_true))
    return out


def run_composition_model(sample: int, workers: int, seed: int = 0) -> dict:
    from pymatgen.core import Composition

    from discovery.generation.compositional import RidgeCompositionModel, read_formula_csv

    bartel = DATA / "bartel2020_mp_stability"
    ftr, ytr = read_formula_csv(bartel / "Ef" / "train.csv")
    fva, yva = read_formula_csv(bartel / "Ef" / "val.csv")
    fte, yte = read_formula_csv(bartel / "Ef" / "test.csv")
    ed = {}
    for split in ("train", "val", "test"):
        f, y = read_formula_csv(bartel / "Ed" / f"{split}.csv")
        ed.update(zip(f, y, strict=True))
    t0 = time.perf_counter()
    model = RidgeCompositionModel(alpha=1.0).fit(ftr + fva, np.concatenate([ytr, yva]))
    t_fit = time.perf_counter() - t0
    t0 = time.perf_counter()
    pred = model.predict(fte)
    t_pred = time.perf_counter() - t0
    mae = float(np.abs(pred - yte).mean())
    mae_mean = float(np.abs(yte - np.concatenate([ytr, yva]).mean()).mean())

    # stability: each sampled test compound's predicted Ef placed on the hull of all other compounds (true Ef)
    all_f = ftr + fva + fte
    all_y = np.concatenate([ytr, yva, yte])
    elements_of = {f: frozenset(el.symbol for el in Composition(f).elements) for f in all_f}
    rng = random.Random(seed)
    idx = sorted(rng.sample(range(len(fte)), min(sample, len(fte))))
    by_set = collections.defaultdict(list)
    for f, y in zip(all_f, all_y, strict=True):
        by_set[elements_of[f]].append((Composition(f).reduced_formula, float(y)))
    pools = {}
    items = []
    for i in idx:
        els = elements_of[fte[i]]
        chemsys = "-".join(sorted(els))
        if chemsys not in pools:
            pool = []
            for sub, entries in by_set.items():
                if sub <= els:
                    pool.extend(entries)
            pools[chemsys] = pool
        items.append((fte[i], float(pred[i]), float(yte[i]), chemsys))
    t0 = time.perf_counter()
    chunks = [items[k::workers] for k in range(workers)]
    jobs = [(c, {cs: pools[cs] for cs in {it[3] for it in c}}) for c in chunks]
    with ProcessPoolExecutor(max_workers=workers) as pool:
        results = [r for part in pool.map(_stability_chunk, jobs) for r in part]
    t_hull = time.perf_counter() - t0
    e_pred = np.array([r[1] for r in results])
    e_recomputed = np.array([r[2] for r in results])
    e_pub = np.array([ed[r[0]] for r in results])
    truth = e_pub <= 0
    called = e_pred <= 0
    tp = int((truth & called).sum())
    fp = int((~truth & called).sum())
    fn = int((truth & ~called).sum())
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    prevalence = float(truth.mean())
    return {
        "model": "ridge on fraction-weighted Magpie statistics (+squares, pairwise products) and element fractions",
        "train_rows": len(ftr) + len(fva),
        "test_rows": len(fte),
        "ef_mae_test": round(mae, 4),
        "ef_mae_mean_predictor": round(mae_mean, 4),
        "fit_seconds": round(t_fit, 2),
        "predict_seconds_test": round(t_pred, 2),
        "stability_sample": len(results),
        "ed_mae_predicted": round(float(np.abs(e_pred - e_pub).mean()), 4),
        "hull_check_ed_mae_from_true_ef": round(float(np.abs(e_recomputed - e_pub).mean()), 5),
        "stable_prevalence": round(prevalence, 4),
        "precision": round(precision, 4),
        "recall": round(recall, 4),
        "f1": round(f1, 4),
        "daf": round(precision / prevalence, 3) if prevalence else None,
        "accuracy": round(float((truth == called).mean()), 4),
        "hull_seconds": round(t_hull, 2),
    }


def run_compositional(workers: int, top_n: int) -> dict:
    from discovery.generation import RandomStructureConfig, deduplicate
    from discovery.generation.compositional import enumerate_compositions, generate_compositional, train_baseline

    elements = ["Li", "Mn", "Fe", "P", "O"]
    t0 = time.perf_counter()
    comps = enumerate_compositions(elements, 4)
    t_enum = time.perf_counter() - t0
    strict = enumerate_compositions(elements, 4, relaxed=False, require_pauling=True)
    model = train_baseline(DATA / "bartel2020_mp_stability")
    cfg = RandomStructureConfig(n_structures=4, z_values=(1, 2, 4), max_atoms=24)
    t0 = time.perf_counter()
    result = generate_compositional(elements, 4, model, top_n=top_n, structure_config=cfg, seed=0, workers=workers)
    t_gen = time.perf_counter() - t0
    kept, stats = deduplicate(result.candidates)
    requested = top_n * cfg.n_structures
    return {
        "elements": elements,
        "max_elements": 4,
        "compositions_relaxed": len(comps),
        "compositions_strict_pauling": len(strict),
        "enumeration_seconds": round(t_enum, 2),
        "top_compositions": [r.formula for r in result.ranked[:10]],
        "structures_requested": requested,
        "structures_built": len(result.candidates),
        "success_rate": round(len(result.candidates) / requested, 3) if requested else None,
        "deduplicated": len(kept),
        "seconds_enumerate_rank_build": round(t_gen, 2),
        "spacegroups_used": len({c.recipe["spacegroup"] for c in result.candidates}),
        "workers": workers,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--parents", type=int, default=5000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--max-children", type=int, default=12, help="children per parent, best first")
    parser.add_argument("--baseline-parents", type=int, default=10)
    parser.add_argument("--supercell-parents", type=int, default=1000)
    parser.add_argument("--recall-parents", type=int, default=300)
    parser.add_argument("--stability-sample", type=int, default=2000)
    parser.add_argument("--compositional-top", type=int, default=12)
    parser.add_argument("--skip", nargs="*", default=[], help="sections to skip: naive recall model compositional")
    parser.add_argument("--tol", type=float, default=None, help="dedup descriptor tolerance (default: the library's)")
    parser.add_argument("--skip-supercell", action="store_true")
    parser.add_argument("--out", default=str(RESULTS / "generation.json"))
    opts = parser.parse_args()

    report: dict = {"benchmark": "generation", "date": datetime.now(UTC).isoformat(), "machine": machine()}
    t0 = time.perf_counter()
    parents = load_perov5(opts.parents, opts.workers)
    report["parse_cifs_seconds"] = round(time.perf_counter() - t0, 2)
    print(f"parsed {len(parents)} parents in {report['parse_cifs_seconds']} s", flush=True)

    ours = run_ours(parents, opts.workers, opts.max_children, tol=opts.tol)
    print("ours:", json.dumps(ours), flush=True)
    report["structural"] = ours
    if not opts.skip_supercell:
        sub = parents[: opts.supercell_parents]
        ours_sc = run_ours(sub, opts.workers, opts.max_children, supercell=(2, 1, 1), tol=opts.tol)
        print("ours (2x1x1 supercells):", json.dumps(ours_sc), flush=True)
        report["structural_supercell_2x1x1"] = ours_sc
    if "naive" not in opts.skip:
        sub = parents[: opts.baseline_parents]
        naive = run_naive(sub)
        ours_sub = run_ours(sub, 1, None)
        report["naive_subset"] = naive
        report["ours_same_subset_1_worker"] = ours_sub
        print("naive:", json.dumps(naive), "\nours on subset:", json.dumps(ours_sub), flush=True)
    if "recall" not in opts.skip:
        report["dedup_recall"] = run_recall(parents[: opts.recall_parents], opts.max_children * 3)
        print("recall:", json.dumps(report["dedup_recall"]), flush=True)
    if "model" not in opts.skip:
        report["composition_model"] = run_composition_model(opts.stability_sample, opts.workers)
        print("model:", json.dumps(report["composition_model"]), flush=True)
    if "compositional" not in opts.skip:
        report["compositional"] = run_compositional(opts.workers, opts.compositional_top)
        print("compositional:", json.dumps(report["compositional"]), flush=True)

    report["metrics"] = {
        "dedup_candidates_per_min": ours["deduplicated_per_minute"],
        "parents": ours["parents"],
        "deduplicated": ours["deduplicated"],
        "seconds": ours["seconds_total"],
        "workers": ours["workers"],
        "dedup_candidates_per_cpu_min": ours["deduplicated_per_cpu_minute"],
    }
    if "naive_subset" in report:
        report["baseline"] = {
            "naive_dedup_candidates_per_min": report["naive_subset"]["deduplicated_per_minute"],
            "naive_parents": report["naive_subset"]["parents"],
            "naive_dedup_candidates_per_cpu_min": report["naive_subset"]["deduplicated_per_cpu_minute"],
        }
        report["speedup"] = round(ours["deduplicated_per_minute"] / max(1e-9, report["naive_subset"]["deduplicated_per_minute"]), 1)
    RESULTS.mkdir(exist_ok=True)
    Path(opts.out).write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {opts.out}")


if __name__ == "__main__":
    main()
