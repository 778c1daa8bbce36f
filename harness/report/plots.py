"""Figures in two steps: results -> small plot-data object -> ``plot_x(data, ax=None) -> Axes``.

The ``*_data`` builders are pure and hold every number a figure shows; the ``plot_*``
functions only draw. Styles come from :func:`harness.report.style.method_style`. No global
``rcParams`` are touched.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pandas as pd
from matplotlib.axes import Axes

from harness import stats
from harness.errors import ConfigError, unknown
from harness.report.leaderboard import method_labels, require_columns, settings
from harness.report.style import method_style

logger = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.float64]
_TRAJ_COLUMNS = ("run_key", "method", "space", "protocol", "eval_dataset", "sim_seconds")


def new_axes(ax: Axes | None, figsize: tuple[float, float]) -> Axes:
    """``ax``, or the axes of a new figure of ``figsize`` inches when ``ax`` is None."""
    if ax is not None:
        return ax
    import matplotlib.pyplot as plt  # only when the caller wants a fresh figure

    _, new = plt.subplots(figsize=figsize)
    return new


# ------------------------------------------------------------------------- regret curves


@dataclass(frozen=True)
class RegretCurveData:
    """Incumbent regret over simulated time, per method.

    ``grid`` is ``(n_points,)`` simulated seconds; ``center``, ``low``, ``high`` map a
    method to ``(n_points,)`` arrays, NaN where some run of that method has no incumbent yet.
    """

    eval_dataset: str
    grid: FloatArray
    methods: tuple[str, ...]
    center: Mapping[str, FloatArray]
    low: Mapping[str, FloatArray]
    high: Mapping[str, FloatArray]
    n_runs: Mapping[str, int]
    statistic: str
    confidence: float


def _step_matrix(runs: pd.DataFrame, grid: FloatArray) -> FloatArray:
    """``(n_runs, n_points)``: each run's last recorded regret at or before each grid time."""
    rows = []
    for _, traj in runs.groupby("run_key", sort=True):
        traj = traj.dropna(subset=["regret"]).sort_values(["sim_seconds", "step"])
        times = traj["sim_seconds"].to_numpy(dtype=float)
        values = traj["regret"].to_numpy(dtype=float)
        idx = np.searchsorted(times, grid, side="right") - 1
        rows.append(np.where(idx >= 0, values[np.maximum(idx, 0)], np.nan))
    return np.asarray(rows, dtype=np.float64)


def _log_grid(times: pd.Series, grid: int | npt.ArrayLike) -> FloatArray:
    if not isinstance(grid, int):
        return np.sort(np.asarray(grid, dtype=np.float64))
    positive = times[times > 0]
    if positive.empty:
        raise ConfigError("regret curves need positive sim_seconds; all recorded times are <= 0")
    lo, hi = float(positive.min()), float(times.max())
    return np.geomspace(lo, max(hi, lo), grid)


