"""Protocol cards, run records, the method base class and registry, and the search helpers."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass

import numpy as np
import pytest

from harness import protocol
from harness.errors import ConfigError
from harness.protocol import (
    PROTOCOLS,
    BlackBoxMethod,
    CostLedger,
    ProtocolCard,
    get_protocol,
)
from harness.registry import get_method, make_method, method_names, register_method
from harness.search_utils import Member, Population, SearchHistory, sample_distinct, tournament


# --------------------------------------------------------------------------- cards
def test_builtin_cards_hold_the_nats_bench_settings() -> None:
    tss, sss, transfer = (get_protocol(n) for n in ("nats-tss", "nats-sss", "nats-tss-transfer"))
    assert dict(tss.budgets) == {"cifar10": 20_000, "cifar100": 40_000, "ImageNet16-120": 120_000}
    assert dict(sss.budgets) == {"cifar10": 20_000, "cifar100": 40_000, "ImageNet16-120": 60_000}
    assert (tss.fitness_hp, tss.report_hp, sss.report_hp) == ("12", "200", "90")
    assert (
        tss.fitness_role == "valid" and tss.fitness_seed == "random" and tss.report_seed == "mean"
    )
    assert tss.charge == "train_time+valid_eval" and tss.key == "nats-tss@1"
    assert tss.eval_tasks("cifar100") == ("cifar100",)
    assert transfer.tasks == ("cifar10",)
    assert transfer.eval_tasks("cifar10") == ("cifar10", "cifar100", "ImageNet16-120")
    assert (
        set(protocol.protocol_names())
        == set(PROTOCOLS)
        == {"nats-tss", "nats-sss", "nats-tss-transfer", "nats-tss-pixel3-5ms"}
    )


@pytest.mark.parametrize("name", sorted(PROTOCOLS))
def test_card_round_trips_through_json(name: str) -> None:
    card = get_protocol(name)
    again = ProtocolCard.from_dict(json.loads(json.dumps(card.to_dict())))
    assert again == card and hash(again) == hash(card)
    with pytest.raises(TypeError):
        card.budgets["cifar10"] = 1.0  # type: ignore[index]


def test_get_protocol_errors() -> None:
    assert get_protocol("nats-sss@1") is PROTOCOLS["nats-sss"]
    with pytest.raises(ConfigError, match="did you mean 'nats-tss'"):
        get_protocol("nats-tsss")
    with pytest.raises(ConfigError, match="version 1"):
        get_protocol("nats-tss@2")


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"fitness_role": "test"}, "may not see test"),
        ({"fitness_hp": "90"}, "hp"),
        ({"space": "xyz"}, "search space"),
        ({"budgets": {"cifar10": -1.0}, "tasks": ("cifar10",)}, "budget"),
        ({"budgets": {"cifar10": 1.0}}, "budgets given"),
        ({"tasks": ("cifar10-valid",), "budgets": {"cifar10-valid": 1.0}}, "task"),
        ({"charge": "train_time"}, "charge"),
        ({"fitness_seed": "777"}, "seed policy"),
    ],
)
def test_invalid_cards(change: dict[str, object], match: str) -> None:
    values = get_protocol("nats-tss").to_dict() | change
    with pytest.raises(ConfigError, match=match):
        ProtocolCard.from_dict(values)


def test_from_dict_rejects_unknown_fields() -> None:
    with pytest.raises(ConfigError, match="colour"):
        ProtocolCard.from_dict(get_protocol("nats-tss").to_dict() | {"colour": 1})


# --------------------------------------------------------------------------- records
def test_cost_ledger_nulls() -> None:
    ledger = CostLedger(sim_seconds=1.5, queries=3)
    d = ledger.to_dict()
    assert d["sim_seconds"] == 1.5 and d["device_seconds"] is None and d["backward_passes"] is None
    assert set(d) == {
        "sim_seconds",
        "queries",
        "distinct_archs",
        "wall_seconds",
        "device_seconds",
        "epochs",
        "forward_passes",
        "backward_passes",
    }
    json.dumps(d)


# --------------------------------------------------------------------------- registry
def test_builtin_methods_are_registered() -> None:
    assert {"random_search", "rea", "reinforce", "alpha_nas"} <= set(method_names())
    for name in method_names():
        assert get_method(name).name == name


def test_make_method_and_errors() -> None:
    rea = make_method("rea", population_size=20)
    assert rea.config.population_size == 20 and rea.config.tournament_size == 3
    with pytest.raises(ConfigError, match="did you mean 'rea'"):
        get_method("reaa")
    with pytest.raises(ConfigError, match="did you mean 'population_size'"):
        make_method("rea", populaton_size=5)
    with pytest.raises(ConfigError, match="tournament_size 30 exceeds"):
        make_method("rea", tournament_size=30)
    with pytest.raises(ConfigError, match="learning_rate"):
        make_method("reinforce", learning_rate=-1.0)
    with pytest.raises(ConfigError, match="int >= 1"):
        make_method("alpha_nas", max_delta=0)


def test_method_takes_only_its_own_config() -> None:
    cls = get_method("rea")
    assert cls().config == cls.Config()
    with pytest.raises(ConfigError, match="takes a"):
        cls(get_method("reinforce").Config())


def test_register_method_validates() -> None:
    class Unfrozen(BlackBoxMethod):
        name = "test-unfrozen"

        @dataclass
        class Config:
            x: int = 1

        def ask(self) -> int:
            return 0

    with pytest.raises(ConfigError, match="frozen"):
        register_method(Unfrozen)

    class Clash(BlackBoxMethod):
        name = "rea"

        @dataclass(frozen=True)
        class Config:
            pass

        def ask(self) -> int:
            return 0

    with pytest.raises(ConfigError, match="taken"):
        register_method(Clash)
    assert get_method("rea") is not Clash


# --------------------------------------------------------------------------- helpers
def test_search_history_incumbent() -> None:
    history = SearchHistory()
    with pytest.raises(LookupError):
        _ = history.best_arch
    for arch, valid in [(1, 50.0), (2, 70.0), (3, 70.0), (4, 10.0)]:
        history.add(arch, valid)
    assert history.best_arch == 2 and history.best_valid == 70.0 and len(history) == 4


def test_sample_distinct() -> None:
    rng = np.random.default_rng(0)
    counts: Counter[int] = Counter()
    for _ in range(3000):
        picks = sample_distinct(10, 3, rng)
        assert len(set(picks)) == 3 and all(0 <= p < 10 for p in picks)
        counts.update(picks)
    assert set(counts) == set(range(10)) and max(counts.values()) < 1.2 * min(counts.values())
    assert sorted(sample_distinct(4, 4, rng)) == [0, 1, 2, 3]
    with pytest.raises(ValueError):
        sample_distinct(2, 3, rng)


def test_tournament_and_aging() -> None:
    population = Population(3)
    for arch, valid in [(1, 10.0), (2, 30.0), (3, 20.0), (4, 5.0)]:
        population.add(arch, valid)
    assert [m.arch for m in population.members] == [2, 3, 4] and population.full
    rng = np.random.default_rng(0)
    assert tournament(population.members, 3, rng) == Member(2, 30.0)
    winners = Counter(tournament(population.members, 2, rng).arch for _ in range(600))
    assert winners[4] == 0 and 150 < winners[3] < 250  # arch 3 wins only against arch 4


def test_protocol_defines_types_only() -> None:
    """The oracle and the method base of the other kind live above this module: it does not
    re-export them (callers import them where they live)."""
    for name in ("Oracle", "FitnessTables", "run_search", "synthetic_tables", "SupernetMethod"):
        assert not hasattr(protocol, name), name
    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        _ = protocol.Nope
