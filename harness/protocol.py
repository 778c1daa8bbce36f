"""Search protocols, run records and the method interfaces.

A *protocol card* fixes everything a comparison between search methods must hold equal: the
space, the fidelity a method may see (hp-12 validation accuracy of one randomly drawn training
seed per query, as NATS-Bench's ``simulate_train_eval``), the fidelity the chosen architecture
is reported at (hp 200 for tss, 90 for sss, seed mean), the time budget per task and how a
query is charged. Cards are frozen, versioned and serialisable.

Black-box methods implement :class:`BlackBoxMethod` (``setup`` / ``ask`` / ``tell`` /
``recommend``); the harness owns the loop (:func:`harness.oracle.run_search`) and the only door
to the benchmark (:class:`harness.oracle.Oracle`). ``SupernetMethod``
(:mod:`harness.supernet.method`) is the other kind; both kinds share one registry
(:mod:`harness.registry`: ``register_method``, ``get_method``, ``method_names``, ...).

This module defines types only and imports no higher module: import the oracle from
:mod:`harness.oracle`, the registry from :mod:`harness.registry` and ``SupernetMethod`` from
:mod:`harness.supernet.method`, where they live.
"""

from __future__ import annotations

import abc
import dataclasses
import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, ClassVar, NamedTuple

import numpy as np

from harness.bench import costs, names
from harness.errors import ConfigError, lookup_versioned, reject_unknown_fields, unknown
from harness.search_utils import SearchHistory
from harness.spaces import Space, space_names

__all__ = [
    "CHARGES",
    "PROTOCOLS",
    "BlackBoxMethod",
    "CostLedger",
    "ProtocolCard",
    "Query",
    "SearchOutcome",
    "TrajectoryPoint",
    "check_config",
    "get_protocol",
    "protocol_names",
]

logger = logging.getLogger(__name__)

#: How a query is charged. ``train_time+valid_eval``: the drawn seed's whole hp-schedule
#: training time plus one epoch of validation time (``simulate_train_eval``'s ``time_cost``).
CHARGES: tuple[str, ...] = ("train_time+valid_eval",)
FITNESS_SEEDS: tuple[str, ...] = ("random", "mean")


