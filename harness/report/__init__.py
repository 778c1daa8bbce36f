"""Reports from results: the leaderboard value matrix, its writers, and figures.

:func:`write_report` turns a runs table and a trajectories table (schemas in
:mod:`harness.report.leaderboard` and :mod:`harness.report.plots`) into ``leaderboard.md``,
``leaderboard.tex`` (one column of a two-column paper), ``leaderboard_wide.tex`` (page width),
``anytime.tex`` and PNG figures, each written atomically.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from harness.errors import ConfigError
from harness.fileio import atomic_write, atomic_write_text
from harness.report import plots
from harness.report.anytime import AnytimeTable, anytime_latex, anytime_markdown, build_anytime
from harness.report.leaderboard import (
    Leaderboard,
    build_leaderboard,
    method_labels,
    settings,
    task_order,
    to_latex,
    to_markdown,
)
from harness.report.leaderboard_writers import LATEX_PACKAGES
from harness.report.pairwise import pairwise_markdown, pairwise_tests
from harness.report.style import method_style

__all__ = [
    "AnytimeTable",
    "Leaderboard",
    "build_anytime",
    "build_leaderboard",
    "method_style",
    "plots",
    "save_figure_atomic",
    "to_latex",
    "to_markdown",
    "write_report",
]

logger = logging.getLogger(__name__)


def save_figure_atomic(fig: Figure, path: Path) -> Path:
    """Save ``fig`` as PNG at ``path`` atomically, with a mode that follows the umask."""
    return atomic_write(
        path, lambda tmp: fig.savefig(tmp, format="png", dpi=120, bbox_inches="tight")
    )


def _save_figure(fig: Figure, path: Path, synthetic: bool) -> Path:
    if synthetic:
        fig.suptitle("SYNTHETIC DATA", color="red", fontweight="bold")
    return save_figure_atomic(fig, path)


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name)


def _panels(
    runs: pd.DataFrame, datasets: Sequence[str], build: Callable[[str], plots.DistributionData]
) -> Figure:
    """One distribution panel per dataset, in the leaderboard's order."""
    n_methods = max(1, method_labels(runs).nunique())
    width = max(4.0, 0.8 * n_methods) * max(1, len(datasets))
    fig = Figure(figsize=(width, 4.2), layout="constrained")
    for i, dataset in enumerate(datasets):
        plots.plot_test_distribution(build(dataset), fig.add_subplot(1, len(datasets), i + 1))
    return fig


def _cd_figure(cd: plots.CDDiagramData) -> Figure:
    k = len(cd.methods)
    fig = Figure(figsize=(max(6.5, 0.9 * k), 1.2 + 0.3 * k), layout="constrained")
    plots.plot_cd_diagram(cd, fig.add_subplot())
    return fig


def _figures(
    runs: pd.DataFrame,
    traj: pd.DataFrame,
    out: Path,
    suffix: str,
    metric: str,
    gen: np.random.Generator,
    n_boot: int,
    pool_cd: bool,
) -> list[Path]:
    """Regret curves, CD diagrams, final-metric and chosen-rank figures for one setting, every
    dataset in the leaderboard's order; a config of a method draws its own curve."""
    synthetic = bool(runs["synthetic"].astype(bool).any())
    paths = []
    traj = plots.trajectory_labels(traj, runs)
    for dataset in sorted(traj["eval_dataset"].astype(str).unique(), key=task_order):
        try:
            data = plots.regret_curve_data(traj, dataset, n_boot=n_boot, rng=gen)
        except ConfigError as err:
            logger.warning("no regret curves for %s: %s", dataset, err)
            continue
        fig = Figure(figsize=(6.5, 4.2), layout="constrained")
        plots.plot_regret_curves(data, fig.add_subplot())
        paths.append(_save_figure(fig, out / f"regret_{_safe(dataset)}{suffix}.png", synthetic))
    ok = runs[runs["status"] == "ok"]
    datasets = sorted(ok["eval_dataset"].astype(str).unique(), key=task_order)
    pooled: list[str | None] = [None] if pool_cd and len(datasets) > 1 else []
    for dataset in [*datasets, *pooled]:
        try:
            cd = plots.cd_diagram_data(runs, dataset, metric)
        except ConfigError as err:
            logger.warning("no CD diagram for %s: %s", dataset or "the pooled datasets", err)
            continue
        name = f"cd_diagram_{_safe(dataset or 'pooled')}{suffix}.png"
        paths.append(_save_figure(_cd_figure(cd), out / name, synthetic))
    fig = _panels(runs, datasets, lambda d: plots.score_distribution_data(runs, d, metric))
    paths.append(_save_figure(fig, out / f"test_accuracy{suffix}.png", synthetic))
    fig = _panels(runs, datasets, lambda d: plots.rank_distribution_data(runs, d))
    paths.append(_save_figure(fig, out / f"chosen_rank{suffix}.png", synthetic))
    return paths


