"""Screening services against real PostgreSQL: train on a scheme, guard the weights, screen and select candidates.

The models here are deliberately useless (8 features, 2 epochs): these tests are about rows, files and hashes. Whether
a model learns is asserted in ``test_screening.py``.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import replace
from io import StringIO
from pathlib import Path

import numpy as np
import pytest
from django.core.management import CommandError, call_command
from django.db import transaction
from pymatgen.core import Lattice, Structure

from catalog.models import EnergyRecord, Scheme
from catalog.services.energies import EnergyInput, ensure_scheme, record_energies
from catalog.services.hulls import update_hulls
from catalog.structures import chemsys_of
from discovery.models import Candidate, ModelVersion
from discovery.screening.acquisition import AcquisitionRule
from discovery.screening.model import ModelConfig
from discovery.screening.stability import HullReferences
from discovery.screening.training import TrainingConfig, TrainingDataError
from discovery.services.screening import (
    TARGET_FORMATION_ENERGY,
    TARGET_STABILITY_VALUE,
    WeightsIntegrityError,
    load_ensemble,
    screen_candidates,
    select_candidates,
    train_ensemble,
    training_set,
    weight_paths,
)
from tests.discovery.screening_data import binary, out_of_distribution, synthetic_dataset
from tests.factories import make_material

pytestmark = pytest.mark.django_db

TINY = ModelConfig(units=8, nblocks=1)
QUICK = TrainingConfig(epochs=2, batch_size=32, patience=2)


@pytest.fixture(autouse=True)
def model_dir(settings, tmp_path) -> Path:
    settings.MODEL_DIR = tmp_path / "models"
    settings.GNOMON_TORCH_DEVICE = "cpu"
    settings.GNOMON_TORCH_THREADS = 1  # tiny models; extra threads only spin on a shared 2-core machine
    return settings.MODEL_DIR


def load_scheme(name: str, kind: str) -> Scheme:
    """The synthetic binaries as catalog materials with their synthetic energy in a scheme of ``kind``."""
    scheme = ensure_scheme(name, kind, is_dft=False)
    structures, targets, _ = synthetic_dataset(scales=1)
    structures, targets = structures[::3], targets[::3]  # 32 crystals in 32 systems, both prototypes: enough rows
    field = "stability_value" if kind == Scheme.Kind.STABILITY_VALUE else "formation_energy_per_atom"
    items = []
    for index, (structure, target) in enumerate(zip(structures, targets, strict=True)):
        material = make_material(structure, dataset="synthetic", source_id=f"{name}-{index}")
        items.append(EnergyInput(source_key=f"{name}-{index}", composition=structure.composition.formula,
                                 material_id=material.pk, **{field: target}))
    with transaction.atomic():
        outcome = record_energies(scheme, items)
    if scheme.builds_hull:
        update_hulls(scheme, outcome.chemsystems)
    return scheme


@pytest.fixture
def stability_scheme() -> Scheme:
    return load_scheme("test:synthetic-stability", Scheme.Kind.STABILITY_VALUE)


@pytest.fixture
def trained(stability_scheme: Scheme) -> ModelVersion:
    return train_ensemble(stability_scheme, ensemble_size=2, model_config=TINY, training_config=QUICK)


def make_candidate(structure: Structure, tag: str) -> Candidate:
    return Candidate.objects.create(
        structure=structure.as_dict(),
        formula_reduced=structure.composition.reduced_formula,
        chemsys=chemsys_of(structure.composition),
        pipeline="structural",
        fingerprint=hashlib.sha256(tag.encode()).hexdigest(),
    )


def isolated_atom() -> Structure:
    return Structure(Lattice.cubic(10.0), ["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])


# --- training -----------------------------------------------------------------------------------------------------


def test_train_ensemble_records_a_model_version(trained: ModelVersion, stability_scheme: Scheme, model_dir: Path):
    version = ModelVersion.objects.get(pk=trained.pk)
    n_records = EnergyRecord.objects.filter(scheme=stability_scheme).count()
    assert version.scheme == stability_scheme and version.target == TARGET_STABILITY_VALUE
    assert version.data_count == n_records == 32
    assert re.fullmatch(r"[0-9a-f]{64}", version.data_hash)
    assert version.data_hash == training_set(stability_scheme).sha256
    assert version.ensemble_size == 2 and len(version.weights) == 2
    for weight in version.weights:
        path = model_dir / weight["path"]
        assert path.is_file() and path.stat().st_size == weight["bytes"]
        assert hashlib.sha256(path.read_bytes()).hexdigest() == weight["sha256"]
    assert version.validation_mae > 0 and version.test_mae > 0
    metrics = version.metrics
    assert metrics["n_train"] + metrics["n_val"] + metrics["n_test"] == version.data_count
    assert metrics["baseline_test_mae"] > 0 and metrics["seconds_per_epoch"] > 0
    assert [m["epochs_run"] for m in metrics["members"]] == [2, 2]
    assert version.hyperparameters["model"]["units"] == 8 and version.hyperparameters["split"] == "chemsys"


def test_fine_tuning_continues_the_earlier_members(trained: ModelVersion, stability_scheme: Scheme):
    probe = [binary("Na", "Cl"), binary("K", "Br", "cscl")]
    before = load_ensemble(trained).predict(probe).members
    # at a vanishing learning rate a fine-tuned member predicts what the member it continues did
    frozen = TrainingConfig(epochs=1, batch_size=32, learning_rate=1e-12, patience=1)
    tuned = train_ensemble(stability_scheme, ensemble_size=2, model_config=TINY, training_config=frozen,
                           fine_tune=trained)
    np.testing.assert_allclose(load_ensemble(tuned).predict(probe).members, before, atol=1e-4)
    assert tuned.hyperparameters["fine_tuned"] == {"from_version": trained.pk, "from_name": trained.name}
    assert tuned.hyperparameters["training"]["learning_rate"] == pytest.approx(0.5e-12)
    assert tuned.weights != trained.weights  # its own files; the earlier version stays as it was
    np.testing.assert_array_equal(load_ensemble(trained).predict(probe).members, before)


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"ensemble_size": 3}, "it has 2 members, this ensemble 3"),
        ({"model_config": ModelConfig(units=16, nblocks=1)}, "network settings"),
    ],
)
def test_an_ensemble_that_cannot_be_continued_trains_from_scratch(
    trained: ModelVersion, stability_scheme: Scheme, changes, reason
):
    settings = {"ensemble_size": 2, "model_config": TINY, **changes}
    version = train_ensemble(stability_scheme, training_config=QUICK, fine_tune=trained, **settings)
    assert reason in version.hyperparameters["fine_tuned"]["trained_from_scratch_because"]
    assert version.hyperparameters["training"]["learning_rate"] == QUICK.learning_rate
    assert len(version.weights) == settings["ensemble_size"]


def test_how_embeddings_were_initialised_does_not_stop_fine_tuning(trained: ModelVersion, stability_scheme: Scheme):
    # a version trained before the setting existed (or with the other initialisation) is still continued
    other = "random" if TINY.element_embedding == "magpie" else "magpie"
    tuned = train_ensemble(stability_scheme, ensemble_size=2, model_config=replace(TINY, element_embedding=other),
                           training_config=QUICK, fine_tune=trained)
    assert tuned.hyperparameters["fine_tuned"] == {"from_version": trained.pk, "from_name": trained.name}


def test_missing_weights_of_the_earlier_version_mean_training_from_scratch(trained: ModelVersion, model_dir: Path):
    weight_paths(trained)[0].unlink()
    version = train_ensemble(trained.scheme, ensemble_size=2, model_config=TINY, training_config=QUICK, fine_tune=trained)
    because = version.hyperparameters["fine_tuned"]["trained_from_scratch_because"]
    assert because.startswith("its weights cannot be used") and "missing" in because
    assert len(weight_paths(version)) == 2  # a complete new version all the same


def test_another_target_is_never_fine_tuned(trained: ModelVersion):
    formation = load_scheme("test:synthetic-ef", Scheme.Kind.FORMATION_ENERGY)
    version = train_ensemble(formation, ensemble_size=2, model_config=TINY, training_config=QUICK, fine_tune=trained)
    because = version.hyperparameters["fine_tuned"]["trained_from_scratch_because"]
    assert because == f"it predicts {TARGET_STABILITY_VALUE}, this ensemble learns {TARGET_FORMATION_ENERGY}"


def test_data_hash_follows_the_values(stability_scheme: Scheme):
    before = training_set(stability_scheme).sha256
    assert training_set(stability_scheme).sha256 == before  # a snapshot hashes the same twice
    record = EnergyRecord.objects.filter(scheme=stability_scheme).order_by("id").first()
    record.stability_value += 0.01
    record.save(update_fields=["stability_value"])
    assert training_set(stability_scheme).sha256 != before


def test_max_samples_keeps_a_seeded_subset(stability_scheme: Scheme):
    subset = training_set(stability_scheme, max_samples=12, seed=0)
    assert len(subset) == 12 and subset.record_ids == sorted(subset.record_ids)
    assert training_set(stability_scheme, max_samples=12, seed=0).record_ids == subset.record_ids
    assert training_set(stability_scheme, max_samples=12, seed=1).record_ids != subset.record_ids


def test_training_needs_three_crystals():
    scheme = ensure_scheme("test:empty", Scheme.Kind.STABILITY_VALUE, is_dft=False)
    with pytest.raises(TrainingDataError, match="test:empty"):
        train_ensemble(scheme, ensemble_size=1, model_config=TINY, training_config=QUICK)


# --- weight integrity ---------------------------------------------------------------------------------------------


def test_untouched_weights_load(trained: ModelVersion):
    assert len(weight_paths(trained)) == 2
    assert len(load_ensemble(trained)) == 2


def test_tampered_weight_file_is_refused_by_name(trained: ModelVersion, model_dir: Path):
    path = model_dir / trained.weights[1]["path"]
    blob = bytearray(path.read_bytes())
    blob[-100] ^= 0xFF
    path.write_bytes(bytes(blob))
    with pytest.raises(WeightsIntegrityError, match=re.escape(str(path))):
        weight_paths(trained)
    with pytest.raises(WeightsIntegrityError, match="sha256"):
        load_ensemble(trained)


def test_missing_weight_file_is_refused_by_name(trained: ModelVersion, model_dir: Path):
    path = model_dir / trained.weights[0]["path"]
    path.unlink()
    with pytest.raises(WeightsIntegrityError, match=rf"{re.escape(str(path))} is missing"):
        weight_paths(trained)


def test_version_without_weights_is_refused(stability_scheme: Scheme):
    version = ModelVersion.objects.create(name="empty", scheme=stability_scheme, target=TARGET_STABILITY_VALUE)
    with pytest.raises(WeightsIntegrityError, match="no weight files"):
        weight_paths(version)


# --- screening and selection --------------------------------------------------------------------------------------


def test_screen_candidates_writes_predictions_and_rejects_unfeaturisable(trained: ModelVersion):
    structures = out_of_distribution() + [binary("Na", "Cl", "cscl", 1.02)]
    good = [make_candidate(s, f"good-{i}") for i, s in enumerate(structures)]
    bad = make_candidate(isolated_atom(), "isolated")
    summary = screen_candidates([*good, bad], trained)
    assert summary.screened == len(good)
    assert list(summary.rejected) == [bad.pk] and "no neighbour" in summary.rejected[bad.pk]
    expected = load_ensemble(trained).predict(structures)
    for index, candidate in enumerate(good):
        candidate.refresh_from_db()
        assert candidate.status == Candidate.Status.SCREENED
        assert candidate.predicted_mean == pytest.approx(expected.mean[index], abs=1e-6)
        assert candidate.predicted_std == pytest.approx(expected.std[index], abs=1e-6)
        assert candidate.predicted_std > 0
        # a stability-value scheme builds no hull: the prediction already is the stability measure
        assert candidate.predicted_e_above_hull == candidate.predicted_mean
    bad.refresh_from_db()
    assert bad.status == Candidate.Status.REJECTED and bad.predicted_mean is None


def test_screening_nothing_is_a_no_op(trained: ModelVersion):
    assert screen_candidates([], trained).screened == 0


def test_screen_places_formation_energies_against_the_current_hull():
    scheme = load_scheme("test:synthetic-formation", Scheme.Kind.FORMATION_ENERGY)
    version = train_ensemble(scheme, ensemble_size=2, model_config=TINY, training_config=QUICK)
    assert version.target == TARGET_FORMATION_ENERGY
    # the hull references: the stable rock-salt halides of the synthetic set (CsCl polymorphs lie 0.2 eV/atom above)
    structures, energies, _ = synthetic_dataset(scales=1)
    known = [(s.composition, e) for s, e in zip(structures[::3], energies[::3], strict=True)]
    references = HullReferences(known)
    structures = [binary("Na", "Cl", "cscl"), binary("K", "Br"), binary("Cs", "Te")]
    candidates = [make_candidate(s, f"f-{i}") for i, s in enumerate(structures)]
    screen_candidates(candidates, version)
    for candidate, structure in zip(candidates, structures, strict=True):
        candidate.refresh_from_db()
        expected = references.e_above_hull(structure.composition, candidate.predicted_mean)
        assert candidate.predicted_e_above_hull == pytest.approx(expected, abs=1e-6)
    # Cs–Te has no known phase: measured from the elements, so it equals the predicted formation energy itself
    assert candidates[2].predicted_e_above_hull == pytest.approx(candidates[2].predicted_mean, abs=1e-6)
    assert candidates[0].predicted_e_above_hull != pytest.approx(candidates[0].predicted_mean, abs=1e-3)


def test_screen_measures_against_the_scheme_s_own_hull_plus_the_competitors_at_the_model_s_energy():
    """Another scheme's energies never enter the campaign scheme's hull ("lowest wins" across levels of theory); a
    competing phase the scheme has not computed enters at the screening model's own prediction."""
    scheme = load_scheme("test:campaign-scheme", Scheme.Kind.FORMATION_ENERGY)  # not a trusted (DFT) source
    version = train_ensemble(scheme, ensemble_size=2, model_config=TINY, training_config=QUICK)
    trusted = ensure_scheme("test:trusted-dft", Scheme.Kind.FORMATION_ENERGY, is_dft=True)
    competitor = make_material(binary("Cs", "Te"), source_id="CsTe-known")
    record_energies(trusted, [EnergyInput(source_key="CsTe", composition="Cs4Te4", material_id=competitor.pk,
                                          formation_energy_per_atom=-9.0)])  # absurdly low: must not be used as such
    update_hulls(trusted, ["Cs-Te"])
    candidate = make_candidate(binary("Cs", "Te", "cscl"), "cste-cscl")
    screen_candidates([candidate], version)
    candidate.refresh_from_db()
    ensemble_says = load_ensemble(version).predict([binary("Cs", "Te")]).mean[0]
    hull = min(0.0, float(ensemble_says))
    assert candidate.predicted_e_above_hull == pytest.approx(candidate.predicted_mean - hull, abs=1e-5)
    assert candidate.predicted_e_above_hull < 5.0  # -9 eV/atom from the other scheme would have put it 9 eV above


