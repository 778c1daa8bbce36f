"""Pure statistics on score arrays shaped ``(n_runs, n_tasks)``.

Rows are independent runs (seeds), columns are tasks (for example evaluation datasets).
Every function is deterministic given its inputs; the bootstrap draws come only from the
``numpy.random.Generator`` (or integer seed) passed in. Each metric declares once, in
:data:`HIGHER_IS_BETTER`, which direction is better; functions that rank take that flag.
"""

from __future__ import annotations

import itertools
import logging
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt
from scipy import stats as sps

from harness.errors import ConfigError, unknown

logger = logging.getLogger(__name__)

ArrayLike = npt.ArrayLike
FloatArray = npt.NDArray[np.float64]
Statistic = Callable[[FloatArray], "float | FloatArray"]
#: Alternative hypothesis of a two-sample test: ``x`` differs from, exceeds or falls below ``y``.
Alternative = Literal["two-sided", "greater", "less"]
_ALTERNATIVES = ("two-sided", "greater", "less")

#: Direction of every metric the harness reports: True when a higher value is better.
HIGHER_IS_BETTER: dict[str, bool] = {
    "test_acc": True,
    "valid_acc": True,
    "percentile": True,
    "regret": False,
    "rank": False,
    "sim_seconds": False,
    "wall_seconds": False,
    "queries": False,
}


def higher_is_better(metric: str) -> bool:
    """Whether a higher value of ``metric`` is better; raises ConfigError for unknown names."""
    try:
        return HIGHER_IS_BETTER[metric]
    except KeyError:
        raise ConfigError(unknown("metric", metric, HIGHER_IS_BETTER)) from None


def as_score_matrix(x: ArrayLike) -> FloatArray:
    """``x`` as a float array ``(n_runs, n_tasks)``; a 1-D input becomes one task column."""
    arr = np.asarray(x, dtype=np.float64)
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.ndim != 2 or arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ConfigError(f"expected a non-empty (n_runs, n_tasks) array, got shape {arr.shape}")
    return arr


@dataclass(frozen=True)
class BootstrapCI:
    """A point estimate with a percentile bootstrap interval (same shape as the statistic)."""

    point: float | FloatArray
    low: float | FloatArray
    high: float | FloatArray
    confidence: float
    n_boot: int


@dataclass(frozen=True)
class TestResult:
    """Outcome of one two-sample test: statistic and p-value (of the alternative asked for).

    ``direction`` is +1 when ``x`` tends to exceed ``y`` (Wilcoxon: the positive differences
    carry more rank than the negative; Mann-Whitney: U of ``x`` above ``n m / 2``), -1 when it
    tends to fall below, 0 when balanced: the side a two-sided rejection points to.
    """

    statistic: float
    p_value: float
    direction: int = 0


@dataclass(frozen=True)
class PairwiseResult:
    """One Wilcoxon comparison ``a`` vs ``b`` with its Holm-adjusted p-value."""

    a: str
    b: str
    statistic: float
    p_value: float
    p_adjusted: float
    reject: bool
    median_difference: float  # median over seeds of a - b


@dataclass(frozen=True)
class FriedmanResult:
    """Friedman test over blocks with Nemenyi critical difference on average ranks.

    ``avg_ranks`` has shape ``(n_methods,)``; rank 1 is the best method.
    """

    statistic: float
    p_value: float
    avg_ranks: FloatArray
    critical_difference: float
    q_alpha: float
    alpha: float
    n_blocks: int
    n_methods: int


def mean_std(x: ArrayLike, axis: int = 0, ddof: int = 1) -> tuple[FloatArray, FloatArray]:
    """Mean and sample standard deviation along ``axis``.

    The standard deviation is NaN where fewer than ``ddof + 1`` values exist (undefined),
    without the warning numpy would emit.
    """
    arr = np.asarray(x, dtype=np.float64)
    mean = np.mean(arr, axis=axis)
    n = arr.shape[axis]
    if n <= ddof:
        std = np.full_like(mean, np.nan, dtype=np.float64)
    else:
        std = np.std(arr, axis=axis, ddof=ddof)
    return np.asarray(mean), np.asarray(std)


