"""Selection quality against the exhaustive ground truth of a space, with the cost of each
architecture beside its accuracy.

:class:`GroundTruth` holds, for one task at the report schedule (seed mean), the true
accuracies of every architecture of a space from a benchmark store (:func:`ground_truth`) or
from arrays, and the cost of every architecture: params (M) and FLOPs (M) of the benchmark's
network by the closed forms of :mod:`harness.supernet.counting` (the networks themselves, so
the same for every store), and latency (ms) where the store holds it. Where no ground truth
exists (no store covers the space: the size space on most machines) :meth:`GroundTruth.missing`
keeps the costs and says why the accuracies are missing. On it:

* :func:`arch_quality` - a selected architecture's true valid/test accuracy, regret (best test
  minus its test), regret against the best architecture of no more FLOPs (in the size space the
  widest network nearly always wins, so a cost-blind regret misleads), rank (1 = best; ties
  share the best rank), percentile (share of architectures whose test accuracy is at most its
  own, in %), and its params, FLOPs and latency;
* :func:`epoch_trajectory` - the true accuracy of the per-epoch argmax architecture of a search
  (a collapse to parameter-free cells shows as a falling curve);
* :func:`stratified_sample`, :func:`supernet_accuracies`, :func:`rank_correlation` - Kendall's
  tau and Spearman's rho between supernet-estimated and true accuracy on a fixed sample of
  architectures stratified by true-accuracy quantile;
* :func:`pareto_front` - the accuracy-FLOPs front of the space.
"""

from __future__ import annotations

import functools
import logging
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
import scipy.stats as sps
from torch import nn

from harness.bench import names
from harness.errors import ConfigError, HarnessError
from harness.spaces import get_space, sss
from harness.supernet import counting
from harness.supernet.method import supernet_space
from harness.supernet.search import Batch, EpochRecord, one_hot
from harness.supernet.selection import evaluate

if TYPE_CHECKING:
    from harness.bench.store import Store

logger = logging.getLogger(__name__)

__all__ = [
    "ArchQuality",
    "GroundTruth",
    "arch_quality",
    "closed_form_costs",
    "epoch_trajectory",
    "ground_truth",
    "pareto_front",
    "rank_correlation",
    "stratified_sample",
    "supernet_accuracies",
]

FloatArray = npt.NDArray[np.float64]
#: Input side of each task's images (CIFAR 32, ImageNet16-120 16 pixels).
RESOLUTION: dict[str, int] = {"cifar10": 32, "cifar100": 32, "ImageNet16-120": 16}


@functools.cache
def closed_form_costs(space: str, task: str) -> tuple[FloatArray, FloatArray]:
    """Params (M) and FLOPs (M) of the benchmark network of every architecture of ``space`` on
    ``task`` (official index order; read-only, cached)."""
    names.check_task(task)
    classes, side = names.NUM_CLASSES[task], RESOLUTION[task]
    if space == "tss":
        ops = get_space("tss").all_choices().astype(np.int64)
        params = counting.tss_param_counts(ops, classes)
        flops = counting.tss_flop_counts(ops, classes, side)
    elif space == "sss":
        widths = sss.all_widths().astype(np.int64)
        params = counting.sss_param_counts(widths, classes)
        flops = counting.sss_flop_counts(widths, classes, side)
    else:
        get_space(space)  # raises the unknown-space error
        raise AssertionError(space)
    out = (params / 1e6, flops / 1e6)
    for array in out:
        array.flags.writeable = False
    return out


def _best_within_cost(cost: FloatArray, test: FloatArray) -> FloatArray:
    """For each architecture, the best known test accuracy among those costing at most as much
    (NaN where none is known): a running maximum over ascending cost, ties taken together."""
    order = np.argsort(cost, kind="stable")
    running = np.fmax.accumulate(np.where(np.isnan(test[order]), -np.inf, test[order]))
    sorted_cost = cost[order]
    last = np.searchsorted(sorted_cost, sorted_cost, side="right") - 1  # last of each tie
    best = np.empty_like(test)
    best[order] = running[last]
    return np.where(np.isinf(best), np.nan, best)


