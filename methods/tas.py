"""TAS on the size space: channel-wise interpolation of two sampled widths (Dong and Yang 2019,
"Network Pruning via Transformable Architecture Search"), as NATS-Bench runs it.

Per module, from its layer's row of alpha: Gumbel-perturbed logits ``h = (log_softmax(alpha)
+ g) / tau``; two distinct widths drawn without replacement from ``softmax(h)``; their weights
are ``softmax`` of ``h`` at the two (renormalised). The module's output is resized to the
larger of the two widths by adaptive average pooling over channels, once per width, and mixed
by those weights (the supernet's ``mixing="interpolate"``). The gradient reaches alpha through
the two weights. Shared NATS settings (warm-up, temperature 10 -> 0.1, Adam with weight decay
1e-3): :mod:`methods.nats_width`.
"""

from __future__ import annotations

import logging
from typing import Any, ClassVar

import torch

from harness.supernet.search import Batch, StepContext
from methods.nats_width import WidthSearch, WidthSearchConfig, gumbel, per_module

logger = logging.getLogger(__name__)


def select_two(
    alpha: torch.Tensor, tau: float, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """Two distinct choices per row of ``alpha`` (rows, n) and their renormalised weights:
    ``(indices (rows, 2) int64, weights (rows, 2))``, the weights differentiable in alpha.
    Random draws come from ``generator`` on the CPU."""
    noise = gumbel(tuple(alpha.shape), generator).to(alpha.device, alpha.dtype)
    logits = (torch.log_softmax(alpha, dim=-1) + noise) / tau  # (rows, n)
    probs = torch.softmax(logits, dim=-1).detach().double().cpu()
    picked = torch.multinomial(probs + 1e-7, 2, replacement=False, generator=generator)
    picked = picked.to(alpha.device)  # (rows, 2)
    return picked, torch.softmax(logits.gather(1, picked), dim=-1)


class Tas(WidthSearch):
    """TAS channel-wise interpolation (module docstring)."""

    name: ClassVar[str] = "tas"
    Config: ClassVar[type] = WidthSearchConfig

    def forward_options(self) -> dict[str, Any]:
        """The supernet interpolates the two selected widths and leaves out the channels
        beyond the wider one (the zero weights' gradient never reaches alpha: the weights are
        scattered from the two selected probabilities)."""
        return {"mixing": "interpolate", "skip_zero": True}

    def module_weights(
        self, state: dict[str, torch.Tensor], generator: torch.Generator
    ) -> torch.Tensor:
        """(6, 8): the two selected widths' weights per module, zeros elsewhere."""
        alpha = per_module(state["alpha"])  # (6, 8)
        picked, weights = select_two(alpha, float(state["tau"]), generator)
        return torch.zeros_like(alpha).scatter(1, picked, weights)

    def arch_step(self, ctx: StepContext, train_batch: Batch, arch_batch: Batch) -> None:
        """Adam step on alpha from the cross-entropy of a fresh sample on the arch batch."""
        weights = self.module_weights(ctx.arch_state, ctx.generator)
        self.adam_step(ctx, ctx.loss(arch_batch, weights))
