"""Reports of supernet sweeps: leaderboard per method+selection, paired selection tests, figures.

:func:`write_supernet_report` turns the tables of a :mod:`harness.oneshot.sweep` directory into

* ``leaderboard.md`` / ``leaderboard.tex`` (via :func:`harness.report.write_report`): test
  accuracy of the selected architecture, one row per ``method+selection`` label;
* ``selection.md``: each selection rule against ``magnitude`` on the same supernets, paired by
  run (:func:`compare_selections`);
* ``collapse_<eval task>.png``: true test accuracy of the per-epoch argmax architecture, one
  line per method (mean over seeds) with the min-max band over seeds;
* ``kendall_tau.png``: Kendall tau of the supernet ranking, one value per run, per method
  (a property of the trained supernet, so the same for every selection rule);
* ``pareto_<eval task>.png``: the chosen architectures over the space's accuracy-FLOPs Pareto
  front (:mod:`harness.report.supernet_costs`), and their table at the end of
  ``selection.md``.

Without ground truth (no store covers the space) there is no leaderboard, collapse curve or
rank correlation to draw: the report lists the chosen architectures with their costs and
supernet-estimated accuracy, and says why the rest is missing.

Figures follow :mod:`harness.report.plots`: a pure data builder, then ``plot_x(data, ax=None)``.
Several cards in one directory give one set of figures each (names suffixed by the card).
"""

from __future__ import annotations

import functools
import logging
import math
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from harness import results, stats
from harness.errors import ConfigError, unknown
from harness.report import plots, save_figure_atomic, write_report
from harness.report.leaderboard import require_columns, settings
from harness.report.plots import new_axes
from harness.report.style import method_style
from harness.report.supernet_costs import (
    chosen_markdown,
    pareto_data,
    plot_pareto,
    selection_labels,
)

logger = logging.getLogger(__name__)

__all__ = [
    "COMPARISON_GROUP",
    "CollapseCurveData",
    "PairedComparison",
    "collapse_curve_data",
    "compare_selections",
    "comparison_markdown",
    "plot_collapse_curves",
    "plot_rank_correlation",
    "rank_correlation_data",
    "selection_labels",
    "selection_markdown",
    "write_supernet_report",
]

FloatArray = npt.NDArray[np.float64]
_RUN_NEEDS = ("run_key", "method", "selection", "protocol", "seed", "status", "kendall_tau")
_TRAJ_NEEDS = ("run_key", "method", "protocol", "eval_dataset", "epoch", "argmax_test_acc")


# --------------------------------------------------------------------------- collapse curves
@dataclass(frozen=True)
class CollapseCurveData:
    """Per method: ``epochs`` ``(n_epochs,)`` and the argmax architecture's true test accuracy
    (%) over seeds at each epoch: ``mean``, ``low`` (min) and ``high`` (max), all
    ``(n_epochs,)``; ``n_runs`` runs per method."""

    eval_dataset: str
    protocol: str
    methods: tuple[str, ...]
    epochs: Mapping[str, FloatArray]
    mean: Mapping[str, FloatArray]
    low: Mapping[str, FloatArray]
    high: Mapping[str, FloatArray]
    n_runs: Mapping[str, int]


def collapse_curve_data(trajectories: pd.DataFrame, eval_dataset: str) -> CollapseCurveData:
    """Argmax-architecture accuracy per search epoch on ``eval_dataset`` (one protocol)."""
    require_columns(trajectories, _TRAJ_NEEDS, "supernet trajectories")
    sub = trajectories[trajectories["eval_dataset"] == eval_dataset]
    if sub.empty:
        present = sorted(trajectories["eval_dataset"].astype(str).unique())
        raise ConfigError(unknown("eval_dataset", eval_dataset, present))
    protocols = sorted(sub["protocol"].astype(str).unique())
    if len(protocols) != 1:
        raise ConfigError(f"collapse curves need one protocol, got {protocols}: filter first")
    table = sub.pivot_table(
        index="epoch", columns=["method", "run_key"], values="argmax_test_acc", aggfunc="first"
    )
    methods = tuple(sorted(sub["method"].astype(str).unique()))
    epochs, mean, low, high, n_runs = {}, {}, {}, {}, {}
    for method in methods:
        block = table[method].to_numpy(dtype=np.float64)  # (n_epochs, n_runs)
        rows = ~np.isnan(block).all(axis=1)
        epochs[method] = table.index.to_numpy(dtype=np.float64)[rows]
        mean[method] = np.nanmean(block[rows], axis=1)
        low[method], high[method] = np.nanmin(block[rows], axis=1), np.nanmax(block[rows], axis=1)
        n_runs[method] = block.shape[1]
    return CollapseCurveData(eval_dataset, protocols[0], methods, epochs, mean, low, high, n_runs)


