"""The contract between the supernet search loop and a method.

:class:`SupernetMethod` is what a differentiable method implements; :class:`StepContext` is what
it sees at each step (the supernet, the weight optimiser, the loss and gradient helpers that
keep the cost ledger, and the harness-owned weight step); :class:`SearchConfig` holds the
loop's settings and :class:`SearchLedger` its measured cost.
"""

from __future__ import annotations

import logging
import math
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Mapping
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import torch
from torch import nn
from torch.func import functional_call

from harness.errors import ConfigError
from harness.protocol import CostLedger
from harness.spaces import Space
from harness.supernet.compiled import check_compile_mode, dense_forward
from harness.supernet.optim import sgd_update_

logger = logging.getLogger(__name__)

Batch = tuple[torch.Tensor, torch.Tensor]  # images (B, 3, H, W) float, labels (B,) int64
Loss = torch.Tensor | float  # a step's weight loss: 0-dim tensor (no device sync) or float


@dataclass(frozen=True)
class SearchConfig:
    """Settings of the loop (NATS-Bench ``weight-sharing.config`` defaults).

    ``lr`` follows a cosine from ``lr`` to ``lr_min`` over ``schedule_epochs`` (default
    ``epochs``; GAEA runs 25 of a 50-epoch schedule), updated every step, or once per epoch
    with ``lr_per_epoch`` (as the AutoDL and DARTS-PT code do). ``grad_clip`` None: no
    clipping.
    ``max_steps_per_epoch`` caps an epoch (tests, smoke runs); None: the whole train loader.
    ``compile``: a ``torch.compile`` mode (``harness.supernet.compiled.COMPILE_MODES``) for
    the supernet forwards of methods with dense weights (``SupernetMethod.dense_weights``);
    None: eager.
    ``cuda_graph``: capture whole search steps as CUDA graphs (:mod:`harness.supernet.graphed`;
    CUDA only, methods whose ``capturable()`` is True).
    """

    epochs: int = 100
    lr: float = 0.025
    lr_min: float = 0.001
    momentum: float = 0.9
    weight_decay: float = 5e-4
    nesterov: bool = True
    grad_clip: float | None = None
    schedule_epochs: int | None = None
    max_steps_per_epoch: int | None = None
    bf16: bool = False
    device: str = "cpu"
    compile: str | None = None
    cuda_graph: bool = False
    lr_per_epoch: bool = False

    def __post_init__(self) -> None:
        check_compile_mode(self.compile)
        if self.epochs < 1 or (self.schedule_epochs is not None and self.schedule_epochs < 1):
            raise ConfigError(f"epochs must be >= 1; got {self.epochs}, {self.schedule_epochs}")
        if not 0 <= self.lr_min <= self.lr:
            raise ConfigError(f"need 0 <= lr_min <= lr; got {self.lr_min}, {self.lr}")
        if self.grad_clip is not None and self.grad_clip <= 0:
            raise ConfigError(f"grad_clip must be positive or None; got {self.grad_clip}")

    def lr_at(self, epoch: int, step: int, steps_per_epoch: int) -> float:
        """Cosine learning rate at fractional epoch ``epoch + step / steps_per_epoch`` (at
        ``epoch`` for every step of it with ``lr_per_epoch``)."""
        horizon = self.schedule_epochs or self.epochs
        fraction = 0.0 if self.lr_per_epoch else step / steps_per_epoch
        t = min((epoch + fraction) / horizon, 1.0)
        return self.lr_min + 0.5 * (self.lr - self.lr_min) * (1 + math.cos(math.pi * t))


@dataclass
class SearchLedger:
    """Measured cost of a search. ``device_seconds``: time inside epochs (device synchronised);
    ``forward_passes`` / ``backward_passes``: supernet forward calls and backward (autograd)
    calls, each over one mini-batch."""

    device_seconds: float = 0.0
    epochs: int = 0
    forward_passes: int = 0
    backward_passes: int = 0

    def to_cost_ledger(self, wall_seconds: float | None = None) -> CostLedger:
        """The run record's :class:`harness.protocol.CostLedger` (simulated fields None)."""
        return CostLedger(
            wall_seconds=wall_seconds,
            device_seconds=self.device_seconds,
            epochs=self.epochs,
            forward_passes=self.forward_passes,
            backward_passes=self.backward_passes,
        )


def supernet_space(supernet: nn.Module) -> Space:
    """The search space a supernet module searches (its ``space`` attribute: every supernet of
    :mod:`harness.supernet` has one); ConfigError for a module without one."""
    space = getattr(supernet, "space", None)
    if not isinstance(space, Space):
        raise ConfigError(
            f"{type(supernet).__name__} is not a supernet of this harness (it has no `space`)"
        )
    return space


def check_space(method: SupernetMethod, space: Space) -> None:
    """ConfigError unless ``method`` searches ``space`` (its class attribute ``spaces``)."""
    if space.name not in method.spaces:
        raise ConfigError(
            f"supernet method {method.name!r} searches the {'/'.join(method.spaces)} space "
            f"only, not {space.name}"
        )


