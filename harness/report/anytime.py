"""Anytime results: the median regret of the incumbent at fractions of the search budget.

:func:`build_anytime` computes the table once from the runs (label, budget) and the
trajectories (incumbent regret over simulated time); :func:`anytime_markdown` and
:func:`anytime_latex` only format it. The budget differs per task, so each task's fractions
are of its own budget; 100% is the run's final incumbent (its last query may end a little past
the budget, and the run still reports it).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pandas as pd

from harness import stats
from harness.errors import ConfigError
from harness.report.leaderboard import method_labels, require_columns, settings, task_order
from harness.report.leaderboard_writers import latex_table, slug
from harness.report.names import display_dataset, display_label, latex_escape

logger = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.float64]
DEFAULT_FRACTIONS: tuple[float, ...] = (0.1, 0.5, 1.0)
_RUNS = ("run_key", "method", "config", "space", "protocol", "eval_dataset", "status", "budget")
_TRAJ = ("run_key", "eval_dataset", "step", "sim_seconds", "regret")


@dataclass(frozen=True)
class AnytimeCell:
    """Median regret over ``n`` runs with its bootstrap interval; NaN where ``n_missing`` of
    them had no incumbent yet at that time."""

    median: float
    low: float
    high: float
    n: int
    n_missing: int


@dataclass(frozen=True)
class AnytimeTable:
    """``cells[(method, dataset, fraction)]``; ``budgets[dataset]`` in simulated seconds."""

    space: str
    protocol: str
    methods: tuple[str, ...]
    datasets: tuple[str, ...]
    fractions: tuple[float, ...]
    cells: Mapping[tuple[str, str, float], AnytimeCell]
    budgets: Mapping[str, float]
    confidence: float
    n_boot: int
    synthetic: bool


def _regret_at(traj: pd.DataFrame, budget: float, fractions: Sequence[float]) -> FloatArray:
    """One run's incumbent regret at each fraction of ``budget`` (NaN before its first)."""
    traj = traj.dropna(subset=["regret"]).sort_values(["sim_seconds", "step"])
    times = traj["sim_seconds"].to_numpy(dtype=float)
    values = traj["regret"].to_numpy(dtype=float)
    out = np.full(len(fractions), np.nan)
    for i, f in enumerate(fractions):
        idx = len(times) - 1 if f >= 1.0 else int(np.searchsorted(times, f * budget, "right")) - 1
        if idx >= 0:
            out[i] = values[idx]
    return out


def _cell(
    column: FloatArray, n_boot: int, confidence: float, gen: np.random.Generator
) -> AnytimeCell:
    missing = int(np.isnan(column).sum())
    if missing or column.size == 0:
        return AnytimeCell(float("nan"), float("nan"), float("nan"), column.size, missing)
    ci = stats.stratified_bootstrap_ci(column, np.median, n_boot, confidence, rng=gen)
    assert isinstance(ci, stats.BootstrapCI)
    return AnytimeCell(float(ci.point), float(ci.low), float(ci.high), column.size, 0)


def build_anytime(
    runs: pd.DataFrame,
    trajectories: pd.DataFrame,
    fractions: Sequence[float] = DEFAULT_FRACTIONS,
    *,
    rng: np.random.Generator | int,
    n_boot: int = 1000,
    confidence: float = 0.95,
    methods: Sequence[str] | None = None,
) -> AnytimeTable:
    """Median incumbent regret of each method label on each dataset at ``fractions`` of the
    budget, over the successful runs that record a budget. ``methods``: the row order (the
    leaderboard's), default sorted labels."""
    require_columns(runs, [*_RUNS, "synthetic"], "runs")
    require_columns(trajectories, _TRAJ, "trajectories")
    if len(pairs := settings(runs)) != 1:
        raise ConfigError(f"an anytime table covers one (space, protocol), got {pairs}")
    if not fractions or any(not 0.0 < f <= 1.0 for f in fractions):
        raise ConfigError(f"fractions of the budget must lie in (0, 1], got {list(fractions)}")
    frame = runs.assign(label=method_labels(runs))
    frame = frame[(frame["status"] == "ok") & frame["budget"].notna()]
    if frame.empty:
        raise ConfigError("no successful run records a search budget: no anytime table")
    keys = frame[["run_key", "eval_dataset", "label", "budget"]].drop_duplicates(
        ["run_key", "eval_dataset"]
    )
    joined = trajectories.merge(keys, on=["run_key", "eval_dataset"], how="inner")
    gen = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    cells: dict[tuple[str, str, float], AnytimeCell] = {}
    for (label, dataset), group in joined.groupby(["label", "eval_dataset"], sort=True):
        mat = np.asarray(
            [_regret_at(t, float(t["budget"].iloc[0]), fractions)
             for _, t in group.groupby("run_key", sort=True)]
        )  # (n_runs, n_fractions)  # fmt: skip
        for i, f in enumerate(fractions):
            cells[(str(label), str(dataset), float(f))] = _cell(mat[:, i], n_boot, confidence, gen)
    found = sorted({m for m, _, _ in cells})
    order = [m for m in (methods or found) if m in found] + [
        m for m in found if m not in (methods or ())
    ]
    datasets = tuple(sorted({d for _, d, _ in cells}, key=task_order))
    budgets = {d: float(frame.loc[frame["eval_dataset"] == d, "budget"].max()) for d in datasets}
    return AnytimeTable(pairs[0][0], pairs[0][1], tuple(dict.fromkeys(order)), datasets,
                        tuple(float(f) for f in fractions), cells, budgets, confidence, n_boot,
                        bool(runs["synthetic"].astype(bool).any()))  # fmt: skip


