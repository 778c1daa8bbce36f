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
from typing import Any

import numpy as np
import pandas as pd

from harness import stats
from harness.bench.names import TASKS
from harness.errors import ArchiveError, ConfigError, HarnessError, unknown
from harness.report.context import data_caveats, fidelity_phrase, parallelism_phrase
from harness.report.leaderboard_writers import BETTER_MARK as BETTER_MARK
from harness.report.leaderboard_writers import WORSE_MARK as WORSE_MARK
from harness.report.leaderboard_writers import to_latex as to_latex
from harness.report.leaderboard_writers import to_markdown as to_markdown
from harness.report.names import latex_escape as latex_escape
from harness.report.significance import TEST_NAMES as TEST_NAMES
from harness.report.significance import Family, compare_to, use_pairing

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Cell:
    """Summary of one method on one evaluation dataset over its successful seeds.

    ``p_value``/``p_adjusted``/``test``/``poi*`` are None for the control itself or without a
    control; ``direction`` is +1 where the method tends to beat the control, -1 where it tends
    to lose (0: balanced or untested); ``significant``: the Holm-adjusted two-sided p is below
    alpha, in either direction (see :attr:`better`, :attr:`worse`). ``bold``: the best mean, or
    not significantly different from it (``p_vs_best``, Holm over the comparisons with the best;
    only where that family can reach alpha at all).
    """

    mean: float
    std: float  # sample std (ddof = 1); NaN with a single seed
    n: int
    iqm: float
    iqm_low: float  # percentile bootstrap interval of the IQM over seeds
    iqm_high: float
    ci_low: float  # percentile bootstrap interval of the mean over seeds
    ci_high: float
    p_value: float | None
    p_adjusted: float | None  # Holm over the methods compared to the control on this dataset
    test: str | None  # a key of TEST_NAMES
    direction: int
    significant: bool
    is_best: bool
    p_vs_best: float | None  # Holm-adjusted, against the best mean; None for the best itself
    bold: bool
    poi: float | None  # P(this method better than the control), ties one half
    poi_low: float | None  # its stratified bootstrap interval
    poi_high: float | None

    @property
    def better(self) -> bool:
        """Significantly better than the control."""
        return self.significant and self.direction > 0

    @property
    def worse(self) -> bool:
        """Significantly worse than the control."""
        return self.significant and self.direction < 0


@dataclass(frozen=True)
class Cost:
    """Search cost of one method on one task: means over its successful runs, seconds."""

    sim_seconds: float
    wall_seconds: float
    n_ok: int
    n_failed: int


@dataclass(frozen=True)
class Leaderboard:
    """The value matrix: ``cells[(method, eval_dataset)]``, ``cost[(method, eval_dataset)]``.

    Per dataset: ``control_family[d]`` / ``best_family[d]`` = (number of comparisons, smallest
    Holm-adjusted p-value they can reach at these seed counts), (0, 1.0) when there is none;
    ``budgets[d]``: the search budget (simulated seconds) of the runs reported there, NaN when
    not recorded. ``paired``: whether tests pair by seed; ``fidelity``: how the protocol
    searched and what it reports (None: unknown card); ``parallelism``: what the wall-clock
    times ran under.
    """

    metric: str
    higher_is_better: bool
    space: str
    protocol: str
    methods: tuple[str, ...]
    datasets: tuple[str, ...]
    cells: Mapping[tuple[str, str], Cell]
    cost: Mapping[tuple[str, str], Cost]
    configs: Mapping[str, str]  # method label -> config JSON
    control: str | None
    alpha: float
    confidence: float
    n_boot: int
    paired: bool
    pairing: str  # why (not) paired, as a caption says it
    tests_used: tuple[str, ...]
    control_family: Mapping[str, tuple[int, float]]
    best_family: Mapping[str, tuple[int, float]]
    budgets: Mapping[str, float]
    fidelity: str | None
    parallelism: str
    synthetic: bool
    caveats: tuple[str, ...] = ()  # data caveats the sweep recorded
    excluded: Mapping[str, int] = dataclasses.field(default_factory=dict)  # status -> runs

    def cell(self, method: str, dataset: str) -> Cell | None:
        """The cell of ``method`` on ``dataset``, or None where it has no successful run."""
        return self.cells.get((method, dataset))

    def marks_possible(self, dataset: str) -> bool:
        """Whether some method could be marked against the control on ``dataset``."""
        size, floor = self.control_family.get(dataset, (0, 1.0))
        return size > 0 and floor < self.alpha

    def bold_tested(self, dataset: str) -> bool:
        """Whether the comparisons with the best method on ``dataset`` can reach alpha."""
        size, floor = self.best_family.get(dataset, (0, 1.0))
        return size > 0 and floor < self.alpha

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