def iqm(x: ArrayLike) -> float:
    """Interquartile mean of all entries: the mean of the middle 50% (25% trimmed each side)."""
    flat = np.asarray(x, dtype=np.float64).ravel()
    if flat.size == 0:
        raise ConfigError("iqm of an empty array is undefined")
    return float(sps.trim_mean(flat, proportiontocut=0.25))


def rank_data(x: ArrayLike, axis: int = -1, higher_is_better: bool = True) -> FloatArray:
    """Ranks along ``axis`` with 1 = best and ties given their average rank.

    Example: ``rank_data([3, 1, 3])`` with higher better is ``[1.5, 3.0, 1.5]``.
    """
    arr = np.asarray(x, dtype=np.float64)
    keyed = -arr if higher_is_better else arr
    return np.asarray(sps.rankdata(keyed, method="average", axis=axis), dtype=np.float64)


def _rng(rng: np.random.Generator | int) -> np.random.Generator:
    if isinstance(rng, np.random.Generator):
        return rng
    return np.random.default_rng(rng)


def _resample_runs(x: FloatArray, rng: np.random.Generator, n_boot: int) -> FloatArray:
    """``n_boot`` stratified resamples: runs drawn with replacement independently per task.

    Returns shape ``(n_boot, n_runs, n_tasks)``.
    """
    n_runs, n_tasks = x.shape
    idx = rng.integers(0, n_runs, size=(n_boot, n_runs, n_tasks))
    return x[idx, np.arange(n_tasks)[None, None, :]]


def _percentile_interval(
    samples: FloatArray, confidence: float
) -> tuple[float | FloatArray, float | FloatArray]:
    tail = 100.0 * (1.0 - confidence) / 2.0
    low, high = np.percentile(samples, [tail, 100.0 - tail], axis=0)
    return _scalar(low), _scalar(high)


def _scalar(v: ArrayLike) -> float | FloatArray:
    arr = np.asarray(v, dtype=np.float64)
    return float(arr) if arr.ndim == 0 else arr


def _check_boot(n_boot: int, confidence: float) -> None:
    if n_boot < 1:
        raise ConfigError(f"n_boot must be >= 1, got {n_boot}")
    if not 0.0 < confidence < 1.0:
        raise ConfigError(f"confidence must lie in (0, 1), got {confidence}")


def _bootstrap_one(
    x: FloatArray, statistic: Statistic, n_boot: int, confidence: float, rng: np.random.Generator
) -> BootstrapCI:
    draws = _resample_runs(x, rng, n_boot)
    samples = np.asarray([statistic(d) for d in draws], dtype=np.float64)
    low, high = _percentile_interval(samples, confidence)
    return BootstrapCI(_scalar(statistic(x)), low, high, confidence, n_boot)


def stratified_bootstrap_ci(
    scores: Mapping[str, ArrayLike] | ArrayLike,
    statistic: Statistic,
    n_boot: int,
    confidence: float = 0.95,
    *,
    rng: np.random.Generator | int,
) -> BootstrapCI | dict[str, BootstrapCI]:
    """Percentile bootstrap interval of ``statistic`` with runs resampled per task.

    ``scores`` is one ``(n_runs, n_tasks)`` array or a mapping name -> such array (each
    resampled independently, in mapping order). ``statistic`` maps an ``(n_runs, n_tasks)``
    array to a float or a 1-D array. Returns one :class:`BootstrapCI` or a dict of them.
    """
    _check_boot(n_boot, confidence)
    gen = _rng(rng)
    if isinstance(scores, Mapping):
        return {
            name: _bootstrap_one(as_score_matrix(arr), statistic, n_boot, confidence, gen)
            for name, arr in scores.items()
        }
    return _bootstrap_one(as_score_matrix(scores), statistic, n_boot, confidence, gen)


def _poi_per_task(x: FloatArray, y: FloatArray) -> FloatArray:
    """P(X > Y) + 0.5 P(X = Y) per task along the last-but-one axis: ``x`` (..., n, T), ``y``
    (..., m, T) -> (..., T). It is U / (n m), with U = rank sum of ``x`` - n (n + 1) / 2 in
    the pooled sample (ties averaged): O((n + m) log(n + m)), not O(n m)."""
    n, m = x.shape[-2], y.shape[-2]
    ranks = sps.rankdata(np.concatenate([x, y], axis=-2), method="average", axis=-2)
    u = ranks[..., :n, :].sum(axis=-2) - n * (n + 1) / 2.0
    return np.asarray(u / (n * m), dtype=np.float64)


