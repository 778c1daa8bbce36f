"""Reports from results: the leaderboard value matrix, its writers, and figures.

:func:`write_report` turns a runs table and a trajectories table (schemas in
:mod:`harness.report.leaderboard` and :mod:`harness.report.plots`) into ``leaderboard.md``,
``leaderboard.tex`` and PNG figures, each written atomically.
"""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from harness.errors import ConfigError
from harness.fileio import atomic_write, atomic_write_text
from harness.report import plots
from harness.report.leaderboard import (
    Leaderboard,
    build_leaderboard,
    method_labels,
    settings,
    to_latex,
    to_markdown,
)
from harness.report.style import method_style

__all__ = [
    "Leaderboard",
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


def _figures(
    runs: pd.DataFrame,
    traj: pd.DataFrame,
    out: Path,
    suffix: str,
    metric: str,
    gen: np.random.Generator,
    n_boot: int,
) -> list[Path]:
    """Regret curves, CD diagram, final-metric and chosen-rank figures for one setting."""
    synthetic = bool(runs["synthetic"].astype(bool).any())
    paths = []
    for dataset in sorted(traj["eval_dataset"].astype(str).unique()):
        try:
            data = plots.regret_curve_data(traj, dataset, n_boot=n_boot, rng=gen)
        except ConfigError as err:
            logger.warning("no regret curves for %s: %s", dataset, err)
            continue
        fig = Figure(figsize=(6.0, 4.0), layout="constrained")
        plots.plot_regret_curves(data, fig.add_subplot())
        paths.append(_save_figure(fig, out / f"regret_{_safe(dataset)}{suffix}.png", synthetic))
    try:
        cd = plots.cd_diagram_data(runs, None, metric)
    except ConfigError as err:
        logger.warning("no CD diagram: %s", err)
    else:
        k = len(cd.methods)
        fig = Figure(figsize=(max(6.0, 0.9 * k), 1.2 + 0.3 * k), layout="constrained")
        plots.plot_cd_diagram(cd, fig.add_subplot())
        paths.append(_save_figure(fig, out / f"cd_diagram{suffix}.png", synthetic))
    ok = runs[runs["status"] == "ok"]
    datasets = sorted(ok["eval_dataset"].astype(str).unique())
    n_methods = max(1, method_labels(runs).nunique())
    fig = Figure(figsize=(max(4.0, 0.7 * n_methods) * len(datasets), 4.0), layout="constrained")
    axes: list[Axes] = [fig.add_subplot(1, len(datasets), i + 1) for i in range(len(datasets))]
    for ax, dataset in zip(axes, datasets, strict=True):
        plots.plot_test_distribution(plots.score_distribution_data(runs, dataset, metric), ax)
    paths.append(_save_figure(fig, out / f"test_accuracy{suffix}.png", synthetic))
    fig = Figure(figsize=(max(4.0, 0.7 * n_methods), 4.0), layout="constrained")
    plots.plot_rank_distribution(plots.rank_distribution_data(runs), fig.add_subplot())
    paths.append(_save_figure(fig, out / f"chosen_rank{suffix}.png", synthetic))
    return paths


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
) -> list[Path]:
    """Write ``leaderboard.md``, ``leaderboard.tex`` and the figures; return their paths.

    One leaderboard section and one set of figures per ``(space, protocol)`` in ``runs``;
    with several, figure names carry ``_<space>_<protocol>``. Trajectories of runs that are
    not ``ok`` are left out. A ``control`` absent from a setting is dropped with a warning.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    gen = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    pairs = settings(runs)
    if not pairs:
        raise ConfigError("write_report got an empty runs table")
    md, tex, figures = [], [], []
    for space, protocol in pairs:
        sub = runs[(runs["space"] == space) & (runs["protocol"] == protocol)]
        labels = set(method_labels(sub))
        ctrl = control if control in labels else None
        if control is not None and ctrl is None:
            logger.warning("control %r has no runs in %s/%s; no tests", control, space, protocol)
        lb = build_leaderboard(sub, metric, ctrl, alpha, rng=gen, n_boot=n_boot)
        if len(pairs) > 1:
            md.append(f"## {space} / {protocol}\n")
            tex.append(f"% {space} / {protocol}")
        md.append(to_markdown(lb))
        tex.append(to_latex(lb))
        ok_keys = set(sub.loc[sub["status"] == "ok", "run_key"])
        traj = trajectories[trajectories["run_key"].isin(ok_keys)]
        suffix = "" if len(pairs) == 1 else f"_{_safe(space)}_{_safe(protocol)}"
        figures += _figures(sub, traj, out, suffix, metric, gen, n_boot)
    md_path = atomic_write_text(out / "leaderboard.md", "\n".join(md))
    tex_path = atomic_write_text(out / "leaderboard.tex", "\n".join(tex))
    logger.info("wrote report with %d figures to %s", len(figures), out)
    return [md_path, tex_path, *figures]
