"""The budgeted oracle, its tables, and the harness-owned search loop."""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from harness.bench.official import import_official
from harness.bench.store import Store
from harness.errors import BenchmarkQueryError, BudgetExhausted, ConfigError
from harness.oracle import FitnessTables, Oracle, run_search, synthetic_tables
from harness.protocol import BlackBoxMethod, get_protocol
from harness.spaces import get_space

TSS = get_space("tss")
N = TSS.num_archs


def _tables(n_seeds: int = 2, cost: float = 100.0) -> tuple[np.ndarray, np.ndarray]:
    fitness = np.tile(np.arange(N, dtype=np.float64) % 100, (n_seeds, 1))
    fitness += np.arange(n_seeds)[:, None] * 0.5  # seed s answers value + s/2
    return fitness, np.full((n_seeds, N), cost)


def _oracle(budget: float = 1000.0, seed: int = 0, **kw: float) -> Oracle:
    fitness, cost = _tables(**kw)  # type: ignore[arg-type]
    return Oracle(TSS, "cifar10", fitness, cost, budget, np.random.default_rng(seed))


# --------------------------------------------------------------------------- charging
def test_crossing_query_is_answered_and_charged_then_refused() -> None:
    oracle = _oracle(budget=250.0)  # 100 s per query: 100, 200, 300 (crosses), then refused
    for _ in range(3):
        oracle.query(7)
    assert oracle.n_queries == 3 and oracle.spent == 300.0 and oracle.exhausted
    assert oracle.remaining == -50.0
    with pytest.raises(BudgetExhausted, match="250"):
        oracle.query(7)
    assert oracle.n_queries == 3 and oracle.spent == 300.0 and oracle.n_refused == 1


def test_exact_budget_stops() -> None:
    oracle = _oracle(budget=200.0)
    oracle.query(1)
    assert not oracle.exhausted
    oracle.query(1)
    assert oracle.exhausted  # spent >= budget: no further query
    with pytest.raises(BudgetExhausted):
        oracle.query(1)


def test_history_records_steps_values_and_costs() -> None:
    oracle = _oracle()
    oracle.query(5)
    oracle.query(TSS.index_to_str(6))  # strings are accepted
    hist = oracle.history
    assert [q.step for q in hist] == [1, 2] and [q.arch for q in hist] == [5, 6]
    assert [q.spent for q in hist] == [100.0, 200.0] and [q.cost for q in hist] == [100.0, 100.0]
    assert hist[0].valid in (5.0, 5.5) and oracle.last == hist[1]
    hist.clear()  # a copy
    assert oracle.n_queries == 2


def test_seed_is_drawn_from_the_oracle_generator() -> None:
    oracle = _oracle(budget=1e9, seed=3)
    values = Counter(oracle.query(10) for _ in range(2000))
    assert set(values) == {10.0, 10.5}
    assert 850 < values[10.0] < 1150  # uniform over the two seeds
    a, b = _oracle(budget=1e9, seed=4), _oracle(budget=1e9, seed=4)
    assert [a.query(3) for _ in range(50)] == [b.query(3) for _ in range(50)]


def test_missing_seeds_are_skipped_and_absent_archs_raise() -> None:
    fitness, cost = _tables(n_seeds=3)
    fitness[1:, 20] = np.nan  # arch 20: only seed 0
    fitness[:, 21] = np.nan  # arch 21: absent
    oracle = Oracle(TSS, "cifar10", fitness, cost, 1e9, np.random.default_rng(0))
    assert {oracle.query(20) for _ in range(50)} == {20.0}
    with pytest.raises(BenchmarkQueryError, match="architecture 21"):
        oracle.query(21)
    assert oracle.n_queries == 50 and oracle.spent == 5000.0  # the failed query is free


def test_oracle_copies_its_arrays() -> None:
    fitness, cost = _tables()
    oracle = Oracle(TSS, "cifar10", fitness, cost, 1e9, np.random.default_rng(0))
    fitness[:] = -1.0
    cost[:] = 1e6
    assert oracle.query(30) in (30.0, 30.5) and oracle.spent == 100.0


