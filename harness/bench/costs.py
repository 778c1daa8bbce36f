"""Named cost metrics of every architecture, constraints on them, and Pareto fronts.

A cost metric is named by one string, decided here:

* ``latency:<device>``: measured inference latency (ms) on one device setting of the latency
  table attached to the store (:mod:`harness.bench.latency`; the shared HELP table
  ``help_latency_ms.csv.gz`` holds 27 settings: GPUs at batch 1/32/256, server CPUs, phones,
  a Raspberry Pi 4, an ASIC and an FPGA);
* ``latency``: the benchmark's own latency of the task's dataset, converted from s to ms;
* ``params``: parameters (M, the official "MB") of the network for the task's dataset;
* ``flops``: multiply-adds (M) where the store holds them. The public tss table holds none,
  and this side never imports torch to compute them, so a FLOPs constraint needs a store
  imported from an official archive.

A latency table attaches to a store as one side file (:mod:`harness.bench.latency`). A
:class:`Constraint` keeps an architecture whose cost is at most its limit; an architecture
whose cost is unknown (NaN) is infeasible. Everything here is numpy on ``(n_archs,)`` arrays.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from harness.bench import names
from harness.bench.latency import DEVICE_NAME, latency_table
from harness.errors import BenchmarkQueryError, ConfigError, unknown

if TYPE_CHECKING:
    from harness.bench.store import Seed, Store
    from harness.spaces import Arch, Space

__all__ = [
    "COST_METRICS",
    "ConstrainedBest",
    "Constraint",
    "CostView",
    "ParetoData",
    "constrained_best",
    "cost_dataset",
    "cost_values",
    "feasible_mask",
    "pareto_data",
    "pareto_front",
    "parse_constraint",
]

logger = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.float64]
#: The plain cost metrics; ``latency:<device>`` adds one per device of a latency table.
COST_METRICS: tuple[str, ...] = ("latency", "params", "flops")
UNITS: Mapping[str, str] = {"latency": "ms", "params": "M", "flops": "M"}
#: Units accepted after a limit, as factors to the metric's unit.
_UNIT_FACTORS: Mapping[str, Mapping[str, float]] = {
    "latency": {"": 1.0, "ms": 1.0, "s": 1000.0, "us": 0.001},
    "params": {"": 1.0, "m": 1.0, "mb": 1.0},
    "flops": {"": 1.0, "m": 1.0, "mflops": 1.0},
}
_LIMIT = re.compile(r"^\s*([0-9]*\.?[0-9]+(?:[eE][+-]?[0-9]+)?)\s*([A-Za-z]*)\s*$")


# --------------------------------------------------------------------------- names
def _family(metric: str) -> str:
    """``latency``, ``params`` or ``flops`` for a metric name; :class:`ConfigError` otherwise."""
    family, colon, device = str(metric).partition(":")
    if family == "latency" and colon and DEVICE_NAME.match(device):
        return family
    if family in COST_METRICS and not colon:
        return family
    raise ConfigError(
        unknown("cost metric", metric, ("latency:<device>", *COST_METRICS))
        + " (latency:<device> names a column of the store's latency table)"
    )


def check_metric_name(metric: str) -> str:
    """``metric`` if it is a well-formed cost metric name (the store may still lack it)."""
    _family(metric)
    return metric


def cost_dataset(task: str) -> str:
    """The official dataset whose network a task's costs are read for (its test run)."""
    return names.resolve(task, "test")[0]


@dataclass(frozen=True)
class Constraint:
    """``metric <= limit``: ``limit`` in the metric's unit (ms for latency, M otherwise)."""

    metric: str
    limit: float

    def __post_init__(self) -> None:
        check_metric_name(self.metric)
        ok = isinstance(self.limit, int | float) and not isinstance(self.limit, bool)
        if not (ok and math.isfinite(self.limit) and self.limit > 0):
            raise ConfigError(
                f"the limit of {self.metric} must be a number > 0, got {self.limit!r}"
            )
        object.__setattr__(self, "limit", float(self.limit))

    def __str__(self) -> str:
        return f"{self.metric} <= {self.limit:g} {UNITS[_family(self.metric)]}"


