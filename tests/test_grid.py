"""Method lists with hyperparameters: ``name(key=value, ...)``, the form reports label with."""

from __future__ import annotations

import pytest

from harness.errors import ConfigError
from harness.grid import load_grid, split_methods
from harness.oneshot.grid import load_supernet_grid


def test_split_methods_reads_names_and_hyperparameters() -> None:
    assert split_methods("rs, rea(population_size=20, tournament_size=5),alpha_nas") == [
        "rs", {"name": "rea", "population_size": 20, "tournament_size": 5}, "alpha_nas",
    ]  # fmt: skip
    assert split_methods("dnal(lambda_a=1e-3, threshold=0.9),gaea(single_level=false)") == [
        {"name": "dnal", "lambda_a": 1e-3, "threshold": 0.9},
        {"name": "gaea", "single_level": False},
    ]
    assert split_methods("x(mode='a'),y(mode=b)") == [
        {"name": "x", "mode": "a"}, {"name": "y", "mode": "b"},
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("text", "message"),
    [("rea(population_size=20", "unbalanced '\\('"), ("rea)", "unbalanced '\\)'"),
     ("rea(20)", "expected key=value"), ("(a=1)", "expected name"),
     ("rea(p=[1,)", "cannot read the value")],
)  # fmt: skip
def test_split_methods_errors(text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        split_methods(text)


def test_grids_take_configs_from_the_method_list() -> None:
    grid = load_grid(methods="rea(population_size=20),rea", seeds="0", tasks="cifar10",
                     protocols="nats-tss")  # fmt: skip
    assert [(m.name, m.overrides) for m in grid.methods] == [
        ("rea", '{"population_size":20}'), ("rea", "{}"),
    ]  # fmt: skip
    sweep = load_supernet_grid("dnal(lambda_a=0.001),dnal(lambda_a=0.01)", "tiny-cpu-sss", "0")
    assert [o for _, o in sweep.methods] == ['{"lambda_a":0.001}', '{"lambda_a":0.01}']
