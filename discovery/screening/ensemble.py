"""A deep ensemble of K independently initialised models: mean prediction and spread, computed in batches.

As in GNoME, members share the training split and differ in initialisation and data order; the standard deviation
over members is the model's own uncertainty, large where the input is unlike the training data. Graphs (and M3GNet's
line graph) are built once per batch and fed to every member: inference is never one structure at a time.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch
from pymatgen.core import Structure

from discovery.screening.graphs import UnsupportedStructureError, collate
from discovery.screening.model import ModelConfig, PropertyModel
from discovery.screening.training import (
    Split,
    TrainingConfig,
    TrainingResult,
    mean_absolute_error,
    predict_graphs,
    train_model,
)

logger = logging.getLogger(__name__)


class IncompatibleEnsembleError(ValueError):
    """Ensemble members disagree on graph settings (cutoffs), so they cannot share one batch of graphs."""


@dataclass
class EnsemblePrediction:
    """Per structure: ``mean`` and ``std`` over members (eV/atom), ``members`` (K, N); NaN where ``errors`` has a reason."""

    mean: np.ndarray
    std: np.ndarray
    members: np.ndarray
    errors: dict[int, str]


class Ensemble:
    def __init__(self, models: Sequence[PropertyModel], device: torch.device | str = "cpu"):
        if not models:
            raise ValueError("an ensemble needs at least one model")
        graph_keys = {(m.config.cutoff, m.config.threebody_cutoff if m.config.uses_line_graph else None) for m in models}
        cutoffs = {key[0] for key in graph_keys}
        if len(cutoffs) > 1:
            raise IncompatibleEnsembleError(f"members use different graph cutoffs {sorted(cutoffs)}")
        self.device = torch.device(device)
        self.models = [model.to(self.device).eval() for model in models]
        self.featurizer = self.models[0].featurizer()
        threebody = {key[1] for key in graph_keys if key[1] is not None}
        if len(threebody) > 1:
            raise IncompatibleEnsembleError(f"M3GNet members use different three-body cutoffs {sorted(threebody)}")
        self._threebody_cutoff = threebody.pop() if threebody else None

    def __len__(self) -> int:
        return len(self.models)

    @classmethod
    def load(cls, paths: Sequence[Path], device: torch.device | str = "cpu") -> Ensemble:
        return cls([PropertyModel.load(Path(path)) for path in paths], device=device)

    @torch.inference_mode()
    def predict(self, structures: Sequence[Structure], batch_size: int = 256) -> EnsemblePrediction:
        """Mean and spread for many structures; a structure that cannot be featurised gets NaN and a reason."""
        n = len(structures)
        members = np.full((len(self.models), n), np.nan)
        errors: dict[int, str] = {}
        for start in range(0, n, batch_size):
            graphs, positions = [], []
            for index in range(start, min(start + batch_size, n)):
                try:
                    graphs.append(self.featurizer.graph(structures[index]))
                    positions.append(index)
                except UnsupportedStructureError as exc:
                    errors[index] = str(exc)
            if not graphs:
                continue
            batch = collate(graphs, self._threebody_cutoff).to(self.device)
            for k, model in enumerate(self.models):
                members[k, positions] = model(batch).cpu().numpy()
        valid = ~np.isnan(members[0])
        mean = np.full(n, np.nan)
        std = np.full(n, np.nan)
        mean[valid] = members[:, valid].mean(axis=0)
        std[valid] = members[:, valid].std(axis=0, ddof=1) if len(self.models) > 1 else 0.0
        return EnsemblePrediction(mean=mean, std=std, members=members, errors=errors)

    def predict_one_by_one(self, structures: Sequence[Structure]) -> np.ndarray:
        """Baseline: every member's matgl ``predict_structure`` on every structure, one at a time. Returns (K, N)."""
        return np.array([[model.predict_structure(s) for s in structures] for model in self.models])


@dataclass
class EnsembleTrainingResult:
    ensemble: Ensemble
    members: list[TrainingResult]
    split: Split
    val_mae: float  # of the ensemble mean
    test_mae: float | None  # of the ensemble mean; None without a test set
    baseline_test_mae: float | None  # predicting the training mean for every test structure


def train_ensemble(
    graphs: Sequence,
    targets: Sequence[float],
    split: Split,
    size: int,
    model_config: ModelConfig | None = None,
    config: TrainingConfig | None = None,
    device: torch.device | str = "cpu",
    on_epoch: Callable[[int, object], None] | None = None,
    start_from: Sequence[PropertyModel] | None = None,
) -> EnsembleTrainingResult:
    """Train ``size`` members on one split (seeds ``config.seed + k``) and score the ensemble mean.

    ``start_from``: an earlier ensemble's members to fine-tune, one per member (see ``train_model``); each keeps its
    own weights, so the members stay as different as their independent initialisations made them.
    """
    if size < 1:
        raise ValueError(f"ensemble size must be ≥ 1, got {size}")
    if start_from is not None and len(start_from) != size:
        raise ValueError(f"warm start needs one model per member: {len(start_from)} given for {size} members")
    config = config or TrainingConfig()
    y = np.asarray(targets, dtype=np.float64)
    pick = lambda idx: [graphs[i] for i in idx]  # noqa: E731
    results = []
    for k in range(size):
        callback = (lambda record, k=k: on_epoch(k, record)) if on_epoch else None
        results.append(
            train_model(
                pick(split.train), y[split.train], pick(split.val), y[split.val],
                model_config=model_config, config=replace(config, seed=config.seed + k), device=device,
                on_epoch=callback, start_from=start_from[k] if start_from is not None else None,
            )
        )
    ensemble = Ensemble([r.model for r in results], device=device)
    val_mae = mean_absolute_error(_mean_of(ensemble, pick(split.val)), y[split.val])
    test_mae = baseline = None
    if split.test:
        test_mae = mean_absolute_error(_mean_of(ensemble, pick(split.test)), y[split.test])
        baseline = mean_absolute_error(np.full(len(split.test), y[split.train].mean()), y[split.test])
    return EnsembleTrainingResult(ensemble, results, split, val_mae, test_mae, baseline)


def _mean_of(ensemble: Ensemble, graphs: Sequence) -> np.ndarray:
    return np.mean([predict_graphs(m, graphs, device=ensemble.device) for m in ensemble.models], axis=0)
