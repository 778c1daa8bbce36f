"""Constrained protocols: free cost queries, feasible recommendations, regret against the best
feasible architecture, ``infeasible`` runs, and the ``nats-tss-pixel3-5ms`` card."""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from harness import records, runner
from harness.bench import costs
from harness.bench.latency import import_latency
from harness.bench.store import Store, open_store
from harness.cli import main
from harness.errors import ConfigError
from harness.oracle import Oracle, run_search, synthetic_tables
from harness.protocol import PROTOCOLS, BlackBoxMethod, ProtocolCard, get_protocol
from harness.registry import make_method
from harness.spaces import get_space, tss

N = tss.NUM_ARCHS
SPACE = get_space("tss")
BUDGET = 3000.0
#: Latency (ms) of the made-up table: 1 + index mod 10, so indices ending in 0..4 are <= 5 ms.
LATENCY = 1.0 + np.arange(N) % 10
FEASIBLE = LATENCY <= 5.0


def _tables(constraint: dict[str, float] | None = None, latency: np.ndarray = LATENCY) -> object:
    tables = synthetic_tables("tss", np.random.default_rng(5))
    extra = {"constraint": constraint, "costs": {"latency:pixel3": latency}} if constraint else {}
    return type(tables)(**{**vars(tables), **extra})


def _oracle(constraint: dict[str, float] | None = None, budget: float = 2000.0) -> Oracle:
    return _tables(constraint).oracle(np.random.default_rng(0), budget)  # type: ignore[attr-defined]


class Stubborn(BlackBoxMethod):
    """Samples at random but always recommends architecture 9 (latency 10 ms: infeasible)."""

    name = "stubborn"

    @dataclass(frozen=True)
    class Config:
        pass

    def ask(self) -> int:
        return self.space.sample(self.rng)

    def recommend(self) -> int:
        return 9


class CostAware(BlackBoxMethod):
    """Asks only for feasible architectures, through the free view it is handed."""

    name = "cost_aware"

    @dataclass(frozen=True)
    class Config:
        pass

    def use_costs(self, view: costs.CostView) -> None:
        self.view = view

    def ask(self) -> int:
        while True:
            arch = self.space.sample(self.rng)
            if self.view.feasible(arch):
                return arch


# --------------------------------------------------------------------------- the oracle
def test_cost_queries_are_free_and_counted() -> None:
    oracle = _oracle({"latency:pixel3": 5.0})
    assert dict(oracle.constraint) == {"latency:pixel3": 5.0}
    assert oracle.cost(13, "latency:pixel3") == 4.0 and oracle.spent == 0.0
    assert oracle.feasible(13) and not oracle.feasible(SPACE.index_to_str(9))
    assert oracle.n_cost_queries == 3 and oracle.n_queries == 0
    while not oracle.exhausted:
        oracle.query(SPACE.sample(np.random.default_rng(oracle.n_queries)))
    assert oracle.cost(7, "latency:pixel3") == 8.0  # answered after the budget too
    with pytest.raises(ConfigError, match=r"unknown cost metric of this protocol 'params'"):
        oracle.cost(7, "params")
    with pytest.raises(ConfigError, match=r"answered here .*carries no constraint"):
        _oracle().cost(7, "latency:pixel3")


def test_an_unconstrained_search_is_unchanged() -> None:
    method = make_method("rea")
    plain = run_search(method, _oracle(), np.random.default_rng(1))
    assert plain.feasible and plain.recommended is None and plain.note is None
    assert plain.cost_queries == 0 and len(plain.trajectory) == plain.queries


def test_an_infeasible_recommendation_is_replaced_by_the_best_feasible_seen() -> None:
    oracle = _oracle({"latency:pixel3": 5.0})
    outcome = run_search(Stubborn(), oracle, np.random.default_rng(2))
    seen = {}
    for q in oracle.history:
        seen[q.arch] = max(q.valid, seen.get(q.arch, -np.inf))
    best = max((a for a in seen if FEASIBLE[a]), key=lambda a: seen[a])
    assert outcome.arch == best and outcome.valid == seen[best] and outcome.feasible
    assert outcome.recommended == 9 and "outside latency:pixel3 <= 5 ms" in (outcome.note or "")
    assert all(FEASIBLE[p.incumbent] for p in outcome.trajectory)
    first = next(q.step for q in oracle.history if FEASIBLE[q.arch])
    assert outcome.trajectory[0].step == first  # no point before the first feasible query


