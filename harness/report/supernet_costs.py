"""What a supernet search chose and what it costs: the chosen-architecture table and the
accuracy-FLOPs figure of a supernet report.

In the size space the widest network is nearly always the most accurate, so accuracy alone
misleads: each chosen architecture is listed with its params, FLOPs, supernet-estimated and
true accuracy, its regret and its regret against the best architecture of no more FLOPs, and
drawn over the space's accuracy-FLOPs Pareto front. Where no ground truth exists (no store
covers the space), the true columns say so and the figure plots the supernet's estimate.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pandas as pd
from matplotlib.axes import Axes

from harness.errors import ConfigError, unknown
from harness.report.axes import new_axes
from harness.report.leaderboard import method_labels, require_columns
from harness.report.names import display_dataset, display_label
from harness.report.style import RULE_MARKERS, method_style

logger = logging.getLogger(__name__)

__all__ = ["ParetoData", "chosen_markdown", "pareto_data", "plot_pareto", "selection_labels"]

FloatArray = npt.NDArray[np.float64]
_NEEDS = ("method", "config", "selection", "seed", "eval_dataset", "arch", "status", "flop_m",
          "params_mb", "supernet_acc", "test_acc", "regret", "regret_at_flops",
          "truth_note")  # fmt: skip


def selection_labels(runs: pd.DataFrame) -> pd.DataFrame:
    """``runs`` with ``method`` replaced by ``"<method label>+<selection>"``, the label of the
    leaderboard and the figures (the method label names a non-default config,
    :func:`~harness.report.leaderboard.method_labels`)."""
    require_columns(runs, ["method", "config", "selection"], "runs")
    return runs.assign(method=method_labels(runs) + "+" + runs["selection"].astype(str))


def _cell(value: object, digits: int = 2) -> str:
    """A number with ``digits`` decimals; ``-`` for a missing one (None, NaN, pandas NA)."""
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return "-"
    return "-" if math.isnan(number) else f"{number:.{digits}f}"


def chosen_markdown(runs: pd.DataFrame) -> str:
    """A Markdown table of every chosen architecture (one row per run, rule and eval task),
    sorted by method, rule and seed; the truth note under it when accuracies are missing."""
    require_columns(runs, _NEEDS, "runs")
    ok = selection_labels(runs[runs["status"] == "ok"])
    ok = ok.sort_values(["eval_dataset", "method", "seed"])
    lines = ["## Chosen architectures", ""]
    head = ("| task | method+rule | seed | architecture | params (M) | FLOPs (M) | supernet acc "
            "| test acc | regret | regret at FLOPs |")  # fmt: skip
    lines += [head, "|---|---|---:|---|---:|---:|---:|---:|---:|---:|"]
    for row in ok.itertuples(index=False):
        cells = [str(row.eval_dataset), str(row.method), str(row.seed),
                 f"`{row.arch}`", _cell(row.params_mb, 3), _cell(row.flop_m, 1),
                 _cell(row.supernet_acc), _cell(row.test_acc), _cell(row.regret),
                 _cell(row.regret_at_flops)]  # fmt: skip
        lines.append("| " + " | ".join(cells) + " |")
    notes = sorted({str(n) for n in ok["truth_note"].dropna()})
    lines += ["", "Accuracies in %; supernet acc: the trained supernet's one-hot accuracy on "
              "validation batches; regret at FLOPs: the best test accuracy among architectures "
              "of no more FLOPs minus this one's."]  # fmt: skip
    lines += [f"\n**Test accuracy missing:** {note}" for note in notes]
    return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class ParetoData:
    """Chosen architectures over a space's accuracy-FLOPs front, for one eval task.

    ``points[method]``: ``(flops, accuracy)`` arrays, one entry per run and rule;
    ``front``: ``(flops, accuracy)`` of the space's Pareto front, empty when unknown;
    ``ylabel`` names the accuracy plotted (true test accuracy, or the supernet's estimate when
    no ground truth exists, which ``note`` then says)."""

    eval_dataset: str
    protocol: str
    points: Mapping[str, tuple[FloatArray, FloatArray]]
    front: tuple[FloatArray, FloatArray]
    ylabel: str
    note: str | None

    @property
    def drawable(self) -> bool:
        """Whether some chosen architecture has both its FLOPs and an accuracy recorded."""
        return any(bool(np.any(np.isfinite(f) & np.isfinite(a))) for f, a in self.points.values())


def pareto_data(
    runs: pd.DataFrame,
    eval_dataset: str,
    front: tuple[npt.ArrayLike, npt.ArrayLike] | None = None,
) -> ParetoData:
    """The figure's data for one eval task and protocol: each ``method+selection`` label's
    chosen architectures; ``front`` from the ground truth (see
    :func:`harness.supernet.quality.pareto_front`), None when there is none."""
    require_columns(runs, [*_NEEDS, "protocol"], "runs")
    sub = runs[(runs["eval_dataset"] == eval_dataset) & (runs["status"] == "ok")]
    if sub.empty:
        present = sorted(runs["eval_dataset"].astype(str).unique())
        raise ConfigError(unknown("eval_dataset", eval_dataset, present))
    protocols = sorted(sub["protocol"].astype(str).unique())
    if len(protocols) != 1:
        raise ConfigError(f"a Pareto figure needs one protocol, got {protocols}: filter first")
    truth = bool(sub["test_acc"].notna().any())
    column = "test_acc" if truth else "supernet_acc"
    labels = selection_labels(sub)["method"]
    points = {
        str(label): (g["flop_m"].to_numpy(float), g[column].to_numpy(float))
        for label, g in sub.groupby(labels)
    }
    empty = (np.zeros(0), np.zeros(0))
    line = empty if front is None else (np.asarray(front[0], float), np.asarray(front[1], float))
    notes = sorted({str(n) for n in sub["truth_note"].dropna()})
    ylabel = "true test accuracy (%)" if truth else "supernet-estimated accuracy (%)"
    return ParetoData(eval_dataset, protocols[0], points, line, ylabel,
                      notes[0] if notes and not truth else None)  # fmt: skip


def plot_pareto(data: ParetoData, ax: Axes | None = None) -> Axes:
    """The front as a step line (when known) and each label's chosen architectures as
    markers, FLOPs on the x axis."""
    ax = new_axes(ax, (8.0, 4.5))
    if data.front[0].size:
        ax.step(data.front[0], data.front[1], where="post", color="grey", linewidth=1.2,
                label="Pareto front of the space")  # fmt: skip
    for label, (flops, acc) in sorted(data.points.items()):
        style = method_style(label)
        marker = RULE_MARKERS.get(label.rsplit("+", 1)[-1], "o")
        ax.scatter(flops, acc, s=36, marker=marker,
                   color=str(style["color"]), label=f"{display_label(label)} (n={len(flops)})",
                   edgecolors="black", linewidths=0.4, zorder=3)  # fmt: skip
    ax.set_xlabel("FLOPs of the chosen architecture (M multiply-adds per image)")
    ax.set_ylabel(data.ylabel)
    title = f"{display_dataset(data.eval_dataset)}, {data.protocol}"
    ax.set_title(title if data.note is None else f"{title}\nno ground truth: supernet estimate")
    ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1.0))  # beside: no hiding
    return ax
