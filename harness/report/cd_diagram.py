"""Critical-difference diagrams: Friedman test and Nemenyi critical difference on average ranks.

One diagram per evaluation dataset, blocks = seeds, is the default of a report; pooling the
datasets (blocks = (seed, dataset)) is an option whose title says so. Two steps, as in
:mod:`harness.report.plots`: :func:`cd_diagram_data` -> :func:`plot_cd_diagram`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pandas as pd
from matplotlib.axes import Axes

from harness import stats
from harness.errors import ConfigError, unknown
from harness.report.axes import new_axes
from harness.report.leaderboard import method_labels, require_columns, settings
from harness.report.names import display_dataset, display_label, display_metric
from harness.report.significance import use_pairing
from harness.report.style import label_styles

logger = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class CDDiagramData:
    """Average ranks (1 = best, sorted ascending) and the Nemenyi critical difference.

    ``cliques`` are maximal groups of methods whose ranks differ by less than ``cd``;
    ``eval_dataset`` None: the blocks pool every dataset (``n_datasets`` of them).
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
    eval_dataset: str | None = None
    n_datasets: int = 1
    paired: bool = True  # whether the runs of a seed share their random streams

    @property
    def blocks(self) -> str:
        """What a block is, as a title says it."""
        unpaired = "" if self.paired else "; the rows do not record shared streams per seed"
        if self.eval_dataset is not None:
            return f"{self.n_blocks} blocks (seeds{unpaired})"
        return (
            f"{self.n_blocks} blocks (seed, dataset), pooled over {self.n_datasets} "
            f"dataset{'s' if self.n_datasets != 1 else ''}"
            f"{unpaired.replace('; ', ' (') + ')' if unpaired else ''}"
        )


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
    """Friedman/Nemenyi over blocks of successful runs: the seeds of ``eval_dataset``, or with
    None every ``(seed, eval_dataset)`` pooled. Blocks lacking some method are dropped."""
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
    n_datasets = complete.index.get_level_values("eval_dataset").nunique()
    paired, _ = use_pairing(frame, None)
    return CDDiagramData(names, ranks, res.critical_difference, cliques, res.n_blocks,
                         res.statistic, res.p_value, alpha, metric, eval_dataset,
                         n_datasets, paired)  # fmt: skip


def plot_cd_diagram(data: CDDiagramData, ax: Axes | None = None) -> Axes:
    """Critical-difference diagram: rank axis (1 at left), names on elbows, clique bars; the
    title names the dataset (or the pooling), the test and the blocks."""
    k = len(data.methods)
    ax = new_axes(ax, (max(6.0, 0.9 * k), 1.2 + 0.3 * k))
    styles = label_styles(data.methods)
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
        style = styles[name]
        ax.plot([rank, rank, x_end], [0.0, y, y], color=str(style["color"]), linewidth=1,
                linestyle=style["linestyle"])  # fmt: skip
        ax.text(
            x_end - 0.05 if left else x_end + 0.05,
            y,
            f"{display_label(name)} ({rank:.2f})",
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
    where = (
        "all datasets pooled" if data.eval_dataset is None else display_dataset(data.eval_dataset)
    )
    ax.set_title(
        f"{where}, {display_metric(data.metric)}: average rank (1 = best)\nFriedman "
        f"p = {data.p_value:.2g}, Nemenyi CD at alpha = {data.alpha:g}, {data.blocks}",
        fontsize="small",
    )
    return ax
