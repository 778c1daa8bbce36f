"""What a one-shot cell is made of: its ground truth, its data, its supernet and its log.

:class:`TruthSet` holds the ground truth of the eval tasks (or says why there is none),
:func:`make_search_data` the loaders of a search under a card, :func:`build_supernet` the
card's supernet with seeded initial weights, :class:`Runtime` where and how a cell runs, and
:class:`ProgressLog` the timestamped lines a long cell writes. The images come from
:func:`harness.data.search_parts` (the JPEG copy's split and the synthetic images are drawn
from fixed constants there).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from harness.data import DeviceLoader, SearchParts, search_parts, torch_generator
from harness.errors import ConfigError, unknown
from harness.supernet.cards import SupernetCard
from harness.supernet.quality import GroundTruth, ground_truth

if TYPE_CHECKING:
    from harness.bench.store import Store

logger = logging.getLogger(__name__)

__all__ = [
    "ProgressLog",
    "Runtime",
    "SearchData",
    "TruthSet",
    "build_supernet",
    "canonical",
    "check_train_on",
    "make_search_data",
]


def check_train_on(card: SupernetCard, method: Any) -> None:
    """ConfigError when a bilevel method is asked to search under a card that trains on every
    training image (its architecture batches would come from the test images)."""
    if card.train_on == "all" and method.arch_split != "train":
        raise ConfigError(
            f"card {card.key} trains on all training images, so only single-level methods "
            f"search under it; {method.name} takes its architecture batches from a "
            "validation split"
        )


def canonical(obj: Any) -> str:
    """Canonical JSON text (sorted keys, no spaces): equal objects give equal text."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"))


# --------------------------------------------------------------------------- ground truth
@dataclass(frozen=True)
class TruthSet:
    """Ground truth per eval task, with the digest and synthetic flag of where it came from.
    ``missing``: why there is no ground truth (then every truth holds costs only)."""

    truths: Mapping[str, GroundTruth]
    checksum: str
    synthetic: bool
    missing: str | None = None

    @staticmethod
    def from_store(store: Store, tasks: Sequence[str], hp: str) -> TruthSet:
        truths = {t: ground_truth(store, t, hp) for t in tasks}
        return TruthSet(truths, store.checksum, store.synthetic)

    @staticmethod
    def from_truths(truths: Mapping[str, GroundTruth], synthetic: bool = True) -> TruthSet:
        """From arrays; the checksum is a digest of the test and valid accuracies."""
        digest = hashlib.sha256()
        for task in sorted(truths):
            digest.update(task.encode())
            digest.update(np.ascontiguousarray(truths[task].test).tobytes())
            digest.update(np.ascontiguousarray(truths[task].valid).tobytes())
        return TruthSet(dict(truths), "arrays:" + digest.hexdigest()[:16], synthetic)

    @staticmethod
    def without_truth(space: str, tasks: Sequence[str], hp: str, reason: str) -> TruthSet:
        """No accuracies known (``reason`` says why); each task keeps the closed-form costs."""
        truths = {t: GroundTruth.missing_truth(space, t, hp, reason) for t in tasks}
        return TruthSet(truths, f"none:{space}", False, reason)

    def get(self, task: str) -> GroundTruth:
        if task not in self.truths:
            raise ConfigError(unknown("ground-truth task", task, self.truths))
        return self.truths[task]


# --------------------------------------------------------------------------- data
@dataclass
class SearchData:
    """Loaders of one search: ``train`` (weight batches), ``arch`` (architecture batches; both
    shuffled and augmented) and ``eval`` (the architecture part in a fixed order, no
    augmentation, for selection and rank correlation); ``record`` describes the data."""

    train: DeviceLoader
    arch: DeviceLoader
    eval: DeviceLoader
    num_classes: int
    checksum: str
    record: dict[str, Any]