def test_distinct_archs_counts_isomorphic_cells_once() -> None:
    oracle = _oracle(budget=1e9)
    a = TSS.str_to_index("|none~0|+|none~0|none~1|+|skip_connect~0|none~1|none~2|")
    b = TSS.str_to_index("|nor_conv_3x3~0|+|none~0|none~1|+|skip_connect~0|none~1|none~2|")
    assert TSS.canonical(a) == TSS.canonical(b) and a != b
    for arch in (a, b, a, 0):
        oracle.query(arch)
    assert oracle.distinct_archs == 1 + (TSS.canonical(0) != TSS.canonical(a))


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"budget": 0.0}, "budget"),
        ({"budget": math.inf}, "budget"),
        ({"fitness": np.zeros((2, 10))}, "n_seeds"),
        ({"cost": np.zeros((2, N))}, "cost must be"),
        ({"fitness": np.zeros(N)}, "2-D"),
        ({"rng": 0}, "Generator"),
    ],
)
def test_bad_oracle_arguments(change: dict[str, object], match: str) -> None:
    fitness, cost = _tables()
    args: dict[str, object] = {
        "fitness": fitness,
        "cost": cost,
        "budget": 10.0,
        "rng": np.random.default_rng(0),
    }
    args.update(change)
    with pytest.raises(ConfigError, match=match):
        Oracle(TSS, "cifar10", **args)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- tables
def test_synthetic_tables_are_complete_and_seeded() -> None:
    a = synthetic_tables("sss", np.random.default_rng(1))
    b = synthetic_tables("sss", np.random.default_rng(1))
    assert a.fitness.shape == a.cost.shape == (3, 32768) and a.complete and a.synthetic
    assert np.array_equal(a.fitness, b.fitness) and np.array_equal(a.cost, b.cost)
    assert (a.cost > 60).all() and not a.fitness.flags.writeable
    queries = a.budget / a.cost.mean()
    assert 100 < queries < 250


def test_synthetic_tables_from_score() -> None:
    score = np.zeros(N)
    score[42] = 1.0
    tables = synthetic_tables("tss", np.random.default_rng(0), score=score, noise=0.0)
    assert np.all(tables.fitness[:, 42] == 90.0) and np.all(np.delete(tables.fitness, 42, 1) == 60)
    with pytest.raises(ConfigError, match="shape"):
        synthetic_tables("tss", np.random.default_rng(0), score=np.zeros(3))


@pytest.fixture(scope="module")
def tss_store(tss_samples: Path, tmp_path_factory: pytest.TempPathFactory) -> Store:
    dest = tmp_path_factory.mktemp("store") / "s"
    return Store(import_official(tss_samples, dest, n_jobs=1, progress=False))


@pytest.mark.parametrize(
    ("task", "dataset"), [("cifar10", "cifar10-valid"), ("cifar100", "cifar100")]
)
def test_tables_match_simulate_train_eval(
    tss_samples: Path, tss_store: Store, task: str, dataset: str
) -> None:
    nats_bench = pytest.importorskip("nats_bench")
    api = nats_bench.create(str(tss_samples), "tss", fast_mode=True, verbose=False)
    tables = FitnessTables.from_store(tss_store, "nats-tss", task)
    assert tables.budget == get_protocol("nats-tss").budgets[task]
    for index in (0, 11, 284):
        api._prepare_info(index)
        seeds = api.arch2infos_dict[index]["12"].get_dataset_seeds(dataset)
        expected = set()
        for seed in seeds:
            info = api.get_more_info(index, dataset, hp="12", is_random=seed)
            expected.add(
                (
                    round(info["valid-accuracy"], 3),
                    round(info["train-all-time"] + info["valid-per-time"], 2),
                )
            )
        ours = {
            (round(float(f), 3), round(float(c), 2))
            for f, c in zip(tables.fitness[:, index], tables.cost[:, index], strict=True)
            if not np.isnan(f)
        }
        assert ours == expected, f"arch {index} on {task}"