def _two_matrices(x: ArrayLike, y: ArrayLike) -> tuple[FloatArray, FloatArray]:
    xa, ya = as_score_matrix(x), as_score_matrix(y)
    if xa.shape[1] != ya.shape[1]:
        raise ConfigError(f"x has {xa.shape[1]} tasks but y has {ya.shape[1]}")
    return xa, ya


def probability_of_improvement(x: ArrayLike, y: ArrayLike, higher_is_better: bool = True) -> float:
    """P(X better than Y) averaged over tasks, ties counted one half.

    ``x`` is ``(n, n_tasks)``, ``y`` is ``(m, n_tasks)``; per task this is the Mann-Whitney
    U statistic of ``x`` divided by ``n * m``.
    """
    xa, ya = _two_matrices(x, y)
    if not higher_is_better:
        xa, ya = -xa, -ya
    return float(np.mean(_poi_per_task(xa, ya)))


def probability_of_improvement_ci(
    x: ArrayLike,
    y: ArrayLike,
    n_boot: int,
    confidence: float = 0.95,
    *,
    rng: np.random.Generator | int,
    higher_is_better: bool = True,
) -> BootstrapCI:
    """:func:`probability_of_improvement` with a stratified bootstrap interval.

    Runs of ``x`` and of ``y`` are resampled independently within each task.
    """
    _check_boot(n_boot, confidence)
    xa, ya = _two_matrices(x, y)
    sign = 1.0 if higher_is_better else -1.0
    gen = _rng(rng)
    xs, ys = _resample_runs(sign * xa, gen, n_boot), _resample_runs(sign * ya, gen, n_boot)
    samples = _poi_per_task(xs, ys).mean(axis=-1)  # (n_boot,)
    low, high = _percentile_interval(samples, confidence)
    point = probability_of_improvement(xa, ya, higher_is_better)
    return BootstrapCI(point, low, high, confidence, n_boot)


def _check_alternative(alternative: str) -> None:
    if alternative not in _ALTERNATIVES:
        raise ConfigError(unknown("alternative", alternative, _ALTERNATIVES))


def mann_whitney(x: ArrayLike, y: ArrayLike, alternative: Alternative = "two-sided") -> TestResult:
    """Mann-Whitney U test of two unpaired 1-D samples (U of ``x``); ``alternative`` "greater":
    ``x`` tends to exceed ``y``."""
    _check_alternative(alternative)
    xa, ya = np.asarray(x, dtype=np.float64).ravel(), np.asarray(y, dtype=np.float64).ravel()
    if xa.size == 0 or ya.size == 0:
        raise ConfigError(f"mann_whitney needs two non-empty samples, got {xa.size} and {ya.size}")
    res = sps.mannwhitneyu(xa, ya, alternative=alternative)
    u = float(res.statistic)
    direction = int(np.sign(u - xa.size * ya.size / 2.0))
    return TestResult(u, float(res.pvalue), direction)


def wilcoxon(x: ArrayLike, y: ArrayLike, alternative: Alternative = "two-sided") -> TestResult:
    """Wilcoxon signed-rank test of seed-paired samples (zero differences dropped);
    ``alternative`` "greater": ``x - y`` tends to be positive.

    When every difference is zero the samples are indistinguishable: p = 1.
    """
    _check_alternative(alternative)
    xa, ya = np.asarray(x, dtype=np.float64).ravel(), np.asarray(y, dtype=np.float64).ravel()
    if xa.shape != ya.shape or xa.size == 0:
        raise ConfigError(f"wilcoxon needs equal-length paired samples, got {xa.size}, {ya.size}")
    if np.all(xa == ya):
        return TestResult(0.0, 1.0, 0)
    res = sps.wilcoxon(xa, ya, zero_method="wilcox", alternative=alternative)
    diff = (xa - ya)[xa != ya]
    signed = float(np.sum(np.sign(diff) * sps.rankdata(np.abs(diff))))  # W+ - W-
    return TestResult(float(res.statistic), float(res.pvalue), int(np.sign(signed)))


