"""RARTS: relaxed single-level architecture search with two coupled weight copies.

Formulation as recalled in the reference notes (tagged [R] there; the paper body, its code and
its hyperparameters were not reachable, [NF]). Two weight copies share one alpha: ``w`` (the
supernet) trains on the train split, ``y`` (a copy, kept in the method state) on the valid
split, coupled by a quadratic penalty:

    L(w, y, a) = L_val(y, a) + lam * L_train(w, a) + (beta / 2) * ||y - w||^2

One Gauss-Seidel sweep per batch pair, each update using the freshest values:

    1. w <- SGD step on  lam * L_train(w, a) + beta/2 ||w - y||^2      (harness weight step)
    2. y <- SGD step on  L_val(y, a) + beta/2 ||y - w||^2               (same lr schedule)
    3. a <- Adam step on grad_a L_val(y, a) [+ lam * grad_a L_train(w, a) if alpha_uses_train]

There are no mixed second derivatives. Unverified choices made here (defaults): lam = 1,
beta = 0.01, alpha's gradient from the y copy's valid loss only (``alpha_uses_train=False``;
True gives the gradient of the whole objective), y starts as a copy of w, y uses SGD with the
search's momentum, weight decay, clipping and learning rate, and the copies share the
supernet's BatchNorm running buffers. The alpha optimiser is DARTS's Adam.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import nn

from harness.errors import ConfigError
from harness.supernet.search import Batch, Loss, StepContext, SupernetMethod
from methods.darts import ArchAdamConfig, SoftmaxArchMixin

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class RartsConfig(ArchAdamConfig):
    """``train_weight`` = lam, ``coupling`` = beta (both [NF] in the literature we could read)."""

    train_weight: float = 1.0
    coupling: float = 0.01
    alpha_uses_train: bool = False

    def __post_init__(self) -> None:
        if self.train_weight <= 0 or self.coupling < 0 or self.arch_lr <= 0:
            raise ConfigError(
                f"need train_weight > 0, coupling >= 0, arch_lr > 0; got {self.train_weight}, "
                f"{self.coupling}, {self.arch_lr}"
            )


def _distance(a: Mapping[str, torch.Tensor], b: Mapping[str, torch.Tensor]) -> torch.Tensor:
    """sum over tensors of ||a - b||^2 (scalar)."""
    return sum(((a[k] - b[k]) ** 2).sum() for k in a)  # type: ignore[return-value]


class Rarts(SoftmaxArchMixin, SupernetMethod):
    """RARTS (Xue, Qi, Xin 2022), single-level relaxed search."""

    name: ClassVar[str] = "rarts"
    Config: ClassVar[type] = RartsConfig
    caveat: ClassVar[str | None] = (
        "RARTS's update equations and hyperparameters have no published source we could read "
        "(no code, no readable paper body): this is a formulation recalled from the paper, with "
        "lambda, beta and the learning rates chosen here"
    )
    spaces: ClassVar[tuple[str, ...]] = ("tss", "sss")
    dense_weights: ClassVar[bool] = True

    def init_method_state(
        self, arch_state: dict[str, torch.Tensor], supernet: nn.Module
    ) -> dict[str, Any]:
        """Adam on alpha, the y copy (dict name -> tensor) and its SGD optimiser."""
        y = {n: p.detach().clone().requires_grad_(True) for n, p in supernet.named_parameters()}
        return {
            "arch_optimizer": self.config.adam([arch_state["alpha"]]),
            "y": y,
            "y_optimizer": torch.optim.SGD(list(y.values()), lr=0.0),
        }

    def step(self, ctx: StepContext, train_batch: Batch, arch_batch: Batch) -> Loss:
        """w step, y step, alpha step (one Gauss-Seidel sweep)."""
        cfg, y = self.config, ctx.method_state["y"]
        w = dict(ctx.supernet.named_parameters())
        y_fixed = {n: t.detach() for n, t in y.items()}
        loss = ctx.weight_step(
            train_batch,
            loss_scale=cfg.train_weight,
            penalty=lambda: 0.5 * cfg.coupling * _distance(w, y_fixed),
        )
        self._y_step(ctx, arch_batch)
        self.arch_step(ctx, train_batch, arch_batch)
        return loss

    def _y_step(self, ctx: StepContext, arch_batch: Batch) -> None:
        y = ctx.method_state["y"]
        opt: torch.optim.SGD = ctx.method_state["y_optimizer"]
        w_fixed = {n: p.detach() for n, p in ctx.supernet.named_parameters()}
        for group in opt.param_groups:
            group.update(
                lr=ctx.lr,
                momentum=ctx.config.momentum,
                weight_decay=ctx.config.weight_decay,
                nesterov=ctx.config.nesterov,
            )
        opt.zero_grad(set_to_none=True)
        loss = ctx.loss(arch_batch, ctx.sampled_weights(), y)
        loss = loss + 0.5 * self.config.coupling * _distance(y, w_fixed)
        ctx.backward(loss)
        ctx.clip(y.values())
        opt.step()

    def arch_step(self, ctx: StepContext, train_batch: Batch, arch_batch: Batch) -> None:
        """Adam step on alpha from the y copy's valid loss (plus the train term if asked)."""
        alpha = ctx.arch_state["alpha"]
        opt: torch.optim.Adam = ctx.method_state["arch_optimizer"]
        opt.zero_grad(set_to_none=True)
        y = {n: t.detach() for n, t in ctx.method_state["y"].items()}
        loss = ctx.loss(arch_batch, torch.softmax(alpha, dim=-1), y)
        if self.config.alpha_uses_train:
            train_loss = ctx.loss(train_batch, torch.softmax(alpha, dim=-1))
            loss = loss + self.config.train_weight * train_loss
        alpha.grad = ctx.grad(loss, [alpha])[0].detach()
        opt.step()
        ctx.supernet.zero_grad(set_to_none=True)
