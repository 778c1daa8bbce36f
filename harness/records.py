"""Building run records: what a chosen architecture is reported with, and one run's record.

:func:`report_table` computes, once per store, the test and valid accuracy, rank and
percentile of every architecture of one eval task at the report schedule;
:func:`make_record` turns a finished (or failed) black-box search into a
:class:`~harness.results.RunRecord`: one run-table row per eval task and the trajectory
compressed to the steps where the incumbent changed (plus the last). Missing is null.

Under a protocol card's constraint, regret, rank and percentile are measured among the feasible
architectures (the best feasible one has regret 0 and rank 1), and a search that saw no
feasible architecture is recorded with status ``infeasible``: no chosen architecture, the
reason in ``error``.
"""

from __future__ import annotations

import json
import logging
import math
import weakref
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from harness.bench import costs as bench_costs
from harness.bench import names
from harness.errors import ConfigError
from harness.results import RUN_COLUMNS, TRAJECTORY_VARYING, RunRecord
from harness.spaces import get_space

if TYPE_CHECKING:
    from harness.bench.store import Store
    from harness.grid import RunSpec
    from harness.protocol import SearchOutcome

__all__ = ["ReportTable", "make_record", "report_table"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True, eq=False)
class ReportTable:
    """What a chosen architecture is reported with, for one (data, report hp, eval task).

    Arrays are ``(n_archs,)`` float64, NaN where the store lacks the value: ``test`` and
    ``valid`` accuracy (%, seed mean), ``rank`` (1 = best test accuracy; ties share the best
    rank) and ``percentile`` (share of architectures, in %, whose test accuracy is at most
    this one's: 100 for the best). ``best`` is the highest test accuracy. Under a constraint
    rank, percentile and ``best`` count the feasible architectures only (rank and percentile
    are NaN for the others).
    """

    test: npt.NDArray[np.float64]
    valid: npt.NDArray[np.float64]
    rank: npt.NDArray[np.float64]
    percentile: npt.NDArray[np.float64]
    best: float


_REPORTS: weakref.WeakKeyDictionary[Store, dict[tuple[Any, ...], ReportTable]] = (
    weakref.WeakKeyDictionary()
)


def report_table(
    store: Store,
    hp: str,
    task: str,
    constraint: Mapping[str, float] | None = None,
    cost_task: str | None = None,
) -> ReportTable:
    """The :class:`ReportTable` of ``task`` at schedule ``hp`` (computed once per store);
    with a ``constraint``, ranked among the architectures within it, their costs read for
    ``cost_task``'s network (the search task; default ``task``)."""
    cached = _REPORTS.setdefault(store, {})
    limits = tuple(sorted((constraint or {}).items()))
    key = (hp, task, limits, (cost_task or task) if limits else None)
    if key not in cached:
        test = store.metric_all(*names.resolve(task, "test"), hp, "accuracy", "mean").astype(
            np.float64
        )
        dataset, split = names.resolve(task, "valid")
        block = store.block(dataset, hp)
        valid = (
            store.metric_all(dataset, split, hp, "accuracy", "mean").astype(np.float64)
            if split in block.splits
            else np.full(test.shape, np.nan)
        )
        ranked = test
        if limits:
            dataset_of_costs = bench_costs.cost_dataset(cost_task or task)
            feasible = bench_costs.feasible_mask(store, dict(limits), dataset_of_costs)
            ranked = np.where(feasible, test, np.nan)
        present = np.sort(ranked[~np.isnan(ranked)])
        if not present.size:
            among = f" within {bench_costs.describe(dict(limits))}" if limits else ""
            raise ConfigError(
                f"store {store.path.name} has no test accuracy for {task} @ hp {hp}{among}"
            )
        at_most = np.searchsorted(present, ranked, side="right").astype(np.float64)
        rank = np.where(np.isnan(ranked), np.nan, 1 + present.size - at_most)
        percentile = np.where(np.isnan(ranked), np.nan, 100.0 * at_most / present.size)
        cached[key] = ReportTable(test, valid, rank, percentile, float(present[-1]))
    return cached[key]


def _num(values: npt.NDArray[np.float64], index: int) -> float | None:
    value = float(values[index])
    return None if math.isnan(value) else value


def _changes(points: list[Any]) -> list[Any]:
    """Trajectory points where the incumbent (or its best valid) changed, plus the last."""
    kept = [p for i, p in enumerate(points) if i == 0 or p[2:4] != points[i - 1][2:4]]
    if points and kept[-1] is not points[-1]:
        kept.append(points[-1])
    return kept


def make_record(
    spec: RunSpec,
    outcome: SearchOutcome | None,
    wall_seconds: float | None,
    reports: Mapping[str, ReportTable],
    error: str | None,
) -> RunRecord:
    """The record of one run: a row per eval task and the compressed trajectory.

    ``outcome`` None means the run failed with ``error`` (status ``failed``, results null);
    an outcome that found no feasible architecture is status ``infeasible`` (no chosen
    architecture; its note in ``error``, its cost ledger kept).
    """
    base = dict.fromkeys(RUN_COLUMNS)
    base.update(
        run_key=spec.key, method=spec.method, config=spec.config, space=spec.space,
        dataset=spec.task, protocol=spec.protocol, seed=spec.seed, budget=spec.budget,
        wall_seconds=wall_seconds, synthetic=spec.synthetic, data_checksum=spec.data_checksum,
        rng_entropy=json.dumps(spec.entropy), status="ok" if outcome is not None else "failed",
        error=error, paired_streams=True,
    )  # fmt: skip
    traj: dict[str, list[Any]] = {c: [] for c in TRAJECTORY_VARYING}
    if outcome is not None and not outcome.feasible:
        base.update(status="infeasible", error=outcome.note, sim_seconds=outcome.spent,
                    queries=outcome.queries, distinct_archs=outcome.distinct_archs)  # fmt: skip
        return RunRecord(
            spec.key, tuple({**base, "eval_dataset": e} for e in spec.eval_tasks), traj
        )
    if outcome is None:
        return RunRecord(
            spec.key, tuple({**base, "eval_dataset": e} for e in spec.eval_tasks), traj
        )
    arch = outcome.arch
    rows = []
    points = _changes(outcome.trajectory)
    for task in spec.eval_tasks:
        rep = reports[task]
        test = _num(rep.test, arch)
        rank = _num(rep.rank, arch)
        rows.append({
            **base, "eval_dataset": task, "arch_index": arch,
            "arch": get_space(spec.space).index_to_str(arch), "valid_acc": _num(rep.valid, arch),
            "test_acc": test, "regret": None if test is None else rep.best - test,
            "rank": None if rank is None else int(rank), "percentile": _num(rep.percentile, arch),
            "sim_seconds": outcome.spent, "queries": outcome.queries,
            "distinct_archs": outcome.distinct_archs,
        })  # fmt: skip
        for step, spent, incumbent, inc_valid in points:
            inc_test = _num(rep.test, incumbent)
            traj["eval_dataset"].append(task)
            traj["step"].append(step)
            traj["sim_seconds"].append(spent)
            traj["incumbent_index"].append(incumbent)
            traj["incumbent_valid"].append(inc_valid)
            traj["incumbent_test"].append(inc_test)
            traj["regret"].append(None if inc_test is None else rep.best - inc_test)
    return RunRecord(spec.key, tuple(rows), traj)