def _anytime(
    runs: pd.DataFrame, traj: pd.DataFrame, lb: Leaderboard, gen: np.random.Generator, n_boot: int
) -> AnytimeTable | None:
    if traj.empty or "budget" not in runs.columns or not runs["budget"].notna().any():
        return None
    try:
        return build_anytime(runs, traj, rng=gen, n_boot=n_boot, methods=lb.methods)
    except ConfigError as err:
        logger.warning("no anytime table: %s", err)
        return None


def write_report(
    runs: pd.DataFrame,
    trajectories: pd.DataFrame,
    out_dir: str | os.PathLike[str],
    rng: np.random.Generator | int,
    *,
    metric: str = "test_acc",
    control: str | None = "random_search",
    alpha: float = 0.05,
    n_boot: int = 1000,
    paired: bool | None = None,
    pool_cd: bool = False,
    manifest: Mapping[str, Any] | None = None,
    pairwise: bool = False,
) -> list[Path]:
    """Write ``leaderboard.md``, ``leaderboard.tex`` (one column), ``leaderboard_wide.tex``
    (page width: IQM, probability of improvement and cost per task), ``anytime.tex`` (when the
    runs record budgets and trajectories exist) and the figures; return their paths.

    One leaderboard section and one set of figures per ``(space, protocol)`` in ``runs``;
    with several, figure names carry ``_<space>_<protocol>``. Trajectories of runs that are
    not ``ok`` are left out. A ``control`` absent from a setting is dropped with a warning.
    ``paired``: pair tests by seed (None: where the rows say their streams are paired);
    ``pool_cd``: also draw a CD diagram pooling the datasets; ``manifest``: the sweep's, for
    what the captions say about fidelity and parallelism; ``pairwise``: also write
    ``pairwise.md`` and ``pairwise.csv``, every pair of methods per dataset with Holm over the
    pairs (:mod:`harness.report.pairwise`).
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    gen = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    pairs = settings(runs)
    if not pairs:
        raise ConfigError("write_report got an empty runs table")
    md: list[str] = []
    tex: list[str] = []
    wide: list[str] = []
    any_tex: list[str] = []
    pair_md: list[str] = []
    pair_tables: list[pd.DataFrame] = []
    figures: list[Path] = []
    for space, protocol in pairs:
        sub = runs[(runs["space"] == space) & (runs["protocol"] == protocol)]
        labels = set(method_labels(sub))
        ctrl = control if control in labels else None
        if control is not None and ctrl is None:
            logger.warning("control %r has no runs in %s/%s; no tests", control, space, protocol)
        lb = build_leaderboard(
            sub, metric, ctrl, alpha, rng=gen, n_boot=n_boot, paired=paired, manifest=manifest
        )
        ok_keys = set(sub.loc[sub["status"] == "ok", "run_key"])
        traj = trajectories[trajectories["run_key"].isin(ok_keys)]
        anytime = _anytime(sub, traj, lb, gen, n_boot)
        if len(pairs) > 1:
            md.append(f"## {space} / {protocol}\n")
            for part in (tex, wide, any_tex):
                part.append(f"% {space} / {protocol}")
        if pairwise:
            pairs_of = pairwise_tests(sub, metric, alpha, paired)
            pair_tables.append(pairs_of.table)
            if len(pairs) > 1:
                pair_md.append(f"## {space} / {protocol}\n")
            pair_md.append(pairwise_markdown(pairs_of))
        md.append(to_markdown(lb))
        tex.append(to_latex(lb))
        wide.append(to_latex(lb, wide=True, iqm=True, poi=True, cost=True))
        if anytime is not None:
            md.append(anytime_markdown(anytime))
            any_tex.append(anytime_latex(anytime))
        suffix = "" if len(pairs) == 1 else f"_{_safe(space)}_{_safe(protocol)}"
        figures += _figures(sub, traj, out, suffix, metric, gen, n_boot, pool_cd)
    paths = [
        atomic_write_text(out / "leaderboard.md", "\n".join(md)),
        atomic_write_text(out / "leaderboard.tex", "\n".join(tex)),
        atomic_write_text(out / "leaderboard_wide.tex", "\n".join(wide)),
    ]
    if pairwise:
        table = pd.concat(pair_tables, ignore_index=True)
        paths.append(atomic_write_text(out / "pairwise.md", "\n".join(pair_md)))
        paths.append(atomic_write_text(out / "pairwise.csv", table.to_csv(index=False)))
    if any(t.startswith(LATEX_PACKAGES) for t in any_tex):  # some setting had an anytime table
        paths.append(atomic_write_text(out / "anytime.tex", "\n".join(any_tex)))
    logger.info("wrote report with %d figures to %s", len(figures), out)
    return [*paths, *figures]
