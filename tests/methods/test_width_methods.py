"""The size-space channel searches on constructed cases: the NATS warm-up and temperature
schedules, TAS's two-width selection, FBNet-V2's seeded Gumbel masks, the sign of TuNAS's
REINFORCE step, DNAL's gates, delta schedule and threshold, and RARTS on widths."""

from __future__ import annotations

import math
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
import torch

from harness.errors import ConfigError
from harness.spaces import get_space
from harness.supernet.channels import prefix_masks
from harness.supernet.search import run_supernet_search
from harness.supernet.testing import tiny_config, tiny_loaders, tiny_supernet
from methods.dnal import Dnal, DnalConfig, delta_schedule, gates_to_weights, kept_widths
from methods.fbnet_v2 import FbnetV2, gumbel_softmax
from methods.nats_width import MODULE_ROWS, WidthSearchConfig, per_module, warmup_weights
from methods.rarts import Rarts, RartsConfig
from methods.tas import Tas, select_two
from methods.tunas import Tunas, TunasConfig, sample_widths

pytestmark = pytest.mark.usefixtures("one_torch_thread")
SSS = get_space("sss")


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _ctx(method: Any, epoch: int, epochs: int, **extra: Any) -> SimpleNamespace:
    state = method.init_arch_state(SSS, _gen(0))
    return SimpleNamespace(arch_state=state, epoch=epoch, config=SimpleNamespace(epochs=epochs),
                           generator=_gen(1), **extra)  # fmt: skip


# --------------------------------------------------------------------------- NATS schedules
def test_warmup_and_temperature_follow_the_official_schedule() -> None:
    """10 epochs, warm-up ratio 0.3: the full width with probability 1, 2/3, 1/3 in epochs
    0-2, then the controller; tau falls linearly from 10 at epoch 0 to 0.1 at epoch 9."""
    method = Tas()
    expected = {0: 1.0, 1: 1 - 1 / 3, 2: 1 - 2 / 3, 3: -1.0, 9: -1.0}
    for epoch, p_full in expected.items():
        ctx = _ctx(method, epoch, 10)
        method.on_epoch_start(ctx)  # type: ignore[arg-type]
        assert float(ctx.arch_state["warmup"]) == pytest.approx(p_full)
        assert float(ctx.arch_state["tau"]) == pytest.approx(10 - 9.9 * epoch / 9)
        assert method.in_warmup(ctx.arch_state) == (epoch < 3)


def test_warmup_draws_full_width_with_the_scheduled_probability() -> None:
    gen = _gen(3)
    assert torch.equal(warmup_weights(1.0, 8, gen).argmax(dim=1), torch.full((6,), 7))
    draws = torch.stack([warmup_weights(0.5, 8, gen).argmax(dim=1) for _ in range(4000)])
    full = (draws == 7).double().mean()
    assert float(full) == pytest.approx(0.5 + 0.5 / 8, abs=0.02)  # full, or drawn as the 8th
    uniform = torch.stack([warmup_weights(0.0, 8, gen).argmax(dim=1) for _ in range(4000)])
    counts = torch.bincount(uniform.flatten(), minlength=8).double() / uniform.numel()
    assert torch.allclose(counts, torch.full((8,), 1 / 8, dtype=torch.float64), atol=0.02)
    # each module draws for itself: the stem and the first cell differ sometimes
    assert bool((uniform[:, 0] != uniform[:, 1]).any())


def test_warmup_epochs_make_no_architecture_update() -> None:
    train, valid = tiny_loaders(2)
    result = run_supernet_search(
        Tas(), tiny_supernet(2, space="sss"), train, valid,
        tiny_config(epochs=1, max_steps_per_epoch=3, grad_clip=None), np.random.default_rng(2),
    )  # fmt: skip
    alpha0 = Tas().init_arch_state(SSS, torch.Generator())["alpha"]
    assert result.arch_state["alpha"].shape == alpha0.shape == (5, 8)
    # one epoch of ten would be all warm-up: 3 weight steps, no architecture forward at all
    assert result.ledger.forward_passes == 3 and result.ledger.backward_passes == 3
    with pytest.raises(ConfigError, match="warmup_ratio"):
        WidthSearchConfig(warmup_ratio=1.0)


def test_modules_share_their_layer_rows() -> None:
    alpha = torch.arange(40.0).reshape(5, 8)
    assert MODULE_ROWS == (0, 0, 1, 2, 3, 4)
    assert torch.equal(per_module(alpha)[1], alpha[0]) and torch.equal(
        per_module(alpha)[5], alpha[4]
    )


