"""The budgeted oracle, the fitness tables behind it, and the harness-owned search loop.

:class:`Oracle` is the only door a search method has to the benchmark. It holds two arrays
shaped ``(n_seeds, n_archs)``: the validation accuracy (%) of each training seed at the
protocol's fitness schedule (NaN where a seed is missing) and the simulated seconds a query of
that seed costs. It holds no test metric and no reference to a store.

The charging rule is NATS-Bench's ``simulate_train_eval`` as used by its multi-trial search
scripts: a query draws one of the seeds present for the architecture, answers that seed's
validation accuracy, and charges that seed's whole-schedule training time plus one epoch of
validation time. A query is refused (:class:`~harness.errors.BudgetExhausted`) once the total
spent is ``>= budget``; the query that crosses the budget is still answered and charged, and
the search then stops, so a search ends having spent at least its budget and less than the
budget plus one query.

Under a protocol card with a ``constraint`` (e.g. ``latency:pixel3 <= 5 ms``) the oracle also
answers the cost of any architecture for free (:meth:`Oracle.cost`: not charged, counted in
``n_cost_queries``), and :func:`run_search` never recommends an architecture outside the limits:
an infeasible recommendation of the method is replaced by the best feasible one seen.
"""

from __future__ import annotations

import logging
import math
import weakref
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

import numpy as np
import numpy.typing as npt

from harness.bench import costs as bench_costs
from harness.bench import names
from harness.bench.costs import CostView
from harness.errors import BenchmarkQueryError, BudgetExhausted, ConfigError, unknown
from harness.protocol import (
    BlackBoxMethod,
    ProtocolCard,
    Query,
    SearchOutcome,
    TrajectoryPoint,
    get_protocol,
)
from harness.spaces import Arch, Space, get_space

if TYPE_CHECKING:
    from harness.bench.store import Store

__all__ = ["FitnessTables", "Oracle", "run_search", "synthetic_tables"]

logger = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.float64]


def _frozen(values: npt.ArrayLike, what: str) -> FloatArray:
    """A read-only float64 2-D array owning its data (reused if it already is one)."""
    arr = np.asarray(values)
    if arr.ndim != 2:
        raise ConfigError(f"{what} must be 2-D (n_seeds, n_archs), got shape {arr.shape}")
    if arr.dtype == np.float64 and not arr.flags.writeable and arr.flags.owndata:
        return arr
    out = np.array(arr, dtype=np.float64, copy=True)
    out.flags.writeable = False
    return out


class SharedNoise:
    """Which training seed the ``k``-th query of an architecture draws, as a function of
    ``(key, architecture, k)`` alone: two searches given the same key (every method and
    config of one grid seed) draw the same seed for the same architecture, whatever else
    they query, so their results differ only by what the methods chose (a paired design).

    The first :data:`TABLE` visits of each architecture read a table drawn once from the key;
    later ones hash ``(key, architecture, k)``."""

    TABLE = 4

    def __init__(self, key: Sequence[int], n_archs: int) -> None:
        self.key = tuple(int(k) for k in key)
        rng = np.random.default_rng(np.random.SeedSequence(self.key))
        self._table = rng.random((n_archs, self.TABLE))  # (n_archs, TABLE) uniforms
        self._visits: dict[int, int] = {}

    def uniform(self, arch: int) -> float:
        """A uniform number in [0, 1) for the next query of ``arch``."""
        k = self._visits.get(arch, 0)
        self._visits[arch] = k + 1
        if k < self.TABLE:
            return float(self._table[arch, k])
        state = np.random.SeedSequence([*self.key, arch, k]).generate_state(2, np.uint32)
        return float((int(state[0]) << 21 | int(state[1]) >> 11) / 2.0**53)


