#!/usr/bin/env python
"""Retrospective discovery benchmark: does Gnomon's screening + acquisition find stable materials faster than chance?

A labelled pool is hidden; each round the campaign's screening ensemble predicts every pool member, the acquisition rule
(mean − κ·std, lowest first) picks a batch to "verify", an oracle reveals the hidden labels instead of running DFT, the
revealed members join the training set, the ensemble is retrained (on perov_5 by fine-tuning the previous round's
members, a campaign's default; ``--no-warm-start`` trains new ones), and the next round begins. κ anneals linearly from
``--kappa`` in round 0 to ``--kappa-final`` in the last round, as a campaign's ``kappa``/``kappa_final`` do: the first
rounds pick where the ensemble is unsure (they teach the model), the last ones where it is confident. Random selection
from the same pool runs alongside. Per round we report the hit rate (stable picks / picks), the discovery acceleration factor
DAF = hit rate / prevalence of stable materials in the pool, and the same for random selection.

Pools:
- perov_5 (Castelli et al. 2012): 7,572 perovskites; "stable" = heat_ref ≤ 0.2 eV/atom (prevalence ≈ 1.6%, most
  possible DAF ≈ 60). Model: the GNN ensemble of ``discovery.screening`` on structures, with the campaigns' default
  settings (element embeddings started from the Magpie table; ``--element-embedding random`` for matgl's own draw).
- Bartel et al. 2020: MP compositions; "stable" = published Ed ≤ 0 (prevalence ≈ 40%, most possible DAF ≈ 2.5). Model:
  an MLP ensemble on Magpie composition features predicting Ef; predicted Ed = predicted Ef − the hull energy of the
  known phases at that composition: the training split's, plus every pool member verified so far (``--living-hull``,
  the default, as a campaign folds its DFT energies into the hulls).

Candidates (``--candidates``):
- ``pool`` (the default): each round chooses among every pool member still hidden. The pool is finite, so each hit
  leaves one stable member fewer, and a model that learns fast empties it: the hit rate must fall at some point however
  good the model is.
- ``fresh``: the hidden pool is cut at random into one disjoint slice per round, and round r chooses among slice r only,
  standing in for the candidates a real campaign generates each round (a campaign also re-scores earlier rounds'
  unchosen candidates; leaving them out keeps every round at the pool's prevalence). The hit rate then measures the
  model rather than what is left of the pool. The model still trains on everything verified so far. A slice holds
  about 1/rounds of the pool's stable members, which caps the hit rate (perov_5, 5 rounds, 50 picks: about 24 stable
  in a slice of ~1,500, so at most ~0.48). Results are stored under the pool's name with ``_fresh`` appended.

Each pool runs ``--seeds`` independent campaigns (other initial sets and model seeds) and reports the per-round mean:
one campaign's round-to-round change is mostly noise at 50 picks a round. The trend is reported as the mean over
seeds of each campaign's least-squares slope of hit rate against round, with its standard error. Each round also gives
the hit rates the same model would have had at κ = 0 and at the first round's κ: what this round's exploration cost.

Usage: python benchmarks/discovery_retrospective.py [--quick]
"""

from __future__ import annotations

import argparse
import copy
import csv
import json
import math
import sys
import time
from collections import defaultdict
from dataclasses import replace
from datetime import date
from itertools import combinations
from pathlib import Path
from typing import Literal, get_args

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.common import RESULTS_DIR, data_dir, machine_description, read_perov5, write_result  # noqa: E402
from discovery.screening.acquisition import AcquisitionRule, Scored, annealed_kappa, select  # noqa: E402

STABLE_HEAT_REF = 0.2  # eV/atom, the perov_5 study's stability window
Candidates = Literal["pool", "fresh"]  # see "Candidates" above