def test_a_search_that_saw_no_feasible_architecture_says_so() -> None:
    tables = _tables({"latency:pixel3": 5.0}, latency=np.where(np.arange(N) == 0, 1.0, 9.0))
    oracle = tables.oracle(np.random.default_rng(0), 600.0)  # type: ignore[attr-defined]
    outcome = run_search(make_method("random_search"), oracle, np.random.default_rng(3))
    assert not outcome.feasible and outcome.trajectory == []
    assert outcome.note is not None and outcome.note.startswith("no feasible architecture")


def test_a_cost_aware_method_is_handed_the_free_view() -> None:
    oracle = _oracle({"latency:pixel3": 5.0})
    outcome = run_search(CostAware(), oracle, np.random.default_rng(4))
    assert all(FEASIBLE[q.arch] for q in oracle.history) and outcome.recommended is None
    assert outcome.cost_queries == oracle.n_cost_queries >= oracle.n_queries
    free = _oracle()  # unconstrained: the view is empty and everything is feasible
    assert run_search(CostAware(), free, np.random.default_rng(4)).feasible
    assert not dict(free.constraint) and free.n_cost_queries == free.n_queries


# --------------------------------------------------------------------------- cards
def test_the_pixel3_card_and_the_keys_of_the_old_cards() -> None:
    card = get_protocol("nats-tss-pixel3-5ms")
    assert dict(card.constraint) == {"latency:pixel3": 5.0} and card.key == "nats-tss-pixel3-5ms@1"
    assert ProtocolCard.from_dict(card.to_dict()) == card
    for name in ("nats-tss", "nats-sss", "nats-tss-transfer"):  # manifests unchanged
        assert "constraint" not in PROTOCOLS[name].to_dict()
        assert runner.protocol_label(PROTOCOLS[name], {}) == f"{name}@1"


@pytest.mark.parametrize(
    ("constraint", "match"),
    [({"latncy:pixel3": 5.0}, "unknown cost metric"), ({"params": -1.0}, "must be a number > 0")],
)
def test_a_card_checks_its_constraint(constraint: dict[str, float], match: str) -> None:
    values = {**get_protocol("nats-tss-pixel3-5ms").to_dict(), "constraint": constraint}
    with pytest.raises(ConfigError, match=f"protocol 'nats-tss-pixel3-5ms': .*{match}"):
        ProtocolCard.from_dict(values)


# --------------------------------------------------------------------------- sweeps
def _with_latency(tiny_store: Store, tmp_path: Path, latency: np.ndarray = LATENCY) -> Store:
    store = open_store(shutil.copytree(tiny_store.path, tmp_path / "tiny"))
    frame = pd.DataFrame({"index": np.arange(N), "arch_str": tss.all_strings(), "pixel3": latency})
    frame.to_csv(tmp_path / "latency.csv", index=False)
    import_latency(store, tmp_path / "latency.csv")
    return store


def _grid(methods: str = "rs,rea", seeds: str = "0-3") -> runner.Grid:
    return runner.load_grid(
        methods=methods, seeds=seeds, protocols="nats-tss-pixel3-5ms", budget=BUDGET
    )