def _summary(
    vals: np.ndarray, n_boot: int, confidence: float, gen: np.random.Generator
) -> tuple[float, float, float, float, float, float, float]:
    mean, std = stats.mean_std(vals)
    ci = stats.stratified_bootstrap_ci(vals, np.mean, n_boot, confidence, rng=gen)
    iqm = stats.stratified_bootstrap_ci(vals, stats.iqm, n_boot, confidence, rng=gen)
    assert isinstance(ci, stats.BootstrapCI) and isinstance(iqm, stats.BootstrapCI)
    return (float(mean), float(std), float(iqm.point), float(iqm.low), float(iqm.high),
            float(ci.low), float(ci.high))  # fmt: skip


@dataclass(frozen=True)
class _Column:
    cells: dict[str, Cell]
    control: Family | None
    best: Family


def _column_cells(
    values: Mapping[str, pd.Series],
    control: str | None,
    hib: bool,
    alpha: float,
    paired: bool,
    n_boot: int,
    confidence: float,
    gen: np.random.Generator,
) -> _Column:
    """Cells of one dataset column; ``values`` maps label -> metric indexed by seed."""
    ctrl = None
    if control is not None and control in values:
        ctrl = compare_to(values, control, paired, hib)
    means = {k: float(v.mean()) for k, v in values.items()}
    top = max(means.values()) if hib else min(means.values())
    best = [k for k, m in means.items() if np.isclose(m, top, rtol=0.0, atol=1e-12)]
    vs_best = compare_to(values, best[0], paired, hib)
    cells = {}
    for label, vals in values.items():
        mean, std, iqm, iqm_lo, iqm_hi, lo, hi = _summary(
            vals.to_numpy(dtype=float), n_boot, confidence, gen
        )
        c = ctrl.comparisons.get(label) if ctrl is not None else None
        b = vs_best.comparisons.get(label)
        poi = None
        if c is not None and control is not None:
            poi = stats.probability_of_improvement_ci(
                vals.to_numpy(float), values[control].to_numpy(float), n_boot, confidence,
                rng=gen, higher_is_better=hib,
            )  # fmt: skip
        bold = label in best or (
            vs_best.reachable(alpha) and b is not None and b.p_adjusted >= alpha
        )
        cells[label] = Cell(
            mean=mean, std=std, n=len(vals), iqm=iqm, iqm_low=iqm_lo, iqm_high=iqm_hi,
            ci_low=lo, ci_high=hi,
            p_value=None if c is None else c.p_value,
            p_adjusted=None if c is None else c.p_adjusted,
            test=None if c is None else c.test,
            direction=0 if c is None else c.direction,
            significant=c is not None and c.p_adjusted < alpha,
            is_best=label in best,
            p_vs_best=None if b is None else b.p_adjusted,
            bold=bold,
            poi=None if poi is None else float(poi.point),
            poi_low=None if poi is None else float(poi.low),
            poi_high=None if poi is None else float(poi.high),
        )  # fmt: skip
    return _Column(cells, ctrl, vs_best)


def _select(runs: pd.DataFrame, metric: str) -> tuple[pd.DataFrame, str, str]:
    cols = ["method", "config", "space", "eval_dataset", "protocol", "seed", "status"]
    require_columns(runs, [*cols, metric, "sim_seconds", "wall_seconds", "synthetic"], "runs")
    pairs = settings(runs)
    if len(pairs) != 1:
        raise ConfigError(
            f"a leaderboard covers one (space, protocol); the runs hold {pairs}: filter first"
        )
    frame = runs.reset_index(drop=True)
    frame = frame.assign(label=method_labels(frame))
    return frame, pairs[0][0], pairs[0][1]


