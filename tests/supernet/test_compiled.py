"""The compiled dense forward route of search and selection (dynamo with its eager backend,
so the test checks the harness's plumbing, not inductor's code generation)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch

from harness.errors import ConfigError
from harness.registry import make_method
from harness.supernet import compiled
from harness.supernet.search import SearchConfig, run_supernet_search
from harness.supernet.selection import ArchTuning, PerturbationConfig, select_perturbation
from harness.supernet.testing import tiny_config, tiny_loaders, tiny_supernet


@pytest.fixture
def eager_dynamo(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """torch.compile with the eager backend; records the modes asked for."""
    modes: list[str] = []
    real = torch.compile

    def fake(fn: Any, mode: str, dynamic: bool) -> Any:
        modes.append(mode)
        return real(fn, backend="eager", dynamic=dynamic)

    monkeypatch.setattr(compiled, "_COMPILED", {})
    monkeypatch.setattr(torch, "compile", fake)
    return modes


@pytest.mark.parametrize("name", ["darts_v1", "gaea"])
def test_compiled_search_equals_eager(name: str, eager_dynamo: list[str]) -> None:
    out = {}
    for mode in (None, "default"):
        train, valid = tiny_loaders(0)
        config = tiny_config(compile=mode)
        out[mode] = run_supernet_search(
            make_method(name), tiny_supernet(0), train, valid, config, np.random.default_rng(0)
        )
    np.testing.assert_allclose(out["default"].arch_weights, out[None].arch_weights, atol=1e-6)
    assert eager_dynamo == ["default"]


def test_sparse_methods_never_take_the_compiled_route(eager_dynamo: list[str]) -> None:
    train, valid = tiny_loaders(0)
    run_supernet_search(
        make_method("gdas"), tiny_supernet(0), train, valid, tiny_config(compile="default"),
        np.random.default_rng(0),
    )  # fmt: skip
    assert eager_dynamo == []


@pytest.mark.parametrize("tune_arch", [False, True])
def test_perturbation_tuning_through_a_compiled_forward(
    tune_arch: bool, eager_dynamo: list[str]
) -> None:
    weights = torch.softmax(torch.randn(6, 5, generator=torch.Generator().manual_seed(1)), -1)
    config = PerturbationConfig(valid_batches=2, fine_tune_steps=2, tune_arch=tune_arch)
    picks, alphas = [], []
    for mode in (None, "default"):
        net = tiny_supernet(0)
        train, valid = tiny_loaders(0)
        method = make_method("darts_v1")
        state = {"alpha": torch.log(weights).requires_grad_(True)}
        tuning = ArchTuning(
            method, state, method.init_method_state(state, net), valid, torch.Generator(), mode
        )
        forward = None if mode is None or tune_arch else compiled.dense_forward(net, mode)
        result = select_perturbation(
            net, weights, valid, config, np.random.default_rng(0), train, forward, tuning
        )
        picks.append(result.arch)
        alphas.append(state["alpha"].detach())
    assert picks[0] == picks[1]
    torch.testing.assert_close(alphas[0], alphas[1], atol=1e-6, rtol=0)
    assert not tune_arch or not torch.equal(alphas[0], torch.log(weights))
    assert eager_dynamo == ["default"]


def test_unknown_compile_mode_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="compile mode"):
        SearchConfig(compile="fastest")
