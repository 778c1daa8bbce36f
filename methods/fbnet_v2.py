"""FBNet-V2 channel masking on the size space (Wan et al. 2020), as NATS-Bench runs it.

Per module, Gumbel-softmax weights over its layer's 8 widths, ``softmax((alpha + g) / tau)``
with ``g`` Gumbel noise (soft, not straight-through); the module's output is multiplied by the
weighted sum of the 8 prefix masks (the supernet's ``mixing="mask"``). The architecture step
minimises the cross-entropy of a fresh sample on the architecture batch. Shared NATS settings
(warm-up, temperature 10 -> 0.1, Adam with weight decay 1e-3): :mod:`methods.nats_width`.
"""

from __future__ import annotations

import logging
from typing import ClassVar

import torch

from harness.supernet.search import Batch, StepContext
from methods.nats_width import WidthSearch, WidthSearchConfig, gumbel, per_module

logger = logging.getLogger(__name__)


def gumbel_softmax(alpha: torch.Tensor, tau: float, generator: torch.Generator) -> torch.Tensor:
    """Soft Gumbel-softmax sample per row of ``alpha``: ``softmax((alpha + g) / tau)``, noise
    from ``generator`` on the CPU; differentiable in alpha."""
    noise = gumbel(tuple(alpha.shape), generator).to(alpha.device, alpha.dtype)
    return torch.softmax((alpha + noise) / tau, dim=-1)


class FbnetV2(WidthSearch):
    """FBNet-V2 masking with Gumbel-softmax (module docstring)."""

    name: ClassVar[str] = "fbnet_v2"
    Config: ClassVar[type] = WidthSearchConfig
    dense_weights: ClassVar[bool] = True

    def module_weights(
        self, state: dict[str, torch.Tensor], generator: torch.Generator
    ) -> torch.Tensor:
        """(6, 8) Gumbel-softmax weights, one sample per module."""
        return gumbel_softmax(per_module(state["alpha"]), float(state["tau"]), generator)

    def arch_step(self, ctx: StepContext, train_batch: Batch, arch_batch: Batch) -> None:
        """Adam step on alpha from the cross-entropy of a fresh sample on the arch batch."""
        weights = self.module_weights(ctx.arch_state, ctx.generator)
        self.adam_step(ctx, ctx.loss(arch_batch, weights))
