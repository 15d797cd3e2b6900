"""Services around the screening ensemble: train it on one scheme's energies, screen candidates, pick some for DFT.

Rows in, rows out; the science is in ``discovery.screening``. Weight files live under ``settings.MODEL_DIR``
(``screening/mv-<id>/member-<k>.pt``), recorded on the ``ModelVersion`` with their sha256, which is checked before
any weights are loaded again.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
from django.conf import settings
from django.db import transaction
from pymatgen.core import Composition, Structure

from catalog.datasets import sha256_of
from catalog.models import EnergyRecord, HullEntry, Scheme
from discovery.generation.compositional import RidgeCompositionModel
from discovery.models import Candidate, ModelVersion
from discovery.screening.acquisition import AcquisitionRule, Scored, select
from discovery.screening.device import configure_threads, select_device
from discovery.screening.ensemble import Ensemble
from discovery.screening.ensemble import train_ensemble as train_ensemble_members
from discovery.screening.graphs import GraphFeaturizer, UnsupportedStructureError
from discovery.screening.model import CheckpointError, ModelConfig
from discovery.screening.stability import HullReferences
from discovery.screening.training import (
    EpochRecord,
    TrainingConfig,
    TrainingDataError,
    fit_to_data_size,
    split_by_chemsys,
)

logger = logging.getLogger(__name__)

TARGET_FORMATION_ENERGY = "formation_energy_per_atom"
TARGET_STABILITY_VALUE = "stability_value"
# A fine-tuned ensemble continues from trained weights: half the learning rate keeps the first steps on the new data
# from undoing what the earlier rounds learnt.
FINE_TUNE_LR_FACTOR = 0.5


class WeightsIntegrityError(RuntimeError):
    """A model version's weight file is missing or its sha256 differs from the one recorded when it was trained."""


@dataclass
class TrainingSet:
    """One scheme's labelled crystals, in energy-record id order."""

    scheme: Scheme
    target: str
    record_ids: list[int]
    structures: list[Structure]
    targets: list[float]
    chemsys: list[str]
    extra_schemes: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.record_ids)

    @property
    def sha256(self) -> str:
        """Hash of the snapshot: which energy records, with which target values (µeV/atom precision)."""
        schemes = "+".join([self.scheme.name, *self.extra_schemes])
        digest = hashlib.sha256(f"{schemes}|{self.target}\n".encode())
        for record_id, value in zip(self.record_ids, self.targets, strict=True):
            digest.update(f"{record_id}:{value:.6f}\n".encode())
        return digest.hexdigest()


def target_of(scheme: Scheme) -> str:
    """Formation energy per atom where the scheme has a hull, else the dataset's own stability value."""
    return TARGET_FORMATION_ENERGY if scheme.builds_hull else TARGET_STABILITY_VALUE


def _labelled(scheme: Scheme, target: str):
    """(record, target value) of every crystal of ``scheme`` with a finite target, in record id order."""
    records = (
        EnergyRecord.objects.filter(scheme=scheme, material__isnull=False)
        .select_related("material", "hull_entry")
        .order_by("id")
    )
    for record in records.iterator(chunk_size=2000):
        if target == TARGET_STABILITY_VALUE:
            value = record.stability_value
        else:
            hull_entry = getattr(record, "hull_entry", None)
            ok = hull_entry is not None and hull_entry.status == HullEntry.Status.OK
            value = hull_entry.formation_energy_per_atom if ok else None
            value = record.formation_energy_per_atom if value is None else value
        if value is not None and np.isfinite(value):
            yield record, float(value)


