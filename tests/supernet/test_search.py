"""The harness-owned supernet search loop: determinism, resume, ledger, schedule."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from torch import nn

from harness.errors import ConfigError
from harness.protocol import CostLedger
from harness.spaces import get_space
from harness.supernet.search import (
    SearchConfig,
    SearchResult,
    SupernetMethod,
    argmax_arch,
    run_supernet_search,
)
from harness.supernet.testing import tiny_config, tiny_loaders, tiny_supernet
from methods.darts import Darts, DartsConfig
from methods.dnal import Dnal, DnalConfig
from methods.drnas import Drnas
from methods.fbnet_v2 import FbnetV2
from methods.gaea import Gaea
from methods.gdas import Gdas
from methods.rarts import Rarts
from methods.tas import Tas
from methods.tunas import Tunas

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _run(
    method: SupernetMethod, seed: int = 0, space: str = "tss", **kwargs: Any
) -> tuple[SearchResult, nn.Module]:
    train, valid = tiny_loaders(seed)
    config = kwargs.pop("config", tiny_config())
    net = tiny_supernet(seed, space=space)
    result = run_supernet_search(
        method, net, train, valid, config, np.random.default_rng(seed), **kwargs
    )
    return result, net


def test_same_seed_same_trajectory_different_seed_differs() -> None:
    a, _ = _run(Darts(), seed=3)
    b, _ = _run(Darts(), seed=3)
    c, _ = _run(Darts(), seed=4)
    assert np.array_equal(a.arch_weights, b.arch_weights)
    assert [r.arch_index for r in a.history] == [r.arch_index for r in b.history]
    assert [r.train_loss for r in a.history] == [r.train_loss for r in b.history]
    assert not np.array_equal(a.arch_weights, c.arch_weights)


@pytest.mark.parametrize(
    ("method", "space"),
    [(Darts(), "tss"), (Darts(DartsConfig(order=2)), "tss"), (Gaea(), "tss"), (Rarts(), "tss"),
     (Gdas(), "tss"), (Drnas(), "tss"), (Darts(), "sss"), (Gaea(), "sss"), (Rarts(), "sss"),
     (Tas(), "sss"), (FbnetV2(), "sss"), (Tunas(), "sss"),
     (Dnal(DnalConfig(arch_epochs=2)), "sss")],
)  # fmt: skip
def test_kill_and_resume_is_bit_identical(
    method: SupernetMethod, space: str, tmp_path: Path
) -> None:
    # 3 epochs: the NATS channel searches warm up in epoch 0; DNAL turns to its gates at 1
    config = tiny_config(epochs=3, max_steps_per_epoch=2)
    full, full_net = _run(method, seed=5, space=space, config=config)
    ckpt = tmp_path / "search.pt"
    part, _ = _run(method, seed=5, space=space, config=config, checkpoint=ckpt, stop_after_epoch=0)
    assert not part.complete and len(part.history) == 1 and ckpt.exists()
    # a fresh process: new supernet, loaders and rng from the same seeds, then resume
    resumed, resumed_net = _run(method, seed=5, space=space, config=config, checkpoint=ckpt)
    assert resumed.complete and full.complete
    assert np.array_equal(full.arch_weights, resumed.arch_weights)
    assert [r.arch_index for r in full.history] == [r.arch_index for r in resumed.history]
    for (k, v), (_, w) in zip(
        full_net.state_dict().items(), resumed_net.state_dict().items(), strict=True
    ):
        assert torch.equal(v, w), k
    assert resumed.ledger.epochs == 3
    assert resumed.ledger.forward_passes == full.ledger.forward_passes


def test_ledger_counts_passes_and_converts() -> None:
    first, _ = _run(Darts())  # 2 epochs x 3 steps, one forward + backward each for w and alpha
    second, _ = _run(Darts(DartsConfig(order=2)))  # alpha: train, unrolled val, w+, w-
    assert (first.ledger.forward_passes, first.ledger.backward_passes) == (12, 12)
    assert (second.ledger.forward_passes, second.ledger.backward_passes) == (30, 30)
    ledger = first.ledger.to_cost_ledger(wall_seconds=1.5)
    assert isinstance(ledger, CostLedger)
    assert ledger.epochs == 2 and ledger.sim_seconds is None and ledger.wall_seconds == 1.5
    assert ledger.device_seconds is not None and ledger.device_seconds > 0


def test_history_records_argmax_of_final_weights() -> None:
    result, _ = _run(Gaea())
    assert len(result.history) == 2
    assert result.history[-1].arch_index == result.arch_index
    assert result.arch_index == argmax_arch(torch.as_tensor(result.arch_weights), get_space("tss"))


def test_cosine_schedule_and_validation() -> None:
    config = SearchConfig(epochs=10, lr=0.025, lr_min=0.001)
    assert config.lr_at(0, 0, 5) == pytest.approx(0.025)
    assert config.lr_at(5, 0, 5) == pytest.approx(0.013)
    assert config.lr_at(9, 5, 5) == pytest.approx(0.001)
    half = SearchConfig(epochs=25, schedule_epochs=50, lr=0.025, lr_min=0.001)
    assert half.lr_at(25, 0, 4) == pytest.approx(0.013)
    with pytest.raises(ConfigError, match="lr_min"):
        SearchConfig(lr=0.01, lr_min=0.1)
    with pytest.raises(ConfigError, match="epochs"):
        SearchConfig(epochs=0)


def test_resume_refuses_a_checkpoint_of_another_run(tmp_path: Path) -> None:
    ckpt = tmp_path / "search.pt"
    _run(Darts(), config=tiny_config(max_steps_per_epoch=1), checkpoint=ckpt, stop_after_epoch=0)
    with pytest.raises(ConfigError, match="another run"):
        _run(
            Darts(DartsConfig(order=2)), config=tiny_config(max_steps_per_epoch=1), checkpoint=ckpt
        )
