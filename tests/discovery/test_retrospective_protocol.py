"""The retrospective benchmark's two candidate protocols: its hit rates are only meaningful if each round chooses
among the candidates the protocol says and never re-picks a verified member."""

from __future__ import annotations

import numpy as np
import pytest

from benchmarks.discovery_retrospective import active_learning

N_POOL, ROUNDS, PER_ROUND = 600, 4, 10


def run(candidates: str) -> tuple[dict, list[np.ndarray], list[np.ndarray], np.ndarray]:
    """A campaign with a perfect oracle model (stable members score lowest), recording what each round saw."""
    rng = np.random.default_rng(3)
    stable = rng.random(N_POOL) < 0.05
    initial = rng.choice(N_POOL, size=20, replace=False)
    seen_train, seen_predict = [], []

    def fit_predict(train_idx: np.ndarray, predict_idx: np.ndarray):
        seen_train.append(train_idx.copy())
        seen_predict.append(predict_idx.copy())
        return np.where(stable[predict_idx], -1.0, 1.0), np.zeros(len(predict_idx))

    result = active_learning(
        N_POOL, stable, initial, fit_predict, ROUNDS, PER_ROUND, kappa=0.0, kappa_final=None,
        rng=np.random.default_rng(0), candidates=candidates,
    )
    return result, seen_train, seen_predict, initial


def test_fresh_rounds_choose_among_disjoint_slices_of_the_hidden_pool() -> None:
    result, seen_train, seen_predict, initial = run("fresh")
    slices = [set(s.tolist()) for s in seen_predict]
    for a in range(ROUNDS):
        for b in range(a + 1, ROUNDS):
            assert not slices[a] & slices[b], f"rounds {a} and {b} share candidates"
    assert set().union(*slices) == set(range(N_POOL)) - set(initial.tolist())
    # The model still learns from everything verified so far: each round's training set is the last one plus its picks.
    assert [len(t) for t in seen_train] == [len(initial) + PER_ROUND * r for r in range(ROUNDS)]
    for r in range(1, ROUNDS):
        new = set(seen_train[r].tolist()) - set(seen_train[r - 1].tolist())
        assert new <= slices[r - 1], "a round's picks came from outside its slice"
    # A perfect ranker finds every stable member of its slice (up to the batch size), no more.
    stable_in_slice = [r["remaining_prevalence"] * len(s) for r, s in zip(result["rounds"], slices, strict=True)]
    for summary, in_slice in zip(result["rounds"], stable_in_slice, strict=True):
        assert summary["hits"] == min(PER_ROUND, round(in_slice))


def test_pool_rounds_choose_among_everything_still_hidden() -> None:
    result, seen_train, seen_predict, initial = run("pool")
    for r in range(ROUNDS):
        expected = set(range(N_POOL)) - set(seen_train[r].tolist())
        assert set(seen_predict[r].tolist()) == expected
    # The perfect ranker empties the finite pool: the prevalence among what is still hidden falls round by round.
    remaining = [summary["remaining_prevalence"] for summary in result["rounds"]]
    assert remaining == sorted(remaining, reverse=True) and remaining[-1] < remaining[0]


@pytest.mark.parametrize("candidates", ["pool", "fresh"])
def test_no_member_is_verified_twice(candidates: str) -> None:
    """The training set is a set: it grows by a whole batch each round only if no pick was verified before."""
    _, seen_train, _, _ = run(candidates)
    assert [len(t) for t in seen_train] == [20 + PER_ROUND * r for r in range(ROUNDS)]


def test_an_unknown_protocol_is_refused_by_name() -> None:
    with pytest.raises(ValueError, match="'fresh-ish'"):
        active_learning(
            10, np.zeros(10, dtype=bool), np.arange(2), lambda *_: None, 1, 1, kappa=0.0, kappa_final=None,
            rng=np.random.default_rng(0), candidates="fresh-ish",  # type: ignore[arg-type]
        )