def active_learning(
    n_pool: int,
    stable: np.ndarray,
    initial: np.ndarray,
    fit_predict,
    rounds: int,
    per_round: int,
    kappa: float,
    kappa_final: float | None,
    rng: np.random.Generator,
    chemsys: list[str] | None = None,
    max_per_chemsys: int | None = None,
    candidates: Candidates = "pool",
) -> dict:
    """Generic loop. ``fit_predict(train_idx, predict_idx) -> (mean, std)`` of the quantity whose low values mean stable.

    ``chemsys`` and ``max_per_chemsys``: the campaign rule's diversity cap (at most that many picks per chemical
    system in one round). ``candidates``: ``"pool"`` (each round chooses among all still hidden) or ``"fresh"`` (each
    round among its own disjoint slice of the hidden pool; see the module's docstring).
    """
    if candidates not in get_args(Candidates):
        raise ValueError(f"unknown candidates protocol {candidates!r}: use one of {get_args(Candidates)}")
    prevalence = float(stable.mean())
    labelled = set(initial.tolist())
    random_labelled = set(initial.tolist())
    hidden_at_start = np.setdiff1d(np.arange(n_pool), initial)
    slices = np.array_split(rng.permutation(hidden_at_start), rounds) if candidates == "fresh" else None
    per_round_results = []
    for r in range(rounds):
        started = time.monotonic()
        if slices is not None:
            hidden = np.sort(slices[r])
        else:
            hidden = np.array(sorted(set(range(n_pool)) - labelled))
        mean, std = fit_predict(np.array(sorted(labelled)), hidden)
        # The campaign's own acquisition rule (mean − κ·std, lowest first) and κ schedule; no threshold, and a cap per
        # chemical system only with --max-per-chemsys.
        round_kappa = annealed_kappa(kappa, kappa_final, r, rounds)
        rule = AcquisitionRule(kappa=round_kappa, threshold=math.inf, top_n=per_round, max_per_chemsys=max_per_chemsys)
        systems = chemsys or [""] * n_pool
        scored = [Scored(int(i), systems[i], float(m), float(s)) for i, m, s in zip(hidden, mean, std, strict=True)]
        picks = np.array([pick.key for pick in select(scored, rule)], dtype=int)
        hit_rate = float(stable[picks].mean())
        # The same model under the two ends of the κ schedule: separates "the model ranks badly" from "this round's κ
        # spent its picks on uncertain candidates".
        counterfactual = {}
        for label, k in (("kappa_0", 0.0), ("kappa_start", kappa)):
            other = AcquisitionRule(kappa=k, threshold=math.inf, top_n=per_round, max_per_chemsys=max_per_chemsys)
            counterfactual[label] = float(stable[[pick.key for pick in select(scored, other)]].mean())
        # On the whole pool every hit leaves one stable material fewer to find: the prevalence among what is still
        # hidden falls round by round, so this enrichment over the remaining candidates separates "the model got
        # better" from "the pool ran dry". With fresh candidates it is the prevalence of this round's slice.
        remaining_prevalence = float(stable[hidden].mean())
        labelled.update(picks.tolist())
        if slices is not None:  # random selection meets the same fresh candidates
            random_hidden = hidden
        else:
            random_hidden = np.array(sorted(set(range(n_pool)) - random_labelled))
        random_picks = rng.choice(random_hidden, size=per_round, replace=False)
        random_hit = float(stable[random_picks].mean())
        random_labelled.update(random_picks.tolist())
        per_round_results.append(
            {
                "round": r,
                "kappa": round_kappa,
                "picks": int(per_round),
                "hits": int(stable[picks].sum()),
                "hit_rate": hit_rate,
                "daf": hit_rate / prevalence,
                "hit_rate_if_kappa_0": counterfactual["kappa_0"],
                "hit_rate_if_kappa_start": counterfactual["kappa_start"],
                "remaining_prevalence": remaining_prevalence,
                "daf_remaining": hit_rate / remaining_prevalence if remaining_prevalence else None,
                "random_hit_rate": random_hit,
                "daf_random": random_hit / prevalence,
                "seconds": round(time.monotonic() - started, 1),
            }
        )
        print(f"  round {r}: hit rate {hit_rate:.3f} (DAF {hit_rate / prevalence:.1f}); random {random_hit:.3f}; "
              f"κ=0 would give {counterfactual['kappa_0']:.3f}, κ={kappa:g} {counterfactual['kappa_start']:.3f}",
              flush=True)
    return {"prevalence": prevalence, "stable_hidden_at_start": int(stable[hidden_at_start].sum()), "rounds": per_round_results}


