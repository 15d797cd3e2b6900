#!/usr/bin/env python
"""Training the screening model on perov_5's heat_ref: seconds per epoch, validation and test MAE, on this machine.

Data: CDVAE's perov_5 val.csv + test.csv (7,572 perovskites, 5 atoms each, heat_ref in eV/atom), a seeded random
subset of ``--max-samples``, split 80/10/10 by chemical system (perov_5's systems are mostly unique ternaries, so
this is close to a random split). Model: ``ModelConfig`` defaults unless overridden; ``--ensemble`` members trained
as the service does (``discovery.screening.ensemble.train_ensemble``), test MAE of the ensemble mean.
Baseline: the mean predictor (the training mean for every test crystal); "speedup" here is the improvement factor
baseline_test_mae / test_mae. Writes ``benchmarks/results/training.json`` recording the subset and epochs used.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.common import read_perov5, write_result  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--max-samples", type=int, default=5000, help="seeded subset of the 7,572 crystals")
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--patience", type=int, default=8)
    parser.add_argument("--ensemble", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--units", type=int, default=None, help="feature width (default: ModelConfig's)")
    parser.add_argument("--blocks", type=int, default=None, help="message-passing blocks (default: ModelConfig's)")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch intra-op threads (0: torch default; 1 avoids OpenMP spinning on a shared CPU)")
    parser.add_argument("--device", default="cpu", help="'cpu', 'cuda' or 'auto'")
    parser.add_argument("--seed", type=int, default=0)
    options = parser.parse_args()

    import torch

    from discovery.screening.device import configure_threads, select_device
    from discovery.screening.ensemble import train_ensemble
    from discovery.screening.graphs import GraphFeaturizer
    from discovery.screening.model import ModelConfig
    from discovery.screening.training import TrainingConfig, split_by_chemsys

    configure_threads(options.threads)
    device = select_device(options.device)
    overrides = {k: v for k, v in (("units", options.units), ("nblocks", options.blocks)) if v is not None}
    model_config = ModelConfig(**overrides)
    training_config = TrainingConfig(epochs=options.epochs, batch_size=options.batch_size, learning_rate=options.lr,
                                     patience=options.patience, seed=options.seed)

    start = time.perf_counter()
    rows = read_perov5(("val", "test"), limit=options.max_samples, seed=options.seed)
    read_s = time.perf_counter() - start
    start = time.perf_counter()
    featurizer = GraphFeaturizer(cutoff=model_config.cutoff)
    graphs, targets, chemsys = [], [], []
    for row in rows:
        graphs.append(featurizer.graph(row["structure"]))
        targets.append(row["heat_ref"])
        chemsys.append(row["structure"].composition.chemical_system)
    featurise_s = time.perf_counter() - start
    split = split_by_chemsys(chemsys, (0.8, 0.1, 0.1), seed=options.seed)
    print(f"{len(graphs)} crystals ({len(set(chemsys))} chemical systems) read in {read_s:.0f} s, featurised in "
          f"{featurise_s:.0f} s; split {len(split.train)}/{len(split.val)}/{len(split.test)}; "
          f"{model_config.architecture} units {model_config.units} blocks {model_config.nblocks}, "
          f"{torch.get_num_threads()} threads, {device}", flush=True)

    def on_epoch(member: int, record) -> None:
        print(f"  model {member + 1} epoch {record.epoch}: train MAE {record.train_mae:.4f}, "
              f"val MAE {record.val_mae:.4f} eV/atom, {record.seconds:.1f} s", flush=True)

    start = time.perf_counter()
    result = train_ensemble(graphs, targets, split, options.ensemble, model_config, training_config,
                            device=device, on_epoch=on_epoch)
    train_s = time.perf_counter() - start
    seconds_per_epoch = float(np.mean([r.seconds_per_epoch for r in result.members]))
    epochs_run = [len(r.history) for r in result.members]
    improvement = result.baseline_test_mae / result.test_mae
    print(f"test MAE {result.test_mae:.4f} eV/atom vs mean predictor {result.baseline_test_mae:.4f} "
          f"({improvement:.2f}× better); {seconds_per_epoch:.1f} s/epoch")
    path = write_result(
        "training",
        metrics={
            "test_mae_ev_per_atom": result.test_mae,
            "val_mae_ev_per_atom": result.val_mae,
            "seconds_per_epoch": seconds_per_epoch,
            "epochs_run": epochs_run,
            "best_epochs": [r.best_epoch for r in result.members],
            "train_seconds": train_s,
            "featurise_seconds": featurise_s,
        },
        baseline={"test_mae_ev_per_atom": result.baseline_test_mae, "method": "mean predictor (training mean)"},
        speedup=improvement,
        extra={
            "speedup_means": "improvement factor baseline_test_mae / test_mae, not a speed ratio",
            "setup": {
                "data": "perov_5 val.csv + test.csv, heat_ref (eV/atom)",
                "subset": f"seeded random {len(graphs)} of 7,572 (seed {options.seed})",
                "split": {"by": "chemsys", "fractions": [0.8, 0.1, 0.1], "train": len(split.train),
                          "val": len(split.val), "test": len(split.test)},
                "ensemble": options.ensemble,
                "model": model_config.as_dict(),
                "training": training_config.as_dict(),
                "torch_threads": torch.get_num_threads(),
                "device": str(device),
                "note": "a budgeted run (a subset, one member, --epochs capped) sized to finish within ~20 minutes "
                        "on a shared 2-core CPU; not the best MAE this model reaches on all 7,572 crystals",
            },
        },
    )
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