class Oracle:
    """Budgeted access to validation accuracy; see the module docstring for the charge rule.

    Args:
        space: the search space; architectures may be given as index or string.
        task: the search task (``cifar10``, ``cifar100``, ``ImageNet16-120``), for records.
        fitness: validation accuracy (%), shape ``(n_seeds, space.num_archs)``, NaN = absent.
        cost: simulated seconds charged per query, same shape, ``> 0`` where fitness exists.
        budget: simulated seconds, finite and ``> 0``.
        rng: draws the training seed of each query: a Generator (queries draw in turn), or
            :class:`SharedNoise` (the draw depends on the architecture and its visit only).
        costs: cost metric -> ``(n_archs,)`` values (ms for latency, M otherwise), answered
            free by :meth:`cost`.
        constraint: cost metric -> largest value allowed (each metric must be in ``costs``).

    A query of an architecture with no seed present raises
    :class:`~harness.errors.BenchmarkQueryError` and charges nothing.
    """

    def __init__(
        self,
        space: Space,
        task: str,
        fitness: npt.ArrayLike,
        cost: npt.ArrayLike,
        budget: float,
        rng: np.random.Generator | SharedNoise,
        *,
        costs: Mapping[str, npt.ArrayLike] | None = None,
        constraint: Mapping[str, float] | None = None,
    ) -> None:
        if not isinstance(rng, np.random.Generator | SharedNoise):
            raise ConfigError(
                f"the oracle needs a numpy Generator or SharedNoise, got {type(rng).__name__}"
            )
        if not (isinstance(budget, int | float) and math.isfinite(budget) and budget > 0):
            raise ConfigError(f"budget must be a finite number of seconds > 0, got {budget!r}")
        self._fitness = _frozen(fitness, "fitness")
        self._cost = _frozen(cost, "cost")
        if self._fitness.shape != self._cost.shape or self._fitness.shape[1] != space.num_archs:
            raise ConfigError(
                f"fitness {self._fitness.shape} and cost {self._cost.shape} must both be "
                f"(n_seeds, {space.num_archs}) for space {space.name}"
            )
        present = ~np.isnan(self._fitness)
        if not (self._cost[present] > 0).all():
            raise ConfigError("cost must be finite and > 0 wherever fitness is present")
        self.space = space
        self.task = task
        self.budget = float(budget)
        self._rng = rng
        self._n_seeds = self._fitness.shape[0]
        self._complete = bool(present.all())
        self._rows: dict[int, tuple[int, ...]] = {}
        self._spent = 0.0
        self._history: list[Query] = []
        self.n_refused = 0
        #: The free side: the costs the protocol's constraint names, and its limits.
        self.costs = CostView(space, costs or {}, constraint or {})

    @classmethod
    def from_store(
        cls,
        store: Store,
        protocol: ProtocolCard | str,
        task: str,
        budget: float | None = None,
        rng: np.random.Generator | None = None,
    ) -> Oracle:
        """An oracle on ``store`` under ``protocol`` for ``task`` (budget None: the card's)."""
        if rng is None:
            raise ConfigError("Oracle.from_store needs rng (a numpy Generator)")
        return FitnessTables.from_store(store, protocol, task).oracle(rng, budget)

    # ------------------------------------------------------------------ queries
    def query(self, arch: Arch) -> float:
        """Validation accuracy (%) of one training seed of ``arch``, drawn with the oracle's
        generator among the seeds present, and charge that seed's cost.

        Raises :class:`~harness.errors.BudgetExhausted` if ``spent >= budget`` already (nothing
        is charged); the query that crosses the budget is answered and charged in full.
        """
        index = self.space.parse(arch)
        if self._spent >= self.budget:
            self.n_refused += 1
            raise BudgetExhausted(
                f"budget of {self.budget:g} s spent ({self._spent:g} s after "
                f"{len(self._history)} queries)"
            )
        u = self._rng.uniform(index) if isinstance(self._rng, SharedNoise) else self._rng.random()
        if self._complete:
            row = int(u * self._n_seeds)
        else:
            rows = self._rows.get(index)
            if rows is None:
                rows = tuple(np.flatnonzero(~np.isnan(self._fitness[:, index])).tolist())
                self._rows[index] = rows
            if not rows:
                raise BenchmarkQueryError(
                    f"architecture {index} ({self.space.index_to_str(index)}) has no fitness "
                    f"on {self.task} in these tables"
                )
            row = rows[int(u * len(rows))]
        valid = float(self._fitness[row, index])
        cost = float(self._cost[row, index])
        self._spent += cost
        self._history.append(Query(len(self._history) + 1, index, valid, self._spent, cost))
        return valid

    def cost(self, arch: Arch, metric: str) -> float:
        """Cost ``metric`` of ``arch`` (ms for latency, M otherwise; NaN where unknown); free:
        never charged, even after the budget is spent; counted in ``n_cost_queries``."""
        return self.costs.cost(arch, metric)

    def feasible(self, arch: Arch) -> bool:
        """Whether ``arch`` is within every limit of the constraint (free; counted)."""
        return self.costs.feasible(arch)

    @property
    def constraint(self) -> Mapping[str, float]:
        """Cost metric -> largest value allowed (empty: unconstrained)."""
        return self.costs.constraint

    @property
    def n_cost_queries(self) -> int:
        """Free cost queries answered (by the oracle or its :class:`CostView`)."""
        return self.costs.n_queries

    @property
    def spent(self) -> float:
        """Simulated seconds charged so far."""
        return self._spent

    @property
    def remaining(self) -> float:
        """Budget left (negative after the crossing query)."""
        return self.budget - self._spent

    @property
    def exhausted(self) -> bool:
        """True once ``spent >= budget``: any further query is refused."""
        return self._spent >= self.budget

    @property
    def n_queries(self) -> int:
        """Answered queries."""
        return len(self._history)

    @property
    def history(self) -> list[Query]:
        """Answered queries in order (a copy)."""
        return list(self._history)

    @property
    def last(self) -> Query:
        """The latest answered query."""
        if not self._history:
            raise LookupError("no query has been answered yet")
        return self._history[-1]

    @property
    def distinct_archs(self) -> int:
        """Distinct architectures queried, counting isomorphic ones once."""
        if not self._history:
            return 0
        classes = self.space.iso_classes()
        return len({int(classes[q.arch]) for q in self._history})