def training_set(
    scheme: Scheme, max_samples: int | None = None, seed: int = 0, extra_schemes: Sequence[Scheme] = ()
) -> TrainingSet:
    """Crystals of ``scheme`` with a target; ``max_samples`` keeps a seeded random subset (sorted by record id).

    For hull schemes the target is the hull entry's formation energy (the number the hull is built from), falling
    back to the record's own formation energy where no hull entry exists yet. ``extra_schemes`` add their crystals
    that ``scheme`` does not have (a campaign's own DFT results first, the seed data it started from after).
    """
    target = target_of(scheme)
    rows = list(_labelled(scheme, target))
    seen = {record.material_id for record, _ in rows}
    for extra in extra_schemes:
        if target_of(extra) != target:
            raise TrainingDataError(f"scheme {extra.name!r} has no {target}; it cannot extend {scheme.name!r}")
        for record, value in _labelled(extra, target):
            if record.material_id not in seen:
                seen.add(record.material_id)
                rows.append((record, value))
    if max_samples is not None and len(rows) > max_samples:
        keep = np.sort(np.random.default_rng(seed).choice(len(rows), size=max_samples, replace=False))
        rows = [rows[i] for i in keep]
    return TrainingSet(
        scheme=scheme,
        target=target,
        record_ids=[record.id for record, _ in rows],
        structures=[record.material.to_structure() for record, _ in rows],
        targets=[value for _, value in rows],
        chemsys=[record.chemsys for record, _ in rows],
        extra_schemes=[extra.name for extra in extra_schemes],
    )


def _torch_device():
    configure_threads(settings.GNOMON_TORCH_THREADS)
    return select_device(settings.GNOMON_TORCH_DEVICE)


