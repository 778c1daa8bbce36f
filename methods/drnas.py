"""DrNAS: edge weights sampled from Dirichlet(ELU(alpha) + 1) with a pathwise gradient.

Each training forward draws theta_e ~ Dirichlet(beta_e), beta = ELU(alpha) + 1, per edge.
The sample is ``x / sum(x)`` with ``x_k ~ Gamma(beta_k, 1)``; the Gamma draws come from a numpy
generator seeded from the method's torch generator (torch's own Dirichlet sampler cannot take a
generator) and are differentiated implicitly, ``dx/dbeta = -(dF/dbeta) / f(x)``, by torch's
standard-gamma gradient, as ``Dirichlet.rsample`` does. Regularisation: L2 on alpha through
Adam weight decay (``reg_scale`` 1e-3, the reference's default); the KL variant is not
implemented. Step order: alpha on the valid batch, then w. Evaluation and selection use
softmax(alpha), as the reference's genotype does. The progressive partial-channel mode is not
implemented.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from harness.errors import ConfigError
from harness.supernet.search import Batch, StepContext, SupernetMethod
from methods.darts import ArchAdamConfig, SoftmaxArchMixin

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class DrnasConfig(ArchAdamConfig):
    """DrNAS NB201 settings: Adam 3e-4, betas (0.5, 0.999), L2 ``arch_weight_decay`` 1e-3."""

    def __post_init__(self) -> None:
        if self.arch_lr <= 0 or self.arch_weight_decay < 0:
            raise ConfigError(
                f"need arch_lr > 0, arch_weight_decay >= 0; got {self.arch_lr}, "
                f"{self.arch_weight_decay}"
            )


class _StandardGamma(torch.autograd.Function):
    """Gamma(concentration, 1) samples given from outside, with the implicit gradient."""

    @staticmethod
    def forward(ctx: Any, concentration: torch.Tensor, sample: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(concentration, sample)
        return sample.clone()

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        concentration, sample = ctx.saved_tensors
        return grad * torch._standard_gamma_grad(concentration, sample), None


def dirichlet_rsample(concentration: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """One Dirichlet sample per row of ``concentration`` (6, 5) -> (6, 5), differentiable."""
    seed = int(torch.randint(0, 2**62, (1,), generator=generator))
    rng = np.random.default_rng(seed)
    draws = rng.standard_gamma(concentration.detach().double().cpu().numpy())
    draws = np.maximum(draws, np.finfo(np.float64).tiny)
    sample = torch.as_tensor(draws, dtype=concentration.dtype, device=concentration.device)
    gamma = _StandardGamma.apply(concentration, sample)
    return gamma / gamma.sum(dim=-1, keepdim=True)


class Drnas(SoftmaxArchMixin, SupernetMethod):
    """DrNAS (Chen et al. 2021), non-progressive, L2 regularisation."""

    name: ClassVar[str] = "drnas"
    Config: ClassVar[type] = DrnasConfig
    dense_weights: ClassVar[bool] = True

    def edge_weights(
        self, state: dict[str, torch.Tensor], *, training: bool, generator: torch.Generator
    ) -> torch.Tensor:
        """Training: Dirichlet sample (6, 5); evaluation: softmax(alpha)."""
        alpha = state["alpha"]
        if not training:
            return torch.softmax(alpha, dim=-1)
        return dirichlet_rsample(nn.functional.elu(alpha) + 1, generator)

    def arch_step(self, ctx: StepContext, train_batch: Batch, arch_batch: Batch) -> None:
        """Adam step on alpha through a Dirichlet sample on the architecture batch."""
        alpha = ctx.arch_state["alpha"]
        opt: torch.optim.Adam = ctx.method_state["arch_optimizer"]
        opt.zero_grad(set_to_none=True)
        weights = self.edge_weights(ctx.arch_state, training=True, generator=ctx.generator)
        alpha.grad = ctx.grad(ctx.loss(arch_batch, weights), [alpha])[0].detach()
        opt.step()
        ctx.supernet.zero_grad(set_to_none=True)