def plot_collapse_curves(data: CollapseCurveData, ax: Axes | None = None) -> Axes:
    """One line per method (mean over seeds) with its min-max band over seeds."""
    ax = new_axes(ax, (6.0, 4.0))
    for method in data.methods:
        style = method_style(method)
        x = data.epochs[method]
        ax.plot(x, data.mean[method], label=f"{method} (n={data.n_runs[method]})",
                markevery=max(1, len(x) // 10), **style)  # type: ignore[arg-type]  # fmt: skip
        ax.fill_between(x, data.low[method], data.high[method], alpha=0.2,
                        color=str(style["color"]), linewidth=0)  # fmt: skip
    ax.set_xlabel("search epoch")
    ax.set_ylabel("true test accuracy of argmax architecture (%)")
    ax.set_title(f"{data.eval_dataset}, {data.protocol} (band: min-max over seeds)")
    ax.legend(fontsize="small")
    return ax


# --------------------------------------------------------------------------- rank correlation
def rank_correlation_data(
    runs: pd.DataFrame, column: str = "kendall_tau"
) -> plots.DistributionData:
    """One value per successful run (not per selection row) of ``column`` (``kendall_tau`` or
    ``spearman_rho``) per method; null values (constant rankings) are left out."""
    if column not in ("kendall_tau", "spearman_rho"):
        raise ConfigError(unknown("column", column, ("kendall_tau", "spearman_rho")))
    require_columns(runs, [*_RUN_NEEDS, column], "runs")
    ok = runs[(runs["status"] == "ok") & runs[column].notna()].drop_duplicates("run_key")
    values = {str(m): g[column].to_numpy(dtype=float) for m, g in ok.groupby("method")}
    protocols = ", ".join(sorted(runs["protocol"].astype(str).unique()))
    label = "Kendall tau" if column == "kendall_tau" else "Spearman rho"
    return plots.DistributionData(protocols, f"{label} (supernet vs true)",
                                  tuple(sorted(values)), values, False)  # fmt: skip


def plot_rank_correlation(data: plots.DistributionData, ax: Axes | None = None) -> Axes:
    """Box plot with the individual runs per method, on the [-1, 1] scale."""
    ax = plots.plot_test_distribution(data, ax)
    ax.axhline(0.0, color="grey", linewidth=0.8, linestyle=":")
    ax.set_ylim(-1.05, 1.05)
    return ax


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


# --------------------------------------------------------------------------- selection tests
def selection_markdown(runs: pd.DataFrame, baseline: str = "magnitude") -> str:
    """``selection.md``: each other selection rule vs ``baseline`` on the same supernets."""
    require_columns(runs, [*_RUN_NEEDS, "eval_dataset", "dataset", "test_acc"], "runs")
    present = sorted(runs["selection"].astype(str).unique())
    others = [s for s in ("perturbation", "topk") if s in present and s != baseline]
    records = runs.astype(object).where(runs.notna(), None).to_dict("records")
    rows: list[dict[str, Any]] = [{str(k): v for k, v in r.items()} for r in records]
    lines = ["# Selection rules on the same supernets", ""]
    if bool(runs["synthetic"].astype(bool).any()):
        lines += ["> **SYNTHETIC DATA: these numbers do not come from the benchmark**", ""]
    for method, text in method_caveats(runs["method"]):
        lines += [f"> **{method}:** {text}", ""]
    if baseline not in present or not others:
        lines.append(f"_needs `{baseline}` and another rule; this directory has {present}_\n")
    for rule in others:
        lines += [f"## {rule} (a) vs {baseline} (b)", ""]
        lines.append(comparison_markdown(compare_selections(rows, a=rule, b=baseline)))
    note = ("Paired by run (one trained supernet, both rules): mean test accuracy (%) of each "
            "rule, mean difference a - b, share of runs where a wins (ties count one half), "
            "P(a > b) over all pairs, two-sided Wilcoxon signed-rank p.")  # fmt: skip
    return "\n".join([*lines, note, "", *_cost_lines(runs)])


def method_caveats(methods: Iterable[Any]) -> list[tuple[str, str]]:
    """``(method, caveat)`` of every registered supernet method among ``methods`` that states
    one (:attr:`~harness.supernet.method.SupernetMethod.caveat`), sorted by name."""
    from harness.registry import get_method, method_names

    known = set(method_names("supernet"))
    out = []
    for name in sorted({str(m) for m in methods} & known):
        caveat = get_method(name, "supernet").caveat
        if caveat:
            out.append((name, caveat))
    return out


_COST_COLUMNS: tuple[str, ...] = (
    "device_seconds", "forward_passes", "backward_passes", "selection_seconds",
    "selection_forward_passes", "selection_backward_passes",
)  # fmt: skip


def _cost_lines(runs: pd.DataFrame) -> list[str]:
    """The search and selection cost per (method, protocol, rule): means over runs."""
    if not set(_COST_COLUMNS) <= set(runs.columns):
        return []  # tables written before the selection cost was recorded
    once = runs.drop_duplicates(["run_key", "selection"])  # one row per run and rule
    cost = once.groupby(["method", "protocol", "selection"], observed=True)[list(_COST_COLUMNS)]
    header = ("| method | protocol | rule | runs | search s | search fwd | search bwd "
              "| selection s | selection fwd | selection bwd |")  # fmt: skip
    lines = ["## Cost", "", header, "|---|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    for (method, protocol, rule), group in cost:
        means = [group[c].astype(float).mean() for c in _COST_COLUMNS]
        cells = [str(method), str(protocol), str(rule), str(len(group)), f"{means[0]:.1f}",
                 *(f"{m:.0f}" for m in means[1:3]), f"{means[3]:.1f}",
                 *(f"{m:.0f}" for m in means[4:])]  # fmt: skip
        lines.append("| " + " | ".join(cells) + " |")
    note = ("Means over runs: device seconds and forward / backward passes (mini-batches) of the "
            "search, then of the selection rule on top of it (perturbation: candidate "
            "evaluations and tuning).")  # fmt: skip
    return [*lines, "", note, ""]


# --------------------------------------------------------------------------- the report
def _safe(name: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "._-" else "_" for ch in name)


def _figure(
    draw: Callable[[Axes], Axes], path: Path, synthetic: bool, size: tuple[float, float]
) -> Path:
    """Draw into a new figure and save it as PNG atomically (mode after the umask)."""
    fig = Figure(figsize=size, layout="constrained")
    draw(fig.add_subplot())
    if synthetic:
        fig.suptitle("SYNTHETIC DATA", color="red", fontweight="bold")
    return save_figure_atomic(fig, path)


def write_supernet_report(
    runs: pd.DataFrame,
    trajectories: pd.DataFrame,
    out_dir: str | os.PathLike[str],
    rng: np.random.Generator | int,
    *,
    n_boot: int = 1000,
    control: str | None = None,
    fronts: Mapping[str, tuple[npt.ArrayLike, npt.ArrayLike]] | None = None,
) -> list[Path]:
    """Write the leaderboard, ``selection.md`` and the figures (module docstring); return the
    paths. ``fronts``: per eval task, the ``(FLOPs, test accuracy)`` of the space's Pareto
    front (from the store; None: the figures draw no front). Every number and figure's data
    is computed before the first file is written."""
    require_columns(runs, [*_RUN_NEEDS, "synthetic"], "runs")
    require_columns(trajectories, _TRAJ_NEEDS, "supernet trajectories")
    if runs.empty:
        raise ConfigError("the runs table is empty")
    pairs = settings(runs)
    truth = bool(runs["test_acc"].notna().any())
    text = selection_markdown(runs) + "\n" + chosen_markdown(runs)
    figures: list[tuple[Callable[[Axes], Axes], str, bool, tuple[float, float]]] = []
    for _, protocol in pairs:
        suffix = "" if len(pairs) == 1 else f"_{_safe(protocol)}"
        sub = runs[runs["protocol"] == protocol]
        traj = trajectories[trajectories["protocol"] == protocol]
        synthetic = bool(sub["synthetic"].astype(bool).any())
        for task in sorted(sub["eval_dataset"].astype(str).unique()):
            front = None if fronts is None else fronts.get(task)
            draw = functools.partial(plot_pareto, pareto_data(sub, task, front))
            figures.append((draw, f"pareto_{_safe(task)}{suffix}.png", synthetic, (8.0, 4.5)))
        if not sub["test_acc"].notna().any():
            continue  # no ground truth: no collapse curve, no rank correlation
        for task in sorted(traj["eval_dataset"].astype(str).unique()):
            curves = collapse_curve_data(traj, task)
            draw = functools.partial(plot_collapse_curves, curves)
            figures.append((draw, f"collapse_{_safe(task)}{suffix}.png", synthetic, (6.0, 4.0)))
        tau = rank_correlation_data(sub)
        size = (max(4.0, 0.8 * len(tau.methods)), 4.0)
        draw = functools.partial(plot_rank_correlation, tau)
        figures.append((draw, f"kendall_tau{suffix}.png", synthetic, size))
    out = Path(out_dir)
    empty = pd.DataFrame({c: pd.Series(dtype=t) for c, t in results.TRAJECTORY_COLUMNS.items()})
    paths: list[Path] = []
    if truth:
        labelled = selection_labels(runs)
        paths += write_report(labelled, empty, out, rng, n_boot=n_boot, control=control)
    else:
        out.mkdir(parents=True, exist_ok=True)
        logger.info("no ground truth in %s: no leaderboard", out)
    paths.append(results.atomic_write_text(out / "selection.md", text))
    paths += [_figure(draw, out / name, synth, size) for draw, name, synth, size in figures]
    logger.info("wrote supernet report (%d files) to %s", len(paths), out)
    return paths
