"""``check_method``: the check every registered black-box method must pass.

It verifies the protocol shape, that the configuration round-trips through ``asdict`` and JSON,
that ``__init__`` only stores the config, that the method's module does not reach the
benchmark table, the runner or the report, that a search respects the budget and queries the
oracle only through the harness loop, that the method holds no oracle, table or store, that it
leaves the global random generators alone, and that the same seed gives the same trajectory
while another seed gives another. Failures raise ``AssertionError`` saying what is wrong.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import random
import sys
from typing import Any

import numpy as np

from harness.errors import ConfigError
from harness.oracle import FitnessTables, Oracle, run_search, synthetic_tables
from harness.protocol import BlackBoxMethod, SearchOutcome, get_protocol

logger = logging.getLogger(__name__)

__all__ = ["check_method"]

#: Modules a method must not reference: the table (bench, except its vocabulary), the runner
#: and its results, the report.
_FORBIDDEN = ("harness.bench", "harness.runner", "harness.results", "harness.report")
_ALLOWED = ("harness.bench.names",)


def check_method(
    cls: type[BlackBoxMethod], store_or_tables: Any = None, *, task: str = "cifar10"
) -> None:
    """Raise ``AssertionError`` if ``cls`` breaks the black-box method protocol.

    Args:
        cls: the method class.
        store_or_tables: a :class:`~harness.bench.store.Store` (searched under its space's
            ``nats-*`` protocol on ``task``), a :class:`FitnessTables`, or None for small
            synthetic tables over both spaces. Tables must cover the whole space.
    """
    _check_shape(cls)
    _check_config(cls)
    _check_module(cls)
    for tables in _tables(store_or_tables, task):
        _check_search(cls, tables)


# --------------------------------------------------------------------------- static checks
def _check_shape(cls: type[BlackBoxMethod]) -> None:
    assert isinstance(cls, type) and issubclass(cls, BlackBoxMethod), (
        f"{cls!r} is not a subclass of BlackBoxMethod"
    )
    name = getattr(cls, "name", None)
    assert isinstance(name, str) and name, f"{cls.__qualname__}.name must be a non-empty string"
    assert not getattr(cls, "__abstractmethods__", None), (
        f"{cls.__qualname__} leaves abstract methods unimplemented: "
        f"{sorted(cls.__abstractmethods__)}"
    )
    config = getattr(cls, "Config", None)
    assert dataclasses.is_dataclass(config) and isinstance(config, type), (
        f"{cls.__qualname__}.Config must be a dataclass"
    )
    assert config.__dataclass_params__.frozen, f"{cls.__qualname__}.Config must be frozen"  # type: ignore[attr-defined]


def _check_config(cls: type[BlackBoxMethod]) -> None:
    where = f"{cls.__qualname__}.Config"
    try:
        config = cls.Config()
    except Exception as err:
        raise AssertionError(f"{where}() must work (every field needs a default): {err}") from err
    values = dataclasses.asdict(config)
    assert cls.Config(**values) == config, f"{where}(**asdict(config)) != config"
    try:
        text = json.dumps(values)
    except (TypeError, ValueError) as err:
        raise AssertionError(f"{where} is not JSON-serialisable: {err}") from err
    assert cls.Config(**json.loads(text)) == config, (
        f"{where} does not survive a JSON round trip: {values} -> {json.loads(text)}"
    )
    method = cls(config)
    assert method.config is config, f"{cls.__qualname__}.__init__ must store the config it is given"
    extra = sorted(set(vars(method)) - {"config"})
    assert not extra, f"{cls.__qualname__}.__init__ must only store the config; it also set {extra}"


def _check_module(cls: type[BlackBoxMethod]) -> None:
    module = sys.modules.get(cls.__module__)
    for key, value in vars(module).items() if module is not None else ():
        origin = (
            value.__name__ if isinstance(value, type(sys)) else getattr(value, "__module__", None)
        )
        if not isinstance(origin, str) or origin.startswith(_ALLOWED):
            continue
        assert not origin.startswith(_FORBIDDEN), (
            f"module {cls.__module__} of {cls.__qualname__} references {key!r} from {origin}: "
            "a method sees the benchmark only through the oracle the harness gives it"
        )


# --------------------------------------------------------------------------- search checks
def _tables(source: Any, task: str) -> list[FitnessTables]:
    from harness.bench.store import Store  # the check reads the table; methods may not

    if source is None:
        gen = np.random.default_rng(20_240_601)
        return [synthetic_tables("tss", gen), synthetic_tables("sss", gen)]
    if isinstance(source, Store):
        source = FitnessTables.from_store(source, get_protocol(f"nats-{source.space_name}"), task)
    if not isinstance(source, FitnessTables):
        raise ConfigError(f"check_method takes a Store, FitnessTables or None, got {source!r}")
    if not source.complete:
        raise ConfigError(
            f"check_method needs tables covering the whole space; these hold "
            f"{int(source.present.sum())} of {source.space.num_archs} architectures"
        )
    return [source]


def _signature(outcome: SearchOutcome, oracle: Oracle) -> tuple[np.ndarray, ...]:
    history = oracle.history
    return (
        np.array([q.arch for q in history]),
        np.array([q.valid for q in history]),
        np.array([p.incumbent for p in outcome.trajectory] + [outcome.arch]),
        np.array([p.incumbent_valid for p in outcome.trajectory]),
    )


def _same(a: tuple[np.ndarray, ...], b: tuple[np.ndarray, ...]) -> bool:
    return all(np.array_equal(x, y, equal_nan=True) for x, y in zip(a, b, strict=True))


def _search(
    method: BlackBoxMethod, tables: FitnessTables, seed: int
) -> tuple[SearchOutcome, Oracle]:
    oracle = tables.oracle(np.random.default_rng([seed, 1]))
    where = f"{type(method).__qualname__} on {tables.space_name}"
    try:
        method.setup(tables.space, np.random.default_rng([seed, 0]))
        first = method.ask()
        assert isinstance(first, int | np.integer) and not isinstance(first, bool), (
            f"{where}: ask() must return an int index, got {type(first).__name__}"
        )
        method.setup(tables.space, np.random.default_rng([seed, 0]))
        outcome = run_search(method, oracle)
    except AssertionError:
        raise
    except Exception as err:
        raise AssertionError(f"{where} raised {type(err).__name__}: {err}") from err
    return outcome, oracle


def _check_budget(where: str, outcome: SearchOutcome, oracle: Oracle) -> None:
    assert oracle.n_refused == 0, (
        f"{where}: the oracle was queried {oracle.n_refused} time(s) after the budget was spent"
    )
    assert oracle.n_queries == outcome.queries == len(outcome.trajectory), (
        f"{where}: {oracle.n_queries} oracle queries but {len(outcome.trajectory)} loop steps: "
        "the method queried the oracle outside the harness loop"
    )
    for q in oracle.history:
        assert q.spent - q.cost < oracle.budget, f"{where}: query {q.step} started over budget"
    assert oracle.exhausted, f"{where}: the search stopped before the budget was spent"
    assert 0 <= outcome.arch < oracle.space.num_archs, f"{where}: recommend() is out of range"


def _holds(value: Any, depth: int = 0, seen: set[int] | None = None) -> str | None:
    """Name of a forbidden object (oracle, tables, store) reachable from ``value``."""
    from harness.bench.store import Store

    seen = set() if seen is None else seen
    if id(value) in seen or depth > 4:
        return None
    seen.add(id(value))
    if isinstance(value, Oracle | FitnessTables | Store):
        return type(value).__name__
    if isinstance(value, dict):
        children: list[Any] = [*value.keys(), *value.values()]
    elif isinstance(value, list | tuple | set | frozenset):
        children = list(value)
    elif hasattr(value, "__dict__") and not isinstance(value, type):
        children = list(vars(value).values())
    else:
        children = [
            getattr(value, s) for s in getattr(type(value), "__slots__", ()) if hasattr(value, s)
        ]
    for child in children:
        found = _holds(child, depth + 1, seen)
        if found is not None:
            return found
    return None


def _global_state() -> tuple[Any, ...]:
    # Read (never reseed) the legacy global generator, to catch methods that draw from it.
    state: tuple[Any, ...] = np.random.get_state(legacy=True)  # type: ignore[assignment]  # noqa: NPY002
    return (random.getstate(), np.array(state[1]), state[2])


def _check_search(cls: type[BlackBoxMethod], tables: FitnessTables) -> None:
    where = f"{cls.__qualname__} on {tables.space_name}"
    before = _global_state()
    method = cls(cls.Config())
    outcome, oracle = _search(method, tables, seed=1)
    _check_budget(where, outcome, oracle)
    found = _holds(method)
    assert found is None, (
        f"{where}: the method holds a reference to {found}; it may only see what it is told"
    )
    first = _signature(outcome, oracle)
    again = _signature(*_search(cls(cls.Config()), tables, seed=1))
    reused = _signature(*_search(method, tables, seed=1))
    other = _signature(*_search(cls(cls.Config()), tables, seed=2))
    after = _global_state()
    assert (
        before[0] == after[0] and np.array_equal(before[1], after[1]) and before[2] == after[2]
    ), f"{where}: the global random state changed; use the Generator given to setup()"
    assert _same(first, again), f"{where}: the same seeds gave different trajectories"
    assert _same(first, reused), f"{where}: setup() does not reset the state of a reused instance"
    assert not np.array_equal(first[0], other[0]), (
        f"{where}: a different method seed gave the same sequence of architectures"
    )
    logger.debug("%s passed (%d queries)", where, outcome.queries)