def test_regret_and_rank_are_against_the_best_feasible(tiny_store: Store, tmp_path: Path) -> None:
    store = _with_latency(tiny_store, tmp_path)
    summary = runner.run_sweep(_grid(), tmp_path / "out", store=store, progress=False)
    assert summary.ran == 8 and summary.failed == summary.infeasible == 0
    runs = pd.read_parquet(tmp_path / "out" / "runs.parquet")
    assert (runs["status"] == "ok").all() and FEASIBLE[runs["arch_index"].to_numpy()].all()
    test = store.metric_all("cifar10", "ori-test", 200, "accuracy", "mean").astype(np.float64)
    best_feasible = np.nanmax(np.where(FEASIBLE, test, np.nan))
    assert best_feasible < np.nanmax(test)
    assert np.allclose(runs["regret"], best_feasible - runs["test_acc"])
    feasible_tests = np.sort(test[FEASIBLE])
    for _, row in runs.iterrows():
        assert row["rank"] == 1 + int((feasible_tests > row["test_acc"]).sum())
    traj = pd.read_parquet(tmp_path / "out" / "trajectories.parquet")
    assert FEASIBLE[traj["incumbent_index"].to_numpy()].all() and (traj["regret"] >= 0).all()
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert manifest["cost_tables"]["latency"]["source"] == "latency.csv"
    (card,) = manifest["protocols"].values()  # keyed by the label, with the budget override
    assert card["constraint"] == {"latency:pixel3": 5.0}


def test_report_table_ranks_among_the_feasible(tiny_store: Store, tmp_path: Path) -> None:
    store = _with_latency(tiny_store, tmp_path)
    plain = records.report_table(store, "200", "cifar10")
    limited = records.report_table(store, "200", "cifar10", {"latency:pixel3": 5.0})
    best = int(np.nanargmax(np.where(FEASIBLE, plain.test, np.nan)))
    assert limited.best == plain.test[best] < plain.best
    assert limited.rank[best] == 1 and limited.percentile[best] == 100.0
    assert np.isnan(limited.rank[~FEASIBLE]).all() and np.isfinite(limited.rank[FEASIBLE]).all()
    assert np.array_equal(limited.test, plain.test, equal_nan=True)


def test_runs_that_saw_no_feasible_architecture_are_finished(
    tiny_store: Store, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    latency = np.where(np.arange(N) == 77, 1.0, 50.0)  # one feasible cell in 15,625
    store = _with_latency(tiny_store, tmp_path, latency)
    out = tmp_path / "out"
    argv = ["run", "--methods", "rs", "--seeds", "0-2", "--protocol", "nats-tss-pixel3-5ms",
            "--budget", str(BUDGET), "--store", str(store.path), "--out", str(out),
            "--no-progress"]  # fmt: skip
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "3 runs saw no architecture within the protocol's constraint" in printed
    runs = pd.read_parquet(out / "runs.parquet")
    assert (runs["status"] == "infeasible").all() and runs["arch_index"].isna().all()
    assert runs["error"].str.startswith("no feasible architecture among the").all()
    assert runs["queries"].notna().all() and runs["test_acc"].isna().all()
    assert main(argv) == 0  # deterministic: not run again
    assert "3 already finished, 0 run now" in capsys.readouterr().out


def test_a_constrained_sweep_needs_the_costs(tiny_store: Store, tmp_path: Path) -> None:
    bare = open_store(shutil.copytree(tiny_store.path, tmp_path / "bare"))
    with pytest.raises(ConfigError, match=r"nats-tss-pixel3-5ms@1 on cifar10 is constrained: .*"
                       r"no latency table.*import-latency"):  # fmt: skip
        runner.run_sweep(_grid(), tmp_path / "x", store=bare, progress=False)
    slow = _with_latency(tiny_store, tmp_path / "slow", np.full(N, 9.0))
    with pytest.raises(ConfigError, match=r"no architecture of store tiny meets latency:pixel3"):
        runner.run_sweep(_grid(), tmp_path / "x", store=slow, progress=False)
    assert not (tmp_path / "x").exists()


def test_a_results_dir_refuses_another_latency_table(tiny_store: Store, tmp_path: Path) -> None:
    store = _with_latency(tiny_store, tmp_path)
    runner.run_sweep(_grid(seeds="0"), tmp_path / "out", store=store, progress=False)
    frame = pd.read_csv(tmp_path / "latency.csv").assign(pixel3=1.0 + np.arange(N) % 7)
    frame.to_csv(tmp_path / "other.csv", index=False)
    import_latency(store, tmp_path / "other.csv", overwrite=True)
    with pytest.raises(ConfigError, match="constrained runs made with another latency table"):
        runner.run_sweep(_grid(seeds="0-1"), tmp_path / "out", store=store, progress=False)
