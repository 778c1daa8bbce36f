"""Selection stage: from a trained supernet (and a method's weights) to one architecture.

Three selectors, each returning a :class:`SelectionResult` that records its full config:

* :func:`select_magnitude` - argmax per edge of the method's final (6, 5) weights (DARTS).
* :func:`select_perturbation` - DARTS-PT: edges in a random order; on each edge, mask every
  candidate op in turn (its weight set to 0, the others kept), measure supernet validation
  accuracy, keep the op whose removal hurts most, make the edge one-hot on it, optionally
  fine-tune the supernet weights for a number of steps before the next edge. The "fixed
  weights" variant (DARTS-PT fix-alpha) starts from uniform weights instead of the method's.
* :func:`select_topk` - K architectures sampled (uniformly or from the weights) and scored by
  one-hot supernet accuracy on M validation batches (RSPS / SETN style).

Validation batches are drawn once and reused for every candidate, so the comparisons within one
selection are on the same images. Evaluation runs in train mode by default (batch statistics,
as NATS-Bench supernets without running statistics and DARTS-PT both do).
"""

from __future__ import annotations

import dataclasses
import itertools
import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import torch
from torch import nn

from harness.errors import ConfigError
from harness.spaces import tss as space
from harness.supernet.search import Batch, argmax_arch

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class PerturbationConfig:
    """DARTS-PT settings (NB201 defaults except the tuning length, which is given in steps).

    ``valid_batches`` None: the whole valid loader. ``fine_tune_steps``: SGD steps on the train
    loader after each edge decision except the last (0: none), at constant ``fine_tune_lr``.
    ``fixed_weights``: start from uniform weights instead of the method's.
    """

    criterion: Literal["acc", "loss"] = "acc"
    valid_batches: int | None = None
    fine_tune_steps: int = 0
    fine_tune_lr: float = 0.0025
    momentum: float = 0.9
    weight_decay: float = 3e-4
    grad_clip: float | None = 5.0
    fixed_weights: bool = False
    train_mode: bool = True

    def __post_init__(self) -> None:
        if self.criterion not in ("acc", "loss"):
            raise ConfigError(f"criterion must be 'acc' or 'loss'; got {self.criterion!r}")
        if self.valid_batches is not None and self.valid_batches < 1:
            raise ConfigError(f"valid_batches must be >= 1 or None; got {self.valid_batches}")
        if self.fine_tune_steps < 0 or self.fine_tune_lr < 0:
            raise ConfigError("fine_tune_steps and fine_tune_lr must be >= 0")


@dataclass(frozen=True)
class TopKConfig:
    """``k`` sampled architectures scored on ``valid_batches`` batches. ``sampling``: uniform
    over the space, or per edge from the method's weights (rows normalised)."""

    k: int = 100
    valid_batches: int = 1
    sampling: Literal["uniform", "weights"] = "uniform"
    train_mode: bool = True

    def __post_init__(self) -> None:
        if self.k < 1 or self.valid_batches < 1:
            raise ConfigError(
                f"k and valid_batches must be >= 1; got {self.k}, {self.valid_batches}"
            )
        if self.sampling not in ("uniform", "weights"):
            raise ConfigError(f"sampling must be 'uniform' or 'weights'; got {self.sampling!r}")


@dataclass
class SelectionResult:
    """The chosen architecture, the selector, its config (as a dict) and per-step details."""

    arch_index: int
    arch: str
    selector: str
    config: dict[str, Any]
    details: dict[str, Any] = field(default_factory=dict)


def _result(index: int, selector: str, config: Any, **details: Any) -> SelectionResult:
    cfg = dict(config) if isinstance(config, dict) else dataclasses.asdict(config)
    return SelectionResult(index, space.index_to_str(index), selector, cfg, details)


def select_magnitude(weights: torch.Tensor | np.ndarray) -> SelectionResult:
    """Argmax per edge of (6, 5) ``weights``."""
    w = torch.as_tensor(np.asarray(weights, dtype=np.float64))
    return _result(argmax_arch(w), "magnitude", {}, weights=w.tolist())


@torch.no_grad()
def evaluate(
    supernet: nn.Module, weights: torch.Tensor, batches: Sequence[Batch], train_mode: bool = True
) -> tuple[float, float]:
    """Accuracy (%) and mean cross-entropy of the supernet under (6, 5) ``weights`` on
    ``batches``, weighted by batch size. The module's train/eval mode is restored."""
    was_training = supernet.training
    supernet.train(train_mode)
    correct, loss, count = 0.0, 0.0, 0
    try:
        for x, y in batches:
            logits = supernet(x, weights)  # (B, classes)
            correct += float((logits.argmax(dim=1) == y).sum())
            loss += float(nn.functional.cross_entropy(logits.float(), y, reduction="sum"))
            count += int(y.shape[0])
    finally:
        supernet.train(was_training)
    return 100.0 * correct / max(count, 1), loss / max(count, 1)


def _take(loader: Iterable[Batch], n: int | None) -> list[Batch]:
    batches = list(loader if n is None else itertools.islice(loader, n))
    if not batches:
        raise ConfigError("the validation loader yields no batches")
    return batches


def _param_device(supernet: nn.Module) -> tuple[torch.device, torch.dtype]:
    p = next(supernet.parameters())
    return p.device, p.dtype


