"""GDAS: one sampled path per step by hard Gumbel-softmax with a straight-through gradient.

Training weights are ``onehot(argmax(h)) - p.detach() + p`` with ``p = softmax(h)``,
``h = (log_softmax(alpha) + g) / tau`` and ``g`` Gumbel noise from the method's generator; the
temperature falls linearly from ``tau_max`` to ``tau_min`` over the epochs (NAS-Bench-201:
10 -> 0.1, 250 epochs). Both the weight step and the architecture step evaluate only the
sampled op of each edge (``single_path``); the architecture gradient then reaches every alpha
through ``p``. As in AutoDL's forward (``zero_terms``, the default), each unselected op adds its
hard weight (0 in value, gradient 1) to its edge's output, so those entries get the gradient
of the edge output's sum as well; ``zero_terms=False`` leaves that term out.
Architecture optimiser: Adam 3e-4, betas (0.5, 0.999), wd 1e-3. Selection: argmax of alpha.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, ClassVar

import torch

from harness.errors import ConfigError
from harness.spaces import Space
from harness.supernet.search import Batch, Loss, StepContext, SupernetMethod
from methods.darts import ArchAdamConfig, SoftmaxArchMixin

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class GdasConfig(ArchAdamConfig):
    """Temperature schedule, whether the architecture step evaluates one path only, and
    whether the unselected ops' zero weights join the edge outputs (``zero_terms``, as the
    official forward does)."""

    tau_max: float = 10.0
    tau_min: float = 0.1
    single_path: bool = True
    zero_terms: bool = True

    def __post_init__(self) -> None:
        if not 0 < self.tau_min <= self.tau_max:
            raise ConfigError(f"need 0 < tau_min <= tau_max; got {self.tau_min}, {self.tau_max}")


def gumbel_hard(alpha: torch.Tensor, tau: float, generator: torch.Generator) -> torch.Tensor:
    """Hard straight-through Gumbel-softmax sample per row of ``alpha`` (6, 5) -> (6, 5).

    Noise is drawn on the generator's device (CPU) and moved, so samples do not depend on the
    device holding ``alpha``.
    """
    u = torch.rand(alpha.shape, generator=generator, dtype=torch.float64)
    u = u.clamp(1e-12, 1 - 1e-12)
    gumbel = (-torch.log(-torch.log(u))).to(device=alpha.device, dtype=alpha.dtype)
    probs = torch.softmax((torch.log_softmax(alpha, dim=-1) + gumbel) / tau, dim=-1)
    index = probs.argmax(dim=-1, keepdim=True)
    hard = torch.zeros_like(probs).scatter_(-1, index, 1.0)
    return hard - probs.detach() + probs


class Gdas(SoftmaxArchMixin, SupernetMethod):
    """GDAS (Dong and Yang 2019)."""

    name: ClassVar[str] = "gdas"
    Config: ClassVar[type] = GdasConfig

    def init_arch_state(self, space: Space, generator: torch.Generator) -> dict[str, torch.Tensor]:
        """{"alpha": (6, 5) requiring grad, "tau": scalar temperature}."""
        state = super().init_arch_state(space, generator)
        state["tau"] = torch.tensor(float(self.config.tau_max))
        return state

    def edge_weights(
        self, state: dict[str, torch.Tensor], *, training: bool, generator: torch.Generator
    ) -> torch.Tensor:
        """Training: hard Gumbel sample (6, 5); evaluation: softmax(alpha)."""
        if not training:
            return torch.softmax(state["alpha"], dim=-1)
        return gumbel_hard(state["alpha"], float(state["tau"]), generator)

    def forward_options(self) -> dict[str, Any]:
        """The unselected ops' zero weights join their edges' outputs (official forward)."""
        return {"zero_terms": self.config.single_path and self.config.zero_terms}

    def on_epoch_start(self, ctx: StepContext) -> None:
        """Linear temperature: tau_max at epoch 0, tau_min at the last epoch."""
        cfg, epochs = self.config, ctx.config.epochs
        frac = ctx.epoch / (epochs - 1) if epochs > 1 else 1.0
        ctx.arch_state["tau"].fill_(cfg.tau_max - (cfg.tau_max - cfg.tau_min) * frac)

    def arch_step(self, ctx: StepContext, train_batch: Batch, arch_batch: Batch) -> None:
        """Adam step on alpha through one sampled path on the architecture batch."""
        alpha = ctx.arch_state["alpha"]
        opt: torch.optim.Adam = ctx.method_state["arch_optimizer"]
        opt.zero_grad(set_to_none=True)
        weights = self.edge_weights(ctx.arch_state, training=True, generator=ctx.generator)
        loss = ctx.loss(arch_batch, weights, skip_zero=self.config.single_path)  # zero_terms
        alpha.grad = ctx.grad(loss, [alpha])[0].detach()
        opt.step()
        ctx.supernet.zero_grad(set_to_none=True)

    def step(self, ctx: StepContext, train_batch: Batch, arch_batch: Batch) -> Loss:
        """Weight step on one sampled path, then the architecture step (AutoDL order)."""
        loss = ctx.weight_step(train_batch)
        self.arch_step(ctx, train_batch, arch_batch)
        return loss
