"""Small stand-ins for the official image files, for tests and smoke runs. Not for experiments.

:func:`write_official_files` writes a task's files in the official formats (CIFAR-10 / -100
python batches, ImageNet16 batches) under a data root. The held-out sets default to the
official sizes, so the shipped official splits apply to them; image ``i`` of each set carries
``i`` in its first three bytes (:func:`image_number`), so a test can tell which images a split
picked. Pixels are otherwise uint8 noise brightened by the label, so a network can learn them.
"""

from __future__ import annotations

import itertools
import pickle
from pathlib import Path
from typing import Any

import numpy as np
import torch

from harness.data.root import OFFICIAL_FILES
from harness.errors import ConfigError, unknown

__all__ = ["OFFICIAL_SIZES", "image_number", "write_official_files"]

#: (train, held-out) image counts of the official sets (ImageNet16-120: first 120 classes).
OFFICIAL_SIZES = {
    "cifar10": (50_000, 10_000),
    "cifar100": (50_000, 10_000),
    "ImageNet16-120": (151_700, 6_000),
}
_CLASSES = {"cifar10": 10, "cifar100": 100, "ImageNet16-120": 120}


def image_number(images: torch.Tensor) -> torch.Tensor:
    """(N, 3, H, W) uint8 images written by :func:`write_official_files` -> (N,) int64 numbers."""
    first = images[:, 0, 0, :3].to(torch.int64)  # (N, 3): base-256 digits
    return first[:, 0] * 65_536 + first[:, 1] * 256 + first[:, 2]


def _rows(n: int, side: int, labels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """(n, 3*side*side) uint8 rows (channel planes, row-major), numbered in the first bytes."""
    rows = rng.integers(0, 64, size=(n, 3 * side * side), dtype=np.uint8)
    rows += (labels % 4 * 48).astype(np.uint8)[:, None]  # learnable: brightness by label
    number = np.arange(n)
    rows[:, 0], rows[:, 1], rows[:, 2] = number // 65_536, number // 256 % 256, number % 256
    return rows


def _dump(path: Path, entry: dict[str, Any]) -> None:
    with path.open("wb") as f:
        pickle.dump({k.encode(): v for k, v in entry.items()}, f, protocol=4)


def _chunks(n: int, k: int) -> list[slice]:
    bounds = np.linspace(0, n, k + 1).astype(int)
    return [slice(int(a), int(b)) for a, b in itertools.pairwise(bounds)]


def write_official_files(
    root: str | Path,
    task: str,
    *,
    n_train: int,
    n_test: int | None = None,
    seed: int = 0,
    extra_classes: int = 0,
) -> Path:
    """Write ``task``'s files (``cifar10``, ``cifar100``, ``ImageNet16-120``) under ``root``.

    Args:
        n_train: training images (spread over the official batch files).
        n_test: held-out images (default: the official count, so the shipped splits apply).
        extra_classes: ImageNet16 only: also write this many images of labels above 120 into
            each file (the reader drops them, as the benchmark does).

    Returns the task's folder under ``root``.
    """
    if task not in OFFICIAL_FILES:
        raise ConfigError(unknown("task", task, OFFICIAL_FILES))
    files, classes = OFFICIAL_FILES[task], _CLASSES[task]
    folder = Path(root) / files.folder
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    side = 16 if task == "ImageNet16-120" else 32
    n_held = OFFICIAL_SIZES[task][1] if n_test is None else n_test
    for names, n in ((files.train, n_train), (files.test, n_held)):
        labels = np.arange(n) % classes
        rows = _rows(n, side, labels, rng)
        for name, part in zip(names, _chunks(n, len(names)), strict=True):
            _dump(folder / name, _entry(task, rows[part], labels[part], extra_classes, rng))
    if task == "cifar10":
        _dump(folder / "batches.meta", {"label_names": [f"c{i}" for i in range(10)]})
    elif task == "cifar100":
        _dump(folder / "meta", {"fine_label_names": [f"f{i}" for i in range(100)]})
    return folder


def _entry(
    task: str, rows: np.ndarray, labels: np.ndarray, extra: int, rng: np.random.Generator
) -> dict[str, Any]:
    if task == "cifar10":
        return {"data": rows, "labels": labels.tolist()}
    if task == "cifar100":
        return {
            "data": rows,
            "fine_labels": labels.tolist(),
            "coarse_labels": (labels // 5).tolist(),
        }
    # ImageNet16: 1-based labels of 1000 classes; rows of classes above 120 are put between
    # the others (whose order is kept) and dropped on read, as the benchmark does
    total = len(rows) + extra
    is_extra = np.zeros(total, dtype=bool)
    is_extra[rng.choice(total, size=extra, replace=False)] = True
    data = np.empty((total, rows.shape[1]), dtype=np.uint8)
    data[~is_extra] = rows
    data[is_extra] = rng.integers(0, 256, size=(extra, rows.shape[1]), dtype=np.uint8)
    raw = np.empty(total, dtype=np.int64)
    raw[~is_extra] = labels + 1
    raw[is_extra] = rng.integers(121, 1001, size=extra)
    return {"data": data, "labels": raw.tolist(), "mean": data.mean(axis=0)}