def over_seeds(campaign, options) -> dict:
    """Run ``campaign(seed)`` for each seed and average round by round.

    One campaign's round-to-round change (50 picks at a ~20% hit rate: ±6 points of binomial noise alone) is mostly
    noise; the trend is only readable in the mean over independent campaigns (other initial sets, other model seeds).
    """
    seeds = list(range(options.seed, options.seed + options.seeds))
    runs = []
    for seed in seeds:
        print(f" seed {seed}", flush=True)
        runs.append(campaign(seed))
    prevalence = runs[0]["prevalence"]
    rounds = []
    for r in range(options.rounds):
        per_seed = [run["rounds"][r] for run in runs]
        hits, picks = sum(x["hits"] for x in per_seed), sum(x["picks"] for x in per_seed)
        random_hit = float(np.mean([x["random_hit_rate"] for x in per_seed]))
        rounds.append(
            {
                "round": r,
                "kappa": per_seed[0]["kappa"],
                "picks": picks,
                "hits": hits,
                "hit_rate": hits / picks,
                "daf": hits / picks / prevalence,
                "hit_rate_per_seed": [x["hit_rate"] for x in per_seed],
                "remaining_prevalence": float(np.mean([x["remaining_prevalence"] for x in per_seed])),
                "daf_remaining": float(np.mean([x["daf_remaining"] or 0.0 for x in per_seed])),
                "random_hit_rate": random_hit,
                "daf_random": random_hit / prevalence,
                "seconds": round(sum(x["seconds"] for x in per_seed), 1),
            }
        )
    # A good model empties a finite pool: the share of its stable members found so far says how far along it is.
    for r, summary in enumerate(rounds):
        summary["stable_found_fraction"] = float(np.mean([
            sum(x["hits"] for x in run["rounds"][: r + 1]) / max(run["stable_hidden_at_start"], 1) for run in runs
        ]))
    rates = [r["hit_rate"] for r in rounds]
    # The trend of each campaign: the least-squares slope of its hit rate over the rounds. Its mean over the seeds,
    # with the standard error, says whether the rate climbs beyond what one campaign's round-to-round noise allows.
    slopes = [float(np.polyfit(range(options.rounds), [x["hit_rate"] for x in run["rounds"]], 1)[0]) for run in runs]
    return {
        "prevalence": prevalence,
        "seeds": seeds,
        "rounds": rounds,
        "hit_rate_rises": all(b >= a for a, b in zip(rates, rates[1:], strict=False)),
        "hit_rate_last_over_first": rates[-1] / rates[0] if rates[0] else None,
        "hit_rate_slope_per_round": float(np.mean(slopes)),
        "hit_rate_slope_standard_error": float(np.std(slopes, ddof=1) / np.sqrt(len(slopes))) if len(slopes) > 1 else None,
        "per_seed": runs,
    }


# --- perov_5 -----------------------------------------------------------------------------------------------------