def test_select_candidates_marks_the_rule_s_picks(trained: ModelVersion):
    candidates = [make_candidate(binary(c, a), f"sel-{c}{a}") for c, a in [("Na", "Cl"), ("K", "Cl"), ("Cs", "Te")]]
    rejected = make_candidate(isolated_atom(), "sel-isolated")
    screen_candidates([*candidates, rejected], trained)
    fresh = list(Candidate.objects.filter(pk__in=[c.pk for c in [*candidates, rejected]]).order_by("pk"))
    means = {c.pk: c.predicted_e_above_hull for c in fresh if c.status == Candidate.Status.SCREENED}
    rule = AcquisitionRule(kappa=0.0, threshold=10.0, top_n=2, max_per_chemsys=None)
    chosen = select_candidates(fresh, rule)
    assert [c.pk for c in chosen] == sorted(means, key=means.get)[:2]
    statuses = dict(Candidate.objects.filter(pk__in=[c.pk for c in fresh]).values_list("pk", "status"))
    assert sorted(pk for pk, status in statuses.items() if status == Candidate.Status.SELECTED) == sorted(
        c.pk for c in chosen
    )
    assert statuses[rejected.pk] == Candidate.Status.REJECTED
    assert list(statuses.values()).count(Candidate.Status.SCREENED) == 1


