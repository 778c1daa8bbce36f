"""The images of a search or a training run under the benchmark's own protocols.

:func:`search_parts` gives the weight and architecture parts of a supernet search on a task,
as AutoDL's ``get_nas_search_loaders`` forms them (NAS-Bench-201 / NATS-Bench):

| task | weight part | architecture part |
|---|---|---|
| ``cifar10`` | the 25k ``train`` half of ``cifar-split.txt`` | its 25k ``valid`` half |
| ``cifar100`` | all 50k training images | the 5k ``xvalid`` half of the test set |
| ``ImageNet16-120`` | all 151,700 training images | the 3k ``xvalid`` half of the val set |

:func:`training_parts` gives the training set and eval sets of one of the benchmark's training
runs (``cifar10-valid``: the 25k train half, evaluated on the valid half = ``x-valid`` and on
the test set = ``ori-test``; ``cifar10``: all 50k, evaluated on ``ori-test``; ``cifar100`` and
``ImageNet16-120``: the training set, evaluated on ``x-valid``, ``x-test`` and ``ori-test``).

Sources: ``official`` (the pickle batches under the data root, :mod:`harness.data.root`, with
the shipped official splits), ``jpeg`` (the CIFAR-10 JPEG copy, whose image order is lost, so
its splits are seeded) and, for searches, ``synthetic``. Every result carries a JSON ``record``
(which images, which split and its checksums) and a ``checksum`` of the data.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from harness.bench.names import EVAL_SETS, NUM_CLASSES, TASKS, check_dataset
from harness.data.augment import CROP_PADDING, Normalization, normalization_for
from harness.data.datasets import ImageDataset, read_image_folder, synthetic_dataset
from harness.data.root import DataRoot, data_root, read_official
from harness.data.shipped import shipped_split
from harness.data.splits import Split, seeded_split
from harness.errors import ConfigError, unknown

__all__ = [
    "JPEG_SPLIT_ENTROPY",
    "SEARCH_SOURCES",
    "SEARCH_SPLITS",
    "SUBSET_ENTROPY",
    "SYNTHETIC_ENTROPY",
    "TRAIN_SOURCES",
    "SearchParts",
    "TrainingParts",
    "search_parts",
    "training_parts",
]

SEARCH_SOURCES = ("official", "jpeg", "synthetic")
#: How the official images of a search are split: ``benchmark`` (AutoDL's search loaders, the
#: table above) or ``train_halves`` (the DARTS code and its descendants, DARTS-PT and DrNAS:
#: ``train_portion=0.5``, the first half of the task's training set in file order for the
#: weights, the second half for the architecture) or ``all_train`` (single-level search on
#: every training image, the test set for selection and rank correlation only).
SEARCH_SPLITS = ("benchmark", "train_halves", "all_train")
TRAIN_SOURCES = ("official", "jpeg")
#: Fixed entropies of the seeded splits: the JPEG weight/architecture split (equal to
#: ``harness.oneshot.setup.SPLIT_ENTROPY``, so the same images as the one-shot cells), the
#: synthetic images (``SYNTHETIC_ENTROPY`` there), and subsets asked for by size.
JPEG_SPLIT_ENTROPY, SYNTHETIC_ENTROPY, SUBSET_ENTROPY = 20_240_811, 20_240_812, 20_240_813
_SYNTHETIC_NORM = Normalization((0.5, 0.5, 0.5), (0.25, 0.25, 0.25))
_JPEG_NOTE = "lossy JPEG re-encodings (quality ~75); the official split indices do not apply"


@dataclass(frozen=True)
class SearchParts:
    """Weight and architecture images of a search, their normalisation and crop padding.

    ``record``: JSON-ready description (task, source, images, splits with checksums);
    ``checksum``: identifies the data (content of the parts, or archive digest and seed).
    """

    weights: ImageDataset
    arch: ImageDataset
    normalization: Normalization
    padding: int
    checksum: str
    record: dict[str, Any] = field(repr=False)

    @property
    def num_classes(self) -> int:
        return self.weights.num_classes


@dataclass(frozen=True)
class TrainingParts:
    """Training images and eval sets (``x-valid`` / ``x-test`` / ``ori-test``, the benchmark's
    order) of one training run, with normalisation, crop padding, record and checksum."""

    train: ImageDataset
    evals: dict[str, ImageDataset]
    normalization: Normalization
    padding: int
    checksum: str
    record: dict[str, Any] = field(repr=False)

    @property
    def num_classes(self) -> int:
        return self.train.num_classes


# --------------------------------------------------------------------------- helpers
def _content_digest(*parts: ImageDataset) -> str:
    digest = hashlib.sha256()
    for part in parts:
        digest.update(np.ascontiguousarray(part.images.numpy()).tobytes())
        digest.update(np.ascontiguousarray(part.labels.numpy()).astype("<i8").tobytes())
    return digest.hexdigest()[:16]


def _file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()[:16]


def _subset(part: ImageDataset, n: int | None, label: str) -> tuple[ImageDataset, dict | None]:
    """``n`` images of ``part`` drawn from a fixed seed (all of it when ``n`` is None)."""
    if n is None:
        return part, None
    if not 1 <= n <= len(part):
        raise ConfigError(f"{label}: asked for {n} images; it holds {len(part)}")
    rng = np.random.default_rng([SUBSET_ENTROPY, len(part), n])
    pick = np.sort(rng.permutation(len(part))[:n])
    note = {"of": len(part), "n": n, "entropy": [SUBSET_ENTROPY, len(part), n]}
    return part.subset(pick, f"{part.name}[{n} of {len(part)}]"), note


def _jpeg(images: str | Path | None, split: str, cache_dir: str | Path | None) -> ImageDataset:
    if images is None:
        raise ConfigError("source 'jpeg' needs the CIFAR-10 JPEG archive (images=...)")
    return read_image_folder(images, split, cache_dir)


def _check_source(source: str, allowed: tuple[str, ...], task: str) -> None:
    if source not in allowed:
        raise ConfigError(unknown("image source", source, allowed))
    if source == "jpeg" and task not in ("cifar10", "cifar10-valid"):
        raise ConfigError(f"source 'jpeg' holds CIFAR-10 only, not {task!r}; use 'official'")


# --------------------------------------------------------------------------- search
def search_parts(
    task: str,
    source: str,
    *,
    root: str | Path | None = None,
    images: str | Path | None = None,
    cache_dir: str | Path | None = None,
    sizes: tuple[int, int] | None = None,
    synthetic: tuple[int, int] | None = None,
    split: str = "benchmark",
) -> SearchParts:
    """The weight and architecture images of a supernet search on ``task``.

    Args:
        task: ``'cifar10'``, ``'cifar100'`` or ``'ImageNet16-120'``.
        source: ``'official'`` (pickle batches under the data root + shipped official split),
            ``'jpeg'`` (CIFAR-10 JPEG copy, seeded split) or ``'synthetic'``.
        root: data-root override (``--data-root``; else ``$HARNESS_DATA_ROOT`` or
            ``$TORCH_HOME/cifar.python``). images: the JPEG archive. cache_dir: JPEG decode cache.
        sizes: (weight, arch) image counts. ``official``: None keeps the whole parts, else a
            fixed-seed subset of each; ``jpeg``: None is 25,000 + 25,000; ``synthetic``: needed.
        synthetic: (classes, image side) of synthetic images.
        split: :data:`SEARCH_SPLITS`. The JPEG copy's image order is lost, so its seeded split
            stands for ``benchmark`` and ``train_halves`` alike; synthetic images ignore it.

    Raises :class:`~harness.errors.ArchiveError` (one line: what was looked for, where) when
    the data is missing or malformed, :class:`~harness.errors.ConfigError` for bad names.
    """
    if task not in TASKS:
        raise ConfigError(unknown("search task", task, TASKS))
    _check_source(source, SEARCH_SOURCES, task)
    if split not in SEARCH_SPLITS:
        raise ConfigError(unknown("search split", split, SEARCH_SPLITS))
    if source == "synthetic":
        return _synthetic_search(task, sizes, synthetic)
    if source == "jpeg":
        if split == "all_train":
            return _jpeg_all_train(images, cache_dir)
        return _jpeg_search(images, cache_dir, sizes or (25_000, 25_000))
    return _official_search(task, data_root(root), sizes, split)


def _synthetic_search(
    task: str, sizes: tuple[int, int] | None, synthetic: tuple[int, int] | None
) -> SearchParts:
    if sizes is None or synthetic is None:
        raise ConfigError(
            "source 'synthetic' needs sizes=(weight, arch) and synthetic=(classes, side)"
        )
    (n_w, n_a), (classes, side) = sizes, synthetic
    data = synthetic_dataset(np.random.default_rng(SYNTHETIC_ENTROPY), n_w + n_a, classes, side)
    checksum = f"synthetic:{classes}x{side}:{n_w}+{n_a}"
    record = {
        "task": task, "source": "synthetic", "checksum": checksum, "classes": classes,
        "image_size": side, "weights": f"{n_w} synthetic images",
        "arch": f"{n_a} other synthetic images", "entropy": SYNTHETIC_ENTROPY,
    }  # fmt: skip
    weights, arch = data.subset(np.arange(n_w)), data.subset(np.arange(n_w, n_w + n_a))
    return SearchParts(weights, arch, _SYNTHETIC_NORM, 1, checksum, record)


def _jpeg_search(
    images: str | Path | None, cache_dir: str | Path | None, sizes: tuple[int, int]
) -> SearchParts:
    data = _jpeg(images, "train", cache_dir)
    n_w, n_a = sizes
    split = seeded_split(
        "cifar10-jpeg-search", len(data), {"train": n_w, "valid": n_a},
        np.random.default_rng(JPEG_SPLIT_ENTROPY),
    )  # fmt: skip
    checksum = f"{_file_digest(Path(str(images)))}:{JPEG_SPLIT_ENTROPY}:{n_w}+{n_a}"
    record = {
        "task": "cifar10", "source": "jpeg", "checksum": checksum, "images": str(images),
        "weights": f"{n_w} JPEG training images (seeded split)",
        "arch": f"the other {n_a} images of that split", "split": split.record(),
        "note": _JPEG_NOTE,
    }  # fmt: skip
    weights, arch = data.subset(split["train"]), data.subset(split["valid"])
    norm, padding = normalization_for("cifar10"), CROP_PADDING["cifar10"]
    return SearchParts(weights, arch, norm, padding, checksum, record)


def _jpeg_all_train(images: str | Path | None, cache_dir: str | Path | None) -> SearchParts:
    train, test = _jpeg(images, "train", cache_dir), _jpeg(images, "test", cache_dir)
    checksum = f"{_file_digest(Path(str(images)))}:all-train+test"
    record = {
        "task": "cifar10", "source": "jpeg", "checksum": checksum, "images": str(images),
        "weights": f"all {len(train)} JPEG training images", "arch": f"the {len(test)} test "
        "images (selection and rank correlation only)", "note": _JPEG_NOTE,
    }  # fmt: skip
    norm, padding = normalization_for("cifar10"), CROP_PADDING["cifar10"]
    return SearchParts(train, test, norm, padding, checksum, record)


def _official_search(
    task: str, root: DataRoot, sizes: tuple[int, int] | None, split_name: str
) -> SearchParts:
    train = read_official(task, "train", root)
    splits: list[dict[str, Any]] = []
    if split_name == "all_train":
        weights, arch = train, read_official(task, "test", root)
        described = ("all training images", "the test set (selection and rank correlation)")
    elif split_name == "train_halves":
        half = len(train) // 2
        weights = train.subset(np.arange(half), f"{train.name}[:{half}]")
        arch = train.subset(np.arange(half, len(train)), f"{train.name}[{half}:]")
        described = (f"the first {half} training images", "the other training images")
    elif task == "cifar10":
        split = shipped_split("cifar10-valid")
        splits.append(split.record())
        weights = train.subset(split["train"], "cifar10/train[cifar-split train]")
        arch = train.subset(split["valid"], "cifar10/train[cifar-split valid]")
        described = ("the 25k 'train' half of cifar-split.txt", "its 25k 'valid' half")
    else:
        split = shipped_split("cifar100-test" if task == "cifar100" else "ImageNet16-120-test")
        splits.append(split.record())
        held_out = read_official(task, "test", root)
        weights = train
        arch = held_out.subset(split["xvalid"], f"{held_out.name}[xvalid]")
        described = ("all training images", f"the 'xvalid' half of {split.provenance['file']}")
    weights, note_w = _subset(weights, None if sizes is None else sizes[0], "weight part")
    arch, note_a = _subset(arch, None if sizes is None else sizes[1], "architecture part")
    checksum = f"official:{task}:{_content_digest(weights, arch)}"
    record = {
        "task": task, "source": "official", **root.record(), "checksum": checksum,
        "weights": f"{described[0]} ({len(weights)} images)",
        "arch": f"{described[1]} ({len(arch)} images)",
        "splits": splits,
        "subsets": {"weights": note_w, "arch": note_a},
        "protocol": "AutoDL get_nas_search_loaders"
        if split_name == "benchmark"
        else "DARTS train_portion=0.5",
    }  # fmt: skip
    return SearchParts(weights, arch, normalization_for(task), CROP_PADDING[task], checksum, record)


# --------------------------------------------------------------------------- training
def training_parts(
    dataset: str,
    source: str,
    *,
    root: str | Path | None = None,
    images: str | Path | None = None,
    cache_dir: str | Path | None = None,
    train_images: int | None = None,
) -> TrainingParts:
    """The training images and eval sets of the benchmark's training run ``dataset``.

    Args:
        dataset: ``'cifar10-valid'``, ``'cifar10'``, ``'cifar100'`` or ``'ImageNet16-120'``.
        source: ``'official'`` or ``'jpeg'`` (CIFAR-10 only; ``cifar10-valid`` then uses a
            seeded 25k/25k split of the JPEG training images).
        root, images, cache_dir: as for :func:`search_parts`.
        train_images: train on a fixed-seed subset of this many images (reduced runs; the
            record says so); None: all of the run's training images.
    """
    check_dataset(dataset)
    task = "cifar10" if dataset == "cifar10-valid" else dataset
    _check_source(source, TRAIN_SOURCES, dataset)
    if source == "jpeg":
        train_all, test = _jpeg(images, "train", cache_dir), _jpeg(images, "test", cache_dir)
        origin: dict[str, Any] = {"images": str(images), "note": _JPEG_NOTE}
    else:
        resolved = data_root(root)
        train_all = read_official(task, "train", resolved)
        test = read_official(task, "test", resolved)
        origin = resolved.record()
    splits: list[dict[str, Any]] = []
    evals: dict[str, ImageDataset] = {}
    train = train_all
    if dataset == "cifar10-valid":
        split = _cifar10_valid_split(source, len(train_all))
        splits.append(split.record())
        train = train_all.subset(split["train"], f"{train_all.name}[train half]")
        evals["x-valid"] = train_all.subset(split["valid"], f"{train_all.name}[valid half]")
    elif dataset in ("cifar100", "ImageNet16-120"):
        split = shipped_split("cifar100-test" if dataset == "cifar100" else "ImageNet16-120-test")
        splits.append(split.record())
        evals["x-valid"] = test.subset(split["xvalid"], f"{test.name}[xvalid]")
        evals["x-test"] = test.subset(split["xtest"], f"{test.name}[xtest]")
    evals["ori-test"] = test
    assert tuple(evals) == EVAL_SETS[dataset]
    if train.num_classes != NUM_CLASSES[dataset]:
        raise ConfigError(
            f"{dataset} has {NUM_CLASSES[dataset]} classes; the images {train.num_classes}"
        )
    train, subset = _subset(train, train_images, f"{dataset} training images")
    checksum = f"{source}:{dataset}:{_content_digest(train, *evals.values())}"
    record = {
        "dataset": dataset, "source": source, **origin, "checksum": checksum,
        "train": {"name": train.name, "images": len(train), "subset": subset},
        "evals": {k: {"name": v.name, "images": len(v)} for k, v in evals.items()},
        "splits": splits,
    }  # fmt: skip
    return TrainingParts(
        train, evals, normalization_for(task), CROP_PADDING[task], checksum, record
    )


def _cifar10_valid_split(source: str, total: int) -> Split:
    if source == "official":
        return shipped_split("cifar10-valid")
    return seeded_split(
        "cifar10-jpeg-valid", total, {"train": total // 2, "valid": total - total // 2},
        np.random.default_rng(JPEG_SPLIT_ENTROPY),
    )  # fmt: skip