Forward = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]  # (x, (6, 5) weights) -> logits


def _fine_tune(
    supernet: nn.Module,
    weights: torch.Tensor,
    train: Iterable[Batch],
    cfg: PerturbationConfig,
    forward: Forward | None,
) -> None:
    """``cfg.fine_tune_steps`` SGD steps of the supernet weights under fixed ``weights``
    (through ``forward`` when given, else the supernet's own forward)."""
    forward = forward or supernet
    opt = torch.optim.SGD(
        supernet.parameters(),
        lr=cfg.fine_tune_lr,
        momentum=cfg.momentum,
        weight_decay=cfg.weight_decay,
    )
    supernet.train()
    done = 0
    while done < cfg.fine_tune_steps:
        for x, y in train:
            opt.zero_grad(set_to_none=True)
            nn.functional.cross_entropy(forward(x, weights).float(), y).backward()
            if cfg.grad_clip is not None:
                nn.utils.clip_grad_norm_(supernet.parameters(), cfg.grad_clip)
            opt.step()
            done += 1
            if done >= cfg.fine_tune_steps:
                break


def select_perturbation(
    supernet: nn.Module,
    weights: torch.Tensor | np.ndarray | None,
    valid: Iterable[Batch],
    config: PerturbationConfig,
    rng: np.random.Generator,
    train: Iterable[Batch] | None = None,
    forward: Forward | None = None,
) -> SelectionResult:
    """DARTS-PT selection (see module docstring). Fine-tuning changes ``supernet`` in place.

    Args:
        weights: the method's final (6, 5) weights; ignored (may be None) when
            ``config.fixed_weights``. Ops with weight 0 are not candidates.
        valid: validation batches; the first ``config.valid_batches`` are drawn once.
        rng: draws the edge order.
        train: batches for fine-tuning (needed when ``config.fine_tune_steps > 0``).
        forward: the fine-tuning forward, e.g. a compiled dense one
            (:func:`harness.supernet.compiled.dense_forward`); default the supernet's. Ops of
            weight 0 contribute nothing either way; densely they still see weight decay.
    """
    if config.fine_tune_steps > 0 and train is None:
        raise ConfigError("fine_tune_steps > 0 needs a train loader")
    if weights is None and not config.fixed_weights:
        raise ConfigError("weights are needed unless fixed_weights is set")
    device, dtype = _param_device(supernet)
    shape = (space.NUM_EDGES, space.NUM_OPS)
    if config.fixed_weights:
        current = torch.full(shape, 1.0 / space.NUM_OPS, dtype=dtype, device=device)
    else:
        current = torch.as_tensor(np.asarray(weights), dtype=dtype, device=device).clone()
    batches = _take(valid, config.valid_batches)
    order = [int(e) for e in rng.permutation(space.NUM_EDGES)]
    decisions: list[dict[str, Any]] = []
    for position, edge in enumerate(order):
        scores: dict[int, float] = {}
        for op in (int(o) for o in torch.nonzero(current[edge] > 0).flatten()):
            masked = current.clone()
            masked[edge, op] = 0.0
            acc, loss = evaluate(supernet, masked, batches, config.train_mode)
            scores[op] = acc if config.criterion == "acc" else -loss
        chosen = min(scores, key=lambda o: scores[o])  # removal hurts most; ties -> lowest id
        current[edge] = 0.0
        current[edge, chosen] = 1.0
        decisions.append({"edge": edge, "op": chosen, "scores": scores})
        logger.info("edge %d -> %s (scores %s)", edge, space.OPS[chosen], scores)
        if config.fine_tune_steps > 0 and position < len(order) - 1:
            assert train is not None
            _fine_tune(supernet, current, train, config, forward)
    return _result(argmax_arch(current), "perturbation", config, order=order, decisions=decisions)


def select_topk(
    supernet: nn.Module,
    valid: Iterable[Batch],
    config: TopKConfig,
    rng: np.random.Generator,
    weights: torch.Tensor | np.ndarray | None = None,
) -> SelectionResult:
    """Best of ``config.k`` sampled architectures by one-hot supernet accuracy on
    ``config.valid_batches`` validation batches (drawn once); ties -> first sampled."""
    if config.sampling == "weights":
        if weights is None:
            raise ConfigError("sampling='weights' needs the method's weights")
        probs = np.asarray(weights, dtype=np.float64).clip(min=0)
        probs = probs / probs.sum(axis=1, keepdims=True)
        ops = [[int(rng.choice(space.NUM_OPS, p=row)) for row in probs] for _ in range(config.k)]
        archs = [space.ops_to_index(o) for o in ops]
    else:
        archs = [int(a) for a in space.sample(rng, size=config.k)]
    device, dtype = _param_device(supernet)
    batches = _take(valid, config.valid_batches)
    scored: list[tuple[int, float]] = []
    for arch in archs:
        onehot = torch.zeros(space.NUM_EDGES, space.NUM_OPS, dtype=dtype, device=device)
        onehot[torch.arange(space.NUM_EDGES), torch.as_tensor(space.index_to_ops(arch))] = 1.0
        scored.append((arch, evaluate(supernet, onehot, batches, config.train_mode)[0]))
    best = max(range(len(scored)), key=lambda i: (scored[i][1], -i))
    return _result(scored[best][0], "topk", config, scored=scored)
