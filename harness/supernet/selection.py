"""Selection stage: from a trained supernet (and a method's weights) to one architecture.

Three selectors, each returning a :class:`SelectionResult` that records its full config:

Architecture weights have one row per position of the supernet's space (tss: 6 edges over 5
ops; sss: 5 layers over 8 widths); every selector works row by row, so both spaces share them.

* :func:`select_magnitude` - argmax per row of the method's final weights (DARTS).
* :func:`select_perturbation` - DARTS-PT: rows in a random order; on each row, mask every
  candidate choice in turn (its weight set to 0, the others kept), measure supernet validation
  accuracy, keep the choice whose removal hurts most, make the row one-hot on it, optionally
  tune the supernet for a number of steps before the next row. As in DARTS-PT's NB201 code
  the tuning runs the method's own steps (``tune_arch``): its architecture weights keep
  training on the undecided rows, the decided ones stay projected; one SGD (momentum kept)
  serves every tuning phase, and the last row is decided one epoch early.
  ``tune_arch=False`` tunes the supernet weights alone under fixed mixing weights. DARTS-PT's
  "fix alpha" result is the ``fixed_alpha`` method's supernet (alpha never trained) with this
  selection; ``fixed_weights`` instead selects from uniform weights on any supernet (an
  ablation). A checkpoint after every row decision makes the selection resumable.
* :func:`select_topk` - K architectures sampled (uniformly or from the weights) and scored by
  one-hot supernet accuracy on M validation batches (RSPS / SETN style).

Validation batches are drawn once and reused for every candidate, so the comparisons within one
selection are on the same images. Evaluation runs in train mode by default (batch statistics,
as NATS-Bench supernets without running statistics and DARTS-PT both do).
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
import logging
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from torch import nn

from harness.errors import ConfigError
from harness.spaces import Space
from harness.supernet.checkpoint import CheckpointPieces, load_checkpoint, save_checkpoint
from harness.supernet.graphed import GraphedStep
from harness.supernet.method import (
    SearchConfig,
    SearchLedger,
    StepContext,
    SupernetMethod,
    supernet_space,
)
from harness.supernet.search import Batch, argmax_arch, one_hot

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class PerturbationConfig:
    """DARTS-PT settings (NB201 defaults except the tuning length, which is given in steps).

    ``valid_batches`` None: the whole valid loader. ``fine_tune_steps``: tuning steps on the
    train loader after each row decision except the last (0: none), by one SGD at constant
    ``fine_tune_lr`` whose momentum carries over from phase to phase. ``last_tune_steps``:
    the steps of the phase before the last decision (None: ``fine_tune_steps``); DARTS-PT
    tunes ``proj_intv * (rows - 1)`` epochs and makes its last projection at the start of
    the final one, so that phase is one epoch shorter. ``tune_arch``: the tuning steps are
    the method's own (its architecture weights keep training on undecided rows; DARTS-PT's
    darts-proj), else weight steps under fixed mixing weights. ``fixed_weights``: start from
    uniform weights instead of the method's (needs ``tune_arch=False``). ``fresh_batches``:
    every candidate is scored on the next ``valid_batches`` batches of the validation loader
    (a shuffled, augmented loader: DARTS-PT), else all on the same batches drawn once.
    """

    criterion: Literal["acc", "loss"] = "acc"
    valid_batches: int | None = None
    fine_tune_steps: int = 0
    last_tune_steps: int | None = None
    fine_tune_lr: float = 0.0025
    momentum: float = 0.9
    weight_decay: float = 3e-4
    grad_clip: float | None = 5.0
    tune_arch: bool = True
    fixed_weights: bool = False
    train_mode: bool = True
    fresh_batches: bool = False

    def __post_init__(self) -> None:
        if self.criterion not in ("acc", "loss"):
            raise ConfigError(f"criterion must be 'acc' or 'loss'; got {self.criterion!r}")
        if self.valid_batches is not None and self.valid_batches < 1:
            raise ConfigError(f"valid_batches must be >= 1 or None; got {self.valid_batches}")
        if min(self.fine_tune_steps, self.fine_tune_lr, self.last_tune_steps or 0) < 0:
            raise ConfigError("fine_tune_steps, last_tune_steps and fine_tune_lr must be >= 0")
        if self.fixed_weights and self.tune_arch:
            raise ConfigError(
                "fixed_weights keeps uniform mixing weights, which tune_arch would train; "
                "set tune_arch=False"
            )

    def tuning_config(
        self, device: str, compile: str | None = None, bf16: bool = False,
        cuda_graph: bool = False,
    ) -> SearchConfig:  # fmt: skip
        """The loop settings of the tuning steps: constant ``fine_tune_lr``, no Nesterov."""
        return SearchConfig(
            epochs=1, lr=self.fine_tune_lr, lr_min=self.fine_tune_lr, momentum=self.momentum,
            weight_decay=self.weight_decay, nesterov=False, grad_clip=self.grad_clip,
            device=device, bf16=bf16, compile=compile, cuda_graph=cuda_graph,
        )  # fmt: skip


@dataclass
class ArchTuning:
    """What tuning with the method's own steps needs (``PerturbationConfig.tune_arch``): the
    method, its trained state (changed in place), the architecture batches of its
    ``arch_split``, the generator of its random draws, and how its steps run as in the search:
    the compile mode of its forwards, bf16 autocast, and steps captured as one CUDA graph for
    the whole selection (``cuda_graph``; the projected rows are updated in place)."""

    method: SupernetMethod
    arch_state: dict[str, torch.Tensor]
    method_state: dict[str, Any]
    arch: Iterable[Batch]
    generator: torch.Generator
    compile: str | None = None
    bf16: bool = False
    cuda_graph: bool = False


@dataclass(frozen=True)
class TopKConfig:
    """``k`` sampled architectures scored on ``valid_batches`` batches. ``sampling``: uniform
    over the space, or per row from the method's weights (rows normalised). ``per_candidate``:
    each candidate on the next batches of the loader (NATS-Bench's ``get_best_arch``, in eval
    mode there), else all on the same batches drawn once."""

    k: int = 100
    valid_batches: int = 1
    sampling: Literal["uniform", "weights"] = "uniform"
    train_mode: bool = True
    per_candidate: bool = False

    def __post_init__(self) -> None:
        if self.k < 1 or self.valid_batches < 1:
            raise ConfigError(
                f"k and valid_batches must be >= 1; got {self.k}, {self.valid_batches}"
            )
        if self.sampling not in ("uniform", "weights"):
            raise ConfigError(f"sampling must be 'uniform' or 'weights'; got {self.sampling!r}")


@dataclass
class SelectionResult:
    """The chosen architecture, the selector, its config (as a dict) and per-step details
    (always with the selection's ``forward_passes`` and ``backward_passes`` over mini-batches)."""

    arch_index: int
    arch: str
    selector: str
    config: dict[str, Any]
    details: dict[str, Any] = field(default_factory=dict)


def _result(
    space: Space, index: int, selector: str, config: Any, **details: Any
) -> SelectionResult:
    cfg = dict(config) if isinstance(config, dict) else dataclasses.asdict(config)
    return SelectionResult(index, space.index_to_str(index), selector, cfg, details)


def select_magnitude(weights: torch.Tensor | np.ndarray, space: Space) -> SelectionResult:
    """Argmax per row of ``space.shape`` ``weights``."""
    w = torch.as_tensor(np.asarray(weights, dtype=np.float64))
    return _result(
        space, argmax_arch(w, space), "magnitude", {}, weights=w.tolist(), forward_passes=0,
        backward_passes=0,
    )  # fmt: skip


@torch.no_grad()
def evaluate(
    supernet: nn.Module, weights: torch.Tensor, batches: Sequence[Batch], train_mode: bool = True
) -> tuple[float, float]:
    """Accuracy (%) and mean cross-entropy of the supernet under architecture ``weights`` on
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


Forward = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]  # (x, weights) -> logits


def _cycle(loader: Iterable[Batch]) -> Iterator[Batch]:
    """The loader's batches, epoch after epoch (each pass a fresh shuffle)."""
    while True:
        empty = True
        for batch in loader:
            empty = False
            yield batch
        if empty:
            raise ConfigError("a tuning loader yields no batches")


def _tuning_optimizer(supernet: nn.Module, cfg: PerturbationConfig) -> torch.optim.SGD:
    """SGD of the supernet weights at the constant tuning rate (one per selection)."""
    return torch.optim.SGD(
        supernet.parameters(),
        lr=cfg.fine_tune_lr,
        momentum=cfg.momentum,
        weight_decay=cfg.weight_decay,
    )


def _fine_tune(
    supernet: nn.Module,
    weights: torch.Tensor,
    train: Iterable[Batch],
    steps: int,
    opt: torch.optim.SGD,
    cfg: PerturbationConfig,
    forward: Forward | None,
    ledger: SearchLedger,
) -> None:
    """``steps`` SGD steps (``opt``) of the supernet weights under fixed ``weights`` (through
    ``forward`` when given, else the supernet's own forward)."""
    forward = forward or supernet
    supernet.train()
    for _, (x, y) in zip(range(steps), _cycle(train), strict=False):
        opt.zero_grad(set_to_none=True)
        nn.functional.cross_entropy(forward(x, weights).float(), y).backward()
        if cfg.grad_clip is not None:
            nn.utils.clip_grad_norm_(supernet.parameters(), cfg.grad_clip)
        opt.step()
        ledger.forward_passes += 1
        ledger.backward_passes += 1


def _tune_with_method(
    ctx: StepContext,
    graphed: GraphedStep | None,
    onehot: torch.Tensor,
    train: Iterable[Batch],
    steps: int,
    tuning: ArchTuning,
) -> torch.Tensor:
    """``steps`` of the method's own steps (``ctx``: the selection's tuning context, whose
    projection holds the decided rows; ``graphed``: its CUDA-graph runner) with the decided
    rows projected on ``onehot``; returns the new weights (projected rows kept)."""
    assert ctx.projection is not None
    decided, projected = ctx.projection
    projected.copy_(onehot)  # in place: a captured step reads this tensor
    ctx.supernet.train()
    batches = zip(_cycle(train), _cycle(tuning.arch), strict=False)
    for _, (train_batch, arch_batch) in zip(range(steps), batches, strict=False):
        if graphed is not None:
            graphed(train_batch, arch_batch)
        else:
            tuning.method.step(ctx, train_batch, arch_batch)
        ctx.step += 1
    learned = tuning.method.final_weights(tuning.arch_state).to(onehot.dtype)
    return torch.where(decided[:, None], onehot, learned)


def select_perturbation(
    supernet: nn.Module,
    weights: torch.Tensor | np.ndarray | None,
    valid: Iterable[Batch],
    config: PerturbationConfig,
    rng: np.random.Generator,
    train: Iterable[Batch] | None = None,
    forward: Forward | None = None,
    tuning: ArchTuning | None = None,
    progress: Callable[[str], None] | None = None,
    checkpoint: str | Path | None = None,
) -> SelectionResult:
    """DARTS-PT selection (see module docstring). Tuning changes ``supernet`` (and, with
    ``tuning``, the method's state) in place.

    Args:
        weights: the method's final weights (``space.shape``); ignored (may be None) when
            ``config.fixed_weights``. Choices with weight 0 are not candidates.
        valid: validation batches; the first ``config.valid_batches`` are drawn once.
        rng: draws the row order.
        train: batches for tuning (needed when ``config.fine_tune_steps > 0``).
        forward: the forward of weight-only tuning, e.g. a compiled dense one
            (:func:`harness.supernet.compiled.dense_forward`); default the supernet's. Ops of
            weight 0 contribute nothing either way; densely they still see weight decay.
        tuning: the method and its state (needed when tuning with ``config.tune_arch``).
        progress: called with a line of text after every row decision.
        checkpoint: file written after every row decision and its tuning; when it exists at
            the start, the selection resumes from it (the caller passes the supernet and the
            method's state as they were at the start, e.g. from the saved supernet).

    The result's details hold the row order, each decision with its scores, and the cost of
    the selection (``forward_passes``, ``backward_passes``: evaluation and tuning batches;
    ``seconds``: wall time, summed over resumed parts).
    """
    began = time.perf_counter()
    tunes = config.fine_tune_steps > 0
    if tunes and train is None:
        raise ConfigError("fine_tune_steps > 0 needs a train loader")
    if tunes and config.tune_arch and tuning is None:
        raise ConfigError(
            "tune_arch tunes with the method's own steps: pass its state (tuning=ArchTuning), "
            "or set tune_arch=False to tune the supernet weights alone"
        )
    if weights is None and not config.fixed_weights:
        raise ConfigError("weights are needed unless fixed_weights is set")
    device, dtype = _param_device(supernet)
    space = supernet_space(supernet)
    rows, width = space.shape
    if config.fixed_weights:
        current = torch.full(space.shape, 1.0 / width, dtype=dtype, device=device)
    else:
        current = torch.as_tensor(np.asarray(weights), dtype=dtype, device=device).clone()
        if tuple(current.shape) != space.shape:
            raise ConfigError(
                f"{space.name} weights have shape {space.shape}; got {tuple(current.shape)}"
            )
    decided = torch.zeros(rows, dtype=torch.bool, device=device)
    fixed = None if config.fresh_batches else _take(valid, config.valid_batches)
    order = [int(e) for e in rng.permutation(rows)]
    decisions: list[dict[str, Any]] = []
    ledger = SearchLedger()
    opt = _tuning_optimizer(supernet, config) if tunes else None
    path = None if checkpoint is None else Path(checkpoint)
    identity = {"config": dataclasses.asdict(config), "order": order}
    pieces = _checkpoint_pieces(supernet, opt, tuning, train, valid, rng)
    start, step, seconds_before = 0, 0, 0.0
    if path is not None and path.exists():
        check = functools.partial(_check_same_selection, identity, path)
        record = load_checkpoint(path, check=check, **pieces)["record"]
        decisions, start, step = record["decisions"], record["position"] + 1, record["step"]
        decided.copy_(record["decided"])
        current = record["current"].to(device, dtype)
        ledger, seconds_before = SearchLedger(**record["ledger"]), record["seconds"]
        line = (
            f"resuming perturbation selection from {path.name}: {start}/{rows} "
            f"{space.position_name}s decided and tuned, next decision {start + 1}"
        )
        logger.info(line)
        if progress is not None:
            progress(line)
    ctx, graphed = None, None
    if tunes and config.tune_arch:
        assert tuning is not None and opt is not None
        loop = config.tuning_config(str(device), tuning.compile, tuning.bf16, tuning.cuda_graph)
        ctx = StepContext(
            tuning.method, supernet, opt, tuning.arch_state, tuning.method_state,
            tuning.generator, loop, ledger, lr=loop.lr, step=step,
            projection=(decided, torch.zeros_like(current)),
        )  # fmt: skip
        if loop.cuda_graph:
            graphed = GraphedStep(ctx)
            assert ctx.lr_tensor is not None
            ctx.lr_tensor.fill_(loop.lr)
    for position in range(start, len(order)):
        row = order[position]
        scores: dict[int, float] = {}
        for choice in (int(o) for o in torch.nonzero(current[row] > 0).flatten()):
            masked = current.clone()
            masked[row, choice] = 0.0
            batches = fixed if fixed is not None else _take(valid, config.valid_batches)
            acc, loss = evaluate(supernet, masked, batches, config.train_mode)
            ledger.forward_passes += len(batches)
            scores[choice] = acc if config.criterion == "acc" else -loss
        chosen = min(scores, key=lambda o: scores[o])  # removal hurts most; ties -> lowest id
        current[row] = 0.0
        current[row, chosen] = 1.0
        decided[row] = True
        decisions.append({"row": row, "choice": chosen, "scores": scores})
        name = space.position_name
        line = (
            f"{name} {position + 1}/{rows} ({name} {row}) -> {space.choice_labels[chosen]}; "
            f"scores {scores}"
        )
        logger.info(line)
        if progress is not None:
            progress(line)
        if tunes and position < len(order) - 1:
            assert train is not None and opt is not None
            steps = config.fine_tune_steps
            if position == len(order) - 2 and config.last_tune_steps is not None:
                steps = config.last_tune_steps
            if ctx is not None:
                assert tuning is not None
                current = _tune_with_method(ctx, graphed, current, train, steps, tuning)
            else:
                _fine_tune(supernet, current, train, steps, opt, config, forward, ledger)
        if path is not None:
            record = {
                "position": position, "decisions": decisions, "decided": decided.cpu(),
                "current": current.cpu(), "ledger": dataclasses.asdict(ledger),
                "step": 0 if ctx is None else ctx.step,
                "seconds": seconds_before + time.perf_counter() - began,
            }  # fmt: skip
            save_checkpoint(path, extra={**identity, "record": record}, **pieces)
    return _result(
        space, argmax_arch(current, space), "perturbation", config, order=order,
        decisions=decisions,
        forward_passes=ledger.forward_passes, backward_passes=ledger.backward_passes,
        seconds=seconds_before + time.perf_counter() - began,
    )  # fmt: skip


def _checkpoint_pieces(
    supernet: nn.Module, opt: torch.optim.SGD | None, tuning: ArchTuning | None,
    train: Iterable[Batch] | None, valid: Iterable[Batch], rng: np.random.Generator,
) -> CheckpointPieces:  # fmt: skip
    """What a selection checkpoint saves: the supernet, the tuning SGD, the method's state
    and generator, and the generators of the tuning and validation loaders."""
    loaders = [train, None if tuning is None else tuning.arch, valid]
    return CheckpointPieces(
        supernet=supernet, optimizer=opt,
        arch_state={} if tuning is None else tuning.arch_state,
        method_state={} if tuning is None else tuning.method_state,
        generator=None if tuning is None else tuning.generator,
        loader_generators=[getattr(loader, "generator", None) for loader in loaders], rng=rng,
    )  # fmt: skip


def _check_same_selection(identity: dict[str, Any], path: Path, extra: dict[str, Any]) -> None:
    saved = {k: extra.get(k) for k in identity}
    if saved != identity:
        raise ConfigError(
            f"selection checkpoint {path} belongs to another selection: saved {saved}, "
            f"asked for {identity}"
        )


def select_topk(
    supernet: nn.Module,
    valid: Iterable[Batch],
    config: TopKConfig,
    rng: np.random.Generator,
    weights: torch.Tensor | np.ndarray | None = None,
) -> SelectionResult:
    """Best of ``config.k`` sampled architectures by one-hot supernet accuracy on
    ``config.valid_batches`` validation batches (drawn once); ties -> first sampled."""
    space = supernet_space(supernet)
    if config.sampling == "weights":
        if weights is None:
            raise ConfigError("sampling='weights' needs the method's weights")
        probs = np.asarray(weights, dtype=np.float64).clip(min=0)
        probs = probs / probs.sum(axis=1, keepdims=True)
        width = space.shape[1]
        rows = [[int(rng.choice(width, p=row)) for row in probs] for _ in range(config.k)]
        archs = [space.choices_to_index(r) for r in rows]
    else:
        archs = [int(a) for a in space.sample(rng, size=config.k)]
    device, dtype = _param_device(supernet)
    shared = None if config.per_candidate else _take(valid, config.valid_batches)
    stream = _cycle(valid) if config.per_candidate else None
    scored: list[tuple[int, float]] = []
    passes = 0
    for arch in archs:
        weights_k = one_hot(space, arch, device, dtype)
        if stream is None:
            assert shared is not None
            batches = shared
        else:
            batches = list(itertools.islice(stream, config.valid_batches))
        passes += len(batches)
        scored.append((arch, evaluate(supernet, weights_k, batches, config.train_mode)[0]))
    best = max(range(len(scored)), key=lambda i: (scored[i][1], -i))
    return _result(
        space, scored[best][0], "topk", config, scored=scored, forward_passes=passes,
        backward_passes=0,
    )  # fmt: skip
