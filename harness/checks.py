"""``check_method``: the check every registered method must pass, of either kind.

For a black-box method it verifies the protocol shape, that the configuration round-trips
through ``asdict`` and JSON, that ``__init__`` only stores the config, that the method's module
does not reach the benchmark table, the runner or the report (the one-module rule: the module
that defines a method holds nothing from them; a failure says why), that a search respects
the budget and queries the oracle only through the harness loop, that the method holds no
oracle, table or store, that it leaves the global random generators alone, and that the same
seed gives the same trajectory while another seed gives another.

For a supernet method (:func:`check_supernet_method`) it verifies the same protocol shape,
config round trip and module hygiene, then runs tiny CPU searches (C=4, N=1, 8x8 synthetic
images): the loop's step budget holds and the cost ledger is filled, the global random
generators are left alone, the same seed gives the same trajectory of architecture weights and
another seed another. Failures raise ``AssertionError`` saying what is wrong.
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
from harness.registry import get_method
from harness.spaces import get_space, space_names

logger = logging.getLogger(__name__)

__all__ = ["check_method", "check_registered", "check_supernet_method"]

#: Modules a method must not reference: the table (bench, except its vocabulary), the runner
#: and its results, the report.
_FORBIDDEN = (
    "harness.bench",
    "harness.runner",
    "harness.results",
    "harness.report",
    "harness.supernet.quality",
    "harness.oneshot",
)
_ALLOWED = ("harness.bench.names",)
#: Why the module check fails a whole module (the end of its message).
_ONE_MODULE_RULE = (
    "check_method reads the module that defines a method (and those of its base classes), "
    "since whatever that module imports the method can call: it may hold nothing from "
    + ", ".join(_FORBIDDEN)
    + " (harness.bench.names is allowed). Keep a method in a module of its own (one file per "
    "method, as methods/ does; a --plugin file is one) and code that reads the table in another"
)
#: Modules of the harness's own base classes (and builtins), skipped by the module check.
_CORE = ("harness.protocol", "harness.registry", "harness.supernet.method", "builtins", "abc")


def check_method(cls: type[Any], store_or_tables: Any = None, *, task: str = "cifar10") -> None:
    """Raise ``AssertionError`` if ``cls`` breaks its method protocol (black-box or supernet).

    Args:
        cls: the method class; a :class:`~harness.supernet.method.SupernetMethod` subclass is
            checked by :func:`check_supernet_method` (``store_or_tables`` must then be None).
        store_or_tables: a :class:`~harness.bench.store.Store` (searched under its space's
            ``nats-*`` protocol on ``task``), a :class:`FitnessTables`, or None for small
            synthetic tables over both spaces. Tables must cover the whole space.
    """
    if _is_supernet(cls):
        if store_or_tables is not None:
            raise ConfigError("a supernet method is checked on tiny synthetic data; pass no table")
        check_supernet_method(cls)
        return
    _check_shape(cls)
    _check_config(cls)
    _check_module(cls)
    for tables in _tables(store_or_tables, task):
        _check_search(cls, tables)


# --------------------------------------------------------------------------- static checks
def _check_shape(cls: type[Any], base: type[Any] = BlackBoxMethod) -> None:
    """Assert ``cls`` subclasses ``base``, has a name, no abstract methods, a frozen Config."""
    assert isinstance(cls, type) and issubclass(cls, base), (
        f"{cls!r} is not a subclass of {base.__name__}"
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


def _check_config(cls: type[Any], derived: frozenset[str] = frozenset()) -> None:
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
    extra = sorted(set(vars(method)) - {"config"} - derived)
    assert not extra, f"{cls.__qualname__}.__init__ must only store the config; it also set {extra}"


def _check_module(cls: type[Any]) -> None:
    # Registry variants live in harness.registry; check the modules the method code comes from.
    owners = [k.__module__ for k in cls.__mro__ if not k.__module__.startswith(_CORE)]
    for owner in dict.fromkeys(owners or [cls.__module__]):
        _check_module_vars(cls, owner)


def _check_module_vars(cls: type[Any], owner: str) -> None:
    module = sys.modules.get(owner)
    assert module is not None, (
        f"{cls.__qualname__} comes from module {owner}, which is not imported (not in "
        "sys.modules), so check_method cannot read it; load a plug-in file with "
        "harness.registry.load_plugins (or --plugin), which imports it by name"
    )
    for key, value in vars(module).items():
        origin = (
            value.__name__ if isinstance(value, type(sys)) else getattr(value, "__module__", None)
        )
        if not isinstance(origin, str) or origin.startswith(_ALLOWED):
            continue
        assert not origin.startswith(_FORBIDDEN), (
            f"module {owner} of {cls.__qualname__} references {key!r} from {origin}: "
            "a method sees the benchmark only through the oracle the harness gives it. "
            f"{_ONE_MODULE_RULE}"
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


# --------------------------------------------------------------------------- supernet methods
def _is_supernet(cls: Any) -> bool:
    if not isinstance(cls, type) or issubclass(cls, BlackBoxMethod):
        return False
    from harness.supernet.method import SupernetMethod

    return issubclass(cls, SupernetMethod)


def check_registered(name: str) -> None:
    """:func:`check_method` on the method registered as ``name`` (either kind)."""
    check_method(get_method(name))


def check_supernet_method(cls: type[Any], *, epochs: int = 2, steps: int = 2) -> None:
    """Raise ``AssertionError`` if ``cls`` breaks the supernet method protocol.

    Runs tiny CPU searches of ``epochs`` epochs of ``steps`` steps each on every space the
    method claims (its ``spaces``; see module docstring).
    ``arch_split`` may be set by ``__init__`` (it selects the loop's architecture batches).
    """
    from harness.supernet.method import SupernetMethod

    _check_shape(cls, SupernetMethod)
    _check_config(cls, derived=frozenset({"arch_split"}))
    assert cls().arch_split in ("valid", "train"), (
        f"{cls.__qualname__}.arch_split must be 'valid' or 'train'"
    )
    _check_module(cls)
    spaces = getattr(cls, "spaces", ())
    assert spaces and all(s in space_names() for s in spaces), (
        f"{cls.__qualname__}.spaces must name the spaces it searches ({space_names()}); "
        f"got {spaces!r}"
    )
    for space in spaces:
        _check_supernet_search(cls, epochs, steps, space)


def _tiny_search(cls: type[Any], seed: int, epochs: int, steps: int, space: str) -> tuple[Any, ...]:
    """One tiny search on ``space``; returns (result, arch-weight trajectory, train batches
    drawn, net)."""
    import torch

    from harness.supernet.search import run_supernet_search
    from harness.supernet.testing import tiny_config, tiny_loaders, tiny_supernet

    trajectory: list[np.ndarray] = []

    def recording(self: Any, state: dict[str, torch.Tensor]) -> torch.Tensor:
        weights = cls.final_weights(self, state)
        trajectory.append(weights.detach().double().cpu().numpy().copy())
        return weights

    probe = type(cls.__name__, (cls,), {"final_weights": recording, "__module__": cls.__module__})
    net = tiny_supernet(seed, space=space)
    train, valid = tiny_loaders(seed)
    drawn = [0, 0]
    counted = _CountingLoader(train, drawn, 0)
    where = f"{cls.__qualname__} (tiny {space} search, seed {seed})"
    before = _global_state(), torch.get_rng_state()
    try:
        result = run_supernet_search(
            probe(cls.Config(**getattr(cls, "check_settings", {}))),
            net,
            counted,
            _CountingLoader(valid, drawn, 1),
            tiny_config(epochs=epochs, max_steps_per_epoch=steps),
            np.random.default_rng([seed, 0]),
        )
    except AssertionError:
        raise
    except Exception as err:
        raise AssertionError(f"{where} raised {type(err).__name__}: {err}") from err
    after = _global_state(), torch.get_rng_state()
    assert _same_global(before[0], after[0]) and torch.equal(before[1], after[1]), (
        f"{where}: the global random state changed; use the generator the harness gives"
    )
    return result, np.stack(trajectory), drawn, net


class _CountingLoader:
    """Wraps a loader and counts the batches drawn from it in ``counter[slot]``."""

    def __init__(self, loader: Any, counter: list[int], slot: int) -> None:
        self.loader, self.counter, self.slot = loader, counter, slot
        self.generator = loader.generator

    def __len__(self) -> int:
        return len(self.loader)

    def __iter__(self) -> Any:
        for batch in self.loader:
            self.counter[self.slot] += 1
            yield batch


def _same_global(a: tuple[Any, ...], b: tuple[Any, ...]) -> bool:
    return a[0] == b[0] and np.array_equal(a[1], b[1]) and a[2] == b[2]


def _check_supernet_search(cls: type[Any], epochs: int, steps: int, space: str) -> None:
    where = f"{cls.__qualname__} (tiny {space} search)"
    shape = get_space(space).shape
    result, first, drawn, _ = _tiny_search(cls, 1, epochs, steps, space)
    ledger = result.ledger
    assert result.complete and len(result.history) == epochs == ledger.epochs, (
        f"{where}: {ledger.epochs} epochs recorded, {epochs} asked"
    )
    # single-level methods draw their architecture batches from the train loader too
    passes = 2 if cls().arch_split == "train" else 1
    assert drawn[0] <= passes * epochs * steps and drawn[1] <= epochs * steps, (
        f"{where}: {drawn[0]} train and {drawn[1]} valid batches drawn; the budget is "
        f"{epochs} x {steps} steps"
    )
    assert ledger.forward_passes >= epochs * steps and ledger.backward_passes >= epochs * steps, (
        f"{where}: the ledger counts {ledger.forward_passes} forward / {ledger.backward_passes} "
        f"backward passes for {epochs * steps} steps; use the context's loss/grad/backward"
    )
    cost = ledger.to_cost_ledger().to_dict()
    assert all(cost[k] is not None for k in ("device_seconds", "epochs", "forward_passes")), (
        f"{where}: incomplete cost ledger {cost}"
    )
    assert first.shape == (epochs + 1, *shape) and np.isfinite(first).all(), (
        f"{where}: final_weights must give finite {shape} weights; got shape {first.shape[1:]}"
    )
    again = _tiny_search(cls, 1, epochs, steps, space)[1]
    other = _tiny_search(cls, 2, epochs, steps, space)[1]
    assert np.array_equal(first, again), (
        f"{where}: the same seed gave different architecture-weight trajectories"
    )
    assert not np.allclose(first, other), (
        f"{where}: a different seed gave the same architecture-weight trajectory"
    )
    logger.debug("%s passed (%d forward passes)", where, ledger.forward_passes)