def _text(cell: AnytimeCell | None, digits: int) -> str:
    if cell is None:
        return "—"
    if not np.isfinite(cell.median):
        return f"— ({cell.n_missing} of {cell.n} runs without incumbent)"
    return f"{cell.median:.{digits}f} [{cell.low:.{digits}f}, {cell.high:.{digits}f}]"


def _caption(table: AnytimeTable, latex: bool) -> str:
    e = latex_escape if latex else str
    percent = r"\%" if latex else "%"
    points = ", ".join(f"{100 * f:g}{percent}" for f in table.fractions)
    budgets = " / ".join(f"{table.budgets[d]:,.0f}" for d in table.datasets)
    names = " / ".join(display_dataset(d, latex) for d in table.datasets)
    return (
        f"Anytime results, space {e(table.space)}, protocol {e(table.protocol)}: median regret "
        "of the incumbent over runs (test accuracy, percentage points; lower is better) at "
        f"{points} of each task's search budget ({budgets} simulated s on {names}); "
        "100" + percent + ": the final incumbent. Brackets: "
        f"{100 * table.confidence:g}{percent} percentile bootstrap interval of the median "
        f"({table.n_boot} resamples of the runs)."
    )


def anytime_markdown(table: AnytimeTable, digits: int = 2) -> str:
    """The anytime table in Markdown: one row per (dataset, method), one column per fraction."""
    head = ["task", "method", *(f"{100 * f:g}% of budget" for f in table.fractions)]
    lines = ["| " + " | ".join(head) + " |", "|---|---|" + "---:|" * len(table.fractions)]
    for d in table.datasets:
        for m in table.methods:
            if not any((m, d, f) in table.cells for f in table.fractions):
                continue
            row = [display_dataset(d), display_label(m)]
            row += [_text(table.cells.get((m, d, f)), digits) for f in table.fractions]
            lines.append("| " + " | ".join(row) + " |")
    banner = ["> **SYNTHETIC DATA**", ""] if table.synthetic else []
    return "\n".join([*banner, *lines, "", _caption(table, False), ""])


def anytime_latex(table: AnytimeTable, digits: int = 2) -> str:
    """The anytime table as a one-column booktabs table, the tasks separated by rules."""
    head = ["Task", "Method", *(rf"{100 * f:g}\%" for f in table.fractions)]
    rows: list[list[str]] = []
    for d in table.datasets:
        present = [
            m for m in table.methods if any((m, d, f) in table.cells for f in table.fractions)
        ]
        for i, m in enumerate(present):
            first = (r"\midrule " if rows and i == 0 else "") + (
                display_dataset(d, True) if i == 0 else ""
            )
            cells = [
                _text(table.cells.get((m, d, f)), digits).replace("—", "--")
                for f in table.fractions
            ]
            rows.append([first, display_label(m, True), *cells])
    label = f"tab:anytime-{slug(table.space)}-{slug(table.protocol)}"
    cols = "ll" + "c" * len(table.fractions)
    return latex_table(_caption(table, True), label, head, rows, cols)
