"""Every registered method passes check_method; check_method catches broken methods."""

from __future__ import annotations

import inspect
import sys
import types
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest

from harness.checks import check_method
from harness.errors import BudgetExhausted, ConfigError
from harness.oracle import Oracle, run_search, synthetic_tables
from harness.protocol import BlackBoxMethod
from harness.registry import get_method, make_method, method_names
from harness.spaces import get_space

TABLES = synthetic_tables("tss", np.random.default_rng(7))


@pytest.mark.parametrize("name", method_names("blackbox"))  # supernet: test_supernet_methods
def test_registered_method_passes_check(name: str) -> None:
    check_method(get_method(name))


def test_check_method_accepts_given_tables_and_rejects_partial_ones() -> None:
    check_method(get_method("random_search"), TABLES)
    partial = np.array(TABLES.fitness)
    partial[:, 5] = np.nan
    holey = type(TABLES)(**{**vars(TABLES), "fitness": partial})
    with pytest.raises(ConfigError, match="whole space"):
        check_method(get_method("random_search"), holey)


# --------------------------------------------------------------------------- broken methods
class _Base(BlackBoxMethod):
    @dataclass(frozen=True)
    class Config:
        pass

    def ask(self) -> int:
        return self.space.sample(self.rng)


class GlobalRng(_Base):
    name = "broken-global-rng"

    def ask(self) -> int:
        return int(np.random.randint(self.space.num_archs))  # noqa: NPY002


class Unseeded(_Base):
    name = "broken-unseeded"

    def ask(self) -> int:
        return self.space.sample(np.random.default_rng())


class FixedSeed(_Base):
    name = "broken-fixed-seed"

    def setup(self, space: Any, rng: np.random.Generator) -> None:
        super().setup(space, np.random.default_rng(0))


class OverBudget(_Base):
    """Grabs the oracle from the harness loop and keeps querying after exhaustion."""

    name = "broken-over-budget"

    def tell(self, arch: int, valid: float) -> None:
        super().tell(arch, valid)
        frame = inspect.currentframe()
        oracle = frame.f_back.f_locals["oracle"] if frame and frame.f_back else None
        while oracle is not None and not oracle.exhausted:
            oracle.query(arch)
        try:
            oracle.query(arch)  # type: ignore[union-attr]
        except BudgetExhausted:
            pass


class ExtraQueries(_Base):
    """Queries the oracle behind the loop's back but within the budget."""

    name = "broken-extra-queries"

    def tell(self, arch: int, valid: float) -> None:
        super().tell(arch, valid)
        frame = inspect.currentframe()
        oracle = frame.f_back.f_locals["oracle"] if frame and frame.f_back else None
        if oracle is not None and oracle.remaining > 1000:
            oracle.query(arch)


class HoldsOracle(_Base):
    name = "broken-holds-oracle"

    def tell(self, arch: int, valid: float) -> None:
        super().tell(arch, valid)
        frame = inspect.currentframe()
        self.cache = {"o": [frame.f_back.f_locals["oracle"]]} if frame and frame.f_back else {}


class TupleConfig(_Base):
    name = "broken-tuple-config"

    @dataclass(frozen=True)
    class Config:
        widths: tuple[int, ...] = (8, 16)


class BusyInit(_Base):
    name = "broken-busy-init"

    def __init__(self, config: Any = None) -> None:
        super().__init__(config)
        self.population: list[int] = []


class NoReset(_Base):
    """Keeps its history across setups."""

    name = "broken-no-reset"

    def setup(self, space: Any, rng: np.random.Generator) -> None:
        self.space, self.rng = space, rng
        if not hasattr(self, "history"):
            super().setup(space, rng)

    def ask(self) -> int:
        return self.space.sample(self.rng) if len(self.history) < 300 else 0


class StringAsk(_Base):
    name = "broken-string-ask"

    def ask(self) -> int:
        return self.space.index_to_str(self.space.sample(self.rng))  # type: ignore[return-value]


class Crashes(_Base):
    name = "broken-crashes"

    def tell(self, arch: int, valid: float) -> None:
        raise RuntimeError("boom")


