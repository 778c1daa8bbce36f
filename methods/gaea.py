"""GAEA DARTS: architecture weights on the per-edge simplex, updated by exponentiated gradient.

theta (6, 5) starts uniform over the candidate ops and is used directly as the mixing weights
(no softmax). Each architecture step is one mirror-descent step with the entropy mirror map,

    theta <- theta * exp(-lr * grad);  theta <- max(theta, 1e-5);  theta <- theta / row sum,

optionally with the entropic regulariser ``entropy_weight * sum theta log(theta |O|)`` in the
gradient. ``exclude_zero`` (the NB201 setting) removes ``none``: its weight stays exactly 0.
Single level (ERM, the headline variant) takes architecture batches from the training split;
bilevel from the validation split. Step order: theta, then w.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, ClassVar

import torch

from harness.errors import ConfigError
from harness.spaces import Space
from harness.supernet.search import Batch, StepContext, SupernetMethod, supernet_space

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class GaeaConfig:
    """NB201 settings of the reference code: EG lr 0.1, no entropic term, ``none`` excluded,
    single level. (The reference also uses C=24, 25 of 50 cosine epochs, wd 3e-4, clip 5;
    those belong to the supernet and :class:`SearchConfig`.)"""

    eg_lr: float = 0.1
    entropy_weight: float = 0.0
    exclude_zero: bool = True
    single_level: bool = True
    floor: float = 1e-5

    def __post_init__(self) -> None:
        if self.eg_lr <= 0 or self.entropy_weight < 0 or not 0 < self.floor < 0.1:
            raise ConfigError(
                f"need eg_lr > 0, entropy_weight >= 0, 0 < floor < 0.1; got {self.eg_lr}, "
                f"{self.entropy_weight}, {self.floor}"
            )


def candidate_mask(space: Space, exclude_zero: bool) -> torch.Tensor:
    """``space.shape`` bool: the choices the search may weigh (``exclude_zero``: all but the
    space's ``none`` op; the size space has none to exclude)."""
    mask = torch.ones(space.shape, dtype=torch.bool)
    if exclude_zero and "none" in space.choice_labels:
        mask[:, space.choice_labels.index("none")] = False
    return mask


def exponentiated_gradient_step(
    theta: torch.Tensor, grad: torch.Tensor, lr: float, mask: torch.Tensor, floor: float = 1e-5
) -> torch.Tensor:
    """One EG step on rows of the simplex: (rows, choices) theta and grad -> new theta.

    ``theta * exp(-lr * grad)``, clamped at ``floor``, renormalised, in that order as in the
    reference code (no shift by the row maximum before the clamp: it would move the floor);
    masked-out entries stay 0.
    """
    new = theta * torch.exp(-lr * grad.masked_fill(~mask, 0.0))
    new = torch.where(mask, new.clamp_min(floor), torch.zeros_like(new))
    return new / new.sum(dim=1, keepdim=True)


class Gaea(SupernetMethod):
    """GAEA DARTS (Li et al. 2021), single-level (ERM) or bilevel; on the size space the
    simplex of each layer is over its widths."""

    name: ClassVar[str] = "gaea"
    Config: ClassVar[type] = GaeaConfig
    spaces: ClassVar[tuple[str, ...]] = ("tss", "sss")
    dense_weights: ClassVar[bool] = True

    def __init__(self, config: GaeaConfig | None = None) -> None:
        super().__init__(config)
        self.arch_split = "train" if self.config.single_level else "valid"

    def init_arch_state(self, space: Space, generator: torch.Generator) -> dict[str, torch.Tensor]:
        """{"theta": ``space.shape``, uniform over the candidates, requires grad}."""
        mask = candidate_mask(space, self.config.exclude_zero).double()
        theta = (mask / mask.sum(dim=1, keepdim=True)).float()
        return {"theta": theta.requires_grad_(True)}

    def edge_weights(
        self, state: dict[str, torch.Tensor], *, training: bool, generator: torch.Generator
    ) -> torch.Tensor:
        """theta itself: rows on the simplex."""
        return state["theta"]

    def init_method_state(self, arch_state: dict[str, torch.Tensor], supernet: Any) -> dict:
        """{"mask": the candidate mask on theta's device}."""
        mask = candidate_mask(supernet_space(supernet), self.config.exclude_zero)
        return {"mask": mask.to(arch_state["theta"].device)}

    def capturable(self) -> bool:
        """The EG step reads nothing back and draws nothing."""
        return True

    def arch_step(self, ctx: StepContext, train_batch: Batch, arch_batch: Batch) -> None:
        """One exponentiated-gradient step on theta from the architecture batch."""
        theta = ctx.arch_state["theta"]
        grad = ctx.grad(ctx.loss(arch_batch, theta), [theta])[0]
        cfg = self.config
        with torch.no_grad():
            if cfg.entropy_weight > 0:
                n_ops = ctx.method_state["mask"].sum(dim=1, keepdim=True)
                grad = grad + cfg.entropy_weight * (
                    torch.log((theta * n_ops).clamp_min(cfg.floor)) + 1
                )
            new = exponentiated_gradient_step(
                theta, grad, cfg.eg_lr, ctx.method_state["mask"], cfg.floor
            )
            theta.copy_(new)
        ctx.supernet.zero_grad(set_to_none=True)
