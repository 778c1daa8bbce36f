"""The harness-owned supernet search loop.

A :class:`SupernetMethod` supplies architecture weights for the forward pass and an update rule
per step; this module owns everything else: epochs and batches, the weight optimiser (SGD with
Nesterov momentum) and its per-step cosine learning rate, gradient clipping, device placement,
optional bf16 autocast and compiled forwards, the cost ledger, a per-epoch record of the argmax
architecture, and epoch-boundary checkpoints from which a killed search resumes to the same result.

Each step pairs one weight batch (train split) with one architecture batch (valid split, or a
second, independently shuffled pass over the train split for single-level methods). Each epoch
restarts both iterators, so the only state that crosses an epoch boundary is in the checkpoint.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
from torch import nn

from harness.data.augment import torch_generator
from harness.errors import ConfigError
from harness.spaces import Space
from harness.supernet.checkpoint import load_checkpoint, save_checkpoint
from harness.supernet.graphed import GraphedStep
from harness.supernet.method import (
    Batch,
    Loss,
    SearchConfig,
    SearchLedger,
    StepContext,
    SupernetMethod,
    check_space,
    supernet_space,
)

__all__ = [
    "Batch",
    "BatchLoader",
    "EpochRecord",
    "Loss",
    "SearchConfig",
    "SearchLedger",
    "SearchResult",
    "StepContext",
    "SupernetMethod",
    "argmax_arch",
    "check_space",
    "one_hot",
    "run_supernet_search",
    "supernet_space",
]

logger = logging.getLogger(__name__)


class BatchLoader(Protocol):
    """What the loop needs of a loader (``harness.data.DeviceLoader`` fits): one epoch per
    iteration, a length in batches, and the generator whose state is checkpointed."""

    generator: torch.Generator | None

    def __iter__(self) -> Iterator[Batch]: ...

    def __len__(self) -> int: ...


@dataclass(frozen=True)
class EpochRecord:
    """The argmax architecture after an epoch and the epoch's mean weight-step loss."""

    epoch: int
    arch_index: int
    arch: str
    lr: float
    train_loss: float
    seconds: float


@dataclass
class SearchResult:
    """Outcome of :func:`run_supernet_search`; ``complete`` is False when stopped early on request.
    ``arch_weights``: the method's final weights (``space.shape``, float64 numpy)."""

    arch_index: int
    arch: str
    arch_weights: np.ndarray
    history: list[EpochRecord]
    ledger: SearchLedger
    complete: bool
    arch_state: dict[str, torch.Tensor] = field(repr=False)
    method_state: dict[str, Any] = field(repr=False)


def argmax_arch(weights: torch.Tensor, space: Space) -> int:
    """Official index of the per-row argmax of ``space.shape`` weights (ties: lowest choice)."""
    if tuple(weights.shape) != space.shape:
        raise ConfigError(
            f"{space.name} architecture weights have shape {space.shape}; "
            f"got {tuple(weights.shape)}"
        )
    return space.choices_to_index([int(i) for i in weights.detach().float().argmax(dim=1).tolist()])


