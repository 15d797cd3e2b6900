"""Training one screening model: a chemsys-grouped split, a plain torch loop with early stopping on validation MAE.

Splitting by chemical system keeps every polymorph and stoichiometry of a system on one side, so the test MAE measures
how the model does on systems it has not seen — the situation of a discovery campaign — rather than on near-copies.
"""

from __future__ import annotations

import copy
import math
import random
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace

import numpy as np
import torch
from torch_geometric.data import Data

from discovery.screening.model import ModelConfig, PropertyModel


class TrainingDataError(ValueError):
    """The training data cannot make a model (too few samples or chemical systems, non-finite targets)."""


@dataclass(frozen=True)
class Split:
    train: list[int]
    val: list[int]
    test: list[int]


def split_by_chemsys(
    chemsys: Sequence[str], fractions: tuple[float, float, float] = (0.8, 0.1, 0.1), seed: int = 0
) -> Split:
    """Assign whole chemical systems to train/validation/test so that each gets about its fraction of samples.

    Systems are shuffled with ``seed`` and dealt out greedily to the split furthest below its target size; every split
    gets at least one system when there are three or more.
    """
    if len(fractions) != 3 or any(f < 0 for f in fractions) or not math.isclose(sum(fractions), 1.0):
        raise ValueError(f"split fractions must be three non-negative numbers summing to 1, got {fractions}")
    groups: dict[str, list[int]] = defaultdict(list)
    for index, system in enumerate(chemsys):
        groups[system].append(index)
    if len(groups) < 3:
        raise TrainingDataError(f"need at least 3 chemical systems to split by chemsys, got {len(groups)}")
    systems = sorted(groups)
    random.Random(seed).shuffle(systems)
    targets = [f * len(chemsys) for f in fractions]
    parts: list[list[int]] = [[], [], []]
    # Seed each non-empty split with one system, then give each next system to the split with the largest deficit.
    for part, system in zip([p for p, f in enumerate(fractions) if f > 0], systems, strict=False):
        parts[part].extend(groups[system])
    used = sum(1 for f in fractions if f > 0)
    for system in systems[used:]:
        part = max(range(3), key=lambda p: targets[p] - len(parts[p]))
        parts[part].extend(groups[system])
    return Split(train=sorted(parts[0]), val=sorted(parts[1]), test=sorted(parts[2]))


@dataclass(frozen=True)
class TrainingConfig:
    epochs: int = 50
    batch_size: int = 64
    learning_rate: float = 2e-3
    weight_decay: float = 0.0
    patience: int = 8  # epochs without a better validation MAE before stopping
    seed: int = 0

    def as_dict(self) -> dict:
        return asdict(self)