def train_ensemble(
    scheme: Scheme,
    ensemble_size: int = 3,
    model_config: ModelConfig | None = None,
    training_config: TrainingConfig | None = None,
    max_samples: int | None = None,
    split_fractions: tuple[float, float, float] = (0.8, 0.1, 0.1),
    name: str = "",
    on_epoch: Callable[[int, EpochRecord], None] | None = None,
    on_featurised: Callable[[int], None] | None = None,
    min_optimizer_steps: int | None = None,
    prior: RidgeCompositionModel | None = None,
    extra_schemes: Sequence[Scheme] = (),
    fine_tune: ModelVersion | None = None,
) -> ModelVersion:
    """Train K models on ``scheme`` (split by chemsys), save their weights and record a ``ModelVersion``.

    ``min_optimizer_steps``: adapt batch size and epochs to the data size (``fit_to_data_size``) so that small
    training sets still train; the hyper-parameters recorded are the ones used.

    ``prior``: a composition-only formation-energy model (the ridge baseline trained on Bartel et al.'s 85,014 MP
    compositions). With it the graph networks learn the residual ``target − prior(composition)`` ("delta learning"):
    a campaign's first model sees a few dozen crystals, far too few to learn chemistry from scratch, while the prior
    already knows that NaCl is bound and KNa is not. Saved with the version; predictions add it back. Formation-energy
    targets only.

    ``fine_tune``: an earlier version whose members to continue training (at ``FINE_TUNE_LR_FACTOR`` of the learning
    rate) instead of starting from random weights, as a campaign does round after round. When the earlier version
    cannot be continued (another target, architecture, ensemble size or prior) the ensemble trains from scratch and
    the version's hyper-parameters say why.
    """
    model_config = model_config or ModelConfig()
    training_config = training_config or TrainingConfig()
    data = training_set(scheme, max_samples=max_samples, seed=training_config.seed, extra_schemes=extra_schemes)
    if len(data) < 3:
        raise TrainingDataError(f"scheme {scheme.name!r} has {len(data)} crystals with a {data.target}; need ≥ 3")
    device = _torch_device()

    featurizer = GraphFeaturizer(cutoff=model_config.cutoff)
    graphs, kept, skipped = [], [], {}
    for index, structure in enumerate(data.structures):
        try:
            graphs.append(featurizer.graph(structure))
            kept.append(index)
        except UnsupportedStructureError as exc:
            skipped[data.record_ids[index]] = str(exc)
    if on_featurised is not None:
        on_featurised(len(graphs))
    targets = [data.targets[i] for i in kept]
    if prior is not None and data.target != TARGET_FORMATION_ENERGY:
        prior = None  # a composition prior of formation energies says nothing about a dataset's stability value
    if prior is not None:
        offsets = prior.predict([data.structures[i].composition.reduced_formula for i in kept])
        targets = [t - float(o) for t, o in zip(targets, offsets, strict=True)]
    split = split_by_chemsys([data.chemsys[i] for i in kept], split_fractions, seed=training_config.seed)
    start_from, warm_start = None, None
    if fine_tune is not None:
        reason = fine_tune_obstacle(fine_tune, data.target, model_config, ensemble_size, prior is not None)
        warm_start = {"from_version": fine_tune.pk, "from_name": fine_tune.name}
        if not reason:
            try:  # weights gone or altered (e.g. a model directory not shared with this host): scratch still works
                start_from = load_ensemble(fine_tune).models
            except (WeightsIntegrityError, CheckpointError) as exc:
                reason = f"its weights cannot be used: {exc}"
        if reason:
            warm_start["trained_from_scratch_because"] = reason
            logger.warning("not fine-tuning %s: %s", fine_tune, reason)
        else:
            training_config = replace(training_config,
                                      learning_rate=training_config.learning_rate * FINE_TUNE_LR_FACTOR)
    if min_optimizer_steps:
        training_config = fit_to_data_size(training_config, len(split.train), min_optimizer_steps)
    result = train_ensemble_members(
        graphs, targets, split, ensemble_size, model_config, training_config, device=device, on_epoch=on_epoch,
        start_from=start_from,
    )
    members = result.members
    metrics = {
        "baseline_test_mae": result.baseline_test_mae,
        "n_train": len(split.train),
        "n_val": len(split.val),
        "n_test": len(split.test),
        "n_skipped": len(skipped),
        "skipped": dict(list(skipped.items())[:50]),
        "members": [
            {
                "val_mae": m.val_mae,
                "best_epoch": m.best_epoch,
                "epochs_run": len(m.history),
                "stopped_early": m.stopped_early,
                "seconds_per_epoch": m.seconds_per_epoch,
            }
            for m in members
        ],
        "seconds_per_epoch": float(np.mean([m.seconds_per_epoch for m in members])),
        "device": str(device),
        "torch_threads": settings.GNOMON_TORCH_THREADS,
        # with a prior, MAEs are of the residual, which equal those of prior + residual; the baseline is the prior
        # plus the mean training residual
        "prior": "composition-ridge" if prior is not None else None,
    }
    model_dir = Path(settings.MODEL_DIR)
    with transaction.atomic():
        version = ModelVersion.objects.create(
            name=name or f"{scheme.name}-{model_config.architecture}-x{ensemble_size}",
            scheme=scheme,
            target=data.target,
            architecture=model_config.architecture,
            ensemble_size=ensemble_size,
            hyperparameters={
                "model": model_config.as_dict(),
                "training": training_config.as_dict(),
                "split_fractions": list(split_fractions),
                "split": "chemsys",
                "max_samples": max_samples,
                "extra_schemes": data.extra_schemes,
                "fine_tuned": warm_start,
            },
            data_count=len(data),
            data_hash=data.sha256,
            validation_mae=result.val_mae,
            test_mae=result.test_mae,
            metrics=metrics,
        )
        weights = []
        for k, member in enumerate(members):
            relative = Path("screening") / f"mv-{version.pk:06d}" / f"member-{k}.pt"
            path = member.model.save(model_dir / relative)
            weights.append({"path": relative.as_posix(), "sha256": sha256_of(path), "bytes": path.stat().st_size})
        version.weights = weights
        if prior is not None:
            relative = Path("screening") / f"mv-{version.pk:06d}" / "prior.json"
            prior.save(model_dir / relative)
            version.hyperparameters = {
                **version.hyperparameters,
                "prior": {"kind": "ridge-magpie", "path": relative.as_posix(),
                          "sha256": sha256_of(model_dir / relative)},
            }
        version.save(update_fields=["weights", "hyperparameters"])
    logger.info(
        "trained %s on %d crystals: val MAE %.4f, test MAE %s eV/atom (mean-predictor %s)",
        version, len(data), result.val_mae, result.test_mae, result.baseline_test_mae,
    )
    return version


