"""The screening science, without Django: split, ensemble training and inference, acquisition, hulls, checkpoints.

One tiny ensemble (K=3, 32 features, one block) is trained once for the module on the synthetic rock-salt/CsCl
binaries of ``screening_data``; every model test reuses it, so the module stays in the minutes on two cores.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np
import pytest
import torch
from pymatgen.core import Lattice, Structure

from discovery.magpie import element_embedding
from discovery.screening.acquisition import AcquisitionRule, Scored, select
from discovery.screening.ensemble import Ensemble, EnsembleTrainingResult, IncompatibleEnsembleError, train_ensemble
from discovery.screening.graphs import ELEMENT_TYPES, GraphFeaturizer, UnsupportedStructureError
from discovery.screening.model import CheckpointError, ModelConfig, PropertyModel, element_embedding_layer
from discovery.screening.stability import HullReferences
from discovery.screening.training import Split, TrainingConfig, TrainingDataError, split_by_chemsys
from tests.discovery.screening_data import out_of_distribution, synthetic_dataset

# 32 features: 22 embedding columns start from the Magpie table (shared by the members), 10 stay random per member;
# with 16 (all Magpie) the members no longer disagree more about unseen elements than about seen ones.
TINY = ModelConfig(units=32, nblocks=1)
# ~100+ optimiser steps: what a tiny model needs to beat the training mean on this data.
TINY_TRAINING = TrainingConfig(epochs=20, batch_size=8, learning_rate=2e-3, patience=20, seed=0)


@dataclass
class Data:
    structures: list[Structure]
    targets: np.ndarray
    chemsys: list[str]
    split: Split


@pytest.fixture(scope="module")
def data() -> Data:
    structures, targets, chemsys = synthetic_dataset()
    return Data(structures, np.asarray(targets), chemsys, split_by_chemsys(chemsys, (0.7, 0.15, 0.15), seed=0))


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    """Tiny models gain nothing from intra-op threads, and on a shared 2-core machine OpenMP's spinning threads
    multiplied the wall time of this module several-fold (6 min instead of about 1)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def trained(data: Data) -> EnsembleTrainingResult:
    graphs = GraphFeaturizer(cutoff=TINY.cutoff).graphs(data.structures)
    return train_ensemble(graphs, data.targets, data.split, size=3, model_config=TINY, config=TINY_TRAINING)