def parse_constraint(text: str) -> Constraint:
    """``"latency:pixel3=5ms"`` -> ``Constraint("latency:pixel3", 5.0)``; units: ms, s, us for
    latency; M (or MB) for params; M for FLOPs; a bare number is in the metric's unit."""
    metric, eq, value = str(text).partition("=")
    metric = metric.strip()
    family = _family(metric)
    match = _LIMIT.match(value) if eq else None
    if match is None:
        raise ConfigError(
            f"expected METRIC=LIMIT, e.g. latency:pixel3=5ms or params=1.0, got {text!r}"
        )
    factors = _UNIT_FACTORS[family]
    unit = match[2].lower()
    if unit not in factors:
        raise ConfigError(unknown(f"unit of {metric}", match[2], [u for u in factors if u]))
    return Constraint(metric, float(match[1]) * factors[unit])


def describe(constraint: Mapping[str, float]) -> str:
    """``"latency:pixel3 <= 5 ms, params <= 1 M"`` (``"no constraint"`` when empty)."""
    return ", ".join(str(Constraint(m, v)) for m, v in constraint.items()) or "no constraint"


# --------------------------------------------------------------------------- the free door
class CostView:
    """The costs a constrained protocol lets a search see for free, and its limits.

    ``costs`` maps a metric to ``(n_archs,)`` values; ``constraint`` maps metrics of ``costs``
    to the largest value allowed. It holds no accuracy, so a method may keep it (the harness
    hands it to a method that defines ``use_costs(view)``, :func:`harness.oracle.run_search`).
    """

    def __init__(
        self, space: Space, costs: Mapping[str, npt.ArrayLike], constraint: Mapping[str, float]
    ) -> None:
        self.space = space
        self._values: dict[str, FloatArray] = {}
        for metric, values in costs.items():
            arr = np.array(values, dtype=np.float64)
            if arr.shape != (space.num_archs,):
                raise ConfigError(
                    f"costs of {metric} must be ({space.num_archs},), not {arr.shape}"
                )
            arr.flags.writeable = False
            self._values[check_metric_name(metric)] = arr
        missing = sorted(set(constraint) - set(self._values))
        if missing:
            raise ConfigError(f"the constraint names {missing}, for which no costs are given")
        self.constraint: Mapping[str, float] = MappingProxyType(
            {m: Constraint(m, v).limit for m, v in constraint.items()}
        )
        self.n_queries = 0

    @property
    def metrics(self) -> tuple[str, ...]:
        return tuple(self._values)

    def cost(self, arch: Arch, metric: str) -> float:
        """Cost ``metric`` of ``arch`` (ms for latency, M otherwise; NaN where unknown)."""
        index = self.space.parse(arch)
        values = self._values.get(metric)
        if values is None:
            if not self._values:
                raise ConfigError(f"no cost metric is answered here (asked {metric!r}): the "
                                  "protocol card carries no constraint")  # fmt: skip
            raise ConfigError(unknown("cost metric of this protocol", metric, self._values))
        self.n_queries += 1
        return float(values[index])

    def feasible(self, arch: Arch) -> bool:
        """Whether ``arch`` is within every limit (True when there are none); counted once."""
        self.n_queries += 1
        return self.within(self.space.parse(arch))

    def within(self, index: int) -> bool:
        """:meth:`feasible` for an index, not counted (the harness's own check)."""
        # NaN (unknown cost) compares False: an architecture of unknown cost is infeasible
        return all(self._values[m][index] <= limit for m, limit in self.constraint.items())


# --------------------------------------------------------------------------- queries
def cost_values(store: Store, metric: str, dataset: str) -> FloatArray:
    """Cost ``metric`` of every architecture for ``dataset``'s network, ``(n_archs,)`` float64
    read-only, NaN where unknown (see the module docstring for names and units)."""
    family = _family(metric)
    if family == "latency" and ":" in metric:
        table = latency_table(store)
        if table is None:
            raise BenchmarkQueryError(
                f"store {store.path.name} has no latency table for {metric}; attach one with "
                f"`harness bench import-latency {store.path.name} help_latency_ms.csv.gz`"
            )
        return table.device(metric.partition(":")[2])
    names.check_dataset(dataset)
    for hp in store.hps():  # params, FLOPs and latency do not depend on the schedule
        if f"{hp}/{dataset}" in store.blocks:
            values = store.cost_all(dataset, hp, family).astype(np.float64)
            if not np.isnan(values).all():
                out = values * (1000.0 if family == "latency" else 1.0)  # s -> ms
                out.flags.writeable = False
                return out
    hint = " (the public tss table holds none; official archives do)" * (family == "flops")
    raise BenchmarkQueryError(f"store {store.path.name} holds no {family} for {dataset}{hint}")