@pytest.mark.parametrize(
    ("cls", "match"),
    [
        (GlobalRng, "global random state"),
        (Unseeded, "same seeds gave different"),
        (FixedSeed, "different method seed gave the same"),
        (OverBudget, "after the budget was spent"),
        (ExtraQueries, "outside the harness loop"),
        (HoldsOracle, "holds a reference to Oracle"),
        (TupleConfig, "JSON round trip"),
        (BusyInit, "only store the config"),
        (NoReset, "does not reset"),
        (StringAsk, "must return an int"),
        (Crashes, "raised RuntimeError: boom"),
    ],
)
def test_check_method_catches_broken_methods(cls: type[BlackBoxMethod], match: str) -> None:
    with pytest.raises(AssertionError, match=match):
        check_method(cls, TABLES)


def test_check_method_rejects_modules_that_reach_the_table() -> None:
    from harness.bench.store import Store

    module = types.ModuleType("fake_method_module")
    module.Store = Store  # type: ignore[attr-defined]
    sys.modules[module.__name__] = module
    try:
        cls = type("Sneaky", (_Base,), {"name": "broken-sneaky", "__module__": module.__name__})
        with pytest.raises(AssertionError, match=r"references 'Store' from harness\.bench\.store"):
            check_method(cls, TABLES)
    finally:
        del sys.modules[module.__name__]


def test_check_method_rejects_non_methods() -> None:
    with pytest.raises(AssertionError, match="not a subclass"):
        check_method(int)


# --------------------------------------------------------------------------- per-method behaviour
def _run(name: str, seed: int = 0, tables: Any = TABLES, **config: Any) -> tuple[Any, Oracle]:
    method = make_method(name, **config)
    oracle = tables.oracle(np.random.default_rng([seed, 1]))
    return run_search(method, oracle, np.random.default_rng([seed, 0])), oracle


def test_random_search_samples_uniformly_and_recommends_best() -> None:
    outcome, oracle = _run("random_search")
    archs = [q.arch for q in oracle.history]
    assert len(set(archs)) > 0.95 * len(archs)
    best = max(oracle.history, key=lambda q: q.valid)
    assert outcome.arch == best.arch and outcome.valid == best.valid


def test_rea_mutates_tournament_winners_of_an_aging_population() -> None:
    space = get_space("tss")
    method = make_method("rea")
    _, oracle = _run("rea", seed=3)
    archs = [q.arch for q in oracle.history]
    method.setup(space, np.random.default_rng(0))
    for step, arch in enumerate(archs):
        if step >= 10:  # the population is the last 10 evaluated; the child is one edit away
            assert any(arch in space.neighbours(p) for p in archs[step - 10 : step]), step
        method.tell(arch, oracle.history[step].valid)
    assert [m.arch for m in method.population.members] == archs[-10:]


def test_reinforce_adam_matches_torch() -> None:
    torch = pytest.importorskip("torch")
    space = get_space("sss")
    method = make_method("reinforce")
    method.setup(space, np.random.default_rng(0))
    logits = torch.tensor(method.logits, requires_grad=True)
    opt = torch.optim.Adam([logits], lr=0.01)
    rng = np.random.default_rng(1)
    ema_num = ema_den = 0.0
    for _ in range(6):
        arch = method.ask()
        reward = float(rng.uniform(60, 90))
        method.tell(arch, reward)
        ema_num, ema_den = 0.9 * ema_num + 0.1 * reward, 0.9 * ema_den + 0.1
        picks = torch.tensor(space.index_to_choices(arch))
        log_p = torch.log_softmax(logits, dim=1)[torch.arange(5), picks].sum()
        opt.zero_grad()
        (-log_p * (reward - ema_num / ema_den)).backward()
        opt.step()
        np.testing.assert_allclose(method.logits, logits.detach().numpy(), rtol=1e-9, atol=1e-12)
    assert np.isclose(method.baseline(), ema_num / ema_den)


def test_reinforce_policy_concentrates_on_rewarded_choices() -> None:
    space = get_space("tss")
    score = (space.all_choices() == 3).sum(axis=1).astype(float)  # conv3x3 everywhere is best
    tables = synthetic_tables("tss", np.random.default_rng(0), score=score, budget=2e5, noise=0.0)
    method = make_method("reinforce", learning_rate=0.05)
    run_search(method, tables.oracle(np.random.default_rng(1)), np.random.default_rng(2))
    probs = method.probabilities()
    assert probs.shape == (6, 5) and np.allclose(probs.sum(axis=1), 1.0)
    assert (probs.argmax(axis=1) == 3).all() and probs[:, 3].min() > 0.5