def test_select_nothing_when_no_candidate_is_below_threshold(trained: ModelVersion):
    candidates = [make_candidate(binary("Na", "Cl"), "none-1")]
    screen_candidates(candidates, trained)
    candidates[0].refresh_from_db()
    rule = AcquisitionRule(kappa=0.0, threshold=candidates[0].predicted_e_above_hull - 1.0)
    assert select_candidates(candidates, rule) == []
    candidates[0].refresh_from_db()
    assert candidates[0].status == Candidate.Status.SCREENED


# --- management command -------------------------------------------------------------------------------------------


def test_train_model_unknown_scheme_lists_known_ones(stability_scheme: Scheme):
    with pytest.raises(CommandError, match=r"unknown scheme 'nope'; known schemes: .*test:synthetic-stability"):
        call_command("train_model", "--scheme", "nope")


@pytest.mark.parametrize("flag", ["--ensemble", "--epochs", "--units"])
def test_train_model_refuses_non_positive_sizes(stability_scheme: Scheme, flag: str):
    with pytest.raises(CommandError, match=f"{flag} must be ≥ 1, got 0"):
        call_command("train_model", "--scheme", stability_scheme.name, flag, "0")
    assert not ModelVersion.objects.exists()


def test_train_model_runs_a_tiny_training(stability_scheme: Scheme, model_dir: Path):
    out = StringIO()
    call_command(
        "train_model", "--scheme", stability_scheme.name, "--ensemble", "2", "--epochs", "1", "--units", "8",
        "--blocks", "1", "--batch-size", "32", "--max-samples", "20", "--name", "tiny", "--no-progress",
        "--element-embedding", "random", stdout=out,
    )
    version = ModelVersion.objects.get(name="tiny")
    assert version.hyperparameters["model"]["element_embedding"] == "random"
    text = out.getvalue()
    assert "20 crystals featurised; training 2 model(s)" in text
    assert f"model version {version.pk} (tiny): 20 crystals" in text
    assert f"weights in screening/mv-{version.pk:06d}" in text
    assert version.data_count == 20 and version.hyperparameters["max_samples"] == 20
    assert all((model_dir / w["path"]).is_file() for w in version.weights)
    assert np.isfinite(version.validation_mae)
