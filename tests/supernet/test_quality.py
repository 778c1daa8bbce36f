"""Ground truth, selection quality, stratified samples, rank correlation."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
import torch

from harness.errors import BenchmarkQueryError, ConfigError
from harness.spaces import get_space
from harness.spaces import tss as space
from harness.supernet.quality import (
    GroundTruth,
    arch_quality,
    epoch_trajectory,
    ground_truth,
    rank_correlation,
    stratified_sample,
    supernet_accuracies,
)
from harness.supernet.search import EpochRecord, one_hot
from harness.supernet.selection import evaluate
from harness.supernet.testing import tiny_loaders, tiny_supernet


def _truth(task: str = "cifar10") -> GroundTruth:
    test = np.full(space.NUM_ARCHS, 50.0)
    test[:4] = [90.0, 80.0, 80.0, 70.0]
    test[10] = np.nan
    return GroundTruth.from_arrays(task, test, test - 1.0)


def test_ranks_percentiles_and_regret_by_hand() -> None:
    truth = _truth()
    n = space.NUM_ARCHS - 1  # architecture 10 is unknown
    assert truth.best == 90.0
    assert list(truth.rank[:4]) == [1, 2, 2, 4]  # tied archs share the better rank
    assert truth.percentile[0] == 100.0 and truth.percentile[1] == pytest.approx(100 * (n - 1) / n)
    q = arch_quality(truth, 3)
    assert (q.test_acc, q.valid_acc, q.regret, q.rank) == (70.0, 69.0, 20.0, 4)
    assert q.arch == space.index_to_str(3)
    missing = arch_quality(truth, 10)
    assert missing.test_acc is None and missing.regret is None and missing.rank is None


def test_from_arrays_rejects_wrong_shapes_and_empty() -> None:
    with pytest.raises(ConfigError, match="15625"):
        GroundTruth.from_arrays("cifar10", np.zeros(5))
    with pytest.raises(ConfigError, match="no test accuracy"):
        GroundTruth.from_arrays("cifar100", np.full(space.NUM_ARCHS, np.nan))


class _FakeStore:
    space_name = "tss"
    path = "fake"

    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []

    def metric_all(self, dataset: str, split: str, hp: str, metric: str, seed: Any) -> np.ndarray:
        self.calls.append((dataset, split, hp, metric, seed))
        if split == "x-valid":
            raise BenchmarkQueryError("no valid block")
        return np.linspace(0, 90, space.NUM_ARCHS).astype(np.float32)

    def cost_all(self, dataset: str, hp: str, field: str) -> np.ndarray:
        assert (dataset, field) == ("cifar10", "latency")
        return np.full(space.NUM_ARCHS, 0.002)


def test_ground_truth_reads_test_of_the_full_run_and_seed_mean() -> None:
    store = _FakeStore()
    truth = ground_truth(store, "cifar10", "200")  # type: ignore[arg-type]
    assert store.calls[0] == ("cifar10", "ori-test", "200", "accuracy", "mean")
    assert store.calls[1][:2] == ("cifar10-valid", "x-valid")
    assert np.isnan(truth.valid).all() and truth.best == pytest.approx(90.0)
    quality = arch_quality(truth, space.NUM_ARCHS - 1)
    assert quality.rank == 1 and quality.latency_ms == pytest.approx(2.0)


def test_epoch_trajectory_shows_the_argmax_accuracy() -> None:
    history = [EpochRecord(0, 0, space.index_to_str(0), 0.02, 1.5, 1.0),
               EpochRecord(1, 3, space.index_to_str(3), 0.01, 1.2, 1.0)]  # fmt: skip
    rows = epoch_trajectory(_truth(), history)
    assert [r["argmax_test_acc"] for r in rows] == [90.0, 70.0]
    assert [r["regret"] for r in rows] == [0.0, 20.0] and rows[1]["train_loss"] == 1.2


def test_stratified_sample_spreads_over_bins_and_is_reproducible() -> None:
    acc = np.arange(100, dtype=float)
    acc[7] = np.nan
    a = stratified_sample(acc, 10, 5, np.random.default_rng(3))
    b = stratified_sample(acc, 10, 5, np.random.default_rng(3))
    assert np.array_equal(a, b) and len(set(a.tolist())) == 10 and 7 not in a
    known = np.flatnonzero(~np.isnan(acc))
    bins = np.array_split(known[np.argsort(acc[known])], 5)
    assert [int(np.isin(a, members).sum()) for members in bins] == [2] * 5
    assert len(stratified_sample(acc, 7, 3, np.random.default_rng(0))) == 7
    with pytest.raises(ConfigError, match="n_bins <= n"):
        stratified_sample(acc, 3, 5, np.random.default_rng(0))


def test_rank_correlation_extremes() -> None:
    x = np.array([1.0, 2.0, 3.0, 4.0])
    assert rank_correlation(x, 10 * x) == pytest.approx((1.0, 1.0))
    assert rank_correlation(x, -x) == pytest.approx((-1.0, -1.0))
    tau, rho = rank_correlation(np.ones(4), x)
    assert math.isnan(tau) and math.isnan(rho)
    with pytest.raises(ConfigError):
        rank_correlation(x, x[:3])


def test_supernet_accuracies_use_one_hot_weights() -> None:
    torch.set_num_threads(1)
    tss = get_space("tss")
    assert one_hot(tss, 0).sum() == 6 and one_hot(tss, 15624).argmax(dim=1).tolist() == list(
        space.index_to_ops(15624)
    )
    net = tiny_supernet(0)
    batches = list(tiny_loaders(0)[1])[:2]
    archs = [0, 123, 15624]
    acc = supernet_accuracies(net, archs, batches)
    assert acc.shape == (3,) and ((acc >= 0) & (acc <= 100)).all()
    assert acc[1] == evaluate(net, one_hot(tss, 123), batches)[0]
