"""Selection quality against the exhaustive ground truth of the topology space.

:class:`GroundTruth` holds the true accuracies of every architecture on one task at the report
schedule (seed mean), from a benchmark store (:func:`ground_truth`) or from arrays. On it:

* :func:`arch_quality` - a selected architecture's true valid/test accuracy, regret (best test
  minus its test), rank (1 = best; ties share the best rank) and percentile (share of
  architectures whose test accuracy is at most its own, in %; 100 for the best);
* :func:`epoch_trajectory` - the true accuracy of the per-epoch argmax architecture of a search
  (a collapse to parameter-free cells shows as a falling curve);
* :func:`stratified_sample`, :func:`supernet_accuracies`, :func:`rank_correlation` - Kendall's
  tau and Spearman's rho between supernet-estimated and true accuracy on a fixed sample of
  architectures stratified by true-accuracy quantile.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
import scipy.stats as sps
import torch
from torch import nn

from harness.bench import names
from harness.errors import ConfigError
from harness.spaces import tss as space
from harness.supernet.search import Batch, EpochRecord
from harness.supernet.selection import evaluate

if TYPE_CHECKING:
    from harness.bench.store import Store

logger = logging.getLogger(__name__)

__all__ = [
    "COMPARISON_GROUP",
    "ArchQuality",
    "GroundTruth",
    "PairedComparison",
    "arch_quality",
    "compare_selections",
    "comparison_markdown",
    "epoch_trajectory",
    "ground_truth",
    "one_hot",
    "rank_correlation",
    "stratified_sample",
    "supernet_accuracies",
]

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class GroundTruth:
    """True accuracies (%) of every architecture on ``task`` at schedule ``hp``: ``test`` and
    ``valid`` are ``(n_archs,)`` float64, NaN where unknown; ``rank`` / ``percentile`` follow
    from ``test`` (see module docstring); ``best`` is the highest test accuracy."""

    task: str
    hp: str
    test: FloatArray
    valid: FloatArray
    rank: FloatArray
    percentile: FloatArray
    best: float

    @staticmethod
    def from_arrays(
        task: str, test: npt.ArrayLike, valid: npt.ArrayLike | None = None, hp: str = "200"
    ) -> GroundTruth:
        """Ground truth from ``(n_archs,)`` test (and valid) accuracies; NaN = unknown."""
        names.check_task(task)
        t = np.asarray(test, dtype=np.float64).ravel()
        v = np.full_like(t, np.nan) if valid is None else np.asarray(valid, np.float64).ravel()
        if v.shape != t.shape or t.size != space.NUM_ARCHS:
            raise ConfigError(
                f"ground truth needs ({space.NUM_ARCHS},) arrays; got {t.shape} and {v.shape}"
            )
        present = np.sort(t[~np.isnan(t)])
        if not present.size:
            raise ConfigError(f"no test accuracy known for {task}")
        at_most = np.searchsorted(present, t, side="right").astype(np.float64)
        rank = np.where(np.isnan(t), np.nan, 1 + present.size - at_most)
        percentile = np.where(np.isnan(t), np.nan, 100.0 * at_most / present.size)
        return GroundTruth(task, hp, t, v, rank, percentile, float(present[-1]))


def ground_truth(store: Store, task: str, hp: str = "200") -> GroundTruth:
    """The ground truth of ``task`` from a tss store: test and valid accuracy at ``hp``, seed
    mean, under the names :func:`harness.bench.names.resolve` gives (valid NaN if absent)."""
    if store.space_name != "tss":
        raise ConfigError(f"supernet quality needs a tss store, got {store.space_name!r}")
    test = store.metric_all(*names.resolve(task, "test"), hp, "accuracy", "mean")
    dataset, split = names.resolve(task, "valid")
    try:
        valid = store.metric_all(dataset, split, hp, "accuracy", "mean")
    except Exception as err:  # the table lacks that block or split
        logger.info("no valid accuracy for %s in %s: %s", task, store.path, err)
        valid = np.full(test.shape, np.nan)
    return GroundTruth.from_arrays(task, test, valid, names.hp_key("tss", hp))


def _num(values: FloatArray, index: int) -> float | None:
    value = float(values[index])
    return None if math.isnan(value) else value


@dataclass(frozen=True)
class ArchQuality:
    """How good one architecture truly is; None where the ground truth lacks it."""

    arch_index: int
    arch: str
    valid_acc: float | None
    test_acc: float | None
    regret: float | None
    rank: int | None
    percentile: float | None

    def to_dict(self) -> dict[str, Any]:
        return dict(vars(self))


def arch_quality(truth: GroundTruth, arch: int) -> ArchQuality:
    """True accuracy, regret, rank and percentile of architecture ``arch`` (official index)."""
    index = int(arch)
    test = _num(truth.test, index)
    rank = _num(truth.rank, index)
    return ArchQuality(
        arch_index=index,
        arch=space.index_to_str(index),
        valid_acc=_num(truth.valid, index),
        test_acc=test,
        regret=None if test is None else truth.best - test,
        rank=None if rank is None else int(rank),
        percentile=_num(truth.percentile, index),
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


def one_hot(
    arch: int, device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32
) -> torch.Tensor:
    """(6, 5) one-hot edge weights of architecture ``arch``."""
    weights = torch.zeros(space.NUM_EDGES, space.NUM_OPS, dtype=dtype, device=device)
    ops = torch.as_tensor(space.index_to_ops(int(arch)), device=device)
    weights[torch.arange(space.NUM_EDGES, device=device), ops] = 1.0
    return weights


def supernet_accuracies(
    supernet: nn.Module, archs: Sequence[int], batches: Sequence[Batch], train_mode: bool = True
) -> FloatArray:
    """Supernet accuracy (%) of each architecture in ``archs`` on the same ``batches`` (one-hot
    edge weights; train mode = batch statistics by default). Returns ``(len(archs),)``."""
    if not batches:
        raise ConfigError("supernet_accuracies needs at least one validation batch")
    param = next(supernet.parameters())
    return np.array(
        [
            evaluate(supernet, one_hot(a, param.device, param.dtype), batches, train_mode)[0]
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


# --------------------------------------------------------------------------- paired comparison
@dataclass(frozen=True)
class PairedComparison:
    """Selection rule ``a`` vs ``b`` on the same supernets (seed-paired) for one group.

    ``mean_a`` / ``mean_b``: mean ``metric`` over the ``n`` paired seeds; ``mean_difference``:
    mean of a - b; ``wins``: share of seeds where a is better (ties one half);
    ``probability_of_improvement``: P(a > b) over all seed pairs (harness.stats);
    ``statistic`` / ``p_value``: two-sided Wilcoxon signed-rank test of the pairs.
    """

    group: tuple[str, ...]
    a: str
    b: str
    metric: str
    n: int
    mean_a: float
    mean_b: float
    mean_difference: float
    wins: float
    probability_of_improvement: float
    statistic: float
    p_value: float


COMPARISON_GROUP: tuple[str, ...] = ("method", "protocol", "dataset", "eval_dataset")


def compare_selections(
    rows: Iterable[Mapping[str, Any]],
    a: str = "perturbation",
    b: str = "magnitude",
    metric: str = "test_acc",
    group: Sequence[str] = COMPARISON_GROUP,
) -> list[PairedComparison]:
    """Pair rows of selection ``a`` and ``b`` that share a ``run_key`` (the same supernet) and
    an eval task, within each ``group``; rows with a null ``metric`` or status other than
    ``ok`` are left out. Higher ``metric`` is better (test accuracy)."""
    from harness import stats

    paired: dict[tuple[str, ...], dict[tuple[Any, Any], dict[str, float]]] = {}
    for row in rows:
        value = row.get(metric)
        if row.get("status", "ok") != "ok" or value is None or row["selection"] not in (a, b):
            continue
        if isinstance(value, float) and math.isnan(value):
            continue
        ident = tuple(str(row[g]) for g in group)
        cell = paired.setdefault(ident, {}).setdefault((row["run_key"], row["eval_dataset"]), {})
        cell[row["selection"]] = float(value)
    out = []
    for ident, cells in sorted(paired.items()):
        both = [(c[a], c[b]) for c in cells.values() if a in c and b in c]
        if not both:
            continue
        x, y = np.array([p[0] for p in both]), np.array([p[1] for p in both])
        test = stats.wilcoxon(x, y)
        wins = float(np.mean((x > y) + 0.5 * (x == y)))
        poi = stats.probability_of_improvement(x[:, None], y[:, None])
        out.append(
            PairedComparison(
                ident,
                a,
                b,
                metric,
                len(both),
                float(x.mean()),
                float(y.mean()),
                float((x - y).mean()),
                wins,
                poi,
                test.statistic,
                test.p_value,
            )
        )
    return out


def comparison_markdown(comparisons: Sequence[PairedComparison]) -> str:
    """A Markdown table of :func:`compare_selections`' output (numbers formatted only)."""
    if not comparisons:
        return "_no paired runs_\n"
    first = comparisons[0]
    head = [*COMPARISON_GROUP[: len(first.group)], "n", f"{first.a}", f"{first.b}"]
    head += ["mean diff", "wins", "P(a>b)", "Wilcoxon p"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for c in comparisons:
        cells = [*c.group, str(c.n), f"{c.mean_a:.2f}", f"{c.mean_b:.2f}"]
        cells += [f"{c.mean_difference:+.2f}", f"{c.wins:.2f}"]
        cells += [f"{c.probability_of_improvement:.2f}", f"{c.p_value:.3g}"]
        lines.append("| " + " | ".join(cells) + " |")
    note = (
        f"\n{first.metric}: selection `{first.a}` (a) vs `{first.b}` (b) on the same supernets.\n"
    )
    return "\n".join(lines) + "\n" + note