def fine_tune_obstacle(
    version: ModelVersion, target: str, model_config: ModelConfig, ensemble_size: int, with_prior: bool
) -> str | None:
    """Why ``version``'s members cannot be continued as the requested ensemble, or None when they can.

    A member's output is in its first training's target units (and, with a prior, a residual of it), so continuing
    it on another target or with(out) a prior would start from nonsense; other shapes cannot load the weights.
    """
    if version.target != target:
        return f"it predicts {version.target}, this ensemble learns {target}"
    if version.ensemble_size != ensemble_size:
        return f"it has {version.ensemble_size} members, this ensemble {ensemble_size}"
    # How the element embeddings were initialised does not matter to a model that continues trained weights.
    earlier = {k: v for k, v in ((version.hyperparameters or {}).get("model") or {}).items() if k != "element_embedding"}
    wanted = {k: v for k, v in model_config.as_dict().items() if k != "element_embedding"}
    if earlier != wanted:
        return f"its network settings {earlier} differ from {wanted}"
    if bool((version.hyperparameters or {}).get("prior")) != with_prior:
        return "one of the two learns the residual of a composition prior and the other does not"
    return None


def weight_paths(version: ModelVersion) -> list[Path]:
    """The version's weight files, each checked against its recorded sha256."""
    if not version.weights:
        raise WeightsIntegrityError(f"model version {version.pk} has no weight files recorded")
    paths = []
    for weight in version.weights:
        path = Path(settings.MODEL_DIR) / weight["path"]
        if not path.is_file():
            raise WeightsIntegrityError(f"model version {version.pk}: weight file {path} is missing")
        actual = sha256_of(path)
        if actual != weight["sha256"]:
            raise WeightsIntegrityError(
                f"model version {version.pk}: {path} has sha256 {actual}, recorded {weight['sha256']}; retrain the model"
            )
        paths.append(path)
    return paths


def load_ensemble(version: ModelVersion) -> Ensemble:
    return Ensemble.load(weight_paths(version), device=_torch_device())


def load_prior(version: ModelVersion) -> RidgeCompositionModel | None:
    """The version's composition prior (checked against its sha256), or None when it was trained without one."""
    spec = (version.hyperparameters or {}).get("prior")
    if not spec:
        return None
    path = Path(settings.MODEL_DIR) / spec["path"]
    if not path.is_file():
        raise WeightsIntegrityError(f"model version {version.pk}: prior file {path} is missing")
    if sha256_of(path) != spec["sha256"]:
        raise WeightsIntegrityError(f"model version {version.pk}: {path} differs from the recorded sha256; retrain")
    return RidgeCompositionModel.load(path)


def hull_references(
    scheme: Scheme,
    chemsys: Iterable[str],
    predict_formation: Callable[[list[Structure]], list[float | None]] | None = None,
) -> HullReferences:
    """The hull a candidate of ``scheme`` is placed against: the scheme's own stable phases (its energies) plus every
    competing phase (``catalog.verdicts.competing_phases``) that the scheme has not computed, at
    ``predict_formation``'s energy (the screening model's, so candidates and the competitors they lack meet at one
    level of theory). These are the phases the candidate's verdict will be reached against; energies are never taken
    from another scheme ("lowest wins" across levels of theory made candidates look stable against nothing).

    ``chemsys``: the candidates' chemical systems (their subsystems come with them)."""
    from catalog.models import Material
    from catalog.verdicts import competing_phases

    systems = {frozenset(c.split("-")) for c in chemsys}
    maximal = [s for s in systems if not any(s < other for other in systems)]
    elements = sorted(set().union(*maximal)) if maximal else []
    own = list(HullEntry.objects.filter(
        scheme=scheme,
        is_stable=True,
        status=HullEntry.Status.OK,
        formation_energy_per_atom__isnull=False,
        energy_record__elements__contained_by=elements,
        energy_record__excluded_reason="",
    ).values_list("energy_record__composition", "formation_energy_per_atom"))
    if predict_formation is None or not maximal:
        return HullReferences(own)
    computed = {Composition(c).reduced_formula for c in EnergyRecord.objects.filter(
        scheme=scheme, elements__contained_by=elements, excluded_reason="").values_list("composition", flat=True)}
    wanted: dict[str, int] = {}
    for system in maximal:
        for competitor in competing_phases("-".join(sorted(system)), exclude_scheme=scheme):
            if competitor.material_id is not None and competitor.formula not in computed:
                wanted.setdefault(competitor.formula, competitor.material_id)
    materials = Material.objects.in_bulk(list(wanted.values()))
    structures = [materials[pk].to_structure() for pk in wanted.values() if pk in materials]
    predicted = predict_formation(structures) if structures else []
    extra = [(s.composition, e) for s, e in zip(structures, predicted, strict=True) if e is not None]
    return HullReferences(own + extra)


