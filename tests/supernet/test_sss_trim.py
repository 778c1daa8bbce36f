"""The size-space supernet's trimmed forward (``skip_zero``): the channels every module's
weights narrow to exactly 0 are left out, with the logits and gradients of the full forward."""

from __future__ import annotations

import copy

import pytest
import torch

from harness.supernet import sss_trim
from harness.supernet.sss import SssSuperNet

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _weights(seed: int, mixing: str) -> torch.Tensor:
    """(6, 8) one-hot rows (mask) or two-hot rows (interpolate), never all at width 64."""
    gen = torch.Generator().manual_seed(seed)
    picked = torch.randint(0, 7, (6,), generator=gen)
    weights = torch.zeros(6, 8, dtype=torch.float64)
    weights[torch.arange(6), picked] = 1.0
    if mixing == "interpolate":
        other = (picked + 1 + torch.randint(0, 6, (6,), generator=gen)) % 7
        weights[torch.arange(6), picked] = 0.7
        weights[torch.arange(6), other] = 0.3
    return weights


@pytest.mark.parametrize("mixing", ["mask", "interpolate"])
@pytest.mark.parametrize(("affine", "track"), [(False, False), (True, True)])
@pytest.mark.parametrize("fused", [True, False])
def test_trimmed_forward_gives_the_full_logits_and_gradients(
    mixing: str, affine: bool, track: bool, fused: bool
) -> None:
    torch.manual_seed(0)
    net = SssSuperNet(num_classes=5, affine=affine, track_running_stats=track, fused=fused)
    net = net.double()
    x = torch.randn(4, 3, 16, 16, dtype=torch.float64)
    for seed in range(3):
        weights = _weights(seed, mixing)
        full, trimmed = copy.deepcopy(net), copy.deepcopy(net)
        a = full(x, weights, mixing=mixing, skip_zero=False)
        b = trimmed(x, weights, mixing=mixing, skip_zero=True)
        torch.testing.assert_close(a, b, rtol=0, atol=1e-12)
        a.square().sum().backward()
        b.square().sum().backward()
        for (name, p), q in zip(full.named_parameters(), trimmed.parameters(), strict=True):
            assert p.grad is not None and q.grad is not None, name
            torch.testing.assert_close(p.grad, q.grad, rtol=0, atol=1e-12, msg=name)


def test_skip_zero_default_trims_only_without_recorded_gradients(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[int] = []
    original = sss_trim.trimmed_stem

    def counting(*args: object) -> torch.Tensor:
        calls.append(1)
        return original(*args)  # type: ignore[arg-type]

    monkeypatch.setattr("harness.supernet.sss.trimmed_stem", counting)
    net = SssSuperNet(num_classes=3)
    x = torch.randn(2, 3, 8, 8)
    hard = _weights(0, "mask").float()
    net(x, hard)  # no gradient recorded: trimmed
    assert calls == [1]
    net(x, hard.clone().requires_grad_(True))  # its gradient is wanted: full
    net(x, hard, skip_zero=False)
    net(x, torch.full((5, 8), 1 / 8))  # nothing to leave out
    full_width = torch.zeros(5, 8)
    full_width[:, -1] = 1.0
    net(x, full_width)
    SssSuperNet(num_classes=3, mask_scope="layer")(x, hard)  # layer scope is never trimmed
    assert calls == [1]
    net(x, hard.clone().requires_grad_(True), skip_zero=True)
    assert calls == [1, 1]


def test_trimming_leaves_the_dropped_channels_running_statistics_alone() -> None:
    net = SssSuperNet(num_classes=3)
    weights = torch.zeros(5, 8)
    weights[:, 0] = 1.0  # every layer at width 8
    bn = net.cells[1].conv_b.op[2]  # the first block's second BN keeps running statistics
    before = bn.running_mean.clone()
    net(torch.randn(4, 3, 8, 8), weights)
    assert not torch.equal(bn.running_mean[:8], before[:8])
    assert torch.equal(bn.running_mean[8:], before[8:])
