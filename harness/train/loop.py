"""Training one discrete network from scratch with a benchmark recipe, resumably.

:func:`train_network` trains the benchmark's network of one architecture (tss:
:class:`~harness.supernet.TssNetwork`, C=16, N=5; sss: :class:`~harness.supernet.SssNetwork`)
on the training images of a :class:`~harness.data.parts.TrainingParts`, as AutoDL's
``evaluate_for_seed`` does: per epoch, the recipe's learning rate, one shuffled pass of
augmented batches (the last, smaller batch kept), then every eval set in eval mode. It records
what the benchmark records per epoch: train top-1 / top-5 accuracy (%), loss and seconds, and
per eval set (``x-valid``, ``x-test``, ``ori-test``) the same, keyed ``<set>@<epoch>``.

A run lives in one directory: ``checkpoint.pt`` (network, optimiser, every generator state;
written atomically after each epoch), ``result.json`` (config, seeds, data record and
checksums, network cost, per-epoch metrics, times, provenance; rewritten atomically after each
epoch, ``status`` ``'partial'`` until the last), ``epochs.parquet`` (one row per epoch and set)
and ``progress.log`` (a timestamped line per epoch). Run again, it resumes from the last saved
epoch to the same result as an uninterrupted run (on the CPU, bit for bit); a finished run is
returned as it is. Randomness: one ``numpy.random.SeedSequence(seed)`` spawned into the
initial-weight stream and the data stream (shuffling and augmentation); no global RNG.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from harness.bench.names import NUM_CLASSES, check_dataset
from harness.data.augment import DeviceLoader, torch_generator
from harness.data.datasets import ImageDataset
from harness.data.parts import TrainingParts
from harness.errors import ConfigError, unknown
from harness.provenance import git_commit, machine_info, now, package_versions
from harness.spaces import get_space
from harness.supernet import SssNetwork, TssNetwork
from harness.supernet.checkpoint import CheckpointPieces, load_checkpoint, save_checkpoint
from harness.supernet.counting import model_cost
from harness.train.recipe import Recipe, get_recipe
from harness.train.records import RESULT, add_epoch, empty_metrics, final_accuracy, write_run

__all__ = ["TrainConfig", "TrainResult", "build_network", "run_dir_name", "train_network"]

logger = logging.getLogger(__name__)

_FORMAT = 1
_CHECKPOINT, _LOG = "checkpoint.pt", "progress.log"


@dataclass(frozen=True)
class TrainConfig:
    """What a training run is. ``arch``: official string or index of ``space``; ``dataset``:
    the benchmark's training run (``cifar10-valid``, ``cifar10``, ``cifar100``,
    ``ImageNet16-120``); ``source``: ``official`` or ``jpeg`` images; ``train_images``: a
    reduced training set (None: the run's whole set). ``device``, ``eval_batch_size`` and
    ``channels_last`` change how, not what, and are left out of the run's identity."""

    arch: str | int
    space: str
    recipe: str
    dataset: str
    source: str
    seed: int
    train_images: int | None = None
    device: str = "cpu"
    eval_batch_size: int = 512
    channels_last: bool = False

    def __post_init__(self) -> None:
        space = get_space(self.space)
        object.__setattr__(self, "arch", space.index_to_str(space.parse(self.arch)))
        get_recipe(self.recipe)
        check_dataset(self.dataset)
        if self.eval_batch_size < 1:
            raise ConfigError(f"eval_batch_size must be >= 1; got {self.eval_batch_size}")

    @property
    def arch_index(self) -> int:
        return get_space(self.space).parse(self.arch)

    def identity(self) -> dict[str, Any]:
        """The fields that make a run (what a resumed checkpoint must match)."""
        skip = {"device", "eval_batch_size", "channels_last"}
        return {k: v for k, v in dataclasses.asdict(self).items() if k not in skip}


@dataclass
class TrainResult:
    """A run's ``result.json`` (``record``), its directory and whether it finished."""

    record: dict[str, Any]
    path: Path

    @property
    def complete(self) -> bool:
        return bool(self.record["status"] == "complete")

    def final(self, split: str) -> float | None:
        """Top-1 accuracy (%) on ``split`` (``train`` or an eval set) after the last epoch."""
        return self.record["final"].get(split)


def run_dir_name(config: TrainConfig) -> str:
    """``<space>-<index>-<dataset>-<recipe>-<source>-s<seed>[-n<train_images>]``."""
    name = f"{config.space}-{config.arch_index:05d}-{config.dataset}-{config.recipe}"
    name += f"-{config.source}-s{config.seed}"
    return name + (f"-n{config.train_images}" if config.train_images is not None else "")


def build_network(
    space: str, arch: str | int, num_classes: int, generator: torch.Generator
) -> nn.Module:
    """The benchmark's network of ``arch`` with PyTorch's default initialisation drawn from
    ``generator`` (built on the meta device, so the global generator is never touched)."""
    factory = TssNetwork if space == "tss" else SssNetwork
    with torch.device("meta"):
        net = factory(arch, num_classes=num_classes)
    net = net.to_empty(device="cpu")
    with torch.no_grad():
        for module in net.modules():
            if isinstance(module, nn.Conv2d | nn.Linear):
                nn.init.kaiming_uniform_(module.weight, a=math.sqrt(5), generator=generator)
                if module.bias is not None:
                    bound = 1 / math.sqrt(module.weight[0].numel())
                    nn.init.uniform_(module.bias, -bound, bound, generator=generator)
            elif isinstance(module, nn.BatchNorm2d):
                module.reset_parameters()
            elif any(True for _ in module.parameters(recurse=False)):
                raise ConfigError(f"no initialisation for {type(module).__name__} parameters")
    return net


# --------------------------------------------------------------------------- one epoch
def _topk_correct(logits: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    k = min(5, logits.shape[1])
    top = logits.topk(k, dim=1).indices  # (B, k)
    hits = top == labels[:, None]  # (B, k)
    return hits[:, 0].sum(), hits.any(dim=1).sum()


def _pass(
    net: nn.Module, loader: DeviceLoader, optimizer: torch.optim.Optimizer | None
) -> dict[str, float]:
    """One pass over ``loader`` (training when ``optimizer`` is given): loss, top-1 / top-5 (%)
    averaged over images, and seconds. Sums stay on the device until the end."""
    device = loader.images.device
    loss_sum = torch.zeros((), dtype=torch.float64, device=device)
    top1 = torch.zeros((), dtype=torch.int64, device=device)
    top5 = torch.zeros((), dtype=torch.int64, device=device)
    count, began = 0, time.perf_counter()
    net.train(optimizer is not None)
    with torch.set_grad_enabled(optimizer is not None):
        for x, y in loader:
            logits = net(x)  # (B, classes)
            loss = nn.functional.cross_entropy(logits, y)
            if optimizer is not None:
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
            c1, c5 = _topk_correct(logits.detach(), y)
            loss_sum += loss.detach().double() * y.numel()
            top1, top5, count = top1 + c1, top5 + c5, count + y.numel()
    n = max(count, 1)
    out = {
        "loss": float(loss_sum) / n,
        "acc1": 100.0 * float(top1) / n,
        "acc5": 100.0 * float(top5) / n,
    }
    return {**out, "seconds": time.perf_counter() - began}  # float() above waited for the device


# --------------------------------------------------------------------------- the run
def _loaders(
    config: TrainConfig, parts: TrainingParts, recipe: Recipe, gen: torch.Generator
) -> tuple[DeviceLoader, dict[str, DeviceLoader]]:
    """Shuffled, augmented training batches of the recipe's size; eval sets in order."""

    def loader(part: ImageDataset, train: bool) -> DeviceLoader:
        return DeviceLoader(
            part.images, part.labels, norm=parts.normalization, device=config.device,
            padding=parts.padding, channels_last=config.channels_last, train=train,
            shuffle=train, batch_size=recipe.batch_size if train else config.eval_batch_size,
            generator=gen if train else None,
        )  # fmt: skip

    return loader(parts.train, True), {k: loader(v, False) for k, v in parts.evals.items()}


def _check_parts(config: TrainConfig, parts: TrainingParts) -> None:
    if parts.record.get("dataset") != config.dataset or parts.record.get("source") != config.source:
        raise ConfigError(
            f"training parts are of {parts.record.get('dataset')}/{parts.record.get('source')}, "
            f"the run asks for {config.dataset}/{config.source}"
        )
    got = parts.record["train"]["subset"]
    if (None if got is None else got["n"]) != config.train_images:
        raise ConfigError(
            f"training parts hold {len(parts.train)} images; the run asks for {config.train_images}"
        )
    if parts.num_classes != NUM_CLASSES[config.dataset]:
        raise ConfigError(unknown("class count", parts.num_classes, [NUM_CLASSES[config.dataset]]))


def _new_record(
    config: TrainConfig, parts: TrainingParts, net: nn.Module, seq: np.random.SeedSequence
) -> dict[str, Any]:
    side = int(parts.train.images.shape[-1])
    cost = model_cost(net, (3, side, side))
    init, data = seq.spawn(2)  # spawn keys only (seq is a fresh copy)
    provenance = {
        "git": git_commit(), "packages": package_versions(),
        "machine": machine_info(config.device), "torch_threads": torch.get_num_threads(),
    }  # fmt: skip
    return {
        "format": _FORMAT, "status": "partial", "started": now(), "finished": None,
        "config": dataclasses.asdict(config), "arch": config.arch,
        "arch_index": config.arch_index, "space": config.space, "dataset": config.dataset,
        "recipe": get_recipe(config.recipe).to_dict(),
        "seeds": {
            "entropy": seq.entropy, "init": list(init.spawn_key), "data": list(data.spawn_key),
        },
        "network": {"params_mb": cost.params_mb, "flop_m": cost.flop_m},
        "data": parts.record, "epochs_done": 0, "metrics": empty_metrics(config.dataset),
        "final": {}, "seconds": {"train": 0.0, "eval": 0.0}, "provenance": provenance,
        "resumed": [],
    }  # fmt: skip


@dataclass
class _Live:
    """The live objects of a run: network, optimiser, loaders, checkpoint pieces, record."""

    net: nn.Module
    optimizer: torch.optim.SGD
    train: DeviceLoader
    evals: dict[str, DeviceLoader]
    pieces: CheckpointPieces
    record: dict[str, Any]


def _setup(config: TrainConfig, parts: TrainingParts) -> _Live:
    """Network and loaders seeded from ``SeedSequence(config.seed)``: stream 0 draws the
    initial weights, stream 1 the shuffling and augmentation."""
    recipe = get_recipe(config.recipe)
    init_seq, data_seq = np.random.SeedSequence(config.seed).spawn(2)
    init = torch_generator(np.random.default_rng(init_seq))
    net = build_network(config.space, config.arch, parts.num_classes, init)
    record = _new_record(config, parts, net, np.random.SeedSequence(config.seed))
    rng = np.random.default_rng(data_seq)
    train, evals = _loaders(config, parts, recipe, torch_generator(rng))
    net.to(config.device)
    optimizer = torch.optim.SGD(
        net.parameters(), lr=recipe.lr, momentum=recipe.momentum,
        weight_decay=recipe.weight_decay, nesterov=recipe.nesterov,
    )  # fmt: skip
    pieces = CheckpointPieces(
        supernet=net, optimizer=optimizer, arch_state={}, method_state={}, generator=None,
        loader_generators=[train.generator], rng=rng,
    )  # fmt: skip
    return _Live(net, optimizer, train, evals, pieces, record)


def train_network(
    config: TrainConfig,
    parts: TrainingParts,
    out: str | Path,
    *,
    stop_after_epoch: int | None = None,
    progress: Callable[[str], None] | None = None,
) -> TrainResult:
    """Train ``config``'s network on ``parts`` into the run directory ``out`` (see module
    docstring); resumes from ``out/checkpoint.pt`` when present, returns a finished run as is.

    Args:
        stop_after_epoch: return after this 0-based epoch (``status`` ``'partial'``).
        progress: called with each epoch's line (also appended to ``out/progress.log``).
    """
    run = Path(out)
    _check_parts(config, parts)
    finished = _finished(run, config, parts)
    if finished is not None:
        return finished
    recipe, live, say = get_recipe(config.recipe), _setup(config, parts), _sayer(run, progress)
    if (run / _CHECKPOINT).exists():
        check = functools.partial(_same_run, config=config, parts=parts, run=run)
        live.record = load_checkpoint(run / _CHECKPOINT, check=check, **live.pieces)["record"]
        done = live.record["epochs_done"]
        live.record["resumed"].append({"at": now(), "epochs_done": done})
        say(f"resuming {run.name}: epochs 1-{done} done, next epoch {done + 1}")
    run.mkdir(parents=True, exist_ok=True)
    for epoch in range(live.record["epochs_done"], recipe.epochs):
        _epoch(epoch, recipe, live)
        extra = {"record": live.record, "identity": config.identity(), "data": parts.checksum}
        save_checkpoint(run / _CHECKPOINT, extra=extra, **live.pieces)
        write_run(run, live.record)  # saved before it is logged: a logged epoch is never lost
        say(_line(epoch, recipe, live.record))
        if stop_after_epoch is not None and stop_after_epoch <= epoch < recipe.epochs - 1:
            break
    return TrainResult(live.record, run)


def _epoch(epoch: int, recipe: Recipe, live: _Live) -> None:
    """Train one epoch at the recipe's rate, evaluate every set, add it to the record."""
    lr = recipe.lr_at(epoch)
    for group in live.optimizer.param_groups:
        group["lr"] = lr
    train_stats = _pass(live.net, live.train, live.optimizer)
    eval_stats = {name: _pass(live.net, loader, None) for name, loader in live.evals.items()}
    record = live.record
    add_epoch(record["metrics"], epoch, lr, train_stats, eval_stats)
    record["epochs_done"] = epoch + 1
    record["final"] = final_accuracy(record["metrics"], epoch + 1)
    record["seconds"]["train"] += train_stats["seconds"]
    record["seconds"]["eval"] += sum(s["seconds"] for s in eval_stats.values())
    record["status"] = "complete" if epoch + 1 == recipe.epochs else "partial"
    record["finished"] = now() if record["status"] == "complete" else None


def _line(epoch: int, recipe: Recipe, record: dict[str, Any]) -> str:
    m, e = record["metrics"], str(epoch)
    evals = ", ".join(f"{s} {m['eval_acc1es'][f'{s}@{epoch}']:.2f}%" for s in m["eval_names"])
    return (
        f"epoch {epoch + 1}/{recipe.epochs}: lr {m['learning_rates'][e]:.5f}, train loss "
        f"{m['train_losses'][e]:.4f} acc {m['train_acc1es'][e]:.2f}%, {evals}, "
        f"{m['train_times'][e]:.1f} s train"
    )


def _sayer(run: Path, progress: Callable[[str], None] | None) -> Callable[[str], None]:
    def say(line: str) -> None:
        logger.info(line)
        run.mkdir(parents=True, exist_ok=True)
        with (run / _LOG).open("a", encoding="utf-8") as handle:
            handle.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')} {line}\n")
        if progress is not None:
            progress(line)

    return say


def _same_run(
    saved: dict[str, Any], *, config: TrainConfig, parts: TrainingParts, run: Path
) -> None:
    if saved["identity"] != config.identity() or saved["data"] != parts.checksum:
        raise ConfigError(
            f"{run} holds another run: saved {saved['identity']} on data {saved['data']}, "
            f"asked for {config.identity()} on data {parts.checksum}"
        )


def _finished(run: Path, config: TrainConfig, parts: TrainingParts) -> TrainResult | None:
    """The finished run in ``run`` if it is ``config``'s; raises if it is another run's."""
    path = run / RESULT
    if not path.is_file():
        return None
    record = json.loads(path.read_text(encoding="utf-8"))
    saved = {k: v for k, v in record["config"].items() if k in config.identity()}
    _same_run(
        {"identity": saved, "data": record["data"]["checksum"]}, config=config, parts=parts, run=run
    )
    return TrainResult(record, run) if record["status"] == "complete" else None