def isolated_atom() -> Structure:
    """Na and Cl 8.7 Å apart in a 10 Å cell: no neighbour within the 5 Å cutoff."""
    return Structure(Lattice.cubic(10.0), ["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])


# --- split -------------------------------------------------------------------------------------------------------


def test_split_keeps_each_chemsys_on_one_side(data: Data):
    split = data.split
    sides = [{data.chemsys[i] for i in part} for part in (split.train, split.val, split.test)]
    assert all(sides), "every split gets at least one chemical system"
    assert not (sides[0] & sides[1]) and not (sides[0] & sides[2]) and not (sides[1] & sides[2])
    assert sorted(split.train + split.val + split.test) == list(range(len(data.chemsys)))


def test_split_follows_fractions_and_seed(data: Data):
    n = len(data.chemsys)
    assert abs(len(data.split.train) / n - 0.7) < 0.05
    assert split_by_chemsys(data.chemsys, (0.7, 0.15, 0.15), seed=0) == data.split
    assert split_by_chemsys(data.chemsys, (0.7, 0.15, 0.15), seed=1) != data.split


def test_split_without_test_fraction_leaves_test_empty():
    split = split_by_chemsys(["A-B", "A-C", "B-C", "A-B-C"], (0.5, 0.5, 0.0))
    assert split.test == [] and split.train and split.val


@pytest.mark.parametrize("fractions", [(0.5, 0.5), (0.8, 0.3, -0.1), (0.5, 0.2, 0.2), (0.7, 0.2, 0.2)])
def test_split_rejects_bad_fractions(fractions):
    with pytest.raises(ValueError, match="fractions"):
        split_by_chemsys(["A-B", "A-C", "B-C"], fractions)


def test_split_needs_three_chemical_systems():
    with pytest.raises(TrainingDataError, match="at least 3 chemical systems"):
        split_by_chemsys(["Na-Cl", "Na-Cl", "K-Cl", "K-Cl"])


# --- training and the ensemble ----------------------------------------------------------------------------------


def test_trained_ensemble_beats_mean_predictor_on_unseen_chemical_systems(trained: EnsembleTrainingResult):
    assert trained.baseline_test_mae is not None and trained.test_mae is not None
    assert trained.test_mae < trained.baseline_test_mae
    assert math.isfinite(trained.val_mae)
    assert len(trained.members) == 3 and all(m.history for m in trained.members)


def test_magpie_embeddings_transfer_to_unseen_chemical_systems(trained: EnsembleTrainingResult, data: Data):
    graphs = GraphFeaturizer(cutoff=TINY.cutoff).graphs(data.structures)
    random = train_ensemble(graphs, data.targets, data.split, size=3,
                            model_config=replace(TINY, element_embedding="random"), config=TINY_TRAINING)
    assert trained.test_mae < random.test_mae  # measured: 0.036 against 0.072 eV/atom


def test_members_differ_because_seeds_differ(trained: EnsembleTrainingResult, data: Data):
    members = trained.ensemble.predict(data.structures[:8]).members
    assert not np.allclose(members[0], members[1])


def test_ensemble_spread_flags_out_of_distribution_structures(trained: EnsembleTrainingResult, data: Data):
    ood = trained.ensemble.predict(out_of_distribution())
    assert not ood.errors
    assert np.all(np.isfinite(ood.std)) and np.all(ood.std > 0)
    seen = trained.ensemble.predict([data.structures[i] for i in data.split.train])
    assert ood.std.mean() > seen.std.mean()


def test_single_model_ensemble_has_zero_spread(trained: EnsembleTrainingResult):
    prediction = Ensemble(trained.ensemble.models[:1]).predict(out_of_distribution())
    assert np.all(prediction.std == 0.0)
    np.testing.assert_array_equal(prediction.mean, prediction.members[0])


def test_batched_prediction_matches_one_by_one(trained: EnsembleTrainingResult, data: Data):
    structures = [data.structures[i] for i in data.split.test[:6]] + out_of_distribution()
    batched = trained.ensemble.predict(structures, batch_size=4)  # several batches, last one partial
    one_by_one = trained.ensemble.predict_one_by_one(structures)
    assert batched.members.shape == one_by_one.shape == (3, len(structures))
    np.testing.assert_allclose(batched.members, one_by_one, atol=1e-4)
    np.testing.assert_allclose(batched.mean, one_by_one.mean(axis=0), atol=1e-4)


def test_unsupported_structures_get_nan_and_a_reason(trained: EnsembleTrainingResult, data: Data):
    unknown_element = Structure(Lattice.cubic(3.0), ["Po", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    structures = [data.structures[0], isolated_atom(), data.structures[1], unknown_element]
    prediction = trained.ensemble.predict(structures)
    assert set(prediction.errors) == {1, 3}
    assert "no neighbour within 5.0 Å" in prediction.errors[1]
    assert "Po" in prediction.errors[3]
    assert np.isnan(prediction.mean[[1, 3]]).all() and np.isnan(prediction.std[[1, 3]]).all()
    assert np.isfinite(prediction.mean[[0, 2]]).all() and np.isfinite(prediction.std[[0, 2]]).all()


def test_a_batch_of_only_unsupported_structures_is_all_nan(trained: EnsembleTrainingResult):
    prediction = trained.ensemble.predict([isolated_atom()])
    assert list(prediction.errors) == [0] and np.isnan(prediction.mean).all()


def test_featurizer_refuses_isolated_atoms():
    with pytest.raises(UnsupportedStructureError, match="1 atom"):
        GraphFeaturizer(cutoff=5.0).graph(
            Structure(Lattice.cubic(10.0), ["Na", "Cl", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5], [0.5, 0.5, 0.8]])
        )


def test_ensemble_refuses_members_with_different_cutoffs():
    with pytest.raises(IncompatibleEnsembleError, match="cutoffs"):
        Ensemble([PropertyModel(ModelConfig(units=8, nblocks=1)), PropertyModel(ModelConfig(units=8, nblocks=1, cutoff=4.0))])


def test_train_ensemble_rejects_empty_ensemble(data: Data):
    with pytest.raises(ValueError, match="ensemble size"):
        train_ensemble([], [], data.split, size=0)


def test_warm_start_fine_tunes_copies_of_the_earlier_members(trained: EnsembleTrainingResult, data: Data):
    graphs = GraphFeaturizer(cutoff=TINY.cutoff).graphs(data.structures)
    probe = data.structures[:8]
    before = trained.ensemble.predict(probe).members
    # One epoch at a vanishing learning rate: a warm-started member must predict what its starting model did, which
    # a freshly initialised one (the same seed, from scratch) does not.
    frozen = TrainingConfig(epochs=1, batch_size=8, learning_rate=1e-12, patience=1, seed=0)
    warm = train_ensemble(graphs, data.targets, data.split, size=3, config=frozen, start_from=trained.ensemble.models)
    cold = train_ensemble(graphs, data.targets, data.split, size=3, model_config=TINY, config=frozen)
    np.testing.assert_allclose(warm.ensemble.predict(probe).members, before, atol=1e-4)
    assert not np.allclose(cold.ensemble.predict(probe).members, before, atol=1e-2)
    # the starting models are copied, not trained in place
    np.testing.assert_array_equal(trained.ensemble.predict(probe).members, before)
    assert all(w is not t for w, t in zip(warm.ensemble.models, trained.ensemble.models, strict=True))


def test_warm_start_needs_one_model_per_member(trained: EnsembleTrainingResult, data: Data):
    with pytest.raises(ValueError, match="one model per member: 1 given for 3"):
        train_ensemble([], [], data.split, size=3, start_from=trained.ensemble.models[:1])


# --- checkpoints ------------------------------------------------------------------------------------------------


def test_magpie_embeddings_start_chemically_similar_elements_close():
    symbols = ["Na", "K", "Rb", "F", "Cl", "Br", "Fe", "Co"]
    rows = dict(zip(symbols, element_embedding(symbols, 16), strict=True))  # 16 < rank: Magpie only
    distance = lambda a, b: np.linalg.norm(rows[a] - rows[b])  # noqa: E731
    assert distance("Na", "K") < distance("Na", "F")
    assert distance("Cl", "Br") < distance("Cl", "Rb")
    assert distance("Fe", "Co") < distance("Fe", "F")
    # a row is the element's own, whatever else is asked for
    np.testing.assert_array_equal(element_embedding(["K"], 16)[0], rows["K"])


@pytest.mark.parametrize("architecture", ["M3GNet", "TensorNet"])
def test_a_new_network_starts_from_the_configured_element_embeddings(architecture):
    magpie = PropertyModel(ModelConfig(units=8, nblocks=1, architecture=architecture))
    expected = element_embedding(ELEMENT_TYPES, 8)
    np.testing.assert_allclose(element_embedding_layer(magpie.network).weight.detach().numpy(), expected, atol=1e-6)
    random = PropertyModel(ModelConfig(units=8, nblocks=1, architecture=architecture, element_embedding="random"))
    assert not np.allclose(element_embedding_layer(random.network).weight.detach().numpy(), expected, atol=1e-2)


def test_embedding_columns_beyond_the_magpie_table_stay_random_per_member():
    members = []
    for seed in (0, 1):
        torch.manual_seed(seed)
        members.append(element_embedding_layer(PropertyModel(ModelConfig(units=32, nblocks=1)).network).weight.detach())
    rank = element_embedding(ELEMENT_TYPES, 32).shape[1]
    assert rank == 22  # the table's properties
    torch.testing.assert_close(members[0][:, :rank], members[1][:, :rank])
    assert not torch.allclose(members[0][:, rank:], members[1][:, rank:])


def test_unknown_element_embedding_is_refused():
    with pytest.raises(ValueError, match="unknown element embedding 'onehot'"):
        PropertyModel(ModelConfig(units=8, nblocks=1, element_embedding="onehot"))


def test_checkpoint_from_before_the_embedding_setting_reads_as_random_initialisation(tmp_path):
    checkpoint = PropertyModel(TINY).checkpoint()
    del checkpoint["config"]["element_embedding"]
    torch.save(checkpoint, tmp_path / "old.pt")
    assert PropertyModel.load(tmp_path / "old.pt").config.element_embedding == "random"


def test_checkpoint_round_trip_gives_identical_predictions(trained: EnsembleTrainingResult, data: Data, tmp_path):
    paths = [model.save(tmp_path / f"member-{k}.pt") for k, model in enumerate(trained.ensemble.models)]
    loaded = Ensemble.load(paths)
    structures = data.structures[:10] + out_of_distribution()
    before = trained.ensemble.predict(structures)
    after = loaded.predict(structures)
    np.testing.assert_array_equal(after.members, before.members)
    assert loaded.models[0].config == TINY
    assert float(loaded.models[0].target_mean) == pytest.approx(float(trained.ensemble.models[0].target_mean))


@pytest.mark.parametrize(
    "content",
    [b"not a checkpoint at all", b""],
    ids=["garbage", "empty"],
)
def test_corrupt_checkpoint_raises_checkpoint_error(tmp_path, content):
    path = tmp_path / "member-0.pt"
    path.write_bytes(content)
    with pytest.raises(CheckpointError, match="member-0.pt"):
        PropertyModel.load(path)


def test_truncated_checkpoint_raises_checkpoint_error(trained: EnsembleTrainingResult, tmp_path):
    path = trained.ensemble.models[0].save(tmp_path / "member-0.pt")
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(CheckpointError, match="member-0.pt"):
        PropertyModel.load(path)


def test_foreign_torch_file_raises_checkpoint_error(tmp_path):
    path = tmp_path / "other.pt"
    torch.save({"state_dict": {}}, path)
    with pytest.raises(CheckpointError, match="not a Gnomon screening checkpoint"):
        PropertyModel.load(path)


def test_checkpoint_with_weights_of_another_shape_raises_checkpoint_error(trained: EnsembleTrainingResult, tmp_path):
    checkpoint = trained.ensemble.models[0].checkpoint()
    checkpoint["config"] = {**checkpoint["config"], "units": 8}  # the stored weights are 16 wide
    path = tmp_path / "reshaped.pt"
    torch.save(checkpoint, path)
    with pytest.raises(CheckpointError, match="reshaped.pt: damaged"):
        PropertyModel.load(path)


def test_missing_checkpoint_raises_checkpoint_error(tmp_path):
    with pytest.raises(CheckpointError, match="absent.pt"):
        PropertyModel.load(tmp_path / "absent.pt")


# --- acquisition ------------------------------------------------------------------------------------------------


def scored(key, e_above_hull, std=0.0, chemsys="A-B", formula="") -> Scored:
    return Scored(key=key, chemsys=chemsys, e_above_hull=e_above_hull, std=std, formula=formula)


def keys(picks: list[Scored]) -> list:
    return [p.key for p in picks]


def test_threshold_keeps_only_scores_at_or_below_it():
    candidates = [scored("above", 0.11), scored("at", 0.10), scored("below", -0.2), scored("nan", math.nan)]
    rule = AcquisitionRule(kappa=0.0, threshold=0.10, max_per_chemsys=None)
    assert keys(select(candidates, rule)) == ["below", "at"]


def test_kappa_lets_uncertain_candidates_through_and_moves_them_up():
    certain = scored("certain", 0.00, std=0.0)
    uncertain = scored("uncertain", 0.08, std=0.1)
    assert keys(select([certain, uncertain], AcquisitionRule(kappa=0.0, threshold=0.05))) == ["certain"]
    # κ=1: score 0.08 − 0.1 = −0.02 < 0.00, so the uncertain one is now both admitted and ranked first.
    assert keys(select([certain, uncertain], AcquisitionRule(kappa=1.0, threshold=0.05))) == ["uncertain", "certain"]


def test_per_chemsys_cap_spreads_picks_over_systems():
    candidates = [scored(f"ab{i}", -0.1 * i, chemsys="A-B") for i in range(5)] + [scored("cd", 0.0, chemsys="C-D")]
    picks = select(candidates, AcquisitionRule(kappa=0.0, threshold=0.05, max_per_chemsys=2))
    assert keys(picks) == ["ab4", "ab3", "cd"]


def test_per_formula_cap_spreads_picks_over_compositions():
    # Li2O2 polymorphs rank best, but with one pick per formula the next composition (Li2O) gets its turn.
    candidates = [scored(f"peroxide{i}", -0.1 - 0.01 * i, chemsys="Li-O", formula="Li2O2") for i in range(3)]
    candidates += [scored("oxide", 0.0, chemsys="Li-O", formula="Li2O"), scored("ozonide", 0.02, formula="LiO3")]
    rule = AcquisitionRule(kappa=0.0, threshold=0.05, top_n=2, max_per_chemsys=None, max_per_formula=1)
    assert keys(select(candidates, rule)) == ["peroxide2", "oxide"]
    assert keys(select(candidates, AcquisitionRule(kappa=0.0, threshold=0.05, top_n=2, max_per_chemsys=None))) == [
        "peroxide2", "peroxide1"]


def test_top_n_stops_after_n_lowest_scores():
    candidates = [scored(i, -0.01 * i, chemsys=f"X-{i}") for i in range(10)]
    assert keys(select(candidates, AcquisitionRule(kappa=0.0, top_n=3))) == [9, 8, 7]
    assert select(candidates, AcquisitionRule(top_n=0)) == []


def test_ties_break_by_lower_mean_then_input_order():
    # Same score −0.05 under κ=1: the lower mean (less reliant on uncertainty) first, then input order.
    candidates = [scored("second", 0.0, std=0.05), scored("first", -0.05, std=0.0), scored("third", 0.0, std=0.05)]
    picks = select(candidates, AcquisitionRule(kappa=1.0, threshold=0.0, max_per_chemsys=None))
    assert keys(picks) == ["first", "second", "third"]


@pytest.mark.parametrize(
    "kwargs, message",
    [({"kappa": -0.1}, "kappa"), ({"top_n": -1}, "top_n"), ({"max_per_chemsys": 0}, "max_per_chemsys"),
     ({"max_per_formula": 0}, "max_per_formula")],
)
def test_invalid_rule_values_raise(kwargs, message):
    with pytest.raises(ValueError, match=message):
        AcquisitionRule(**kwargs)


def test_rule_serialises_its_settings():
    assert AcquisitionRule(kappa=0.5, threshold=0.0, top_n=7, max_per_chemsys=None).as_dict() == {
        "kappa": 0.5, "threshold": 0.0, "top_n": 7, "max_per_chemsys": None, "max_per_formula": None,
    }


# --- predicted stability against the hull -----------------------------------------------------------------------


@pytest.fixture
def li_o() -> HullReferences:
    """Li–O with Li2O at −2.0 eV/atom on the hull and Li2O2 at −1.0 (above the Li2O–O tie line at −1.5)."""
    return HullReferences([("Li2O", -2.0), ("Li2O2", -1.0)])


def test_on_hull_vertex_is_zero(li_o: HullReferences):
    assert li_o.e_above_hull("Li2O", -2.0) == pytest.approx(0.0, abs=1e-9)
    assert li_o.e_above_hull("Li4O2", -2.0) == pytest.approx(0.0, abs=1e-9)  # per atom: cell size does not matter
    assert li_o.e_above_hull("Li", 0.0) == pytest.approx(0.0, abs=1e-9)


def test_above_hull_is_positive_distance_to_the_tie_line(li_o: HullReferences):
    assert li_o.e_above_hull("Li2O2", -1.0) == pytest.approx(0.5)


def test_below_hull_is_negative(li_o: HullReferences):
    assert li_o.e_above_hull("Li2O", -2.1) == pytest.approx(-0.1)
    assert li_o.e_above_hull("Li2O2", -1.6) == pytest.approx(-0.1)


def test_system_without_known_phases_measures_from_the_elements(li_o: HullReferences):
    assert li_o.e_above_hull("NaCl", -0.3) == pytest.approx(-0.3)
    assert li_o.e_above_hull_many([("Li2O", -1.9), ("NaCl", 0.2)]) == pytest.approx([0.1, 0.2])


def test_higher_order_system_uses_its_subsystems(li_o: HullReferences):
    # LiNaO (1/3 of each element): at most half its atoms fit in Li2O, so the hull there is 0.5 × −2.0 = −1.0 eV/atom.
    assert li_o.e_above_hull("LiNaO", 0.0) == pytest.approx(1.0)