# --------------------------------------------------------------------------- protocol cards
@dataclass(frozen=True)
class ProtocolCard:
    """A search protocol. Budgets are simulated seconds per search task.

    ``transfer_tasks`` is empty for ordinary cards (the chosen architecture is reported on the
    task it was searched on); a transfer card reports it on every task listed there. A card
    with a ``constraint`` keeps a search to the architectures within its limits.
    """

    name: str
    version: int
    space: str
    fitness_hp: str
    report_hp: str
    budgets: Mapping[str, float] = field(hash=False)
    tasks: tuple[str, ...]
    transfer_tasks: tuple[str, ...] = ()
    fitness_role: str = "valid"
    fitness_seed: str = "random"
    report_seed: str = "mean"
    charge: str = "train_time+valid_eval"
    #: Hardware limits, cost metric -> largest value allowed (``{"latency:pixel3": 5.0}``, ms;
    #: :mod:`harness.bench.costs`). The oracle answers these costs for free, a search
    #: recommends only architectures within them, and regret is measured against the best one.
    constraint: Mapping[str, float] = field(default_factory=dict, hash=False)

    def __post_init__(self) -> None:
        if self.space not in space_names():
            raise ConfigError(unknown("search space", self.space, space_names()))
        for hp in (self.fitness_hp, self.report_hp):
            try:
                names.hp_key(self.space, hp)
            except Exception as err:
                raise ConfigError(f"protocol {self.name!r}: {err}") from None
        if self.fitness_role == "test":
            raise ConfigError(f"protocol {self.name!r}: a search may not see test metrics")
        if self.fitness_role not in names.ROLES:
            raise ConfigError(unknown("fitness role", self.fitness_role, ("train", "valid")))
        if self.fitness_seed not in FITNESS_SEEDS:
            raise ConfigError(unknown("fitness seed policy", self.fitness_seed, FITNESS_SEEDS))
        if self.report_seed != "mean":
            raise ConfigError(unknown("report seed policy", self.report_seed, ("mean",)))
        if self.charge not in CHARGES:
            raise ConfigError(unknown("charge rule", self.charge, CHARGES))
        for task in (*self.tasks, *self.transfer_tasks, *self.budgets):
            if task not in names.TASKS:
                raise ConfigError(f"protocol {self.name!r}: " + unknown("task", task, names.TASKS))
        if set(self.budgets) != set(self.tasks):
            raise ConfigError(
                f"protocol {self.name!r}: budgets given for {sorted(self.budgets)}, "
                f"tasks are {list(self.tasks)}"
            )
        for task, budget in self.budgets.items():
            if not (isinstance(budget, int | float) and math.isfinite(budget) and budget > 0):
                raise ConfigError(f"protocol {self.name!r}: budget for {task} must be > 0 s")
        limits = {}
        for metric, limit in sorted(dict(self.constraint).items()):
            try:
                limits[metric] = costs.Constraint(metric, limit).limit
            except ConfigError as err:
                raise ConfigError(f"protocol {self.name!r}: {err}") from None
        object.__setattr__(self, "constraint", MappingProxyType(limits))
        budgets = {t: float(self.budgets[t]) for t in self.tasks}
        object.__setattr__(self, "budgets", MappingProxyType(budgets))
        object.__setattr__(self, "tasks", tuple(self.tasks))
        object.__setattr__(self, "transfer_tasks", tuple(self.transfer_tasks))

    @property
    def key(self) -> str:
        """``name@version``, e.g. ``"nats-tss@1"`` (recorded in every run)."""
        return f"{self.name}@{self.version}"

    def eval_tasks(self, task: str) -> tuple[str, ...]:
        """Tasks the architecture found on ``task`` is reported on."""
        return self.transfer_tasks or (task,)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict; ``ProtocolCard.from_dict`` inverts it."""
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        out["budgets"] = dict(self.budgets)
        out["tasks"] = list(self.tasks)
        out["transfer_tasks"] = list(self.transfer_tasks)
        out["constraint"] = dict(self.constraint)
        if not self.constraint:  # cards without one keep the manifests they always had
            del out["constraint"]
        return out

    @staticmethod
    def from_dict(data: Mapping[str, Any]) -> ProtocolCard:
        reject_unknown_fields(ProtocolCard, data, "protocol card")
        values = dict(data)
        for key in ("tasks", "transfer_tasks"):
            if key in values:
                values[key] = tuple(values[key])
        return ProtocolCard(**values)


_TASKS = names.TASKS
PROTOCOLS: Mapping[str, ProtocolCard] = MappingProxyType(
    {
        "nats-tss": ProtocolCard(
            name="nats-tss",
            version=1,
            space="tss",
            fitness_hp="12",
            report_hp="200",
            budgets={"cifar10": 20_000, "cifar100": 40_000, "ImageNet16-120": 120_000},
            tasks=_TASKS,
        ),
        "nats-sss": ProtocolCard(
            name="nats-sss",
            version=1,
            space="sss",
            fitness_hp="12",
            report_hp="90",
            budgets={"cifar10": 20_000, "cifar100": 40_000, "ImageNet16-120": 60_000},
            tasks=_TASKS,
        ),
        "nats-tss-transfer": ProtocolCard(
            name="nats-tss-transfer",
            version=1,
            space="tss",
            fitness_hp="12",
            report_hp="200",
            budgets={"cifar10": 20_000},
            tasks=("cifar10",),
            transfer_tasks=_TASKS,
        ),
        # The question of the HELP latency table: the best CIFAR-10 cell that runs within 5 ms
        # on a Pixel 3 (3,087 of the 15,625 cells do). CIFAR-10 only: the table was measured
        # on 32x32 inputs, and ImageNet16-120's networks see 16x16 ones.
        "nats-tss-pixel3-5ms": ProtocolCard(
            name="nats-tss-pixel3-5ms",
            version=1,
            space="tss",
            fitness_hp="12",
            report_hp="200",
            budgets={"cifar10": 20_000},
            tasks=("cifar10",),
            constraint={"latency:pixel3": 5.0},
        ),
    }
)


def protocol_names() -> tuple[str, ...]:
    return tuple(PROTOCOLS)


def get_protocol(name: str) -> ProtocolCard:
    """The card called ``name`` (``"nats-tss"``) or keyed ``name@version`` (``"nats-tss@1"``)."""
    return lookup_versioned(PROTOCOLS, name, "protocol")


# --------------------------------------------------------------------------- run records
class Query(NamedTuple):
    """One answered oracle query: 1-based ``step``, ``arch`` index, ``valid`` accuracy (%),
    cumulative ``spent`` simulated seconds after it, and its own ``cost`` (s)."""

    step: int
    arch: int
    valid: float
    spent: float
    cost: float


class TrajectoryPoint(NamedTuple):
    """The method's recommendation after query ``step``; ``incumbent_valid`` is the best
    validation accuracy observed for it so far (NaN if it was never queried)."""

    step: int
    spent: float
    incumbent: int
    incumbent_valid: float


@dataclass(frozen=True)
class SearchOutcome:
    """Result of :func:`run_search`: the chosen ``arch``, the trajectory (one point per
    query; under a constraint, per query after the first feasible one), ``queries`` answered,
    ``spent`` simulated seconds, ``distinct_archs`` queried (up to isomorphism) and ``valid``,
    the best observed validation accuracy of ``arch``."""

    arch: int
    trajectory: list[TrajectoryPoint]
    queries: int
    spent: float
    distinct_archs: int
    valid: float = math.nan
    #: False when a constrained search saw no feasible architecture: ``arch`` is then the
    #: method's own (infeasible) recommendation, which the runner does not report as chosen.
    feasible: bool = True
    #: The method's recommendation where the harness replaced it by the best feasible seen.
    recommended: int | None = None
    #: Free cost queries (:meth:`harness.oracle.Oracle.cost`) the method made.
    cost_queries: int = 0
    #: Why the chosen architecture is not the method's, or why there is none (in words).
    note: str | None = None

    def ledger(self, wall_seconds: float | None = None) -> CostLedger:
        return CostLedger(
            sim_seconds=self.spent,
            queries=self.queries,
            distinct_archs=self.distinct_archs,
            wall_seconds=wall_seconds,
        )


@dataclass(frozen=True)
class CostLedger:
    """What a run cost. Black-box runs fill the simulated fields; supernet runs the measured
    ones (``device_seconds`` on the accelerator, training ``epochs``, forward and backward
    passes over batches). Fields that do not apply are None (null in results), never -1."""

    sim_seconds: float | None = None
    queries: int | None = None
    distinct_archs: int | None = None
    wall_seconds: float | None = None
    device_seconds: float | None = None
    epochs: int | None = None
    forward_passes: int | None = None
    backward_passes: int | None = None

    def to_dict(self) -> dict[str, float | int | None]:
        return dataclasses.asdict(self)


# --------------------------------------------------------------------------- methods
def check_config(ok: bool, message: str) -> None:
    """Raise :class:`ConfigError` with ``message`` unless ``ok`` (for ``Config.__post_init__``)."""
    if not ok:
        raise ConfigError(message)


class BlackBoxMethod(abc.ABC):
    """A black-box search method: the harness asks for an architecture, queries the oracle and
    tells the method the validation accuracy, until the budget is spent.

    Subclasses set ``name``, a frozen dataclass ``Config`` (every hyperparameter with a default,
    validated in ``__post_init__``), and implement :meth:`ask`. ``__init__`` only stores the
    config; all state is created in :meth:`setup`, so one instance can serve many runs. The
    base ``tell`` records the history and ``recommend`` returns the best architecture seen
    (NATS-Bench reports the best validation of the whole history); overrides call ``super()``.
    All randomness must come from ``self.rng``.
    """

    name: ClassVar[str]
    Config: ClassVar[type[Any]]
    config: Any
    space: Space
    rng: np.random.Generator
    history: SearchHistory

    def __init__(self, config: Any | None = None) -> None:
        if config is None:
            config = self.Config()
        if not isinstance(config, self.Config):
            raise ConfigError(
                f"{type(self).__name__} takes a {self.Config.__qualname__}, "
                f"got {type(config).__name__}"
            )
        self.config = config

    def setup(self, space: Space, rng: np.random.Generator) -> None:
        """Start a new search on ``space``; ``rng`` is the method's only source of randomness."""
        self.space = space
        self.rng = rng
        self.history = SearchHistory()

    @abc.abstractmethod
    def ask(self) -> int:
        """The next architecture to evaluate (an official index)."""

    def tell(self, arch: int, valid: float) -> None:
        """Receive the validation accuracy (%) of ``arch`` at the protocol's fidelity."""
        self.history.add(arch, valid)

    def recommend(self) -> int:
        """The architecture this search chooses (default: best validation accuracy seen)."""
        return self.history.best_arch

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.config!r})"