# --------------------------------------------------------------------------- tables
@dataclass(frozen=True, eq=False)
class FitnessTables:
    """The arrays an oracle needs for one (data, protocol, task), built once and reused.

    ``fitness`` and ``cost`` are read-only float64 ``(n_seeds, n_archs)``; ``seeds`` labels
    the rows (training seeds, or ``("mean",)`` when the source holds only seed means).
    """

    space_name: str
    task: str
    protocol_key: str
    fitness: FloatArray
    cost: FloatArray
    seeds: tuple[str, ...]
    budget: float
    checksum: str
    synthetic: bool
    #: Where the data forced a departure from the protocol (e.g. seed means only), in words.
    notes: tuple[str, ...] = ()
    #: The card's constraint and the ``(n_archs,)`` costs it names (empty: unconstrained).
    constraint: Mapping[str, float] = field(default_factory=dict)
    costs: Mapping[str, FloatArray] = field(default_factory=dict)

    @property
    def space(self) -> Space:
        return get_space(self.space_name)

    @property
    def present(self) -> npt.NDArray[np.bool_]:
        """Architectures with at least one seed, shape ``(n_archs,)``."""
        return np.asarray(~np.isnan(self.fitness).all(axis=0))

    @property
    def complete(self) -> bool:
        """Every architecture has at least one seed (a search may sample the whole space)."""
        return bool(self.present.all())

    def oracle(self, rng: np.random.Generator | SharedNoise, budget: float | None = None) -> Oracle:
        """A fresh oracle on these tables (budget None: the protocol's budget for the task)."""
        return Oracle(
            self.space,
            self.task,
            self.fitness,
            self.cost,
            self.budget if budget is None else budget,
            rng,
            costs=self.costs,
            constraint=self.constraint,
        )

    @classmethod
    def from_store(cls, store: Store, protocol: ProtocolCard | str, task: str) -> FitnessTables:
        """Read (once per store, protocol and task; cached) the fitness and cost arrays."""
        card = get_protocol(protocol) if isinstance(protocol, str) else protocol
        per_store = _CACHE.setdefault(store, {})
        key = (card.key, task)
        if key not in per_store:
            per_store[key] = _read_tables(store, card, task)
        return per_store[key]


_CACHE: weakref.WeakKeyDictionary[Store, dict[tuple[str, str], FitnessTables]] = (
    weakref.WeakKeyDictionary()
)


