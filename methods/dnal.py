"""DNAL on the size space: differentiable channel learning with a scaled sigmoid (Guo et al.
2022, "Differentiable Neural Architecture Learning for Efficient Neural Networks").

DNAL gates every channel ``c`` by ``sigmoid(delta * s_c)``. Our port to the benchmark's width
grid (this mapping is ours, not the paper's): one gate per 8-channel group of each of the 5
layers, ``s`` of shape (5 layers, 8 groups), gate ``g[l, k]`` scaling channels ``8k..8k+7`` of
every module of layer ``l``. The supernet takes per-layer weights over prefix masks, so the
gates are handed to it as ``w[l, k] = g[l, k] - g[l, k + 1]`` (``g[l, 8] = 0``), whose prefix
sum is exactly the gate of each group.

Two stages, as in the paper (``stages=1``):

1. **weights** for ``epochs - arch_epochs`` epochs: gates bypassed (every layer at full width),
   the harness's SGD weight steps;
2. **architecture** for the last ``arch_epochs`` (10) epochs: weights frozen, ``s`` reset to 0
   (gates 0.5), loss = cross-entropy + ``lambda_a * sum of the unscaled sigmoid(s)`` over all
   gated channels (8 per group), SGD on ``s`` (lr 0.01, momentum 0.9, no weight decay) on the
   training split (single level); before each architecture epoch ``delta`` is multiplied by
   ``delta_final ** (1 / arch_epochs)`` (the paper: (10^4)^(1/10) per epoch, from 1 to 10^4).

Discretisation: a group is kept when ``sigmoid(delta * s) > threshold`` (0.9); a layer's width
is 8 times the number of kept groups (at least 8), which is on the 8..64 grid by construction.
``lambda_a`` sets the compression: the larger, the narrower the result. The paper's fine-tuning
of the pruned network is the training stage's job, not the search's.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import nn

from harness.errors import ConfigError
from harness.spaces import Space
from harness.supernet.search import Batch, Loss, StepContext, SupernetMethod

logger = logging.getLogger(__name__)

_CHANNELS_PER_GROUP = 8


@dataclass(frozen=True)
class DnalConfig:
    """DNAL's settings (paper defaults; ``lambda_a`` between 1e-5 and 5e-4 on CIFAR-10 there,
    at a per-channel scale that our 320 gated channels do not share: choose it per study)."""

    lambda_a: float = 1e-4
    arch_epochs: int = 10
    gate_lr: float = 0.01
    gate_momentum: float = 0.9
    delta_final: float = 1e4
    threshold: float = 0.9

    def __post_init__(self) -> None:
        if self.lambda_a < 0 or self.arch_epochs < 1 or self.gate_lr <= 0:
            raise ConfigError(
                f"need lambda_a >= 0, arch_epochs >= 1, gate_lr > 0; got {self.lambda_a}, "
                f"{self.arch_epochs}, {self.gate_lr}"
            )
        if self.delta_final < 1 or not 0 < self.threshold < 1:
            raise ConfigError(
                f"need delta_final >= 1 and 0 < threshold < 1; got {self.delta_final}, "
                f"{self.threshold}"
            )


def gates_to_weights(gates: torch.Tensor) -> torch.Tensor:
    """(layers, groups) gates -> (layers, groups) prefix weights whose prefix-mask sum gives
    each channel group its gate: ``w[:, k] = g[:, k] - g[:, k + 1]``, ``g[:, groups] = 0``."""
    return gates - nn.functional.pad(gates[:, 1:], (0, 1))


def kept_widths(gates: torch.Tensor, threshold: float) -> list[int]:
    """Width position per layer: the number of groups whose gate exceeds ``threshold``, minus
    one, at least 0 (width 8)."""
    kept = (gates > threshold).sum(dim=1)
    return [max(int(n) - 1, 0) for n in kept.tolist()]


class Dnal(SupernetMethod):
    """DNAL with group gates (module docstring)."""

    name: ClassVar[str] = "dnal"
    Config: ClassVar[type] = DnalConfig
    spaces: ClassVar[tuple[str, ...]] = ("sss",)
    caveat: ClassVar[str | None] = (
        "DNAL has no NAS-Bench-201 or NATS-Bench results; its per-channel gates are ported "
        "here to one gate per 8-channel group of each layer (our mapping), and lambda_a's "
        "scale differs from the paper's networks"
    )
    check_settings: ClassVar[Mapping[str, Any]] = {"arch_epochs": 1}
    arch_split = "train"

    def init_arch_state(self, space: Space, generator: torch.Generator) -> dict[str, torch.Tensor]:
        """``s`` (5, 8) gate logits, ``delta`` and the ``stage`` flag (0 weights, 1 gates)."""
        return {
            "s": torch.zeros(space.shape).requires_grad_(True),
            "delta": torch.tensor(1.0),
            "stage": torch.tensor(0.0),
        }

    def init_method_state(
        self, arch_state: dict[str, torch.Tensor], supernet: nn.Module
    ) -> dict[str, Any]:
        """SGD on the gate logits."""
        cfg = self.config
        return {
            "gate_optimizer": torch.optim.SGD(
                [arch_state["s"]], lr=cfg.gate_lr, momentum=cfg.gate_momentum
            )
        }

    def gates(self, state: dict[str, torch.Tensor]) -> torch.Tensor:
        """(5, 8) scaled-sigmoid gates ``sigmoid(delta * s)``."""
        return torch.sigmoid(state["delta"] * state["s"])

    def on_epoch_start(self, ctx: StepContext) -> None:
        """Enter the architecture stage (reset ``s``), then grow ``delta`` every epoch of it."""
        first = ctx.config.epochs - self.config.arch_epochs
        if first < 1:
            raise ConfigError(
                f"dnal: arch_epochs={self.config.arch_epochs} leaves no weight stage in the "
                f"{ctx.config.epochs} epochs of the search (set arch_epochs, e.g. in the card's "
                "method_settings)"
            )
        if ctx.epoch < first:
            return
        state = ctx.arch_state
        if float(state["stage"]) == 0:
            with torch.no_grad():
                state["s"].zero_()
            state["delta"].fill_(1.0)
            state["stage"].fill_(1.0)
        growth = self.config.delta_final ** (1.0 / self.config.arch_epochs)
        state["delta"].mul_(growth)
        logger.debug("dnal: delta %.4g at epoch %d", float(state["delta"]), ctx.epoch)

    def edge_weights(
        self, state: dict[str, torch.Tensor], *, training: bool, generator: torch.Generator
    ) -> torch.Tensor:
        """Weight stage: every layer at full width (gates bypassed); architecture stage: the
        gates as prefix weights (5, 8), differentiable in ``s``."""
        s = state["s"]
        if float(state["stage"]) == 0:
            full = torch.zeros_like(s)
            full[:, -1] = 1.0
            return full
        return gates_to_weights(self.gates(state))

    def final_weights(self, state: dict[str, torch.Tensor]) -> torch.Tensor:
        """One-hot on the kept width of each layer (the full width before the gates train)."""
        with torch.no_grad():
            s = state["s"]
            onehot = torch.zeros_like(s)
            if float(state["stage"]) == 0:
                onehot[:, -1] = 1.0
                return onehot
            picked = kept_widths(self.gates(state), self.config.threshold)
            onehot[torch.arange(s.shape[0]), torch.as_tensor(picked)] = 1.0
            return onehot

    def step(self, ctx: StepContext, train_batch: Batch, arch_batch: Batch) -> Loss:
        """A weight step (weight stage) or a gate step with the weights frozen."""
        if float(ctx.arch_state["stage"]) == 0:
            return ctx.weight_step(train_batch)
        return self._gate_step(ctx, arch_batch)

    def arch_step(self, ctx: StepContext, train_batch: Batch, arch_batch: Batch) -> None:
        """One gate step (see :meth:`_gate_step`)."""
        self._gate_step(ctx, arch_batch)

    def _gate_step(self, ctx: StepContext, arch_batch: Batch) -> torch.Tensor:
        """One SGD step of ``s`` on cross-entropy + lambda_a * sum of sigmoid(s) per channel;
        returns the cross-entropy."""
        s = ctx.arch_state["s"]
        opt: torch.optim.SGD = ctx.method_state["gate_optimizer"]
        opt.zero_grad(set_to_none=True)
        ce = ctx.loss(arch_batch, self.edge_weights(ctx.arch_state, training=True,
                                                    generator=ctx.generator))  # fmt: skip
        sparsity = _CHANNELS_PER_GROUP * torch.sigmoid(s).sum()
        s.grad = ctx.grad(ce + self.config.lambda_a * sparsity, [s])[0].detach()
        opt.step()
        ctx.supernet.zero_grad(set_to_none=True)
        return ce.detach()


def delta_schedule(config: DnalConfig) -> list[float]:
    """``delta`` during each architecture epoch (1-based: ``growth ** j``)."""
    growth = config.delta_final ** (1.0 / config.arch_epochs)
    return [growth**j for j in range(1, config.arch_epochs + 1)]
