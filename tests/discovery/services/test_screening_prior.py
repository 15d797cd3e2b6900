"""Delta learning over a composition prior: the networks learn target − prior, screening adds the prior back."""

from __future__ import annotations

import numpy as np
import pytest
from pymatgen.core import Structure

from catalog.models import Scheme
from discovery.generation.compositional import RidgeCompositionModel
from discovery.models import Campaign, CampaignRound, Candidate
from discovery.screening.model import ModelConfig
from discovery.screening.training import TrainingConfig
from discovery.services import screening
from tests.discovery.campaign_support import SEED_ANIONS, SEED_CATIONS, seed_catalog
from tests.discovery.screening_data import binary, synthetic_energy

pytestmark = pytest.mark.django_db

TINY_MODEL = ModelConfig(units=8, nblocks=1)
TINY_TRAINING = TrainingConfig(epochs=2, batch_size=8)


@pytest.fixture
def prior() -> RidgeCompositionModel:
    formulas = [f"{c}{a}" for c in SEED_CATIONS for a in SEED_ANIONS]
    energies = [synthetic_energy(c, a, "rocksalt") for c in SEED_CATIONS for a in SEED_ANIONS]
    return RidgeCompositionModel(alpha=10.0).fit(formulas, energies)


@pytest.fixture
def version_with_prior(settings, tmp_path, prior):
    settings.MODEL_DIR = tmp_path / "models"
    seed_catalog()
    scheme = Scheme.objects.get(name="TEST-seed-halides")
    return screening.train_ensemble(scheme, ensemble_size=2, model_config=TINY_MODEL, training_config=TINY_TRAINING,
                                    prior=prior)


def test_prior_is_saved_with_the_version_and_added_back_when_screening(version_with_prior, prior):
    spec = version_with_prior.hyperparameters["prior"]
    assert spec["kind"] == "ridge-magpie" and len(spec["sha256"]) == 64
    assert version_with_prior.metrics["prior"] == "composition-ridge"
    loaded = screening.load_prior(version_with_prior)
    assert np.allclose(loaded.predict(["NaCl", "KBr"]), prior.predict(["NaCl", "KBr"]))

    campaign = Campaign.objects.create(name="prior", elements=["Na", "Cl"])
    rnd = CampaignRound.objects.create(campaign=campaign, index=0, stage="screen")
    structure = binary("Na", "Cl", "cscl", 1.01)
    candidate = Candidate.objects.create(round=rnd, structure=structure.as_dict(), formula_reduced="NaCl",
                                         chemsys="Cl-Na", pipeline="structural", fingerprint="nacl-cscl")
    screening.screen_candidates([candidate], version_with_prior)
    candidate.refresh_from_db()
    residual = screening.load_ensemble(version_with_prior).predict([Structure.from_dict(candidate.structure)]).mean[0]
    assert candidate.predicted_mean == pytest.approx(residual + prior.predict(["NaCl"])[0], abs=1e-5)


def test_a_tampered_prior_is_refused(version_with_prior, settings):
    path = settings.MODEL_DIR / version_with_prior.hyperparameters["prior"]["path"]
    path.write_text(path.read_text().replace("ridge-magpie", "ridge-magpie "))
    with pytest.raises(screening.WeightsIntegrityError, match="prior.json"):
        screening.load_prior(version_with_prior)


def test_stability_value_schemes_train_without_a_prior(settings, tmp_path, prior):
    from catalog.services.energies import ensure_scheme, record_energy
    from tests.factories import make_material

    settings.MODEL_DIR = tmp_path / "models"
    scheme = ensure_scheme("TEST-stability", "stability_value")
    for cation in SEED_CATIONS:
        for anion in SEED_ANIONS:
            material = make_material(binary(cation, anion), source_id=f"stab-{cation}{anion}")
            record_energy(scheme, source_key=f"stab:{cation}{anion}", material=material,
                          stability_value=synthetic_energy(cation, anion, "rocksalt"))
    version = screening.train_ensemble(scheme, ensemble_size=1, model_config=TINY_MODEL,
                                       training_config=TINY_TRAINING, prior=prior)
    assert "prior" not in version.hyperparameters and screening.load_prior(version) is None