def fit_to_data_size(config: TrainingConfig, n_train: int, min_steps: int, max_epochs: int = 300) -> TrainingConfig:
    """Smaller batches and more epochs for small training sets, so that a model takes ≥ ``min_steps`` optimizer steps.

    A campaign's first model may see a few dozen crystals: with 64 per batch and 5 epochs it would take 5 steps and
    predict little more than the mean. Batches shrink to about an eighth of the set (never below 8) and epochs grow
    to reach ``min_steps`` (at most ``max_epochs``); early stopping still ends training when validation stalls.
    """
    if n_train < 1:
        return config
    batch_size = max(min(config.batch_size, n_train // 8), min(8, n_train))
    steps_per_epoch = math.ceil(n_train / batch_size)
    epochs = min(max(config.epochs, math.ceil(min_steps / steps_per_epoch)), max(max_epochs, config.epochs))
    patience = max(config.patience, epochs // 5)
    return replace(config, batch_size=batch_size, epochs=epochs, patience=patience)


@dataclass
class EpochRecord:
    epoch: int
    train_mae: float
    val_mae: float
    seconds: float


@dataclass
class TrainingResult:
    model: PropertyModel
    best_epoch: int
    val_mae: float
    history: list[EpochRecord] = field(default_factory=list)
    stopped_early: bool = False

    @property
    def seconds_per_epoch(self) -> float:
        return float(np.mean([record.seconds for record in self.history])) if self.history else 0.0


ProgressCallback = Callable[[EpochRecord], None]


def _batches(indices: Sequence[int], batch_size: int) -> list[list[int]]:
    return [list(indices[start : start + batch_size]) for start in range(0, len(indices), batch_size)]


@torch.inference_mode()
def predict_graphs(
    model: PropertyModel, graphs: Sequence[Data], batch_size: int = 256, device: torch.device | str = "cpu"
) -> np.ndarray:
    """Predictions (target units) for pre-built graphs, in batches."""
    model.eval()
    out = []
    for chunk in _batches(range(len(graphs)), batch_size):
        batch = model.collate([graphs[i] for i in chunk]).to(device)
        out.append(model(batch).cpu().numpy())
    return np.concatenate(out) if out else np.zeros(0)


@torch.inference_mode()
def _predict_batches(model: PropertyModel, batches: Sequence, device: torch.device | str) -> np.ndarray:
    model.eval()
    out = [model(batch.to(device)).cpu().numpy() for batch in batches]
    return np.concatenate(out) if out else np.zeros(0)


def mean_absolute_error(predictions: np.ndarray, targets: Sequence[float]) -> float:
    return float(np.mean(np.abs(np.asarray(predictions) - np.asarray(targets))))


def train_model(
    train_graphs: Sequence[Data],
    train_targets: Sequence[float],
    val_graphs: Sequence[Data],
    val_targets: Sequence[float],
    model_config: ModelConfig | None = None,
    config: TrainingConfig | None = None,
    device: torch.device | str = "cpu",
    on_epoch: ProgressCallback | None = None,
    start_from: PropertyModel | None = None,
) -> TrainingResult:
    """Train one model (L1 loss on normalised targets, Adam, cosine decay); keep the best-validation weights.

    ``start_from``: fine-tune a copy of an earlier model instead of starting from random weights. An active-learning
    round adds a few dozen crystals to a few hundred; a warm start continues what the previous rounds learnt rather
    than drawing a new model each round (on the perov_5 retrospective it found as many stable crystals as retraining
    from scratch, within the noise between seeds). The copy keeps its target normalisation (its network's outputs are
    in those units) and its architecture; ``model_config`` is then ignored. The original is not modified.
    """
    config = config or TrainingConfig()
    model_config = start_from.config if start_from is not None else (model_config or ModelConfig())
    y_train = np.asarray(train_targets, dtype=np.float64)
    if len(train_graphs) != len(y_train) or len(val_graphs) != len(val_targets):
        raise TrainingDataError("graphs and targets differ in length")
    if len(y_train) < 2 or len(val_graphs) < 1:
        raise TrainingDataError(f"need ≥ 2 training and ≥ 1 validation samples, got {len(y_train)} and {len(val_graphs)}")
    if not (np.all(np.isfinite(y_train)) and np.all(np.isfinite(val_targets))):
        raise TrainingDataError("targets contain NaN or infinite values")

    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    if start_from is not None:
        model = copy.deepcopy(start_from)
    else:
        model = PropertyModel(model_config, target_mean=float(y_train.mean()), target_std=float(y_train.std() or 1.0))
    model.to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay)
    steps = max(1, config.epochs * math.ceil(len(y_train) / config.batch_size))
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=steps, eta_min=config.learning_rate * 0.01)
    targets = torch.tensor(y_train, dtype=torch.float32)

    # Batches are collated once (M3GNet's line graph is the costly part of collating) with a random membership;
    # every epoch visits them in a new order. Re-drawing the membership each epoch gained nothing measurable here.
    chunks = _batches(rng.permutation(len(y_train)).tolist(), config.batch_size)
    train_batches = [(model.collate([train_graphs[i] for i in chunk]), targets[chunk]) for chunk in chunks]
    val_batches = [model.collate([val_graphs[i] for i in chunk]) for chunk in _batches(range(len(val_graphs)), 256)]

    best_state = copy.deepcopy(model.state_dict())
    best_val = math.inf
    best_epoch = 0
    history: list[EpochRecord] = []
    stopped_early = False
    for epoch in range(1, config.epochs + 1):
        start = time.perf_counter()
        model.train()
        abs_error_sum = 0.0
        for index in rng.permutation(len(train_batches)).tolist():
            cached, y = train_batches[index]
            batch = cached.to(device)
            y = y.to(device)
            predictions = model(batch)
            loss = torch.nn.functional.l1_loss((predictions - model.target_mean) / model.target_std,
                                               (y - model.target_mean) / model.target_std)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            abs_error_sum += float((predictions.detach() - y).abs().sum())
        val_mae = mean_absolute_error(_predict_batches(model, val_batches, device), val_targets)
        record = EpochRecord(epoch, abs_error_sum / len(y_train), val_mae, time.perf_counter() - start)
        history.append(record)
        if on_epoch is not None:
            on_epoch(record)
        if val_mae < best_val:
            best_val, best_epoch = val_mae, epoch
            best_state = copy.deepcopy(model.state_dict())
        elif epoch - best_epoch >= config.patience:
            stopped_early = True
            break
    model.load_state_dict(best_state)
    model.eval()
    model.to("cpu")
    return TrainingResult(model=model, best_epoch=best_epoch, val_mae=best_val, history=history, stopped_early=stopped_early)