@dataclass
class StepContext:
    """What a method's step sees. ``lr``: the weight learning rate of this step (DARTS's xi).

    Architecture weights have one row per position of the supernet's space and one column per
    choice (``space.shape``: tss (6, 5), one row per edge over the ops; sss (5, 8), one row per
    layer over the widths). ``projection``: ``(decided, onehot)``, a (rows,) bool mask and
    one-hot weights that replace the rows of every weights tensor given to :meth:`loss` where
    ``decided`` (DARTS-PT's projected rows while the method keeps training: no gradient reaches
    their architecture weights).
    """

    method: SupernetMethod
    supernet: nn.Module
    weight_optimizer: torch.optim.SGD
    arch_state: dict[str, torch.Tensor]
    method_state: dict[str, Any]
    generator: torch.Generator
    config: SearchConfig
    ledger: SearchLedger
    lr: float = 0.0
    epoch: int = 0
    step: int = 0
    lr_tensor: torch.Tensor | None = None  # the lr on the device (CUDA-graph steps read it)
    projection: tuple[torch.Tensor, torch.Tensor] | None = None

    @property
    def space(self) -> Space:
        """The space the supernet searches."""
        return supernet_space(self.supernet)

    def autocast(self) -> AbstractContextManager[Any]:
        """bf16 autocast when configured, else a no-op context (no cast cache when steps are
        captured as CUDA graphs)."""
        if not self.config.bf16:
            return nullcontext()
        device = torch.device(self.config.device).type
        return torch.autocast(
            device, dtype=torch.bfloat16, cache_enabled=not self.config.cuda_graph
        )

    def logits(
        self,
        x: torch.Tensor,
        weights: torch.Tensor,
        params: dict[str, torch.Tensor] | None = None,
        skip_zero: bool | None = None,
    ) -> torch.Tensor:
        """Logits (B, classes, float32) of the supernet (or of it with ``params`` swapped in)
        on images ``x`` under architecture ``weights`` (its rows replaced where
        ``projection`` says), with the method's :meth:`~SupernetMethod.forward_options`;
        counts one forward pass. ``skip_zero``: passed to the supernet (tss: True leaves ops
        of weight 0 out even when ``weights`` needs grad)."""
        self.ledger.forward_passes += 1
        if self.projection is not None:
            weights = self._project(weights)
        mode = self.config.compile
        fast = mode is not None or self.config.cuda_graph
        dense = fast and params is None and not skip_zero and self.method.dense_weights
        if dense:
            skip_zero = False  # evaluate every op: nothing is read back to the host
        kwargs = dict(self.method.forward_options())
        if skip_zero is not None:
            kwargs["skip_zero"] = skip_zero
        with self.autocast():
            if dense and mode is not None:
                logits = dense_forward(self.supernet, mode)(x, weights)  # (B, classes)
            elif params is None:
                logits = self.supernet(x, weights, **kwargs)  # (B, classes)
            else:
                logits = functional_call(self.supernet, params, (x, weights), kwargs)
        if logits.dtype in (torch.bfloat16, torch.float16):
            logits = logits.float()  # the loss in float32 under autocast
        return logits

    def _project(self, weights: torch.Tensor) -> torch.Tensor:
        """``weights`` with the decided rows replaced by their one-hot rows; per-module weights
        (the size space's (6, 8)) take the rows of their layers (``MODULE_ROWS``)."""
        assert self.projection is not None
        decided, onehot = self.projection
        if weights.shape[0] != decided.shape[0]:
            rows = list(getattr(self.supernet, "MODULE_ROWS", ()))
            if len(rows) != weights.shape[0]:
                raise ConfigError(
                    f"weights of {weights.shape[0]} rows cannot be projected on "
                    f"{decided.shape[0]} decided rows"
                )
            decided, onehot = decided[rows], onehot[rows]
        return torch.where(decided[:, None], onehot.to(weights.dtype), weights)

    def loss(
        self,
        batch: Batch,
        weights: torch.Tensor,
        params: dict[str, torch.Tensor] | None = None,
        skip_zero: bool | None = None,
    ) -> torch.Tensor:
        """Cross-entropy of :meth:`logits` on ``batch``; counts one forward pass."""
        x, y = batch
        return nn.functional.cross_entropy(self.logits(x, weights, params, skip_zero), y)

    def grad(
        self, loss: torch.Tensor, inputs: list[torch.Tensor], retain_graph: bool = False
    ) -> list[torch.Tensor]:
        """``torch.autograd.grad`` with zeros for unused inputs; counts one backward pass."""
        self.ledger.backward_passes += 1
        grads = torch.autograd.grad(loss, inputs, retain_graph=retain_graph, allow_unused=True)
        return [torch.zeros_like(t) if g is None else g for t, g in zip(inputs, grads, strict=True)]

    def backward(self, loss: torch.Tensor) -> None:
        """``loss.backward()``; counts one backward pass."""
        self.ledger.backward_passes += 1
        loss.backward()

    def sampled_weights(self, training: bool = True) -> torch.Tensor:
        """The method's architecture weights, detached (for weight steps and evaluation)."""
        with torch.no_grad():
            return self.method.edge_weights(
                self.arch_state, training=training, generator=self.generator
            ).detach()

    def clip(self, parameters: Iterable[torch.Tensor]) -> None:
        """Clip the gradient norm to ``config.grad_clip`` (no-op when None)."""
        if self.config.grad_clip is not None:
            nn.utils.clip_grad_norm_(list(parameters), self.config.grad_clip)

    def weight_step(
        self,
        batch: Batch,
        *,
        loss_scale: float = 1.0,
        penalty: Callable[[], torch.Tensor] | None = None,
        weights: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """One SGD step of the supernet weights on ``loss_scale * L(batch) + penalty()``.

        ``weights``: architecture weights; default the method's detached training weights.
        Returns the unscaled batch loss as a 0-dim tensor on the device (reading it would wait
        for the device; the loop sums the losses there and reads them once per epoch).
        """
        self.weight_optimizer.zero_grad(set_to_none=True)
        w = self.sampled_weights(True) if weights is None else weights.detach()
        loss = self.loss(batch, w)
        total = loss_scale * loss + (penalty() if penalty is not None else 0.0)
        self.backward(total)
        self.clip(self.supernet.parameters())
        if self.lr_tensor is not None:
            sgd_update_(self.weight_optimizer, self.lr_tensor)
        else:
            self.weight_optimizer.step()
        return loss.detach()


class SupernetMethod(ABC):
    """A differentiable search method: architecture weights and their update rule.

    Subclasses set ``name`` and ``Config`` (a frozen dataclass of hyperparameters); the
    constructor only stores the config. Runtime state lives in two dicts the harness keeps and
    checkpoints: ``arch_state`` (tensors) and ``method_state`` (optimisers, tensors, modules).
    """

    name: ClassVar[str]
    Config: ClassVar[type]
    #: the spaces (``"tss"``, ``"sss"``) whose supernets the method can search.
    spaces: ClassVar[tuple[str, ...]] = ("tss",)
    #: what a reader of this method's results must know (an unverified formulation, a port
    #: of ours); reports print it beside the method's rows. None: nothing to add.
    caveat: ClassVar[str | None] = None
    #: config values for the tiny searches of :func:`harness.checks.check_supernet_method`
    #: (two epochs), for methods whose defaults need a longer search.
    check_settings: ClassVar[Mapping[str, Any]] = {}
    #: split the architecture batches come from: "valid" (bilevel) or "train" (single level).
    arch_split: Literal["valid", "train"] = "valid"
    #: True when the training weights have no exact zeros except on ``none`` (softmax, simplex
    #: interior): the supernet may then be evaluated densely, which compiled forwards need.
    dense_weights: ClassVar[bool] = False

    def __init__(self, config: Any = None) -> None:
        self.config = self.Config() if config is None else config

    @abstractmethod
    def init_arch_state(self, space: Space, generator: torch.Generator) -> dict[str, torch.Tensor]:
        """Initial architecture tensors for ``space`` (weights of shape ``space.shape``; on the
        CPU: the harness moves them)."""

    @abstractmethod
    def edge_weights(
        self, state: dict[str, torch.Tensor], *, training: bool, generator: torch.Generator
    ) -> torch.Tensor:
        """Architecture weights for one forward pass (``space.shape``, or another shape the
        space's supernet takes); differentiable in ``state``."""

    def init_method_state(
        self, arch_state: dict[str, torch.Tensor], supernet: nn.Module
    ) -> dict[str, Any]:
        """Optimisers and extra tensors (built after ``arch_state`` is on the device)."""
        return {}

    def forward_options(self) -> dict[str, Any]:
        """Keyword arguments of every supernet forward of this method's steps (e.g. the size
        space's ``mixing="interpolate"`` for TAS); default none."""
        return {}

    def final_weights(self, state: dict[str, torch.Tensor]) -> torch.Tensor:
        """Weights (``space.shape``) whose per-row argmax is the method's architecture."""
        with torch.no_grad():
            g = torch.Generator()
            return self.edge_weights(state, training=False, generator=g).detach()

    def capturable(self) -> bool:
        """Whether a whole :meth:`step` can be captured as a CUDA graph: dense weights, no
        values read back to the host, no random draws, learning rates only from the loop."""
        return False

    def on_epoch_start(self, ctx: StepContext) -> None:  # noqa: B027 - optional hook
        """Per-epoch hook (temperature schedules)."""

    def step(self, ctx: StepContext, train_batch: Batch, arch_batch: Batch) -> Loss:
        """One search step; default: architecture step, then weight step. Returns the weight
        step's loss (a 0-dim tensor, or a float)."""
        self.arch_step(ctx, train_batch, arch_batch)
        return ctx.weight_step(train_batch)

    @abstractmethod
    def arch_step(self, ctx: StepContext, train_batch: Batch, arch_batch: Batch) -> None:
        """Update ``ctx.arch_state`` (and method state) from the two batches."""