def test_oracle_from_store(tss_store: Store) -> None:
    oracle = Oracle.from_store(
        tss_store, get_protocol("nats-tss"), "cifar10", rng=np.random.default_rng(0)
    )
    assert oracle.budget == 20_000 and not hasattr(oracle, "store")
    assert not any(isinstance(v, Store) for v in vars(oracle).values())
    assert 60 < oracle.query(11) < 66
    with pytest.raises(BenchmarkQueryError, match="architecture 1 "):
        oracle.query(1)  # not in the sample files
    small = Oracle.from_store(tss_store, "nats-tss", "cifar10", 5.0, np.random.default_rng(0))
    small.query(0)
    assert small.exhausted
    with pytest.raises(ConfigError, match="rng"):
        Oracle.from_store(tss_store, "nats-tss", "cifar10")


def test_tables_are_cached_and_validated(tss_store: Store) -> None:
    a = FitnessTables.from_store(tss_store, "nats-tss", "cifar10")
    assert FitnessTables.from_store(tss_store, get_protocol("nats-tss@1"), "cifar10") is a
    assert a.seeds == ("111", "777") and not a.complete and int(a.present.sum()) == 3
    assert a.checksum == tss_store.checksum and a.protocol_key == "nats-tss@1"
    with pytest.raises(ConfigError, match="sss"):
        FitnessTables.from_store(tss_store, "nats-sss", "cifar10")
    with pytest.raises(ConfigError, match="cifar100"):
        FitnessTables.from_store(tss_store, "nats-tss-transfer", "cifar100")


# --------------------------------------------------------------------------- the loop
class _Scripted(BlackBoxMethod):
    """Asks a fixed cycle of architectures; recommends the best seen."""

    name = "scripted"

    @dataclass(frozen=True)
    class Config:
        pass

    def ask(self) -> int:
        return [3, 50, 7][len(self.history) % 3]


def test_run_search_trajectory() -> None:
    fitness, cost = _tables(n_seeds=1)
    oracle = Oracle(TSS, "cifar10", fitness, cost, 450.0, np.random.default_rng(0))
    outcome = run_search(_Scripted(), oracle, np.random.default_rng(0))
    assert outcome.queries == 5 and outcome.spent == 500.0  # the 5th query crosses 450 s
    assert [p.step for p in outcome.trajectory] == [1, 2, 3, 4, 5]
    assert [p.incumbent for p in outcome.trajectory] == [3, 50, 50, 50, 50]
    assert [p.incumbent_valid for p in outcome.trajectory] == [3.0, 50.0, 50.0, 50.0, 50.0]
    assert [p.spent for p in outcome.trajectory] == [100.0, 200.0, 300.0, 400.0, 500.0]
    assert outcome.arch == 50 and outcome.valid == 50.0 and outcome.distinct_archs == 3
    ledger = outcome.ledger(wall_seconds=0.5)
    assert ledger.sim_seconds == 500.0 and ledger.queries == 5 and ledger.device_seconds is None


def test_shared_noise_pairs_the_methods_of_a_seed() -> None:
    """The k-th query of an architecture draws the same training seed under one key,
    whatever else was queried and in what order; another key draws differently."""
    from harness.oracle import SharedNoise

    a, b = SharedNoise([0, 1, 2], 100), SharedNoise([0, 1, 2], 100)
    first = [a.uniform(arch) for arch in (5, 7, 5, 9, 5, 5, 5, 5)]  # visits 0..5 of arch 5
    other = [b.uniform(arch) for arch in (9, 9, 5, 5, 5, 5, 5, 5, 7)]
    assert other[2:8] == [first[i] for i in (0, 2, 4, 5, 6, 7)]  # arch 5, visits 0..5
    assert other[8] == first[1] and other[0] == first[3]
    assert all(0 <= u < 1 for u in first)
    c = SharedNoise([1, 1, 2], 100)
    assert [c.uniform(5) for _ in range(6)] != [first[i] for i in (0, 2, 4, 5, 6, 7)]