# --------------------------------------------------------------------------- TAS and FBNet-V2
def test_tas_selects_two_distinct_widths_with_renormalised_weights() -> None:
    alpha = torch.randn(6, 8, generator=_gen(0), dtype=torch.float64).requires_grad_(True)
    picked, weights = select_two(alpha, 1.0, _gen(5))
    assert picked.shape == weights.shape == (6, 2)
    assert bool((picked[:, 0] != picked[:, 1]).all())
    assert torch.allclose(weights.sum(dim=1), torch.ones(6, dtype=torch.float64))
    again = select_two(alpha, 1.0, _gen(5))
    assert torch.equal(picked, again[0]) and torch.equal(weights, again[1])  # seeded
    (weights[:, 0] * torch.arange(6.0, dtype=torch.float64)).sum().backward()
    assert alpha.grad is not None and float(alpha.grad.abs().sum()) > 0
    # at a low temperature a dominant width is always one of the two
    peaked = torch.zeros(6, 8, dtype=torch.float64)
    peaked[:, 3] = 20.0
    for seed in range(20):
        assert bool((select_two(peaked, 0.1, _gen(seed))[0] == 3).any(dim=1).all())


def test_tas_module_weights_have_two_entries_and_interpolate() -> None:
    method = Tas()
    state = method.init_arch_state(SSS, _gen(0))
    weights = method.module_weights(state, _gen(1))
    assert weights.shape == (6, 8) and bool(((weights != 0).sum(dim=1) == 2).all())
    assert method.forward_options() == {"mixing": "interpolate", "skip_zero": True}
    net = tiny_supernet(0, space="sss")
    x = torch.randn(2, 3, 8, 8, generator=_gen(2))
    assert net(x, weights, mixing="interpolate").shape == (2, 3)


def test_fbnet_v2_gumbel_masks_are_seeded_soft_and_sharpen_with_tau() -> None:
    alpha = torch.randn(6, 8, generator=_gen(0))
    a, b = gumbel_softmax(alpha, 1.0, _gen(7)), gumbel_softmax(alpha, 1.0, _gen(7))
    assert torch.equal(a, b) and not torch.equal(a, gumbel_softmax(alpha, 1.0, _gen(8)))
    assert torch.allclose(a.sum(dim=1), torch.ones(6)) and bool((a > 0).all())
    sharp = gumbel_softmax(alpha, 1e-3, _gen(7))
    assert torch.allclose(sharp.max(dim=1).values, torch.ones(6), atol=1e-4)
    state = FbnetV2().init_arch_state(SSS, _gen(0))
    mask = FbnetV2().module_weights(state, _gen(1)) @ prefix_masks()  # (6, 64)
    assert bool((mask[:, :8] > mask[:, -1:] - 1e-7).all())  # a prefix mask falls with width


# --------------------------------------------------------------------------- TuNAS
def test_tunas_samples_one_width_per_module_with_its_log_probability() -> None:
    alpha = torch.randn(6, 8, generator=_gen(0)).requires_grad_(True)
    weights, log_prob = sample_widths(alpha, _gen(3))
    assert torch.equal(weights.sum(dim=1), torch.ones(6)) and weights.max() == 1
    expected = torch.log_softmax(alpha, -1)[torch.arange(6), weights.argmax(dim=1)].sum()
    assert float(log_prob.detach()) == pytest.approx(float(expected.detach()))
    assert TunasConfig().arch_weight_decay == 0.0  # NATS runs TuNAS without weight decay


