"""The leaderboard value matrix (methods x evaluation datasets) and its two writers.

:func:`build_leaderboard` computes every number once; :func:`to_markdown` and
:func:`to_latex` (in :mod:`harness.report.leaderboard_writers`, re-exported here) only format
what the :class:`Leaderboard` holds.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from harness import stats
from harness.bench.names import TASKS
from harness.errors import ArchiveError, ConfigError, HarnessError, unknown
from harness.report.leaderboard_writers import SIGNIFICANT_MARK as SIGNIFICANT_MARK
from harness.report.leaderboard_writers import TEST_NAMES as TEST_NAMES
from harness.report.leaderboard_writers import latex_escape as latex_escape
from harness.report.leaderboard_writers import to_latex as to_latex
from harness.report.leaderboard_writers import to_markdown as to_markdown

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Cell:
    """Summary of one method on one evaluation dataset over its successful seeds.

    ``p_value``/``p_adjusted``/``test`` are None for the control itself or without a control.
    """

    mean: float
    std: float  # sample std (ddof = 1); NaN with a single seed
    n: int
    iqm: float
    ci_low: float  # percentile bootstrap interval of the mean over seeds
    ci_high: float
    p_value: float | None
    p_adjusted: float | None  # Holm over the methods compared to the control on this dataset
    test: str | None  # a key of TEST_NAMES
    significant: bool
    is_best: bool


@dataclass(frozen=True)
class Cost:
    """Search cost of one method: means over its successful runs, seconds."""

    sim_seconds: float
    wall_seconds: float
    n_ok: int
    n_failed: int


@dataclass(frozen=True)
class Leaderboard:
    """The value matrix: ``cells[(method, eval_dataset)]`` plus per-method search cost."""

    metric: str
    higher_is_better: bool
    space: str
    protocol: str
    methods: tuple[str, ...]
    datasets: tuple[str, ...]
    cells: Mapping[tuple[str, str], Cell]
    cost: Mapping[str, Cost]
    configs: Mapping[str, str]  # method label -> config JSON
    control: str | None
    alpha: float
    confidence: float
    n_boot: int
    tests_used: tuple[str, ...]
    synthetic: bool

    def cell(self, method: str, dataset: str) -> Cell | None:
        """The cell of ``method`` on ``dataset``, or None where it has no successful run."""
        return self.cells.get((method, dataset))

    @property
    def seed_counts(self) -> tuple[int, int]:
        """Smallest and largest number of seeds over the filled cells."""
        ns = [c.n for c in self.cells.values()]
        return (min(ns), max(ns)) if ns else (0, 0)

    def to_frame(self) -> pd.DataFrame:
        """Long table: one row per filled cell with every field of :class:`Cell`."""
        rows = [
            {"method": m, "eval_dataset": d, **vars(self.cells[(m, d)])}
            for m in self.methods
            for d in self.datasets
            if (m, d) in self.cells
        ]
        return pd.DataFrame(rows)


def require_columns(frame: pd.DataFrame, columns: Iterable[str], what: str) -> None:
    """Raise ArchiveError naming the missing columns of ``frame`` and those it has."""
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ArchiveError(
            f"{what} table lacks column(s) {missing}; it has: {', '.join(map(str, frame.columns))}"
        )


def config_label(method: str, config: str) -> str | None:
    """``method(k=v, ...)`` naming the hyperparameters of ``config`` (JSON) that differ from
    the registered method's defaults, sorted by name (``method`` alone when none differ);
    None when the method is not registered or the config is not a JSON object."""
    from harness.registry import get_method  # imports the method's module only here

    try:
        defaults = dataclasses.asdict(get_method(method).Config())
        values = json.loads(config)
    except (HarnessError, ValueError, TypeError):
        return None
    if not isinstance(values, dict):
        return None
    changed = [f"{k}={values[k]!r}" for k in sorted(values) if values[k] != defaults.get(k)]
    return f"{method}({', '.join(changed)})" if changed else method


def method_labels(runs: pd.DataFrame) -> pd.Series:
    """A label per run: the method name, or, when a method has several configs, the method
    with the hyperparameters that differ from its defaults (:func:`config_label`, e.g.
    ``rea(population_size=20)``); ``method#k`` (the k-th distinct config string in sorted
    order) when those do not tell the configs apart."""
    require_columns(runs, ["method", "config"], "runs")
    labels = runs["method"].astype(str)
    for method, group in runs.groupby("method", sort=True):
        configs = sorted(group["config"].astype(str).unique())
        if len(configs) > 1:
            named = {c: config_label(str(method), c) for c in configs}
            if None in named.values() or len(set(named.values())) < len(configs):
                named = {c: f"{method}#{i + 1}" for i, c in enumerate(configs)}
            suffixed = [str(named[str(c)]) for c in group["config"]]
            labels = labels.mask(labels.index.isin(group.index), pd.Series(suffixed, group.index))
    return labels


def settings(runs: pd.DataFrame) -> list[tuple[str, str]]:
    """The distinct ``(space, protocol)`` pairs of a runs table, sorted."""
    require_columns(runs, ["space", "protocol"], "runs")
    pairs = runs[["space", "protocol"]].drop_duplicates().astype(str)
    return sorted((str(a), str(b)) for a, b in pairs.itertuples(index=False))


def _column_tests(values: Mapping[str, pd.Series], control: str) -> dict[str, tuple[float, str]]:
    """Raw p-value and test name of each method vs ``control`` on one dataset."""
    ref = values[control]
    out: dict[str, tuple[float, str]] = {}
    for label, vals in values.items():
        if label == control:
            continue
        paired = (
            vals.index.is_unique
            and ref.index.is_unique
            and set(vals.index) == set(ref.index)
            and len(vals) >= 2
        )
        if paired:
            res = stats.wilcoxon(vals.sort_index().to_numpy(), ref.sort_index().to_numpy())
            out[label] = (res.p_value, "wilcoxon")
        else:
            out[label] = (
                stats.mann_whitney(vals.to_numpy(), ref.to_numpy()).p_value,
                "mann_whitney",
            )
    return out


def _summary(
    vals: np.ndarray, n_boot: int, confidence: float, gen: np.random.Generator
) -> tuple[float, float, float, float, float]:
    mean, std = stats.mean_std(vals)
    ci = stats.stratified_bootstrap_ci(vals, np.mean, n_boot, confidence, rng=gen)
    assert isinstance(ci, stats.BootstrapCI)
    return float(mean), float(std), stats.iqm(vals), float(ci.low), float(ci.high)


def _column_cells(
    values: Mapping[str, pd.Series],
    control: str | None,
    hib: bool,
    alpha: float,
    n_boot: int,
    confidence: float,
    gen: np.random.Generator,
) -> dict[str, Cell]:
    """Cells of one dataset column; ``values`` maps label -> metric indexed by seed."""
    tests = _column_tests(values, control) if control is not None and control in values else {}
    labels = list(tests)
    adjusted = dict(zip(labels, stats.holm([tests[k][0] for k in labels]), strict=True))
    means = {k: float(v.mean()) for k, v in values.items()}
    best = max(means.values()) if hib else min(means.values())
    cells = {}
    for label, vals in values.items():
        mean, std, iqm, low, high = _summary(vals.to_numpy(dtype=float), n_boot, confidence, gen)
        p, test = tests.get(label, (None, None))
        p_adj = float(adjusted[label]) if label in adjusted else None
        cells[label] = Cell(
            mean=mean,
            std=std,
            n=len(vals),
            iqm=iqm,
            ci_low=low,
            ci_high=high,
            p_value=p,
            p_adjusted=p_adj,
            test=test,
            significant=p_adj is not None and p_adj < alpha,
            is_best=bool(np.isclose(means[label], best, rtol=0.0, atol=1e-12)),
        )
    return cells


def _select(runs: pd.DataFrame, metric: str) -> tuple[pd.DataFrame, str, str]:
    cols = ["method", "config", "space", "eval_dataset", "protocol", "seed", "status"]
    require_columns(runs, [*cols, metric, "sim_seconds", "wall_seconds", "synthetic"], "runs")
    pairs = settings(runs)
    if len(pairs) != 1:
        raise ConfigError(
            f"a leaderboard covers one (space, protocol); the runs hold {pairs}: filter first"
        )
    frame = runs.assign(label=method_labels(runs))
    return frame, pairs[0][0], pairs[0][1]


def _costs(frame: pd.DataFrame, ok: pd.Series, methods: Iterable[str]) -> dict[str, Cost]:
    out = {}
    for label in methods:
        mine = frame[frame["label"] == label]
        good = mine[ok.loc[mine.index]]
        out[label] = Cost(
            sim_seconds=float(good["sim_seconds"].mean()) if len(good) else float("nan"),
            wall_seconds=float(good["wall_seconds"].mean()) if len(good) else float("nan"),
            n_ok=len(good),
            n_failed=len(mine) - len(good),
        )
    return out


def build_leaderboard(
    runs: pd.DataFrame,
    metric: str = "test_acc",
    control: str | None = "random_search",
    alpha: float = 0.05,
    *,
    rng: np.random.Generator | int,
    n_boot: int = 2000,
    confidence: float = 0.95,
) -> Leaderboard:
    """Summarise ``runs`` (one row per run, one space and protocol) into a value matrix.

    Each cell uses the successful runs (``status == 'ok'``) of one method label on one
    ``eval_dataset``: mean, sample std, IQM, bootstrap CI of the mean, and a two-sided test
    against ``control`` (Wilcoxon paired by seed when both cover the same seeds, else
    Mann-Whitney U), Holm-corrected over the methods of that dataset.
    """
    hib = stats.higher_is_better(metric)
    frame, space, protocol = _select(runs, metric)
    ok = (frame["status"] == "ok") & frame[metric].notna()
    if n_null := int(((frame["status"] == "ok") & ~ok).sum()):
        logger.warning("%d successful runs have no %s value; left out", n_null, metric)
    good = frame[ok]
    if good.empty:
        raise ConfigError(f"no successful run with a {metric} value among {len(frame)} runs")
    labels = sorted(frame["label"].unique())
    if control is not None and control not in labels:
        raise ConfigError(unknown("control method", control, labels))
    methods = tuple([control] if control else []) + tuple(m for m in labels if m != control)
    datasets = tuple(sorted(good["eval_dataset"].astype(str).unique(), key=_task_order))
    gen = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    cells: dict[tuple[str, str], Cell] = {}
    tests_used: set[str] = set()
    for dataset in datasets:
        sub = good[good["eval_dataset"] == dataset]
        values = {
            str(k): g.set_index("seed")[metric].astype(float) for k, g in sub.groupby("label")
        }
        column = _column_cells(values, control, hib, alpha, n_boot, confidence, gen)
        tests_used.update(c.test for c in column.values() if c.test)
        cells.update({(label, dataset): c for label, c in column.items()})
    configs = dict(zip(frame["label"], frame["config"].astype(str), strict=True))
    return Leaderboard(
        metric=metric,
        higher_is_better=hib,
        space=space,
        protocol=protocol,
        methods=methods,
        datasets=datasets,
        cells=cells,
        cost=_costs(frame, ok, methods),
        configs=configs,
        control=control,
        alpha=alpha,
        confidence=confidence,
        n_boot=n_boot,
        tests_used=tuple(sorted(tests_used)),
        synthetic=bool(frame["synthetic"].astype(bool).any()),
    )


def _task_order(dataset: str) -> tuple[int, str]:
    """Tasks in the benchmark's order (cifar10, cifar100, ImageNet16-120), others after."""
    return (TASKS.index(dataset) if dataset in TASKS else len(TASKS), dataset)