def _costs(frame: pd.DataFrame, ok: pd.Series) -> dict[tuple[str, str], Cost]:
    """Mean cost of each (label, eval dataset) over its successful runs: never across tasks,
    whose budgets differ."""
    out = {}
    for (label, dataset), mine in frame.groupby(["label", "eval_dataset"], sort=True):
        good = mine[ok.loc[mine.index]]
        out[(str(label), str(dataset))] = Cost(
            sim_seconds=float(good["sim_seconds"].mean()) if len(good) else float("nan"),
            wall_seconds=float(good["wall_seconds"].mean()) if len(good) else float("nan"),
            n_ok=len(good),
            n_failed=len(mine) - len(good),
        )
    return out


def _budgets(good: pd.DataFrame, datasets: Iterable[str]) -> dict[str, float]:
    """The one search budget of the runs reported on each dataset; NaN if unrecorded or mixed."""
    out = {}
    for dataset in datasets:
        if "budget" not in good.columns:
            out[dataset] = float("nan")
            continue
        values = good.loc[good["eval_dataset"] == dataset, "budget"].dropna().unique()
        out[dataset] = float(values[0]) if len(values) == 1 else float("nan")
    return out


def _excluded(frame: pd.DataFrame) -> dict[str, int]:
    """How many runs each status other than ``ok`` left out (``failed``, ``infeasible``)."""
    counts = frame.loc[frame["status"] != "ok", "status"].astype(str).value_counts()
    return {str(k): int(v) for k, v in sorted(counts.items())}


def _family(fam: Family | None) -> tuple[int, float]:
    return (0, 1.0) if fam is None else (fam.size, fam.min_p_adjusted)


def build_leaderboard(
    runs: pd.DataFrame,
    metric: str = "test_acc",
    control: str | None = "random_search",
    alpha: float = 0.05,
    *,
    rng: np.random.Generator | int,
    n_boot: int = 2000,
    confidence: float = 0.95,
    paired: bool | None = None,
    manifest: Mapping[str, Any] | None = None,
) -> Leaderboard:
    """Summarise ``runs`` (one row per run, one space and protocol) into a value matrix.

    Each cell uses the successful runs (``status == 'ok'``) of one method label on one
    ``eval_dataset``: mean, sample std, IQM, bootstrap intervals of both, and two-sided tests
    against ``control`` and against the best mean (:mod:`harness.report.significance`), each
    Holm-corrected over the methods of that dataset. ``paired``: pair by seed (Wilcoxon where
    both cover the same seeds); None pairs exactly when every row has ``paired_streams`` true,
    else tests are unpaired (Mann-Whitney). ``manifest``: the sweep's, for the fidelity and the
    parallelism captions state.
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
    datasets = tuple(sorted(good["eval_dataset"].astype(str).unique(), key=task_order))
    gen = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    pair, pairing = use_pairing(good, paired)
    cells: dict[tuple[str, str], Cell] = {}
    tests_used: set[str] = set()
    families: dict[str, tuple[tuple[int, float], tuple[int, float]]] = {}
    for dataset in datasets:
        sub = good[good["eval_dataset"] == dataset]
        values = {
            str(k): g.set_index("seed")[metric].astype(float) for k, g in sub.groupby("label")
        }
        column = _column_cells(values, control, hib, alpha, pair, n_boot, confidence, gen)
        for fam in (column.control, column.best):
            tests_used.update(fam.tests if fam is not None else ())
        families[dataset] = (_family(column.control), _family(column.best))
        cells.update({(label, dataset): c for label, c in column.cells.items()})
    configs = dict(zip(frame["label"], frame["config"].astype(str), strict=True))
    return Leaderboard(
        metric=metric, higher_is_better=hib, space=space, protocol=protocol, methods=methods,
        datasets=datasets, cells=cells, cost=_costs(frame, ok), configs=configs,
        control=control, alpha=alpha, confidence=confidence, n_boot=n_boot, paired=pair,
        pairing=pairing,
        tests_used=tuple(sorted(tests_used)),
        control_family={d: f[0] for d, f in families.items()},
        best_family={d: f[1] for d, f in families.items()},
        budgets=_budgets(good, datasets), fidelity=fidelity_phrase(protocol, manifest),
        parallelism=parallelism_phrase(manifest), caveats=data_caveats(manifest),
        excluded=_excluded(frame),
        synthetic=bool(frame["synthetic"].astype(bool).any()),
    )  # fmt: skip


def task_order(dataset: str) -> tuple[int, str]:
    """Tasks in the benchmark's order (cifar10, cifar100, ImageNet16-120), others after."""
    return (TASKS.index(dataset) if dataset in TASKS else len(TASKS), dataset)