def min_p_wilcoxon(n: int, alternative: Alternative = "two-sided") -> float:
    """The smallest p-value an exact Wilcoxon signed-rank test of ``n`` nonzero paired
    differences can return: 1 / 2^n one-sided (all signs on the alternative's side), 2 / 2^n
    two-sided (at most 1). With n <= 5 no two-sided test reaches 0.05 (2 / 32 = 0.0625)."""
    _check_alternative(alternative)
    if n < 0:
        raise ConfigError(f"a number of pairs must be >= 0, got {n}")
    return min(1.0, (2.0 if alternative == "two-sided" else 1.0) / 2.0**n)


def min_p_mann_whitney(n: int, m: int, alternative: Alternative = "two-sided") -> float:
    """The smallest p-value an exact Mann-Whitney U test of samples of ``n`` and ``m`` untied
    values can return: 1 / C(n + m, n) one-sided (complete separation), twice that two-sided."""
    _check_alternative(alternative)
    if n < 0 or m < 0:
        raise ConfigError(f"sample sizes must be >= 0, got {n} and {m}")
    factor = 2.0 if alternative == "two-sided" else 1.0
    return min(1.0, factor / math.comb(n + m, n))


def min_p_holm(min_p: float, n_tests: int) -> float:
    """The smallest Holm-adjusted p-value in a family of ``n_tests`` tests none of which can go
    below ``min_p``: ``n_tests * min_p`` (at most 1). A family can reject only if it is < alpha."""
    if n_tests < 1:
        raise ConfigError(f"a family needs >= 1 test, got {n_tests}")
    return min(1.0, n_tests * min_p)


def t_interval(x: ArrayLike, confidence: float = 0.95) -> tuple[float, float]:
    """Student-t interval of the mean of the 1-D sample ``x``: mean -/+ t_{(1 + c) / 2, n - 1}
    s / sqrt(n). NaN bounds with fewer than 2 values; for paired data pass the differences."""
    _check_boot(1, confidence)
    xa = np.asarray(x, dtype=np.float64).ravel()
    if xa.size < 2:
        return float("nan"), float("nan")
    half = sps.t.ppf((1.0 + confidence) / 2.0, xa.size - 1) * xa.std(ddof=1) / np.sqrt(xa.size)
    return float(xa.mean() - half), float(xa.mean() + half)


def paired_t_sample_size(
    effect_size: float, alpha: float = 0.05, power: float = 0.8, max_n: int = 1_000_000
) -> int | None:
    """Smallest number of pairs for which a one-sided paired t-test at ``alpha`` has at least
    ``power`` against the standardized effect ``|effect_size|`` (mean / sd of the differences):
    power(n) = P(T' > t_{1 - alpha, n - 1}) for T' noncentral t with n - 1 dof and noncentrality
    d sqrt(n). None when the effect is 0 or not finite, or needs more than ``max_n`` pairs."""
    if not (0.0 < alpha < 1.0 and 0.0 < power < 1.0):
        raise ConfigError(f"alpha and power must lie in (0, 1), got {alpha} and {power}")
    d = abs(float(effect_size))
    if not math.isfinite(d) or d == 0.0:
        return None

    def enough(n: int) -> bool:
        crit = sps.t.ppf(1.0 - alpha, n - 1)
        return bool(sps.nct.sf(crit, n - 1, d * math.sqrt(n)) >= power)

    if not enough(max_n):
        return None
    lo, hi = 2, max_n  # power grows with n: bisect for the first n that is enough
    while lo < hi:
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if enough(mid) else (mid + 1, hi)
    return lo


def holm(pvals: ArrayLike) -> FloatArray:
    """Holm step-down adjusted p-values, in the input order.

    Sorted ascending, ``p_(i)`` becomes ``max_{j <= i} min(1, (m - j) p_(j))`` (0-based j).
    NaN entries are left NaN and do not count towards ``m``.
    """
    p = np.asarray(pvals, dtype=np.float64).ravel()
    out = np.full_like(p, np.nan)
    valid = np.flatnonzero(~np.isnan(p))
    m = valid.size
    if m == 0:
        return out
    order = valid[np.argsort(p[valid], kind="stable")]
    scaled = (m - np.arange(m)) * p[order]
    out[order] = np.minimum(np.maximum.accumulate(scaled), 1.0)
    return out