@dataclass
class ScreeningSummary:
    screened: int = 0
    rejected: dict[int, str] = field(default_factory=dict)  # candidate id -> why it could not be screened


def predictor(version: ModelVersion, batch_size: int | None = None) -> Callable[[Sequence[Structure]], Any]:
    """The version's ensemble (weights checked) with its composition prior added back: structures → prediction."""
    ensemble = load_ensemble(version)
    prior = load_prior(version)
    batch_size = batch_size or settings.GNOMON_SCREENING_BATCH_SIZE

    def predict(structures: Sequence[Structure]):
        prediction = ensemble.predict(list(structures), batch_size=batch_size)
        if prior is not None:  # the networks predict the residual over the composition prior
            prediction.mean = prediction.mean + prior.predict([s.composition.reduced_formula for s in structures])
        return prediction

    return predict


def screen_candidates(
    candidates: Sequence[Candidate], version: ModelVersion, batch_size: int | None = None
) -> ScreeningSummary:
    """Predict mean/std with the ensemble and place each candidate against its chemsys's current hull.

    ``predicted_e_above_hull`` is signed (negative: below the current hull). For a stability-value scheme, which builds
    no hull, it is the predicted stability value itself (e.g. perov_5's heat_ref, already relative to competing phases).
    Candidates that cannot be featurised are marked rejected; everything is written in one bulk update.
    """
    candidates = list(candidates)
    if not candidates:
        return ScreeningSummary()
    predict = predictor(version, batch_size)

    def predict_formation(structures: list[Structure]) -> list[float | None]:
        prediction = predict(structures)
        return [None if i in prediction.errors else float(m) for i, m in enumerate(prediction.mean)]

    structures = [Structure.from_dict(c.structure) for c in candidates]
    prediction = predict(structures)
    references = None
    if version.target == TARGET_FORMATION_ENERGY:
        references = hull_references(version.scheme, {c.chemsys for c in candidates}, predict_formation)
    summary = ScreeningSummary()
    for index, (candidate, structure) in enumerate(zip(candidates, structures, strict=True)):
        if index in prediction.errors:
            candidate.status = Candidate.Status.REJECTED
            summary.rejected[candidate.pk] = prediction.errors[index]
            continue
        mean = float(prediction.mean[index])
        candidate.predicted_mean = mean
        candidate.predicted_std = float(prediction.std[index])
        candidate.predicted_e_above_hull = (
            references.e_above_hull(structure.composition, mean) if references is not None else mean
        )
        candidate.status = Candidate.Status.SCREENED
        summary.screened += 1
    Candidate.objects.bulk_update(
        candidates, ["predicted_mean", "predicted_std", "predicted_e_above_hull", "status"], batch_size=1000
    )
    return summary


def select_candidates(candidates: Sequence[Candidate], rule: AcquisitionRule) -> list[Candidate]:
    """Mark the screened candidates the acquisition rule picks as selected (for DFT); return them in pick order."""
    screened = [c for c in candidates if c.status == Candidate.Status.SCREENED and c.predicted_e_above_hull is not None]
    picks = select([Scored(c, c.chemsys, c.predicted_e_above_hull, c.predicted_std or 0.0, c.formula_reduced)
                    for c in screened], rule)
    chosen = [pick.key for pick in picks]
    for candidate in chosen:
        candidate.status = Candidate.Status.SELECTED
    Candidate.objects.bulk_update(chosen, ["status"])
    return chosen