@dataclass(frozen=True)
class GroundTruth:
    """True accuracies (%) of every architecture of ``space`` on ``task`` at schedule ``hp``:
    ``test`` and ``valid`` are ``(num_archs,)`` float64, NaN where unknown; ``rank`` /
    ``percentile`` follow from ``test`` (see module docstring); ``best`` is the highest test
    accuracy (NaN when none is known). ``params`` / ``flops`` (M) and ``latency`` (ms) are the
    cost of every architecture (NaN where unknown). ``missing``: why the accuracies are missing
    (None when some are known)."""

    space: str
    task: str
    hp: str
    test: FloatArray
    valid: FloatArray
    rank: FloatArray
    percentile: FloatArray
    best: float
    params: FloatArray = field(repr=False)
    flops: FloatArray = field(repr=False)
    latency: FloatArray = field(repr=False)
    missing: str | None = None

    @staticmethod
    def from_arrays(
        task: str,
        test: npt.ArrayLike,
        valid: npt.ArrayLike | None = None,
        hp: str = "200",
        space: str = "tss",
        latency: npt.ArrayLike | None = None,
    ) -> GroundTruth:
        """Ground truth from ``(num_archs,)`` test (and valid) accuracies (NaN = unknown) and
        latencies in ms; params and FLOPs from the closed forms."""
        names.check_task(task)
        n = get_space(space).num_archs
        t = np.asarray(test, dtype=np.float64).ravel()
        v = np.full_like(t, np.nan) if valid is None else np.asarray(valid, np.float64).ravel()
        lat = np.full_like(t, np.nan) if latency is None else np.asarray(latency, np.float64)
        if v.shape != t.shape or lat.shape != t.shape or t.size != n:
            raise ConfigError(
                f"{space} ground truth needs ({n},) arrays; got {t.shape}, {v.shape}, {lat.shape}"
            )
        present = np.sort(t[~np.isnan(t)])
        if not present.size:
            raise ConfigError(f"no test accuracy known for {task}")
        at_most = np.searchsorted(present, t, side="right").astype(np.float64)
        rank = np.where(np.isnan(t), np.nan, 1 + present.size - at_most)
        percentile = np.where(np.isnan(t), np.nan, 100.0 * at_most / present.size)
        params, flops = closed_form_costs(space, task)
        return GroundTruth(
            space, task, hp, t, v, rank, percentile, float(present[-1]), params, flops, lat
        )

    @staticmethod
    def missing_truth(space: str, task: str, hp: str, reason: str) -> GroundTruth:
        """No known accuracy (``reason`` says why); the closed-form costs are still known."""
        names.check_task(task)
        nan = np.full(get_space(space).num_archs, np.nan)
        params, flops = closed_form_costs(space, task)
        return GroundTruth(
            space, task, hp, nan, nan, nan, nan, math.nan, params, flops, nan, reason
        )

    @functools.cached_property
    def best_within_flops(self) -> FloatArray:
        """Per architecture, the best test accuracy among architectures of at most its FLOPs."""
        return _best_within_cost(self.flops, self.test)


def ground_truth(store: Store, task: str, hp: str) -> GroundTruth:
    """The ground truth of ``task`` from a store: test and valid accuracy at ``hp``, seed mean,
    under the names :func:`harness.bench.names.resolve` gives (valid NaN if absent), latency
    where the store holds it."""
    space = store.space_name
    test = store.metric_all(*names.resolve(task, "test"), hp, "accuracy", "mean")
    dataset, split = names.resolve(task, "valid")
    try:
        valid = store.metric_all(dataset, split, hp, "accuracy", "mean")
    except HarnessError as err:  # the table lacks that block or split
        logger.info("no valid accuracy for %s in %s: %s", task, store.path, err)
        valid = np.full(test.shape, np.nan)
    try:
        latency = 1e3 * store.cost_all(names.resolve(task, "test")[0], hp, "latency")
    except HarnessError:
        latency = np.full(test.shape, np.nan)
    return GroundTruth.from_arrays(
        task, test, valid, names.hp_key(space, hp), space, np.asarray(latency, np.float64)
    )


def _num(values: FloatArray, index: int) -> float | None:
    value = float(values[index])
    return None if math.isnan(value) else value


@dataclass(frozen=True)
class ArchQuality:
    """How good one architecture truly is, and what it costs; None where unknown.
    ``regret_at_flops``: the best test accuracy among architectures of at most its FLOPs minus
    its own; ``params_mb`` / ``flop_m``: millions of parameters / multiply-adds per image;
    ``latency_ms``: the benchmark's measured latency."""

    arch_index: int
    arch: str
    valid_acc: float | None
    test_acc: float | None
    regret: float | None
    rank: int | None
    percentile: float | None
    regret_at_flops: float | None = None
    params_mb: float | None = None
    flop_m: float | None = None
    latency_ms: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return dict(vars(self))


def arch_quality(truth: GroundTruth, arch: int) -> ArchQuality:
    """True accuracy, regrets, rank, percentile and cost of architecture ``arch`` (index)."""
    index = int(arch)
    test = _num(truth.test, index)
    rank = _num(truth.rank, index)
    within = _num(truth.best_within_flops, index)
    return ArchQuality(
        arch_index=index,
        arch=get_space(truth.space).index_to_str(index),
        valid_acc=_num(truth.valid, index),
        test_acc=test,
        regret=None if test is None else truth.best - test,
        rank=None if rank is None else int(rank),
        percentile=_num(truth.percentile, index),
        regret_at_flops=None if test is None or within is None else within - test,
        params_mb=_num(truth.params, index),
        flop_m=_num(truth.flops, index),
        latency_ms=_num(truth.latency, index),
    )