def wilcoxon_holm(
    scores: Mapping[str, ArrayLike], control: str | None = None, alpha: float = 0.05
) -> list[PairwiseResult]:
    """Seed-paired Wilcoxon tests with Holm correction over the family of comparisons.

    ``scores`` maps method -> array ``(n_seeds,)`` with the same seed order everywhere.
    With a ``control`` each other method is compared to it; otherwise all pairs are.
    """
    arrays = {k: np.asarray(v, dtype=np.float64).ravel() for k, v in scores.items()}
    if control is not None and control not in arrays:
        raise ConfigError(unknown("control method", control, arrays))
    if control is None:
        pairs = list(itertools.combinations(arrays, 2))
    else:
        pairs = [(name, control) for name in arrays if name != control]
    tests = [wilcoxon(arrays[a], arrays[b]) for a, b in pairs]
    adjusted = holm([t.p_value for t in tests])
    return [
        PairwiseResult(
            a=a,
            b=b,
            statistic=t.statistic,
            p_value=t.p_value,
            p_adjusted=float(adj),
            reject=bool(adj < alpha),
            median_difference=float(np.median(arrays[a] - arrays[b])),
        )
        for (a, b), t, adj in zip(pairs, tests, adjusted, strict=True)
    ]


def nemenyi_q(n_methods: int, alpha: float = 0.05) -> float:
    """Nemenyi critical value q_alpha = studentized range quantile(1 - alpha, k, inf) / sqrt(2)."""
    q = sps.studentized_range.ppf(1.0 - alpha, n_methods, np.inf)
    return float(q / np.sqrt(2.0))


def friedman_nemenyi(
    matrix: ArrayLike, higher_is_better: bool, alpha: float = 0.05
) -> FriedmanResult:
    """Friedman test and Nemenyi critical difference on a ``(n_blocks, n_methods)`` matrix.

    Ranks are taken within each block (1 = best, ties averaged). The Friedman statistic
    ``12 N / (k (k + 1)) * sum_j (Rbar_j - (k + 1) / 2)^2`` is divided by the tie correction
    ``1 - sum(t^3 - t) / (N k (k^2 - 1))`` and compared to chi-square with k - 1 dof.
    ``CD = q_alpha * sqrt(k (k + 1) / (6 N))``.
    """
    arr = as_score_matrix(matrix)
    n, k = arr.shape
    if k < 2 or n < 1 or np.isnan(arr).any():
        raise ConfigError(f"friedman needs a complete matrix with >= 2 methods, got {arr.shape}")
    ranks = rank_data(arr, axis=1, higher_is_better=higher_is_better)
    avg = ranks.mean(axis=0)
    stat = 12.0 * n / (k * (k + 1)) * float(np.sum((avg - (k + 1) / 2.0) ** 2))
    ties = sum(float(np.sum(c**3 - c)) for c in (np.unique(r, return_counts=True)[1] for r in arr))
    correction = 1.0 - ties / (n * k * (k * k - 1))
    if correction > 0:
        stat /= correction
        p_value = float(sps.chi2.sf(stat, k - 1))
    else:  # every block is one big tie: no evidence of any difference
        stat, p_value = 0.0, 1.0
    q = nemenyi_q(k, alpha)
    cd = q * float(np.sqrt(k * (k + 1) / (6.0 * n)))
    return FriedmanResult(stat, p_value, avg, cd, q, alpha, n, k)


def average_rank_over_time(curves: ArrayLike, higher_is_better: bool) -> FloatArray:
    """Mean rank of each method over seeds, per step.

    ``curves`` is ``(n_methods, n_seeds, n_steps)``; ranks are taken across methods for each
    seed and step (1 = best, ties averaged). Returns ``(n_methods, n_steps)``.
    """
    arr = np.asarray(curves, dtype=np.float64)
    if arr.ndim != 3 or 0 in arr.shape:
        raise ConfigError(f"expected (n_methods, n_seeds, n_steps) curves, got shape {arr.shape}")
    return rank_data(arr, axis=0, higher_is_better=higher_is_better).mean(axis=1)