def _read_tables(store: Store, card: ProtocolCard, task: str) -> FitnessTables:
    if store.space_name != card.space:
        raise ConfigError(
            f"protocol {card.key} is for {card.space}, the store holds {store.space_name}"
        )
    if task not in card.tasks:
        raise ConfigError(unknown(f"search task of {card.key}", task, card.tasks))
    dataset, _ = names.resolve(task, card.fitness_role)
    held = store.block(dataset, card.fitness_hp).held_seeds
    seeds: list[int | Literal["mean"]] = ["mean"]
    notes: list[str] = []
    if card.fitness_seed == "random" and held:
        seeds = list(held)
    elif card.fitness_seed == "random":
        notes.append(f"{task}: {dataset} @ hp {card.fitness_hp} holds only seed means, so each "
                     "query answers the mean instead of one drawn seed")  # fmt: skip
    rows = [_seed_row(store, card, task, seed, notes) for seed in seeds]
    cost_set = bench_costs.cost_dataset(task)
    costs = {m: store.cost_metric_all(m, cost_set) for m in card.constraint}
    for note in notes:
        logger.info("%s", note)
    fitness = _frozen(np.stack([r[0] for r in rows]), "fitness")
    cost = _frozen(np.stack([r[1] for r in rows]), "cost")
    logger.info("fitness tables %s %s: %d seeds, %d/%d architectures present", card.key, task,
                len(seeds), int((~np.isnan(fitness)).any(axis=0).sum()), store.n_archs)  # fmt: skip
    return FitnessTables(
        space_name=store.space_name,
        task=task,
        protocol_key=card.key,
        fitness=fitness,
        cost=cost,
        seeds=tuple(map(str, seeds)),
        budget=card.budgets[task],
        checksum=store.checksum,
        synthetic=store.synthetic,
        notes=tuple(dict.fromkeys(notes)),
        constraint=dict(card.constraint),
        costs=costs,
    )


def _seed_row(
    store: Store, card: ProtocolCard, task: str, seed: int | Literal["mean"], notes: list[str]
) -> tuple[FloatArray, FloatArray]:
    """Fitness and charge of one training seed for every architecture, each ``(n_archs,)``.

    The charge is the whole-schedule training time (on the task's training run) plus one
    epoch of evaluation on the fitness split. Sources without evaluation times are charged
    the training time only; architectures without a training time are treated as absent.
    Both cases are added to ``notes``.
    """
    dataset, split = names.resolve(task, card.fitness_role)
    train_set, train_split = names.resolve(task, "train")
    hp = card.fitness_hp
    acc = store.metric_all(dataset, split, hp, "accuracy", seed).astype(np.float64)
    train = store.metric_all(train_set, train_split, hp, "time", seed).astype(np.float64)
    evaluation = store.epoch_time_all(dataset, split, hp, seed).astype(np.float64)
    no_eval = np.isnan(evaluation) & ~np.isnan(acc)
    if no_eval.any():
        notes.append(f"{task}: {int(no_eval.sum())} architectures lack {split} evaluation "
                     "times, so queries are charged their training time only")  # fmt: skip
    charge = train + np.where(no_eval, 0.0, evaluation)
    unpriced = np.isnan(charge) & ~np.isnan(acc)
    if unpriced.any():
        notes.append(f"{task}: {int(unpriced.sum())} architectures lack a training time "
                     "and are treated as absent")  # fmt: skip
        acc[unpriced] = np.nan
    return acc, charge


