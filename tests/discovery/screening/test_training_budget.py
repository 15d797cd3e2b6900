"""Small training sets get enough optimizer steps (a campaign's first model may see only a few dozen crystals)."""

import math

import pytest

from discovery.screening.training import TrainingConfig, fit_to_data_size


@pytest.mark.parametrize("n_train", [3, 19, 50, 400])
def test_small_sets_reach_the_step_budget(n_train):
    config = fit_to_data_size(TrainingConfig(epochs=5, batch_size=64), n_train, min_steps=150)
    steps = config.epochs * math.ceil(n_train / config.batch_size)
    assert steps >= 150
    assert 1 <= config.batch_size <= 64 and config.batch_size <= max(8, n_train)


def test_large_sets_keep_their_settings_and_epochs_are_capped():
    config = TrainingConfig(epochs=5, batch_size=64, patience=8)
    assert fit_to_data_size(config, 100_000, min_steps=150) == config
    assert fit_to_data_size(config, 2, min_steps=10_000, max_epochs=300).epochs == 300
