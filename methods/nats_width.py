"""What NATS-Bench's three size-space (channel) searches share: TAS, FBNet-V2 and TuNAS.

NATS-Bench runs them in one script with one supernet (``harness.supernet.sss``: six modules at
width 64, module ``i`` masked from architecture row ``MODULE_ROWS[i]``, so the stem and the
first cell share layer row 0) and these shared settings:

* alpha (5 layers, 8 widths) ~ 1e-3 N(0, 1); Adam 3e-4, betas (0.5, 0.999) (the card's);
  architecture weight decay 1e-3 for TAS and FBNet-V2, 0 for TuNAS (the card's
  ``method_settings``);
* each step: a weight step on the train batch under the method's sampled weights, then an
  architecture step on the architecture batch;
* **warm-up** for the first ``warmup_ratio`` (0.3) of the epochs: no architecture updates, and
  each module uses the full width with probability ``1 - epoch / (warmup_ratio * epochs)``,
  else a uniformly drawn width (every module draws for itself, as in the official forward);
* temperature ``tau_max - (tau_max - tau_min) * epoch / (epochs - 1)`` (10 -> 0.1; TAS and
  FBNet-V2);
* every module draws its own sample from its layer's row (the official forward samples per
  module), so training weights are per module, (6, 8); the final architecture is the argmax
  of alpha per layer.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import ClassVar

import torch

from harness.errors import ConfigError
from harness.spaces import Space
from harness.supernet.search import Batch, Loss, StepContext, SupernetMethod
from methods.darts import ArchAdamConfig, SoftmaxArchMixin

logger = logging.getLogger(__name__)

#: Architecture row of each of the size-space supernet's six modules.
MODULE_ROWS: tuple[int, ...] = (0, 0, 1, 2, 3, 4)


@dataclass(frozen=True)
class WidthSearchConfig(ArchAdamConfig):
    """The shared NATS-Bench size-space settings: ``warmup_ratio`` of the epochs without
    architecture updates (0: none) and the temperature schedule (unused by TuNAS)."""

    warmup_ratio: float = 0.3
    tau_max: float = 10.0
    tau_min: float = 0.1

    def __post_init__(self) -> None:
        if not 0 <= self.warmup_ratio < 1:
            raise ConfigError(f"warmup_ratio must be in [0, 1); got {self.warmup_ratio}")
        if not 0 < self.tau_min <= self.tau_max:
            raise ConfigError(f"need 0 < tau_min <= tau_max; got {self.tau_min}, {self.tau_max}")
        if self.arch_lr <= 0:
            raise ConfigError(f"arch_lr must be positive; got {self.arch_lr}")


def gumbel(shape: tuple[int, ...], generator: torch.Generator) -> torch.Tensor:
    """Standard Gumbel noise of ``shape`` (float64, CPU) from ``generator``."""
    u = torch.rand(shape, generator=generator, dtype=torch.float64).clamp(1e-12, 1 - 1e-12)
    return -torch.log(-torch.log(u))


def warmup_weights(p_full: float, widths: int, generator: torch.Generator) -> torch.Tensor:
    """(6, widths) one-hot per-module weights: the full width with probability ``p_full``,
    else a uniformly drawn width, for each module independently."""
    full = torch.rand(len(MODULE_ROWS), generator=generator, dtype=torch.float64) < p_full
    drawn = torch.randint(0, widths, (len(MODULE_ROWS),), generator=generator)
    choice = torch.where(full, torch.full_like(drawn, widths - 1), drawn)
    return torch.nn.functional.one_hot(choice, widths).float()  # (6, widths)


class WidthSearch(SoftmaxArchMixin, SupernetMethod):
    """Base of the NATS-Bench channel searches (module docstring). Subclasses give
    :meth:`module_weights` (training weights, per module) and :meth:`arch_step`.

    ``arch_state`` holds ``alpha`` (5, 8), the epoch's temperature ``tau`` and its warm-up
    probability ``warmup`` (< 0 once the controller is on), so a resumed search continues the
    same schedule.
    """

    spaces: ClassVar[tuple[str, ...]] = ("sss",)

    def init_arch_state(self, space: Space, generator: torch.Generator) -> dict[str, torch.Tensor]:
        """alpha (``space.shape``), ``tau`` and ``warmup`` scalars."""
        state = super().init_arch_state(space, generator)
        state["tau"] = torch.tensor(float(self.config.tau_max))
        state["warmup"] = torch.tensor(-1.0)
        return state

    def on_epoch_start(self, ctx: StepContext) -> None:
        """The epoch's temperature and warm-up probability (module docstring)."""
        cfg, epoch, epochs = self.config, ctx.epoch, ctx.config.epochs
        frac = epoch / (epochs - 1) if epochs > 1 else 1.0
        ctx.arch_state["tau"].fill_(cfg.tau_max - (cfg.tau_max - cfg.tau_min) * frac)
        warm = cfg.warmup_ratio > epoch / epochs
        ctx.arch_state["warmup"].fill_(1.0 - epoch / epochs / cfg.warmup_ratio if warm else -1.0)

    def in_warmup(self, state: dict[str, torch.Tensor]) -> bool:
        """Whether the controller is still off (warm-up epochs)."""
        return float(state["warmup"]) >= 0

    def module_weights(
        self, state: dict[str, torch.Tensor], generator: torch.Generator
    ) -> torch.Tensor:
        """(6, 8) training weights, one row per module, differentiable in alpha."""
        raise NotImplementedError

    def edge_weights(
        self, state: dict[str, torch.Tensor], *, training: bool, generator: torch.Generator
    ) -> torch.Tensor:
        """Training: the warm-up draw or :meth:`module_weights` (6, 8); evaluation:
        softmax(alpha) (5, 8)."""
        alpha = state["alpha"]
        if not training:
            return torch.softmax(alpha, dim=-1)
        if self.in_warmup(state):
            p_full = float(state["warmup"])
            return warmup_weights(p_full, alpha.shape[1], generator).to(alpha.device, alpha.dtype)
        return self.module_weights(state, generator)

    def step(self, ctx: StepContext, train_batch: Batch, arch_batch: Batch) -> Loss:
        """Weight step under the sampled weights, then (after the warm-up) the architecture
        step, as the official loop orders them."""
        loss = ctx.weight_step(train_batch)
        if self.in_warmup(ctx.arch_state):
            self.warmup_arch_batch(ctx, arch_batch)
        else:
            self.arch_step(ctx, train_batch, arch_batch)
        return loss

    def warmup_arch_batch(self, ctx: StepContext, arch_batch: Batch) -> None:
        """What a warm-up step does with the architecture batch: nothing by default (the
        official loop evaluates it and discards the loss)."""

    def adam_step(self, ctx: StepContext, loss: torch.Tensor) -> None:
        """One step of the architecture Adam on ``loss``'s gradient with respect to alpha."""
        alpha = ctx.arch_state["alpha"]
        opt: torch.optim.Adam = ctx.method_state["arch_optimizer"]
        opt.zero_grad(set_to_none=True)
        alpha.grad = ctx.grad(loss, [alpha])[0].detach()
        opt.step()
        ctx.supernet.zero_grad(set_to_none=True)


def per_module(alpha: torch.Tensor) -> torch.Tensor:
    """(5, 8) layer rows -> (6, 8) module rows (:data:`MODULE_ROWS`)."""
    return alpha[list(MODULE_ROWS)]