@dataclass(frozen=True)
class Runtime:
    """Where and how a cell runs: ``device``, bf16 autocast, channels-last supernet and
    batches, a ``torch.compile`` mode for the dense forwards of search and perturbation
    fine-tuning (:data:`~harness.supernet.compiled.COMPILE_MODES`; None: eager), search steps
    captured as CUDA graphs (``cuda_graph``), the CIFAR-10 JPEG archive (``images``), the root
    of the official images (``data_root``; None: ``$HARNESS_DATA_ROOT`` or
    ``$TORCH_HOME/cifar.python``), a decode cache and a directory for checkpoints, the saved
    supernet and a progress log (``workdir``,
    ``<run key>.progress.log``: a timestamped line per epoch, edge decision and stage; None:
    nothing written). None of these changes a run's key."""

    device: str = "cpu"
    bf16: bool = False
    channels_last: bool = False
    compile: str | None = None
    cuda_graph: bool = False
    images: str | None = None
    data_root: str | None = None
    cache_dir: str | None = None
    workdir: str | None = None


def _parts(card: SupernetCard, task: str, runtime: Runtime) -> SearchParts:
    """The weight and architecture images of a search on ``task`` under ``card``."""
    if card.data == "synthetic":
        sizes, shape = (
            (card.weight_images, card.arch_images),
            (card.synthetic_classes, card.image_size),
        )
        return search_parts(task, "synthetic", sizes=sizes, synthetic=shape)
    if card.data == "official":
        return search_parts(
            task, "official", root=runtime.data_root, sizes=card.official_sizes(),
            split=card.parts_split(),
        )  # fmt: skip
    if runtime.images is None:
        raise ConfigError(f"card {card.key} needs the CIFAR-10 JPEG archive (Runtime.images)")
    return search_parts(
        task, "jpeg", images=runtime.images, cache_dir=runtime.cache_dir,
        sizes=(card.weight_images, card.arch_images), split=card.parts_split(),
    )  # fmt: skip


def make_search_data(
    card: SupernetCard, task: str, rng: np.random.Generator, runtime: Runtime
) -> SearchData:
    """The loaders of a search on ``task`` under ``card``; ``rng`` seeds their order and
    augmentation (two independent torch generators)."""
    split = card.data_split(task)
    parts = _parts(card, task, runtime)
    norm = parts.normalization

    def loader(part: Any, train: bool) -> DeviceLoader:
        return DeviceLoader(
            part.images, part.labels, norm=norm, device=runtime.device, padding=parts.padding,
            channels_last=runtime.channels_last, train=train, shuffle=train,
            batch_size=card.batch_size if train else card.eval_batch_size,
            generator=torch_generator(rng) if train else None,
        )  # fmt: skip

    weights, arch = parts.weights, parts.arch
    train, arch_loader, evaluation = loader(weights, True), loader(arch, True), loader(arch, False)
    record = {**split, "checksum": parts.checksum, "normalization": dataclasses.asdict(norm)}
    if card.data == "official":
        record["source"] = parts.record  # data root, split files and their checksums
    return SearchData(train, arch_loader, evaluation, parts.num_classes, parts.checksum, record)


def build_supernet(
    card: SupernetCard, num_classes: int, generator: torch.Generator
) -> torch.nn.Module:
    """The card's supernet (its space's) with PyTorch's default initialisation drawn from
    ``generator`` (built on the meta device first, so the global generator is never touched)."""
    with torch.device("meta"):
        net = card.supernet_class()(**card.supernet_kwargs(num_classes))
    net = net.to_empty(device="cpu")
    reset = getattr(net, "reset_constants", None)
    if reset is not None:
        reset()  # constant buffers (the size space's masks) are not state: to_empty left garbage
    with torch.no_grad():
        for module in net.modules():
            if isinstance(module, torch.nn.Conv2d | torch.nn.Linear):
                torch.nn.init.kaiming_uniform_(module.weight, a=math.sqrt(5), generator=generator)
                if module.bias is not None:
                    fan_in = module.weight[0].numel()
                    bound = 1 / math.sqrt(fan_in)
                    torch.nn.init.uniform_(module.bias, -bound, bound, generator=generator)
            elif isinstance(module, torch.nn.BatchNorm2d):
                module.reset_parameters()  # ones / zeros and fresh running statistics
    return net


class ProgressLog:
    """Timestamped lines appended to ``path`` (each line flushed at once), to follow a long
    cell from outside: ``tail -f``. ``path`` None: the lines are dropped."""

    def __init__(self, path: Path | None) -> None:
        self.path = path

    def __call__(self, line: str) -> None:
        if self.path is None:
            return
        stamp = time.strftime("%Y-%m-%d %H:%M:%S")
        with self.path.open("a", encoding="utf-8") as handle:
            handle.write(f"{stamp} {line}\n")