def epoch_trajectory(truth: GroundTruth, history: Iterable[EpochRecord]) -> list[dict[str, Any]]:
    """One dict per search epoch: ``epoch``, ``argmax_index``, ``argmax_arch``,
    ``argmax_test_acc``, ``regret`` (None where unknown) and the epoch's ``train_loss``."""
    rows = []
    for record in history:
        q = arch_quality(truth, record.arch_index)
        rows.append(
            {
                "epoch": record.epoch,
                "argmax_index": q.arch_index,
                "argmax_arch": q.arch,
                "argmax_test_acc": q.test_acc,
                "regret": q.regret,
                "train_loss": record.train_loss,
            }
        )
    return rows


def stratified_sample(
    true_acc: npt.ArrayLike, n: int, n_bins: int, rng: np.random.Generator
) -> npt.NDArray[np.int64]:
    """``n`` distinct architecture indices, spread evenly over ``n_bins`` quantile bins of
    ``true_acc`` (``(n_archs,)``, NaN entries never drawn), sorted ascending.

    Each bin gets ``n // n_bins`` draws, the first ``n % n_bins`` bins one more. Draw it once
    (from a fixed generator) and reuse it for every run that should be compared.
    """
    acc = np.asarray(true_acc, dtype=np.float64).ravel()
    known = np.flatnonzero(~np.isnan(acc))
    if not 1 <= n_bins <= n <= known.size:
        raise ConfigError(
            f"need 1 <= n_bins <= n <= {known.size} known architectures; got n={n}, n_bins={n_bins}"
        )
    order = known[np.argsort(acc[known], kind="stable")]  # ascending true accuracy
    bins = np.array_split(order, n_bins)
    sizes = [n // n_bins + (1 if b < n % n_bins else 0) for b in range(n_bins)]
    if any(size > len(members) for size, members in zip(sizes, bins, strict=True)):
        raise ConfigError(f"a bin holds fewer than {max(sizes)} architectures")
    drawn = [
        rng.choice(members, size, replace=False) for size, members in zip(sizes, bins, strict=True)
    ]
    return np.sort(np.concatenate(drawn)).astype(np.int64)


def supernet_accuracies(
    supernet: nn.Module, archs: Sequence[int], batches: Sequence[Batch], train_mode: bool = True
) -> FloatArray:
    """Supernet accuracy (%) of each architecture in ``archs`` on the same ``batches`` (one-hot
    weights; train mode = batch statistics by default). Returns ``(len(archs),)``."""
    if not batches:
        raise ConfigError("supernet_accuracies needs at least one validation batch")
    param = next(supernet.parameters())
    space = supernet_space(supernet)
    return np.array(
        [
            evaluate(supernet, one_hot(space, a, param.device, param.dtype), batches, train_mode)[0]
            for a in archs
        ],
        dtype=np.float64,
    )


def rank_correlation(estimated: npt.ArrayLike, true: npt.ArrayLike) -> tuple[float, float]:
    """Kendall's tau-b and Spearman's rho between ``estimated`` and ``true`` accuracies (1-D,
    same length). NaN when either is constant (no ranking to compare)."""
    est, tru = np.asarray(estimated, np.float64).ravel(), np.asarray(true, np.float64).ravel()
    if est.shape != tru.shape or est.size < 2:
        raise ConfigError(f"need two equal-length samples of >= 2; got {est.size}, {tru.size}")
    if np.ptp(est) == 0 or np.ptp(tru) == 0:
        return math.nan, math.nan
    tau = sps.kendalltau(est, tru).statistic
    rho = sps.spearmanr(est, tru).statistic
    return float(tau), float(rho)


def pareto_front(flops: npt.ArrayLike, accuracy: npt.ArrayLike) -> npt.NDArray[np.int64]:
    """Indices of the accuracy-FLOPs Pareto front (no other architecture has at most the FLOPs
    and a higher accuracy), ordered by ascending FLOPs; NaN accuracies are never on it."""
    cost = np.asarray(flops, np.float64).ravel()
    acc = np.asarray(accuracy, np.float64).ravel()
    known = np.flatnonzero(~np.isnan(acc) & ~np.isnan(cost))
    order = known[np.lexsort((-acc[known], cost[known]))]  # ascending cost, best first in ties
    front, best = [], -np.inf
    for i in order:
        if acc[i] > best:
            front.append(i)
            best = acc[i]
    return np.asarray(front, dtype=np.int64)