def perov5(options) -> dict:
    from discovery.screening.ensemble import train_ensemble
    from discovery.screening.graphs import GraphFeaturizer
    from discovery.screening.model import ModelConfig
    from discovery.screening.training import Split, TrainingConfig, fit_to_data_size, predict_graphs

    rows = read_perov5(limit=options.limit)
    structures, heat_ref = [row["structure"] for row in rows], np.array([row["heat_ref"] for row in rows])
    stable = heat_ref <= STABLE_HEAT_REF
    print(f"perov_5: {len(structures)} structures, prevalence {stable.mean():.4f}", flush=True)
    model_config = ModelConfig(element_embedding=options.element_embedding)
    graphs = GraphFeaturizer().graphs(structures)
    anions = {"O", "N", "F", "S"}
    if options.cap_by == "cations":  # one A–B cation pair with any anion mix counts as one family
        chemsys = ["-".join(sorted({el.symbol for el in s.composition} - anions)) for s in structures]
    else:
        chemsys = [s.composition.chemical_system for s in structures]

    def campaign(seed: int) -> dict:
        rng = np.random.default_rng(seed)
        initial = rng.choice(len(structures), size=options.initial, replace=False)
        # With warm starts a crystal must stay on one side of the split for the whole campaign: a model fine-tuned
        # on it in one round would otherwise early-stop on it in the next.
        held_out = np.random.default_rng(seed + 10_000).random(len(structures)) < 0.1
        previous: list = []

        def fit_predict(train_idx: np.ndarray, predict_idx: np.ndarray):
            order = rng.permutation(train_idx)
            if options.warm_start:
                is_val = held_out[order]
                if not is_val.any():
                    is_val[0] = True
                order = np.concatenate([order[is_val], order[~is_val]])
                n_val = int(is_val.sum())
            else:
                n_val = max(1, len(order) // 10)
            train_graphs = [graphs[i] for i in order]
            split = Split(train=list(range(n_val, len(order))), val=list(range(n_val)), test=[])
            if not options.holdout:  # every labelled crystal trains; the "validation" subset only tracks the fit
                split = Split(train=list(range(len(order))), val=list(range(n_val)), test=[])
            config = TrainingConfig(epochs=options.epochs, patience=5, seed=seed)
            if previous:
                config = replace(config, learning_rate=config.learning_rate * options.warm_lr_factor)
            result = train_ensemble(
                train_graphs,
                heat_ref[order],
                split,
                size=options.ensemble,
                model_config=model_config,
                config=fit_to_data_size(config, len(split.train), min_steps=options.min_steps),
                start_from=previous or None,
            )
            if options.warm_start:
                previous[:] = result.ensemble.models
            pool_graphs = [graphs[i] for i in predict_idx]
            predictions = np.array([predict_graphs(m, pool_graphs) for m in result.ensemble.models])
            return predictions.mean(axis=0), predictions.std(axis=0)

        return active_learning(
            len(structures), stable, initial, fit_predict, options.rounds, options.per_round, options.kappa,
            options.kappa_final, rng, chemsys=chemsys, max_per_chemsys=options.max_per_chemsys,
            candidates=options.candidates,
        )

    return over_seeds(campaign, options)


# --- Bartel 2020 ---------------------------------------------------------------------------------------------------


def read_split(kind: str, split: str) -> dict[str, float]:
    with open(data_dir() / "bartel2020_mp_stability" / kind / f"{split}.csv") as fh:
        return {row["formula"]: float(row["target"]) for row in csv.DictReader(fh)}


class KnownHull:
    """Formation energy of the known phases' hull at each pool composition (eV/atom; elements at 0), kept current.

    The campaign's own loop: a verified pool member's formation energy is folded into the known phases, and the hull
    energy of every pool composition whose chemical system contains the new phase's is recomputed. Without this the
    predicted Ed of a composition stays measured against the training split's phases only, however many of its
    competitors the campaign has verified.
    """

    def __init__(self, pool: list[str], known: dict[str, float]) -> None:
        from pymatgen.core import Composition

        self.by_elements: dict[frozenset, list] = defaultdict(list)
        for formula, ef in known.items():
            self._add(Composition(formula), ef)
        self.comps = [Composition(f) for f in pool]
        self.groups: dict[frozenset, list[int]] = defaultdict(list)
        for i, comp in enumerate(self.comps):
            self.groups[self._elements(comp)].append(i)
        self.energies = np.zeros(len(pool))
        self.folded: set[int] = set()
        for elements in self.groups:
            self._recompute(elements)

    @staticmethod
    def _elements(comp) -> frozenset:
        return frozenset(el.symbol for el in comp.elements)

    def _add(self, comp, ef: float) -> None:
        from pymatgen.analysis.phase_diagram import PDEntry

        self.by_elements[self._elements(comp)].append(PDEntry(comp, ef * comp.num_atoms))

    def _recompute(self, elements: frozenset) -> None:
        from pymatgen.analysis.phase_diagram import PDEntry, PhaseDiagram
        from pymatgen.core import Composition, Element

        members = sorted(elements)
        phases = [
            entry
            for size in range(1, len(members) + 1)
            for subset in combinations(members, size)
            for entry in self.by_elements.get(frozenset(subset), ())
        ]
        phases += [PDEntry(Composition(el), 0.0) for el in members]
        diagram = PhaseDiagram(phases, elements=[Element(e) for e in members])
        for i in self.groups[elements]:
            self.energies[i] = diagram.get_hull_energy_per_atom(self.comps[i])

    def fold(self, indices, formation_energies: np.ndarray) -> int:
        """Add verified pool members; recompute the systems they touch. Returns how many systems were recomputed."""
        new = [int(i) for i in indices if int(i) not in self.folded]
        touched: set[frozenset] = set()
        for i in new:
            self._add(self.comps[i], float(formation_energies[i]))
            touched.add(self._elements(self.comps[i]))
            self.folded.add(i)
        affected = [elements for elements in self.groups if any(t <= elements for t in touched)]
        for elements in affected:
            self._recompute(elements)
        return len(affected)


def bartel(options) -> dict:
    import torch

    from discovery.generation.compositional import CompositionFeaturizer

    known = {**read_split("Ef", "train"), **read_split("Ef", "val")}
    pool_ef = read_split("Ef", "test")
    pool_ed = read_split("Ed", "test")
    pool = sorted(pool_ef)[: options.bartel_limit] if options.bartel_limit else sorted(pool_ef)
    stable = np.array([pool_ed[f] <= 0 for f in pool])
    print(f"Bartel: {len(pool)} pool compositions, {len(known)} known; prevalence {stable.mean():.3f}", flush=True)
    started = time.monotonic()
    base_hull = KnownHull(pool, known)
    print(f"  hull energies of known phases in {time.monotonic() - started:.0f} s", flush=True)
    featurizer = CompositionFeaturizer()
    x_known = featurizer.transform(list(known))
    y_known = np.array(list(known.values()))
    x_pool = featurizer.transform(pool)
    y_pool = np.array([pool_ef[f] for f in pool])
    mu, sigma = x_known.mean(axis=0), x_known.std(axis=0) + 1e-8
    def campaign(seed: int) -> dict:
        rng = np.random.default_rng(seed)
        initial = rng.choice(len(pool), size=min(options.initial, len(pool) // 10), replace=False)
        hull = copy.deepcopy(base_hull) if options.living_hull else base_hull

        def fit_predict(train_idx: np.ndarray, predict_idx: np.ndarray):
            x = np.vstack([x_known, x_pool[train_idx]])
            y = np.concatenate([y_known, y_pool[train_idx]])
            xt = torch.tensor((x - mu) / sigma, dtype=torch.float32)
            yt = torch.tensor(y, dtype=torch.float32)
            xp = torch.tensor((x_pool[predict_idx] - mu) / sigma, dtype=torch.float32)
            members = []
            for k in range(options.ensemble):
                torch.manual_seed(seed * 100 + k)
                net = torch.nn.Sequential(
                    torch.nn.Linear(xt.shape[1], 256), torch.nn.SiLU(), torch.nn.Linear(256, 128), torch.nn.SiLU(),
                    torch.nn.Linear(128, 1),
                )
                optimizer = torch.optim.AdamW(net.parameters(), lr=2e-3, weight_decay=1e-4)
                for _epoch in range(options.mlp_epochs):
                    perm = torch.randperm(len(xt))
                    for start in range(0, len(xt), 512):
                        idx = perm[start : start + 512]
                        loss = torch.nn.functional.l1_loss(net(xt[idx]).squeeze(-1), yt[idx])
                        optimizer.zero_grad()
                        loss.backward()
                        optimizer.step()
                with torch.no_grad():
                    members.append(net(xp).squeeze(-1).numpy())
            predictions = np.array(members)
            if options.living_hull:
                hull.fold(train_idx, y_pool)  # the hull now holds what the campaign verified so far
            predicted_ed = predictions - hull.energies[predict_idx][None, :]
            return predicted_ed.mean(axis=0), predicted_ed.std(axis=0)

        return active_learning(len(pool), stable, initial, fit_predict, options.rounds, options.per_round_bartel,
            options.kappa_bartel, options.kappa_final_bartel, rng, candidates=options.candidates,
        )

    return over_seeds(campaign, options)


def main() -> None:
    from discovery.screening.model import ELEMENT_EMBEDDINGS  # here: importing it loads torch and matgl

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small pools for a smoke run")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--per-round", type=int, default=50)
    parser.add_argument("--per-round-bartel", type=int, default=200)
    parser.add_argument("--initial", type=int, default=100, help="labelled pool members the campaign starts from")
    parser.add_argument("--ensemble", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--mlp-epochs", type=int, default=15)
    parser.add_argument("--min-steps", type=int, default=200, help="optimizer steps per GNN member at least")
    parser.add_argument("--kappa", type=float, default=2.0, help="perov_5: κ of round 0")
    parser.add_argument("--kappa-final", type=float, default=0.0, help="perov_5: κ of the last round (linear)")
    parser.add_argument("--kappa-bartel", type=float, default=2.0, help="Bartel: κ of round 0")
    parser.add_argument("--kappa-final-bartel", type=float, default=0.0, help="Bartel: κ of the last round")
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--holdout", action=argparse.BooleanOptionalAction, default=True,
                        help="perov_5: hold 10%% of the labelled crystals out for early stopping (else train on all)")
    parser.add_argument("--max-per-chemsys", type=int, default=None,
                        help="perov_5: at most this many picks per chemical system in one round (diversity)")
    parser.add_argument("--cap-by", choices=["chemsys", "cations"], default="chemsys",
                        help="perov_5: what --max-per-chemsys counts: chemical systems, or A–B cation pairs")
    parser.add_argument("--warm-start", action=argparse.BooleanOptionalAction, default=True,
                        help="perov_5: fine-tune the previous round's members (a campaign's default retraining); "
                             "--no-warm-start trains new members every round")
    parser.add_argument("--element-embedding", choices=ELEMENT_EMBEDDINGS, default="magpie",
                        help="perov_5: initial element embeddings of the networks")
    parser.add_argument("--warm-lr-factor", type=float, default=0.5,
                        help="perov_5: learning rate of a warm-started round relative to the first round's")
    parser.add_argument("--living-hull", action=argparse.BooleanOptionalAction, default=True,
                        help="Bartel: fold verified pool members into the known hull each round (as a campaign does)")
    parser.add_argument("--bartel-limit", type=int, default=None)
    parser.add_argument("--seed", type=int, default=0, help="first seed")
    parser.add_argument("--seeds", type=int, default=5, help="independent campaigns per pool, averaged round by round")
    parser.add_argument("--candidates", choices=get_args(Candidates), default="pool",
                        help="each round chooses among all still-hidden pool members (pool), or among its own disjoint "
                             "slice of them, like the candidates a campaign generates each round (fresh)")
    parser.add_argument("--skip", choices=["perov5", "bartel"], action="append", default=[])
    options = parser.parse_args()
    if options.quick:
        options.limit, options.bartel_limit, options.rounds, options.epochs = 1500, 2000, 3, 5
        options.initial, options.ensemble, options.mlp_epochs, options.seeds = 300, 2, 5, 1
    started = time.monotonic()
    results = {}
    settings = {k: v for k, v in vars(options).items() if k != "skip"}
    suffix = "_fresh" if options.candidates == "fresh" else ""
    for pool, run in (("perov5", perov5), ("bartel", bartel)):
        if pool not in options.skip:
            pool_started = time.monotonic()
            result = results[pool + suffix] = run(options)
            result.update(settings=settings, date=date.today().isoformat(), machine=machine_description())
            result["wall_seconds"] = round(time.monotonic() - pool_started, 1)
    previous = RESULTS_DIR / "discovery_retrospective.json"
    if previous.exists() and not options.quick:
        # A run of some pools or of one protocol keeps the others' last results; each carries its own settings.
        earlier = json.loads(previous.read_text())
        for pool, result in earlier.get("per_round", {}).items():
            results.setdefault(pool, result)
    order = ["perov5", "perov5_fresh", "bartel", "bartel_fresh"]
    results = dict(sorted(results.items(), key=lambda item: order.index(item[0]) if item[0] in order else len(order)))
    metrics, baseline = {}, {}
    for pool, result in results.items():
        last = result["rounds"][-1]
        metrics[f"{pool}_daf_last_round"] = last["daf"]
        metrics[f"{pool}_hit_rate_last_round"] = last["hit_rate"]
        metrics[f"{pool}_prevalence"] = result["prevalence"]
        metrics[f"{pool}_hit_rate_rises"] = result["hit_rate_rises"]
        baseline[f"{pool}_daf_random_last_round"] = last["daf_random"]
    speedup_pool = "perov5" if "perov5" in results else next(iter(results))  # the headline: the full pool
    last = results[speedup_pool]["rounds"][-1]
    write_result(
        "discovery_retrospective",
        metrics,
        baseline,
        last["daf"] / max(last["daf_random"], 1e-9),
        extra={
            "daf": {pool: [r["daf"] for r in res["rounds"]] for pool, res in results.items()},
            "daf_random": {pool: [r["daf_random"] for r in res["rounds"]] for pool, res in results.items()},
            "per_round": results,
            "wall_seconds": round(time.monotonic() - started, 1),
        },
    )


if __name__ == "__main__":
    main()
