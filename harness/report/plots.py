"""Figures in two steps: results -> small plot-data object -> ``plot_x(data, ax=None) -> Axes``.

The ``*_data`` builders are pure and hold every number a figure shows; the ``plot_*``
functions only draw. Styles come from :func:`harness.report.style.label_styles` (one colour
per method, a line style per config), names from :mod:`harness.report.names`. No global
``rcParams`` are touched. Critical-difference diagrams live in
:mod:`harness.report.cd_diagram` (re-exported here).
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
from harness.report.axes import new_axes as new_axes
from harness.report.cd_diagram import CDDiagramData as CDDiagramData
from harness.report.cd_diagram import cd_diagram_data as cd_diagram_data
from harness.report.cd_diagram import plot_cd_diagram as plot_cd_diagram
from harness.report.leaderboard import method_labels, require_columns, settings
from harness.report.names import display_dataset, display_label, display_metric
from harness.report.style import label_styles

logger = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.float64]
_TRAJ_COLUMNS = ("run_key", "method", "space", "protocol", "eval_dataset", "sim_seconds")


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


def trajectory_labels(trajectories: pd.DataFrame, runs: pd.DataFrame) -> pd.DataFrame:
    """``trajectories`` with ``method`` replaced by the label of its run in ``runs`` (joined on
    ``run_key``: :func:`~harness.report.leaderboard.method_labels`, so a method with several
    configs draws one curve per config even where the trajectory rows carry no config).
    Rows whose run is not in ``runs`` keep their method."""
    require_columns(trajectories, ["run_key", "method"], "trajectories")
    require_columns(runs, ["run_key", "method", "config"], "runs")
    labels = pd.Series(method_labels(runs).to_numpy(), index=runs["run_key"].astype(str))
    labels = labels[~labels.index.duplicated()]
    mapped = trajectories["run_key"].astype(str).map(labels)
    return trajectories.assign(method=mapped.fillna(trajectories["method"].astype(str)))


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


def _drawn(data: RegretCurveData) -> FloatArray:
    arrays = [a for m in data.methods for a in (data.center[m], data.low[m], data.high[m])]
    values = np.concatenate(arrays) if arrays else np.zeros(0)
    return values[np.isfinite(values)]


def symlog_threshold(data: RegretCurveData) -> float | None:
    """None when every value drawn (curves and bands) is positive: a plain log axis shows
    them. Otherwise the width of the linear part of a symlog axis: the largest power of ten at
    or below the smallest positive value, at most 1 (0.01 when none is positive). Below it the
    axis is linear, so a curve or band that reaches zero regret stays drawn (a log axis would
    drop it, and cut its band into a wedge)."""
    values = _drawn(data)
    if values.size and values.min() > 0:
        return None
    positive = values[values > 0]
    if positive.size == 0:
        return 0.01
    return float(min(1.0, 10.0 ** np.floor(np.log10(positive.min()))))


def plot_regret_curves(data: RegretCurveData, ax: Axes | None = None) -> Axes:
    """Step curves with their pointwise bootstrap bands over a log time axis; the regret axis
    is logarithmic, or symlog where something reaches zero (:func:`symlog_threshold`), with the
    zero line dotted."""
    ax = new_axes(ax, (6.0, 4.0))
    styles = label_styles(data.methods)
    for method in data.methods:
        style = styles[method]
        ax.plot(
            data.grid,
            data.center[method],
            drawstyle="steps-post",
            markevery=max(1, len(data.grid) // 8),
            label=f"{display_label(method)} (n={data.n_runs[method]})",
            **style,  # type: ignore[arg-type]
        )
        ax.fill_between(data.grid, data.low[method], data.high[method], step="post",
                        alpha=0.2, color=str(style["color"]), linewidth=0)  # fmt: skip
    threshold = symlog_threshold(data)
    ax.set_xscale("log")
    scale = "log scale"
    if threshold is None:
        ax.set_yscale("log")
    else:
        ax.axhline(0.0, color="grey", linewidth=0.6, linestyle=":", zorder=0)
        ax.set_yscale("symlog", linthresh=threshold, linscale=0.5)
        ax.set_ylim(bottom=-0.15 * threshold)
        scale = f"log scale, linear below {threshold:g}"
    ax.set_xlabel("simulated search time (s, log scale)")
    ax.set_ylabel(
        f"{data.statistic} regret of the incumbent\n(test accuracy, percentage points;\n{scale})"
    )
    ax.set_title(
        f"{display_dataset(data.eval_dataset)}: {data.statistic} over runs, pointwise "
        f"{100 * data.confidence:g}% bootstrap band",
        fontsize="medium",
    )
    ax.legend(fontsize="small")
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
    return _distribution(runs, metric, eval_dataset, display_metric(metric), log=False)


def rank_distribution_data(
    runs: pd.DataFrame, eval_dataset: str | None = None, column: str = "rank"
) -> DistributionData:
    """Rank (1 = best, log scale) or percentile of the chosen architecture per method."""
    if column not in ("rank", "percentile"):
        raise ConfigError(unknown("column", column, ("rank", "percentile")))
    label = (
        "rank of the chosen architecture\namong all (1 = best; log scale)"
        if column == "rank"
        else "percentile of the chosen architecture (100 = best)"
    )
    return _distribution(runs, column, eval_dataset, label, log=column == "rank")


#: Where a distribution figure draws, relative to a method's tick: the box left of it, the
#: individual runs right of it, so that no point hides the box.
BOX_OFFSET, BOX_WIDTH = -0.18, 0.28
POINT_OFFSET, POINT_SPREAD = 0.2, 0.24


def _jitter(n: int) -> FloatArray:
    """``n`` deterministic offsets spread over [-0.5, 0.5) (golden-ratio sequence), no RNG."""
    return np.asarray((np.arange(n) * 0.6180339887498949) % 1.0 - 0.5, dtype=np.float64)


def _plot_distribution(data: DistributionData, ax: Axes) -> Axes:
    methods = [m for m in data.methods if data.values[m].size]
    positions = np.arange(1, len(methods) + 1, dtype=float)
    styles = label_styles(methods)
    if methods:
        boxes = ax.boxplot(
            [data.values[m] for m in methods],
            positions=positions + BOX_OFFSET,
            widths=BOX_WIDTH,
            patch_artist=True,
            showfliers=False,
            medianprops={"color": "black", "linewidth": 1.5},
        )
        for patch, m in zip(boxes["boxes"], methods, strict=True):
            patch.set_facecolor(str(styles[m]["color"]))
            patch.set_alpha(0.45)
        for pos, m in zip(positions, methods, strict=True):
            vals = data.values[m]
            many = vals.size > 50
            ax.scatter(
                pos + POINT_OFFSET + POINT_SPREAD * _jitter(vals.size),
                vals,
                s=4 if many else 14,
                alpha=0.35 if many else 0.9,
                color=str(styles[m]["color"]),
                marker=str(styles[m]["marker"]),
                linewidths=0,
            )
    ax.set_xticks(positions, [display_label(m) for m in methods], rotation=30, ha="right")
    ax.set_xlim(0.4, len(methods) + 0.6)
    if data.log_scale:
        ax.set_yscale("log")
    ax.set_ylabel(data.ylabel)
    note = "box: quartiles, whiskers to 1.5 IQR; dots: runs"
    ax.set_title(f"{display_dataset(data.title)}\n({note})", fontsize="medium")
    return ax


def plot_test_distribution(data: DistributionData, ax: Axes | None = None) -> Axes:
    """Box plot (left) and the individual seeds (right) of the final metric per method."""
    return _plot_distribution(data, new_axes(ax, (max(4.0, 0.8 * len(data.methods)), 4.0)))


def plot_rank_distribution(data: DistributionData, ax: Axes | None = None) -> Axes:
    """Box plot and runs of the chosen architecture's rank (log axis) or percentile."""
    return _plot_distribution(data, new_axes(ax, (max(4.0, 0.8 * len(data.methods)), 4.0)))