def one_hot(
    space: Space,
    arch: int,
    device: torch.device | str = "cpu",
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """``space.shape`` one-hot weights of architecture ``arch`` (official index)."""
    weights = torch.zeros(space.shape, dtype=dtype, device=device)
    choices = torch.as_tensor(space.index_to_choices(int(arch)), device=device)
    weights[torch.arange(space.num_positions, device=device), choices] = 1.0
    return weights


def _sync(device: str) -> None:
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


def _run_epoch(
    ctx: StepContext,
    train: BatchLoader,
    arch: BatchLoader,
    steps: int,
    graphed: GraphedStep | None,
) -> float:
    """One epoch of steps; returns the mean weight-step loss (summed on the device: the only
    host sync of the epoch is reading it at the end)."""
    arch_iter = iter(arch)
    total: torch.Tensor | float = 0.0
    for step, train_batch in zip(range(steps), train, strict=False):
        try:
            arch_batch = next(arch_iter)
        except StopIteration:
            arch_iter = iter(arch)
            arch_batch = next(arch_iter)
        ctx.step = step
        ctx.lr = ctx.config.lr_at(ctx.epoch, step, steps)
        for group in ctx.weight_optimizer.param_groups:
            group["lr"] = ctx.lr
        if ctx.lr_tensor is not None:
            ctx.lr_tensor.fill_(ctx.lr)
        if graphed is not None:
            total = total + graphed(train_batch, arch_batch)
        else:
            total = total + ctx.method.step(ctx, train_batch, arch_batch)
    return float(total) / max(steps, 1)


def _setup(
    method: SupernetMethod,
    supernet: nn.Module,
    train: BatchLoader,
    valid: BatchLoader,
    config: SearchConfig,
    rng: np.random.Generator,
) -> dict[str, Any]:
    """Move the supernet, build the method's state and the weight optimiser; returns the
    pieces a checkpoint holds (keyword arguments of :func:`save_checkpoint`)."""
    space = supernet_space(supernet)
    check_space(method, space)
    supernet.to(config.device).train()
    generator = torch_generator(rng)
    arch_state = {  # detach: a copy to another device must stay a leaf
        k: v.detach().to(config.device).requires_grad_(v.requires_grad)
        for k, v in method.init_arch_state(space, generator).items()
    }
    optimizer = torch.optim.SGD(
        supernet.parameters(),
        lr=config.lr,
        momentum=config.momentum,
        weight_decay=config.weight_decay,
        nesterov=config.nesterov,
    )
    return dict(
        supernet=supernet,
        optimizer=optimizer,
        arch_state=arch_state,
        method_state=method.init_method_state(arch_state, supernet),
        generator=generator,
        loader_generators=[train.generator, valid.generator],
        rng=rng,
    )


def run_supernet_search(
    method: SupernetMethod,
    supernet: nn.Module,
    train: BatchLoader,
    valid: BatchLoader,
    config: SearchConfig,
    rng: np.random.Generator,
    *,
    checkpoint: str | Path | None = None,
    stop_after_epoch: int | None = None,
    progress: Callable[[str], None] | None = None,
) -> SearchResult:
    """Search with ``method`` on ``supernet`` (moved to ``config.device`` in place).

    Args:
        train: weight batches; valid: architecture batches for bilevel methods (single-level
            methods, ``method.arch_split == "train"``, draw a second pass over ``train``).
        rng: seeds the method's torch generator (and is checkpointed).
        checkpoint: file written atomically after every epoch; when it exists at the start, the
            search resumes from it (same result as an uninterrupted run).
        stop_after_epoch: return after this epoch (0-based) with ``complete=False``.
        progress: called with a line of text after every epoch (e.g. a progress log).
    """
    path = Path(checkpoint) if checkpoint is not None else None
    space = supernet_space(supernet)
    pieces = _setup(method, supernet, train, valid, config, rng)
    arch_state, method_state = pieces["arch_state"], pieces["method_state"]
    ledger, history, start = SearchLedger(), [], 0
    arch_loader = train if method.arch_split == "train" else valid
    if path is not None and path.exists():
        extra = load_checkpoint(
            path, check=lambda saved: _check_same_run(saved, method, config, path), **pieces
        )
        ledger = SearchLedger(**extra["ledger"])
        history = [EpochRecord(**r) for r in extra["history"]]
        start = extra["epoch"] + 1
        line = f"resuming search from {path.name}: epochs 1-{start} done, next epoch {start + 1}"
        logger.info(line)
        if progress is not None:
            progress(line)
    ctx = StepContext(
        method,
        supernet,
        pieces["optimizer"],
        arch_state,
        method_state,
        pieces["generator"],
        config,
        ledger,
    )
    steps = (
        len(train)
        if config.max_steps_per_epoch is None
        else min(len(train), config.max_steps_per_epoch)
    )
    if steps < 1:
        raise ConfigError("the train loader yields no batches")
    graphed = GraphedStep(ctx) if config.cuda_graph else None
    for epoch in range(start, config.epochs):
        _sync(config.device)
        began = time.perf_counter()
        ctx.epoch = epoch
        method.on_epoch_start(ctx)
        mean_loss = _run_epoch(ctx, train, arch_loader, steps, graphed)
        _sync(config.device)
        seconds = time.perf_counter() - began
        ledger.device_seconds += seconds
        ledger.epochs += 1
        index = argmax_arch(method.final_weights(arch_state), space)
        history.append(
            EpochRecord(epoch, index, space.index_to_str(index), ctx.lr, mean_loss, seconds)
        )
        line = (
            f"epoch {epoch + 1}/{config.epochs}: loss {mean_loss:.4f}, {seconds:.1f} s, "
            f"argmax {history[-1].arch}"
        )
        if path is not None:  # saved before it is logged: a logged epoch is never lost
            record = {
                "epoch": epoch,
                "ledger": dataclasses.asdict(ledger),
                "history": [dataclasses.asdict(r) for r in history],
                "search_config": dataclasses.asdict(config),
                "method": method.name,
                "method_config": dataclasses.asdict(method.config),
            }
            save_checkpoint(path, **pieces, extra=record)
        logger.info(line)
        if progress is not None:
            progress(line)
        if stop_after_epoch is not None and epoch >= stop_after_epoch:
            return _result(method, space, arch_state, method_state, history, ledger, complete=False)
    return _result(method, space, arch_state, method_state, history, ledger, complete=True)


def _check_same_run(
    extra: dict[str, Any], method: SupernetMethod, config: SearchConfig, path: Path
) -> None:
    saved = (extra["method"], extra["method_config"], extra["search_config"])
    asked = (method.name, dataclasses.asdict(method.config), dataclasses.asdict(config))
    if saved != asked:
        raise ConfigError(
            f"checkpoint {path} belongs to another run: saved {saved}, asked for {asked}"
        )


def _result(
    method: SupernetMethod,
    space: Space,
    arch_state: dict[str, torch.Tensor],
    method_state: dict[str, Any],
    history: list[EpochRecord],
    ledger: SearchLedger,
    *,
    complete: bool,
) -> SearchResult:
    weights = method.final_weights(arch_state)
    index = argmax_arch(weights, space)
    return SearchResult(
        arch_index=index,
        arch=space.index_to_str(index),
        arch_weights=weights.detach().cpu().double().numpy(),
        history=history,
        ledger=ledger,
        complete=complete,
        arch_state=arch_state,
        method_state=method_state,
    )
