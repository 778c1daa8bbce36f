"""Reports of supernet sweeps: leaderboard per method+selection, paired selection tests, figures.

:func:`write_supernet_report` turns the tables of a :mod:`harness.oneshot.sweep` directory into

* ``leaderboard.md`` / ``leaderboard.tex`` (via :func:`harness.report.write_report`): test
  accuracy of the selected architecture, one row per ``method+selection`` label;
* ``selection.md`` / ``selection.tex``: each selection rule against ``magnitude`` on the same
  supernets, paired by run, with per-seed differences, collapsed supernets, a t-interval, the
  smallest attainable p and a rough sample size (:mod:`harness.report.supernet_selection`);
* ``selection_<rule>_<eval task>.png``: one line per supernet from its magnitude architecture's
  accuracy to the other rule's;
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
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from harness import results
from harness.errors import ConfigError, unknown
from harness.report import plots, save_figure_atomic, write_report
from harness.report.leaderboard import require_columns, settings, task_order
from harness.report.names import display_dataset, display_label
from harness.report.plots import new_axes
from harness.report.style import method_style
from harness.report.supernet_costs import (
    chosen_markdown,
    pareto_data,
    plot_pareto,
    selection_labels,
)
from harness.report.supernet_selection import COMPARISON_GROUP as COMPARISON_GROUP
from harness.report.supernet_selection import NOTE, comparison_latex, paired_plot_data
from harness.report.supernet_selection import PairedComparison as PairedComparison
from harness.report.supernet_selection import collapsed_cell as collapsed_cell
from harness.report.supernet_selection import compare_selections as compare_selections
from harness.report.supernet_selection import comparison_markdown as comparison_markdown
from harness.report.supernet_selection import plot_paired_selection as plot_paired_selection

logger = logging.getLogger(__name__)

__all__ = [
    "COMPARISON_GROUP",
    "CollapseCurveData",
    "PairedComparison",
    "collapse_curve_data",
    "collapsed_cell",
    "compare_selections",
    "comparison_markdown",
    "plot_collapse_curves",
    "plot_paired_selection",
    "plot_rank_correlation",
    "rank_correlation_data",
    "selection_comparisons",
    "selection_labels",
    "selection_latex",
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
        ax.plot(x, data.mean[method], label=f"{display_label(method)} (n={data.n_runs[method]})",
                markevery=max(1, len(x) // 10), **style)  # type: ignore[arg-type]  # fmt: skip
        ax.fill_between(x, data.low[method], data.high[method], alpha=0.2,
                        color=str(style["color"]), linewidth=0)  # fmt: skip
    ax.set_xlabel("search epoch")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel("true test accuracy of argmax architecture (%)")
    ax.set_title(
        f"{display_dataset(data.eval_dataset)}, {data.protocol} (band: min-max over seeds)"
    )
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


# --------------------------------------------------------------------------- selection tests
def _selection_rows(runs: pd.DataFrame) -> list[dict[str, Any]]:
    records = runs.astype(object).where(runs.notna(), None).to_dict("records")
    return [{str(k): v for k, v in r.items()} for r in records]


def selection_comparisons(
    runs: pd.DataFrame, baseline: str = "magnitude"
) -> dict[str, list[PairedComparison]]:
    """Each other selection rule present (``perturbation``, ``topk``) against ``baseline``:
    :func:`compare_selections` on the runs table."""
    require_columns(runs, [*_RUN_NEEDS, "eval_dataset", "dataset", "test_acc"], "runs")
    present = sorted(runs["selection"].astype(str).unique())
    if baseline not in present:
        return {}
    rows = _selection_rows(runs)
    others = [s for s in ("perturbation", "topk") if s in present and s != baseline]
    return {rule: compare_selections(rows, a=rule, b=baseline) for rule in others}


def selection_markdown(runs: pd.DataFrame, baseline: str = "magnitude") -> str:
    """``selection.md``: each other selection rule vs ``baseline`` on the same supernets."""
    compared = selection_comparisons(runs, baseline)
    present = sorted(runs["selection"].astype(str).unique())
    lines = ["# Selection rules on the same supernets", ""]
    if bool(runs["synthetic"].astype(bool).any()):
        lines += ["> **SYNTHETIC DATA: these numbers do not come from the benchmark**", ""]
    for method, text in method_caveats(runs["method"]):
        lines += [f"> **{method}:** {text}", ""]
    if not compared:
        lines.append(f"_needs `{baseline}` and another rule; this directory has {present}_\n")
    for rule, comparisons in compared.items():
        lines += [f"## {rule} (a) vs {baseline} (b)", ""]
        lines.append(comparison_markdown(comparisons))
    return "\n".join([*lines, NOTE, "", *_cost_lines(runs)])


def selection_latex(runs: pd.DataFrame, baseline: str = "magnitude") -> str:
    """``selection.tex``: :func:`selection_markdown`'s comparison tables as LaTeX."""
    tables = [comparison_latex(c) for c in selection_comparisons(runs, baseline).values()]
    return "\n".join(t for t in tables if t)


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
    manifest: Mapping[str, Any] | None = None,
    pairwise: bool = False,
) -> list[Path]:
    """Write the leaderboard, ``selection.md``, ``selection.tex`` and the figures (module
    docstring); return the paths. ``fronts``: per eval task, the ``(FLOPs, test accuracy)`` of
    the space's Pareto front (from the store; None: the figures draw no front); ``manifest``:
    the sweep's, for the captions; ``pairwise``: also every pair of method+selection labels
    (``pairwise.md`` / ``.csv``). Every number and figure's data is computed before the
    first file is written."""
    require_columns(runs, [*_RUN_NEEDS, "synthetic"], "runs")
    require_columns(trajectories, _TRAJ_NEEDS, "supernet trajectories")
    if runs.empty:
        raise ConfigError("the runs table is empty")
    pairs = settings(runs)
    truth = bool(runs["test_acc"].notna().any())
    text = selection_markdown(runs) + "\n" + chosen_markdown(runs)
    tex = selection_latex(runs)
    compared = selection_comparisons(runs)
    figures: list[tuple[Callable[[Axes], Axes], str, bool, tuple[float, float]]] = []
    for _, protocol in pairs:
        suffix = "" if len(pairs) == 1 else f"_{_safe(protocol)}"
        sub = runs[runs["protocol"] == protocol]
        traj = trajectories[trajectories["protocol"] == protocol]
        synthetic = bool(sub["synthetic"].astype(bool).any())
        tasks = sorted(sub["eval_dataset"].astype(str).unique(), key=task_order)
        for task in tasks:
            front = None if fronts is None else fronts.get(task)
            pareto = pareto_data(sub, task, front)
            if not pareto.drawable:
                logger.info("no Pareto figure for %s: no chosen architecture has FLOPs", task)
                continue
            draw = functools.partial(plot_pareto, pareto)
            figures.append((draw, f"pareto_{_safe(task)}{suffix}.png", synthetic, (8.0, 4.5)))
        if not sub["test_acc"].notna().any():
            continue  # no ground truth: no collapse curve, no rank correlation
        for rule, comparisons in compared.items():
            for task in tasks:
                if not any(c.group[1] == protocol and c.group[-1] == task for c in comparisons):
                    continue
                data = paired_plot_data(comparisons, task, protocol)
                size = (max(5.0, 2.0 * len(data.methods)), 4.5)
                name = f"selection_{_safe(rule)}_{_safe(task)}{suffix}.png"
                figures.append((functools.partial(plot_paired_selection, data), name, synthetic,
                                size))  # fmt: skip
        for task in sorted(traj["eval_dataset"].astype(str).unique(), key=task_order):
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
        paths += write_report(
            labelled, empty, out, rng, n_boot=n_boot, control=control, manifest=manifest,
            pairwise=pairwise,
        )  # fmt: skip
    else:
        out.mkdir(parents=True, exist_ok=True)
        logger.info("no ground truth in %s: no leaderboard", out)
    paths.append(results.atomic_write_text(out / "selection.md", text))
    if tex:
        paths.append(results.atomic_write_text(out / "selection.tex", tex))
    paths += [_figure(draw, out / name, synth, size) for draw, name, synth, size in figures]
    logger.info("wrote supernet report (%d files) to %s", len(paths), out)
    return paths