class _FixedRewards:
    """Logits whose top-1 accuracy on a batch of 4 is the next of ``rewards`` (in %)."""

    def __init__(self, rewards: list[float]) -> None:
        self.rewards = list(rewards)

    def __call__(self, x: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        right = round(self.rewards.pop(0) / 25)
        logits = torch.zeros(4, 2)
        logits[:right, 0] = 1.0  # labels are all 0
        logits[right:, 1] = 1.0
        return logits


def test_tunas_reinforce_step_sign_and_bias_corrected_baseline() -> None:
    """The first reward equals its bias-corrected baseline (no update); a worse reward than
    the baseline makes the sampled widths less likely."""
    method = Tunas()
    state = method.init_arch_state(SSS, _gen(0))
    alpha = state["alpha"]
    optimisers = method.init_method_state(state, tiny_supernet(0, space="sss"))
    ctx = SimpleNamespace(arch_state=state, generator=_gen(4), method_state=optimisers,
                          logits=_FixedRewards([100.0, 0.0]))  # fmt: skip
    batch = (torch.zeros(4, 3, 8, 8), torch.zeros(4, dtype=torch.long))
    before = alpha.detach().clone()
    method.arch_step(ctx, batch, batch)  # type: ignore[arg-type]
    assert torch.equal(alpha.detach(), before)  # advantage 0: baseline = 100 after bias fix
    assert state["baseline"].tolist() == pytest.approx([5.0, 0.05])
    sampler = _gen(4)
    sampler.set_state(ctx.generator.get_state())
    picked = sample_widths(per_module(alpha), sampler)[0].argmax(dim=1)
    method.arch_step(ctx, batch, batch)  # type: ignore[arg-type]
    moved = alpha.detach() - before
    for module, width in enumerate(picked.tolist()):
        assert float(moved[MODULE_ROWS[module], width]) < 0  # reward 0 < baseline 48.7
    assert float(state["baseline"][0] / state["baseline"][1]) == pytest.approx(4.75 / 0.0975)


# --------------------------------------------------------------------------- DNAL
def test_dnal_gates_become_prefix_weights_exactly() -> None:
    gates = torch.rand(5, 8, generator=_gen(0), dtype=torch.float64)
    mask = gates_to_weights(gates) @ prefix_masks().double()  # (5, 64)
    assert torch.allclose(mask, gates.repeat_interleave(8, dim=1))


def test_dnal_delta_schedule_and_threshold() -> None:
    schedule = delta_schedule(DnalConfig())
    assert len(schedule) == 10 and schedule[0] == pytest.approx(10**0.4)
    assert schedule[4] == pytest.approx(100.0) and schedule[-1] == pytest.approx(1e4)
    gates = torch.tensor([[0.95] * 8, [0.95, 0.2, 0.95, 0.0, 0, 0, 0, 0], [0.5] * 8,
                          [0.9] * 8, [0.91] * 3 + [0.0] * 5])  # fmt: skip
    # kept groups, counted wherever they are: 8, 2, 0 (at least one), 0 (0.9 is not > 0.9), 3
    assert kept_widths(gates, 0.9) == [7, 1, 0, 0, 2]
    with pytest.raises(ConfigError):
        DnalConfig(threshold=1.0)


def test_dnal_stages_reset_the_gates_and_grow_delta() -> None:
    method = Dnal(DnalConfig(arch_epochs=2))
    ctx = _ctx(method, 0, 5)
    state = ctx.arch_state
    for epoch in range(3):  # weight stage: full width, gates bypassed
        ctx.epoch = epoch
        method.on_epoch_start(ctx)  # type: ignore[arg-type]
        assert (
            float(state["stage"]) == 0
            and SSS.index_to_str(
                SSS.choices_to_index(method.final_weights(state).argmax(dim=1).tolist())
            )
            == "64:64:64:64:64"
        )
    with torch.no_grad():
        state["s"].fill_(3.0)
    ctx.epoch = 3
    method.on_epoch_start(ctx)  # type: ignore[arg-type]
    assert float(state["stage"]) == 1 and float(state["s"].detach().abs().sum()) == 0  # 0.5
    assert float(state["delta"]) == pytest.approx(100.0)  # (1e4) ** (1 / 2)
    assert torch.allclose(method.gates(state), torch.full((5, 8), 0.5))
    ctx.epoch = 4
    method.on_epoch_start(ctx)  # type: ignore[arg-type]
    assert float(state["delta"]) == pytest.approx(1e4)
    with pytest.raises(ConfigError, match="arch_epochs"):
        method.on_epoch_start(_ctx(method, 0, 2))  # type: ignore[arg-type]


def test_dnal_penalty_narrows_the_layers() -> None:
    """Same supernet and data: a large lambda_a keeps fewer channels than none."""
    widths = {}
    for lam in (0.0, 10.0):
        train, valid = tiny_loaders(3)
        result = run_supernet_search(
            Dnal(DnalConfig(lambda_a=lam, arch_epochs=1, gate_lr=0.5)),
            tiny_supernet(3, space="sss"), train, valid,
            tiny_config(epochs=2, max_steps_per_epoch=3, grad_clip=None), np.random.default_rng(3),
        )  # fmt: skip
        widths[lam] = sum(SSS.index_to_choices(result.arch_index))
        assert result.ledger.epochs == 2
    assert widths[10.0] < widths[0.0]


# --------------------------------------------------------------------------- RARTS on widths
def test_rarts_searches_widths_with_coupled_copies() -> None:
    train, valid = tiny_loaders(4)
    net = tiny_supernet(4, space="sss")
    result = run_supernet_search(
        Rarts(RartsConfig(coupling=0.5)), net, train, valid, tiny_config(),
        np.random.default_rng(4),
    )  # fmt: skip
    assert result.arch_weights.shape == (5, 8)
    y = result.method_state["y"]
    gaps = [float((y[n] - p).detach().abs().max()) for n, p in net.named_parameters()]
    assert max(gaps) > 0 and math.isfinite(max(gaps))
    assert not np.allclose(result.arch_weights, result.arch_weights[0, 0])