def feasible_mask(
    store: Store, constraint: Mapping[str, float], dataset: str
) -> npt.NDArray[np.bool_]:
    """Architectures meeting every limit of ``constraint`` (all of them when it is empty)."""
    mask = np.ones(store.n_archs, dtype=bool)
    for metric, limit in constraint.items():
        Constraint(metric, limit)
        with np.errstate(invalid="ignore"):
            mask &= cost_values(store, metric, dataset) <= limit
    return mask


@dataclass(frozen=True)
class ConstrainedBest:
    """The best architecture among the feasible ones, and the unconstrained best beside it."""

    index: int
    value: float
    n_feasible: int
    n_archs: int
    best_index: int
    best_value: float


def constrained_best(
    store: Store, dataset: str, split: str, hp: int | str, seed: Seed,
    constraint: Mapping[str, float], metric: str = "accuracy", epoch: int | None = None,
) -> ConstrainedBest:  # fmt: skip
    """:meth:`Store.best` restricted to the architectures that meet ``constraint`` (costs of
    ``dataset``'s network); :class:`BenchmarkQueryError` when none does."""
    best_index, best_value = store.best(dataset, split, hp, seed, metric, epoch)
    values = store.metric_all(dataset, split, hp, metric, seed, epoch).astype(np.float64)
    mask = feasible_mask(store, constraint, dataset)
    usable = mask & ~np.isnan(values)
    if not usable.any():
        raise BenchmarkQueryError(
            f"no architecture meets {describe(constraint)} on store {store.path.name} "
            f"({int(mask.sum())} feasible, none with {metric} on {dataset}/{split} @ hp {hp})"
        )
    pick = np.where(usable, values if metric == "accuracy" else -values, -np.inf)
    index = int(np.argmax(pick))
    return ConstrainedBest(
        index, float(values[index]), int(mask.sum()), store.n_archs, best_index, best_value
    )


# --------------------------------------------------------------------------- Pareto fronts
def pareto_front(values: npt.ArrayLike, costs: npt.ArrayLike) -> npt.NDArray[np.int64]:
    """Indices of the value-cost Pareto front (no other architecture has at most the cost and
    a higher value), by ascending cost; NaN values or costs are never on it."""
    value = np.asarray(values, np.float64).ravel()
    cost = np.asarray(costs, np.float64).ravel()
    if value.shape != cost.shape:
        raise ConfigError(f"values {value.shape} and costs {cost.shape} must have one shape")
    known = np.flatnonzero(~np.isnan(value) & ~np.isnan(cost))
    order = known[np.lexsort((-value[known], cost[known]))]  # ascending cost, best first
    front, best = [], -np.inf
    for i in order:
        if value[i] > best:
            front.append(i)
            best = value[i]
    return np.asarray(front, dtype=np.int64)


@dataclass(frozen=True, eq=False)
class ParetoData:
    """What an accuracy-cost figure draws: every architecture's ``accuracy`` (%) and ``cost``
    (``(n_archs,)``, NaN where unknown), the ``front`` indices by ascending cost, and the
    ``limit`` of a constraint on ``cost_metric`` (None: none)."""

    task: str
    cost_metric: str
    unit: str
    accuracy: FloatArray
    cost: FloatArray
    front: npt.NDArray[np.int64]
    limit: float | None = None


def pareto_data(
    store: Store, task: str, hp: int | str, cost_metric: str, limit: float | None = None
) -> ParetoData:
    """The test accuracy (seed mean) at ``hp`` against ``cost_metric`` for ``task``."""
    accuracy = store.metric_all(*names.resolve(task, "test"), hp, "accuracy", "mean")
    accuracy = accuracy.astype(np.float64)
    cost = cost_values(store, cost_metric, cost_dataset(task))
    unit = UNITS[_family(cost_metric)]
    return ParetoData(task, cost_metric, unit, accuracy, cost, pareto_front(accuracy, cost), limit)
