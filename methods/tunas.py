"""TuNAS channel masking with sampling on the size space (Bender et al. 2020), as NATS-Bench
runs it.

Per module, one width sampled from ``softmax(alpha)`` of its layer's row (a hard prefix mask).
The architecture step is REINFORCE: reward = top-1 accuracy (%) of a fresh sample on the
architecture batch, baseline = a bias-corrected exponential moving average of the rewards
(momentum 0.95, updated with the current reward before the advantage is taken), loss =
``-(reward - baseline) * sum of the modules' log-probabilities``; Adam without weight decay
(the card's ``method_settings``). As in the official loop the baseline also averages the
rewards of the warm-up steps (their forwards are counted). Shared NATS settings:
:mod:`methods.nats_width` (TuNAS uses no temperature).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import ClassVar

import torch

from harness.errors import ConfigError
from harness.spaces import Space
from harness.supernet.search import Batch, StepContext
from methods.nats_width import WidthSearch, WidthSearchConfig, per_module

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class TunasConfig(WidthSearchConfig):
    """``baseline_momentum``: of the reward's moving average (0.95); no architecture weight
    decay (NATS-Bench runs TuNAS with ``--arch_weight_decay 0``)."""

    arch_weight_decay: float = 0.0
    baseline_momentum: float = 0.95

    def __post_init__(self) -> None:
        super().__post_init__()
        if not 0 <= self.baseline_momentum < 1:
            raise ConfigError(f"baseline_momentum must be in [0, 1); got {self.baseline_momentum}")


def sample_widths(
    alpha: torch.Tensor, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """One choice per row of ``alpha`` (rows, n) from ``softmax(alpha)``: ``(one-hot weights
    (rows, n), sum of the log-probabilities of the choices)``, the latter differentiable."""
    log_probs = torch.log_softmax(alpha, dim=-1)  # (rows, n)
    probs = log_probs.detach().exp().double().cpu()
    picked = torch.multinomial(probs, 1, generator=generator).to(alpha.device)  # (rows, 1)
    weights = torch.zeros_like(alpha).scatter(1, picked, 1.0)
    return weights, log_probs.gather(1, picked).sum()


def top1(logits: torch.Tensor, labels: torch.Tensor) -> float:
    """Top-1 accuracy in % (reads one number back from the device)."""
    return 100.0 * float((logits.argmax(dim=1) == labels).float().mean())


class Tunas(WidthSearch):
    """TuNAS masking + REINFORCE (module docstring)."""

    name: ClassVar[str] = "tunas"
    Config: ClassVar[type] = TunasConfig

    def init_arch_state(self, space: Space, generator: torch.Generator) -> dict[str, torch.Tensor]:
        """As the base, plus ``baseline``: the EMA's numerator and denominator (float64)."""
        state = super().init_arch_state(space, generator)
        state["baseline"] = torch.zeros(2, dtype=torch.float64)
        return state

    def module_weights(
        self, state: dict[str, torch.Tensor], generator: torch.Generator
    ) -> torch.Tensor:
        """(6, 8) one-hot: one sampled width per module."""
        return sample_widths(per_module(state["alpha"]), generator)[0]

    def _reward(self, ctx: StepContext, batch: Batch, weights: torch.Tensor) -> float:
        """Top-1 of ``weights`` on ``batch``, folded into the baseline; returns the advantage."""
        with torch.no_grad():
            reward = top1(ctx.logits(batch[0], weights), batch[1])
        m, ema = self.config.baseline_momentum, ctx.arch_state["baseline"]
        ema.mul_(m).add_(torch.tensor([(1 - m) * reward, 1 - m], dtype=ema.dtype))
        return reward - float(ema[0] / ema[1])

    def warmup_arch_batch(self, ctx: StepContext, arch_batch: Batch) -> None:
        """The baseline averages the warm-up architectures' rewards too (official loop)."""
        self._reward(ctx, arch_batch, ctx.sampled_weights(True))

    def arch_step(self, ctx: StepContext, train_batch: Batch, arch_batch: Batch) -> None:
        """One REINFORCE step of alpha (no backward pass through the supernet)."""
        alpha = ctx.arch_state["alpha"]
        weights, log_prob = sample_widths(per_module(alpha), ctx.generator)
        advantage = self._reward(ctx, arch_batch, weights)
        opt: torch.optim.Adam = ctx.method_state["arch_optimizer"]
        opt.zero_grad(set_to_none=True)
        alpha.grad = torch.autograd.grad(-advantage * log_prob, [alpha])[0].detach()
        opt.step()