def regret_curve_data(
    trajectories: pd.DataFrame,
    eval_dataset: str,
    grid: int | npt.ArrayLike = 50,
    n_boot: int = 1000,
    *,
    rng: np.random.Generator | int,
    statistic: str = "median",
    confidence: float = 0.95,
) -> RegretCurveData:
    """Median (or mean) incumbent regret of each method on ``eval_dataset`` over time.

    ``grid`` is a number of log-spaced points between the first positive and the last
    recorded ``sim_seconds``, or explicit times. The band is a percentile bootstrap over
    runs. The trajectories must hold a single (space, protocol).
    """
    require_columns(trajectories, [*_TRAJ_COLUMNS, "step", "regret"], "trajectories")
    if statistic not in ("median", "mean"):
        raise ConfigError(unknown("statistic", statistic, ("median", "mean")))
    reduce = np.median if statistic == "median" else np.mean
    sub = trajectories[trajectories["eval_dataset"] == eval_dataset]
    if sub.empty:
        present = sorted(trajectories["eval_dataset"].astype(str).unique())
        raise ConfigError(unknown("eval_dataset", eval_dataset, present))
    if len(pairs := settings(sub)) != 1:
        raise ConfigError(f"regret curves need one (space, protocol), got {pairs}: filter first")
    times = _log_grid(sub["sim_seconds"], grid)
    gen = np.random.default_rng(rng) if not isinstance(rng, np.random.Generator) else rng
    center, low, high, n_runs = {}, {}, {}, {}
    methods = tuple(sorted(sub["method"].astype(str).unique()))
    for method in methods:
        mat = _step_matrix(sub[sub["method"] == method], times)  # (n_runs, n_points)
        full = ~np.isnan(mat).any(axis=0)
        c, lo, hi = (np.full(times.shape, np.nan) for _ in range(3))
        if full.any():
            ci = stats.stratified_bootstrap_ci(
                mat[:, full], lambda a: reduce(a, axis=0), n_boot, confidence, rng=gen
            )
            assert isinstance(ci, stats.BootstrapCI)
            c[full], lo[full], hi[full] = ci.point, ci.low, ci.high
        center[method], low[method], high[method], n_runs[method] = c, lo, hi, mat.shape[0]
    return RegretCurveData(
        eval_dataset, times, methods, center, low, high, n_runs, statistic, confidence
    )