def synthetic_tables(
    space_name: str,
    rng: np.random.Generator,
    *,
    score: npt.ArrayLike | None = None,
    n_seeds: int = 3,
    task: str = "cifar10",
    budget: float = 20_000.0,
    noise: float = 0.5,
) -> FitnessTables:
    """Complete, smooth synthetic tables over a whole space (for tests and ``check_method``).

    Fitness is ``60 + 30 * s`` plus Gaussian seed noise (sd ``noise``, in %), where ``s`` in
    [0, 1] is ``score`` rescaled, or by default an additive effect per (position, choice) plus
    a weaker interaction between neighbouring positions, all drawn from ``rng``. The cost of a
    query is 60 s plus a per-(position, choice) time (5..25 s each) with 5% seed jitter, so a
    20,000 s budget buys roughly 150 queries.
    """
    space = get_space(space_name)
    choices = space.all_choices().astype(np.int64)  # (n_archs, positions)
    n_pos, width = choices.shape[1], max(space.choices)
    pos = np.arange(n_pos)
    if score is None:
        main = rng.normal(size=(n_pos, width))
        pair = rng.normal(scale=0.4, size=(n_pos - 1, width, width))
        raw = main[pos, choices].sum(axis=1)
        raw += pair[pos[:-1], choices[:, :-1], choices[:, 1:]].sum(axis=1)
    else:
        raw = np.asarray(score, dtype=np.float64)
        if raw.shape != (space.num_archs,):
            raise ConfigError(f"score must have shape ({space.num_archs},), got {raw.shape}")
    s = (raw - raw.min()) / max(float(np.ptp(raw)), 1e-12)
    fitness = 60.0 + 30.0 * s + rng.normal(scale=noise, size=(n_seeds, space.num_archs))
    per_choice = rng.uniform(5.0, 25.0, size=(n_pos, width))
    base_cost = 60.0 + per_choice[pos, choices].sum(axis=1)
    cost = base_cost * rng.uniform(0.95, 1.05, size=(n_seeds, space.num_archs))
    return FitnessTables(
        space_name=space.name,
        task=task,
        protocol_key="synthetic@0",
        fitness=_frozen(fitness, "fitness"),
        cost=_frozen(cost, "cost"),
        seeds=tuple(str(i) for i in range(n_seeds)),
        budget=float(budget),
        checksum="synthetic",
        synthetic=True,
    )


# --------------------------------------------------------------------------- the loop
def run_search(
    method: BlackBoxMethod,
    oracle: Oracle,
    rng: np.random.Generator | None = None,
) -> SearchOutcome:
    """Run ``method`` against ``oracle`` until the budget is spent (the harness-owned loop).

    With ``rng`` the method is first ``setup(oracle.space, rng)``; without it the caller must
    have set it up. Each step asks for an architecture, queries the oracle, tells the method
    and records its current recommendation. The oracle's own budget rule ends the loop.

    A method that defines ``use_costs(view)`` is first given the oracle's free
    :class:`~harness.bench.costs.CostView` (empty when unconstrained). Under a constraint
    (``oracle.constraint``) no infeasible architecture is ever recommended: where the method's
    recommendation is outside the limits, the feasible architecture with the best validation
    seen replaces it; steps before the first feasible query record no trajectory point, and a
    search that saw none ends with ``feasible=False``.
    """
    if rng is not None:
        method.setup(oracle.space, rng)
    view = oracle.costs
    constrained = bool(view.constraint)
    if callable(getattr(method, "use_costs", None)):
        method.use_costs(view)  # type: ignore[attr-defined]
    parse = oracle.space.parse
    best_seen: dict[int, float] = {}
    fallback: int | None = None  # the feasible architecture of best validation seen
    trajectory: list[TrajectoryPoint] = []
    while not oracle.exhausted:
        arch = parse(method.ask())
        valid = oracle.query(arch)
        if valid > best_seen.get(arch, -math.inf):
            best_seen[arch] = valid
            if constrained and view.within(arch):
                if fallback is None or valid > best_seen[fallback]:
                    fallback = arch
        method.tell(arch, valid)
        incumbent = parse(method.recommend())
        if constrained and not view.within(incumbent):
            if fallback is None:
                continue
            incumbent = fallback
        trajectory.append(
            TrajectoryPoint(
                oracle.n_queries, oracle.spent, incumbent, best_seen.get(incumbent, math.nan)
            )
        )
    chosen = parse(method.recommend())
    recommended, note = None, None
    if constrained and not view.within(chosen):
        recommended = chosen
        limits = bench_costs.describe(view.constraint)
        if fallback is None:
            note = (f"no feasible architecture among the {oracle.distinct_archs} queried "
                    f"({limits}); the method recommended {chosen}, outside the limits")  # fmt: skip
        else:
            chosen = fallback
            note = (f"the method recommended {recommended}, outside {limits}: the best "
                    "feasible architecture seen replaces it")  # fmt: skip
    return SearchOutcome(
        arch=chosen,
        trajectory=trajectory,
        queries=oracle.n_queries,
        spent=oracle.spent,
        distinct_archs=oracle.distinct_archs,
        valid=best_seen.get(chosen, math.nan),
        feasible=not (constrained and fallback is None and recommended is not None),
        recommended=recommended,
        cost_queries=oracle.n_cost_queries,
        note=note,
    )
