"""DARTS: softmax relaxation, first order (V1) and second order (V2, one unrolled step).

The second-order architecture gradient follows the NATS-Bench (AutoDL) implementation:

    w'   = w - xi * (momentum * buf + grad_w L_train(w, a) + wd * w)
    g    = grad_a L_val(w', a) - xi * [grad_a L_train(w+, a) - grad_a L_train(w-, a)] / (2 eps)
    w+-  = w +- eps * grad_w' L_val(w', a),   eps = 0.01 / ||grad_w' L_val||  (hvp_scale)

with xi the current weight learning rate and ``buf`` the SGD momentum buffer (zero before the
first weight step). Architecture optimiser: Adam lr 3e-4, betas (0.5, 0.999), wd 1e-3.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import torch
from torch import nn

from harness.errors import ConfigError
from harness.spaces import Space
from harness.supernet.search import Batch, Loss, StepContext, SupernetMethod

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ArchAdamConfig:
    """Adam on the architecture parameters (the DARTS family's shared setting)."""

    arch_lr: float = 3e-4
    arch_beta1: float = 0.5
    arch_beta2: float = 0.999
    arch_weight_decay: float = 1e-3
    init_scale: float = 1e-3

    def adam(self, params: list[torch.Tensor]) -> torch.optim.Adam:
        """Adam over ``params`` with these settings."""
        return torch.optim.Adam(
            params,
            lr=self.arch_lr,
            betas=(self.arch_beta1, self.arch_beta2),
            weight_decay=self.arch_weight_decay,
        )


@dataclass(frozen=True)
class DartsConfig(ArchAdamConfig):
    """``order``: 1 (first order) or 2 (unrolled). ``weights_first``: AutoDL's w-then-alpha
    step order (True) or the original DARTS alpha-then-w order (False). ``hvp_scale``: the
    numerator of the finite-difference step ``eps = hvp_scale / ||grad_w' L_val||``."""

    order: Literal[1, 2] = 1
    weights_first: bool = True
    hvp_scale: float = 0.01

    def __post_init__(self) -> None:
        if self.order not in (1, 2):
            raise ConfigError(f"DARTS order must be 1 or 2; got {self.order}")
        if self.arch_lr <= 0 or self.hvp_scale <= 0:
            raise ConfigError(
                f"arch_lr and hvp_scale must be positive; got {self.arch_lr}, {self.hvp_scale}"
            )


class SoftmaxArchMixin:
    """alpha (rows, choices) ~ init_scale * N(0, 1) (tss (6 edges, 5 ops), sss (5 layers,
    8 widths)); weights = softmax(alpha) per row."""

    config: Any

    def init_arch_state(self, space: Space, generator: torch.Generator) -> dict[str, torch.Tensor]:
        """{"alpha": ``space.shape`` leaf tensor requiring grad}."""
        alpha = self.config.init_scale * torch.randn(space.shape, generator=generator)
        return {"alpha": alpha.requires_grad_(True)}

    def edge_weights(
        self, state: dict[str, torch.Tensor], *, training: bool, generator: torch.Generator
    ) -> torch.Tensor:
        """softmax(alpha) per row: ``space.shape``."""
        return torch.softmax(state["alpha"], dim=-1)

    def init_method_state(
        self, arch_state: dict[str, torch.Tensor], supernet: nn.Module
    ) -> dict[str, Any]:
        """{"arch_optimizer": Adam over alpha}."""
        return {"arch_optimizer": self.config.adam([arch_state["alpha"]])}


def unrolled_arch_grad(
    ctx: StepContext,
    alpha: torch.Tensor,
    train_batch: Batch,
    valid_batch: Batch,
    hvp_scale: float = 0.01,
) -> torch.Tensor:
    """The second-order DARTS gradient with respect to ``alpha``; see module docstring
    (``eps = hvp_scale / ||grad_w' L_val||``; DARTS uses 0.01, coarse on very small networks).

    Uses ``ctx.lr`` as xi and the momentum buffers and weight decay of ``ctx.weight_optimizer``.
    Leaves the supernet weights unchanged.
    """
    names, params = zip(*ctx.supernet.named_parameters(), strict=True)
    params_l = list(params)
    group = ctx.weight_optimizer.param_groups[0]
    momentum, wd, xi = group["momentum"], group["weight_decay"], ctx.lr
    weights = torch.softmax(alpha, dim=-1)
    g_train = ctx.grad(ctx.loss(train_batch, weights.detach()), params_l)
    with torch.no_grad():
        unrolled: list[torch.Tensor] = []
        for p, g in zip(params_l, g_train, strict=True):
            buf = ctx.weight_optimizer.state.get(p, {}).get("momentum_buffer")
            step = g + wd * p + (momentum * buf if buf is not None else 0.0)
            unrolled.append((p - xi * step).requires_grad_(True))
    val_loss = ctx.loss(valid_batch, weights, dict(zip(names, unrolled, strict=True)))
    grads = ctx.grad(val_loss, [alpha, *unrolled])
    d_alpha, d_w = grads[0], grads[1:]
    norm = torch.sqrt(sum((g.float() ** 2).sum() for g in d_w))  # type: ignore[arg-type]
    eps = hvp_scale / float(norm)
    implicit = []
    for sign in (1.0, -1.0):
        shifted = {
            n: (p + sign * eps * g).detach() for n, p, g in zip(names, params_l, d_w, strict=True)
        }
        loss = ctx.loss(train_batch, torch.softmax(alpha, dim=-1), shifted)
        implicit.append(ctx.grad(loss, [alpha])[0])
    return d_alpha - xi * (implicit[0] - implicit[1]) / (2 * eps)


class Darts(SoftmaxArchMixin, SupernetMethod):
    """DARTS (Liu et al. 2019) as run by NATS-Bench; on the size space it is the softmax
    relaxation over each layer's widths (masks weighted by softmax(alpha))."""

    name: ClassVar[str] = "darts"
    Config: ClassVar[type] = DartsConfig
    spaces: ClassVar[tuple[str, ...]] = ("tss", "sss")
    dense_weights: ClassVar[bool] = True

    def capturable(self) -> bool:
        """First order only (the second-order step reads a gradient norm back)."""
        return self.config.order == 1

    def step(self, ctx: StepContext, train_batch: Batch, arch_batch: Batch) -> Loss:
        """Weight then architecture step (AutoDL) or the reverse, per ``weights_first``."""
        if self.config.weights_first:
            loss = ctx.weight_step(train_batch)
            self.arch_step(ctx, train_batch, arch_batch)
            return loss
        self.arch_step(ctx, train_batch, arch_batch)
        return ctx.weight_step(train_batch)

    def arch_step(self, ctx: StepContext, train_batch: Batch, arch_batch: Batch) -> None:
        """One Adam step on alpha with the first- or second-order gradient."""
        alpha = ctx.arch_state["alpha"]
        opt: torch.optim.Adam = ctx.method_state["arch_optimizer"]
        opt.zero_grad(set_to_none=True)
        if self.config.order == 1:
            grad = ctx.grad(ctx.loss(arch_batch, torch.softmax(alpha, dim=-1)), [alpha])[0]
        else:
            grad = unrolled_arch_grad(ctx, alpha, train_batch, arch_batch, self.config.hvp_scale)
        alpha.grad = grad.detach()
        opt.step()
        ctx.supernet.zero_grad(set_to_none=True)


@dataclass(frozen=True)
class FixedAlphaConfig:
    """``init_scale``: alpha ~ init_scale * N(0, 1), as DARTS initialises it."""

    init_scale: float = 1e-3

    def __post_init__(self) -> None:
        if self.init_scale < 0:
            raise ConfigError(f"init_scale must be >= 0; got {self.init_scale}")


class FixedAlpha(SoftmaxArchMixin, SupernetMethod):
    """A supernet trained under DARTS's initial alpha, never updated (near-uniform mixing):
    DARTS-PT's "fix alpha" supernet (its ``blank`` method), the one its perturbation
    selection reaches 93.80% from on NB201 CIFAR-10. Each step is a weight step only."""

    name: ClassVar[str] = "fixed_alpha"
    Config: ClassVar[type] = FixedAlphaConfig
    spaces: ClassVar[tuple[str, ...]] = ("tss", "sss")
    dense_weights: ClassVar[bool] = True

    def init_method_state(
        self, arch_state: dict[str, torch.Tensor], supernet: nn.Module
    ) -> dict[str, Any]:
        """No architecture optimiser."""
        return {}

    def capturable(self) -> bool:
        """A weight step under constant weights: capturable."""
        return True

    def step(self, ctx: StepContext, train_batch: Batch, arch_batch: Batch) -> Loss:
        """The weight step alone (no architecture batch is used)."""
        return ctx.weight_step(train_batch)

    def arch_step(self, ctx: StepContext, train_batch: Batch, arch_batch: Batch) -> None:
        """Nothing: alpha stays at its initial value."""