def plot_regret_curves(data: RegretCurveData, ax: Axes | None = None) -> Axes:
    """Step curves with bootstrap bands; log-x, and log-y when some value is positive.

    A curve that reaches zero regret leaves the log-y axis at that point.
    """
    ax = new_axes(ax, (6.0, 4.0))
    positive = False
    for method in data.methods:
        style = method_style(method)
        c = data.center[method]
        positive |= bool(np.any(c[np.isfinite(c)] > 0))
        ax.plot(
            data.grid,
            c,
            drawstyle="steps-post",
            markevery=max(1, len(data.grid) // 8),
            label=f"{method} (n={data.n_runs[method]})",
            **style,  # type: ignore[arg-type]
        )
        color = str(style["color"])
        ax.fill_between(
            data.grid,
            data.low[method],
            data.high[method],
            step="post",
            alpha=0.2,
            color=color,
            linewidth=0,
        )
    ax.set_xscale("log")
    if positive:
        ax.set_yscale("log", nonpositive="mask")
    ax.set_xlabel("simulated search time (s)")
    ax.set_ylabel(f"{data.statistic} regret of incumbent")
    ax.set_title(f"{data.eval_dataset} ({100 * data.confidence:g}% bootstrap band)")
    ax.legend(fontsize="small")
    return ax


# ------------------------------------------------------------------ critical differences


@dataclass(frozen=True)
class CDDiagramData:
    """Average ranks (1 = best, sorted ascending) and the Nemenyi critical difference.

    ``cliques`` are maximal groups of methods whose ranks differ by less than ``cd``.
    """

    methods: tuple[str, ...]
    avg_ranks: FloatArray
    cd: float
    cliques: tuple[tuple[str, ...], ...]
    n_blocks: int
    statistic: float
    p_value: float
    alpha: float
    metric: str


def _cliques(ranks: FloatArray, cd: float) -> list[tuple[int, int]]:
    """Maximal runs ``[i, j]`` of sorted ranks with ``ranks[j] - ranks[i] < cd`` and j > i."""
    out: list[tuple[int, int]] = []
    for i in range(len(ranks)):
        j = int(np.searchsorted(ranks, ranks[i] + cd, side="left")) - 1
        if j > i and not (out and out[-1][1] >= j):
            out.append((i, j))
    return out


def cd_diagram_data(
    runs: pd.DataFrame,
    eval_dataset: str | None = None,
    metric: str = "test_acc",
    alpha: float = 0.05,
) -> CDDiagramData:
    """Friedman/Nemenyi over blocks ``(seed, eval_dataset)`` of successful runs.

    ``eval_dataset=None`` uses every dataset. Blocks lacking some method are dropped.
    """
    require_columns(runs, ["seed", "eval_dataset", "status", metric], "runs")
    if len(pairs := settings(runs)) != 1:
        raise ConfigError(f"a CD diagram needs one (space, protocol), got {pairs}: filter first")
    frame = runs.assign(label=method_labels(runs))
    frame = frame[(frame["status"] == "ok") & frame[metric].notna()]
    if eval_dataset is not None:
        if eval_dataset not in set(frame["eval_dataset"]):
            raise ConfigError(
                unknown("eval_dataset", eval_dataset, sorted(set(frame["eval_dataset"])))
            )
        frame = frame[frame["eval_dataset"] == eval_dataset]
    if frame.duplicated(["seed", "eval_dataset", "label"]).any():
        raise ConfigError("several runs share (seed, eval_dataset, method): blocks are ambiguous")
    table = frame.pivot(index=["seed", "eval_dataset"], columns="label", values=metric)
    complete = table.dropna()
    if len(complete) < len(table):
        logger.warning(
            "dropping %d incomplete blocks of %d", len(table) - len(complete), len(table)
        )
    if complete.empty or complete.shape[1] < 2:
        raise ConfigError(f"a CD diagram needs >= 2 methods on a common block; have {table.shape}")
    res = stats.friedman_nemenyi(complete.to_numpy(), stats.higher_is_better(metric), alpha)
    order = np.argsort(res.avg_ranks, kind="stable")
    names = tuple(str(complete.columns[i]) for i in order)
    ranks = res.avg_ranks[order]
    cliques = tuple(names[i : j + 1] for i, j in _cliques(ranks, res.critical_difference))
    return CDDiagramData(
        names,
        ranks,
        res.critical_difference,
        cliques,
        res.n_blocks,
        res.statistic,
        res.p_value,
        alpha,
        metric,
    )


def plot_cd_diagram(data: CDDiagramData, ax: Axes | None = None) -> Axes:
    """Critical-difference diagram: rank axis (1 at left), names on elbows, clique bars."""
    k = len(data.methods)
    ax = new_axes(ax, (max(6.0, 0.9 * k), 1.2 + 0.3 * k))
    ax.set_axis_off()
    ax.hlines(0.0, 1, k, color="black", linewidth=1)
    for r in range(1, k + 1):
        ax.vlines(r, 0.0, 0.08, color="black", linewidth=1)
        ax.text(r, 0.12, str(r), ha="center", va="bottom", fontsize="small")
    ax.hlines(0.45, 1, 1 + data.cd, color="black", linewidth=2)  # the CD scale bar
    ax.text(1 + data.cd / 2, 0.5, f"CD = {data.cd:.2f}", ha="center", va="bottom", fontsize="small")
    first_label = -0.25 - 0.15 * len(data.cliques) - 0.25
    half = (k + 1) // 2
    for i, (name, rank) in enumerate(zip(data.methods, data.avg_ranks, strict=True)):
        left = i < half
        y = first_label - 0.3 * (i if left else k - 1 - i)
        x_end = 0.8 if left else k + 0.2
        color = str(method_style(name)["color"])
        ax.plot([rank, rank, x_end], [0.0, y, y], color=color, linewidth=1)
        ax.text(
            x_end - 0.05 if left else x_end + 0.05,
            y,
            f"{name} ({rank:.2f})",
            ha="right" if left else "left",
            va="center",
            fontsize="small",
        )
    for c, clique in enumerate(data.cliques):
        ranks = [data.avg_ranks[data.methods.index(m)] for m in clique]
        y = -0.25 - 0.15 * c
        ax.hlines(y, min(ranks) - 0.03, max(ranks) + 0.03, color="black", linewidth=3)
    ax.set_xlim(0.0 - 0.1 * k, k + 1 + 0.1 * k)
    ax.set_ylim(first_label - 0.3 * half - 0.1, 0.8)
    ax.set_title(
        f"{data.metric}: Friedman p = {data.p_value:.2g}, Nemenyi alpha = {data.alpha:g}, "
        f"{data.n_blocks} blocks",
        fontsize="small",
    )
    return ax


# ----------------------------------------------------------------------- distributions


@dataclass(frozen=True)
class DistributionData:
    """One array of per-run values per method (successful runs only)."""

    title: str
    ylabel: str
    methods: tuple[str, ...]
    values: Mapping[str, FloatArray]
    log_scale: bool


def _distribution(
    runs: pd.DataFrame, column: str, eval_dataset: str | None, ylabel: str, log: bool
) -> DistributionData:
    require_columns(runs, ["status", "eval_dataset", column], "runs")
    frame = runs.assign(label=method_labels(runs))
    frame = frame[(frame["status"] == "ok") & frame[column].notna()]
    if eval_dataset is not None:
        present = sorted(frame["eval_dataset"].astype(str).unique())
        if eval_dataset not in present:
            raise ConfigError(unknown("eval_dataset", eval_dataset, present))
        frame = frame[frame["eval_dataset"] == eval_dataset]
    values = {str(k): g[column].to_numpy(dtype=float) for k, g in frame.groupby("label")}
    title = eval_dataset if eval_dataset is not None else "all datasets"
    return DistributionData(title, ylabel, tuple(sorted(values)), values, log)


def score_distribution_data(
    runs: pd.DataFrame, eval_dataset: str, metric: str = "test_acc"
) -> DistributionData:
    """Final ``metric`` of the chosen architecture per method on one dataset."""
    stats.higher_is_better(metric)  # validates the name
    return _distribution(runs, metric, eval_dataset, metric, log=False)


def rank_distribution_data(
    runs: pd.DataFrame, eval_dataset: str | None = None, column: str = "rank"
) -> DistributionData:
    """Rank (1 = best, log scale) or percentile of the chosen architecture per method."""
    if column not in ("rank", "percentile"):
        raise ConfigError(unknown("column", column, ("rank", "percentile")))
    label = (
        "rank of chosen architecture (1 = best)" if column == "rank" else "percentile (100 = best)"
    )
    return _distribution(runs, column, eval_dataset, label, log=column == "rank")


def _plot_distribution(data: DistributionData, ax: Axes) -> Axes:
    methods = [m for m in data.methods if data.values[m].size]
    positions = np.arange(1, len(methods) + 1)
    if methods:
        boxes = ax.boxplot(
            [data.values[m] for m in methods],
            positions=positions,
            widths=0.6,
            patch_artist=True,
            showfliers=False,
        )
        for patch, m in zip(boxes["boxes"], methods, strict=True):
            patch.set_facecolor(str(method_style(m)["color"]))
            patch.set_alpha(0.35)
        for pos, m in zip(positions, methods, strict=True):
            vals = data.values[m]
            jitter = np.linspace(-0.15, 0.15, vals.size) if vals.size > 1 else np.zeros(1)
            style = method_style(m)
            ax.scatter(
                pos + jitter,
                vals,
                s=12,
                color=str(style["color"]),
                marker=str(style["marker"]),
                zorder=3,
            )
    ax.set_xticks(positions, methods, rotation=30, ha="right")
    if data.log_scale:
        ax.set_yscale("log")
    ax.set_ylabel(data.ylabel)
    ax.set_title(data.title)
    return ax


def plot_test_distribution(data: DistributionData, ax: Axes | None = None) -> Axes:
    """Box plot with the individual seeds of the final test metric per method."""
    return _plot_distribution(data, new_axes(ax, (max(4.0, 0.7 * len(data.methods)), 4.0)))


def plot_rank_distribution(data: DistributionData, ax: Axes | None = None) -> Axes:
    """Box plot of the chosen architecture's rank (log axis) or percentile per method."""
    return _plot_distribution(data, new_axes(ax, (max(4.0, 0.7 * len(data.methods)), 4.0)))
