"""Image dataset readers: every reader returns an :class:`ImageDataset` of uint8 images.

Formats read:

* CIFAR-10 / CIFAR-100 official python pickle batches (``data_batch_1..5`` / ``test_batch``;
  ``train`` / ``test`` with ``fine_labels``);
* ImageNet16-120 official pickle batches (``train_data_batch_1..10``, ``val_data``; rows of
  3*16*16 bytes, 1-based labels of 1000 classes of which the first 120 are kept);
* an image-folder layout ``<root>/<split>/<class>/*.jpg|png``, as a directory or a ``.tar.gz``
  of it, with decoded arrays cached as ``.npy`` files under a directory the caller names.

Plus a small synthetic, learnable dataset for tests.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import pickle
import tarfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from harness.errors import ArchiveError, ConfigError, unknown

logger = logging.getLogger(__name__)

_IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")


@dataclass(frozen=True)
class _CifarFiles:
    folder: str
    train: tuple[str, ...]
    test: tuple[str, ...]
    label_key: str
    meta: tuple[str, str]  # (file, key of the class names)
    num_classes: int


_CIFAR = {
    "cifar10": _CifarFiles(
        "cifar-10-batches-py",
        tuple(f"data_batch_{i}" for i in range(1, 6)),
        ("test_batch",),
        "labels",
        ("batches.meta", "label_names"),
        10,
    ),
    "cifar100": _CifarFiles(
        "cifar-100-python", ("train",), ("test",), "fine_labels", ("meta", "fine_label_names"), 100
    ),
}
_IMAGENET16 = {"train": [f"train_data_batch_{i}" for i in range(1, 11)], "val": ["val_data"]}


@dataclass(frozen=True)
class ImageDataset:
    """Images and labels held in memory.

    Attributes:
        images: (N, 3, H, W) uint8.
        labels: (N,) int64 in ``0 .. len(classes) - 1``.
        classes: class names, index = label.
        name: where it came from, for logs and records.
    """

    images: torch.Tensor
    labels: torch.Tensor
    classes: tuple[str, ...]
    name: str

    def __post_init__(self) -> None:
        if self.images.dtype != torch.uint8 or self.images.ndim != 4 or self.images.shape[1] != 3:
            raise ArchiveError(f"{self.name}: images must be (N, 3, H, W) uint8")
        if self.labels.shape != (self.images.shape[0],) or self.labels.dtype != torch.int64:
            raise ArchiveError(f"{self.name}: labels must be (N,) int64 matching the images")

    def __len__(self) -> int:
        return int(self.images.shape[0])

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def subset(self, indices: np.ndarray | torch.Tensor, name: str | None = None) -> ImageDataset:
        """The images at ``indices`` (e.g. one part of a :class:`~harness.data.splits.Split`)."""
        index = torch.as_tensor(np.asarray(indices), dtype=torch.int64)
        return ImageDataset(self.images[index], self.labels[index], self.classes, name or self.name)


def _load_pickle(path: Path) -> dict[str, Any]:
    """One official pickle batch, keys as str (the files are python-2 pickles of bytes keys)."""
    if not path.is_file():
        present = sorted(p.name for p in path.parent.iterdir()) if path.parent.is_dir() else []
        raise ArchiveError(f"missing batch file {path}; the directory holds: {present}")
    try:
        with path.open("rb") as f:
            entry = pickle.load(f, encoding="latin1")
    except (OSError, EOFError, ValueError, TypeError, pickle.UnpicklingError) as err:
        reason = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise ArchiveError(f"{path} is not a readable pickle batch: {reason}") from err
    if not isinstance(entry, dict):
        raise ArchiveError(f"{path}: expected a pickled dict, got {type(entry).__name__}")
    return {k.decode() if isinstance(k, bytes) else str(k): v for k, v in entry.items()}


def _field(entry: dict[str, Any], key: str, source: Path) -> Any:
    if key not in entry:
        raise ArchiveError(f"{source}: no {key!r} entry; it holds {sorted(entry)}")
    return entry[key]


def _labels(entry: dict[str, Any], key: str, n: int, source: Path) -> np.ndarray:
    labels = np.asarray(_field(entry, key, source), dtype=np.int64)
    if labels.shape != (n,):
        raise ArchiveError(f"{source}: {labels.size} {key} for {n} images")
    return labels


def _rows_to_images(data: object, size: int, source: Path) -> np.ndarray:
    try:
        rows = np.asarray(data, dtype=np.uint8)
    except (TypeError, ValueError) as err:
        raise ArchiveError(f"{source}: 'data' is not an array of bytes ({err})") from err
    if rows.ndim != 2 or rows.shape[1] != 3 * size * size:
        raise ArchiveError(f"{source}: expected rows of 3*{size}*{size} bytes; got {rows.shape}")
    return rows.reshape(-1, 3, size, size)


def _find_batch_dir(root: Path, inner: str, first: str) -> Path:
    for candidate in (root, root / inner):
        if (candidate / first).is_file():
            return candidate
    present = sorted(p.name for p in root.iterdir()) if root.is_dir() else "(not a directory)"
    raise ArchiveError(f"no {first!r} under {root} or {root / inner}; found: {present}")


def read_cifar(root: str | Path, dataset: str, split: str) -> ImageDataset:
    """CIFAR-10 or CIFAR-100 from the official python batches.

    Args:
        root: the batch directory (``cifar-10-batches-py`` / ``cifar-100-python``) or its parent.
        dataset: ``'cifar10'`` or ``'cifar100'`` (fine labels).
        split: ``'train'`` (50,000 images) or ``'test'`` (10,000).
    """
    if dataset not in _CIFAR:
        raise ConfigError(unknown("CIFAR dataset", dataset, _CIFAR))
    spec = _CIFAR[dataset]
    if split not in ("train", "test"):
        raise ConfigError(unknown("CIFAR split", split, ("train", "test")))
    files = spec.train if split == "train" else spec.test
    folder = _find_batch_dir(Path(root), spec.folder, files[0])
    images, labels = [], []
    for name in files:
        entry = _load_pickle(folder / name)
        images.append(_rows_to_images(_field(entry, "data", folder / name), 32, folder / name))
        labels.append(_labels(entry, spec.label_key, len(images[-1]), folder / name))
    meta_file, meta_key = spec.meta
    classes = tuple(str(i) for i in range(spec.num_classes))
    if (folder / meta_file).is_file():
        names = _field(_load_pickle(folder / meta_file), meta_key, folder / meta_file)
        classes = tuple(str(c) for c in names)
    return _dataset(np.concatenate(images), np.concatenate(labels), classes, f"{dataset}/{split}")


def read_imagenet16(root: str | Path, split: str, num_classes: int = 120) -> ImageDataset:
    """ImageNet16-N from the official pickle batches, keeping labels ``1..num_classes``.

    Args:
        root: directory holding ``train_data_batch_1..10`` and ``val_data``.
        split: ``'train'`` (151,700 images for 120 classes) or ``'val'`` (6,000).
        num_classes: keep the first ``num_classes`` classes; labels become 0-based.
    """
    if split not in _IMAGENET16:
        raise ConfigError(unknown("ImageNet16 split", split, _IMAGENET16))
    folder = _find_batch_dir(Path(root), "ImageNet16", _IMAGENET16[split][0])
    images, labels = [], []
    for name in _IMAGENET16[split]:
        entry = _load_pickle(folder / name)
        rows = _rows_to_images(_field(entry, "data", folder / name), 16, folder / name)
        raw = _labels(entry, "labels", len(rows), folder / name)
        keep = (raw >= 1) & (raw <= num_classes)
        images.append(rows[keep])
        labels.append(raw[keep] - 1)
    classes = tuple(str(i) for i in range(num_classes))
    name = f"ImageNet16-{num_classes}/{split}"
    return _dataset(np.concatenate(images), np.concatenate(labels), classes, name)


def _dataset(
    images: np.ndarray, labels: np.ndarray, classes: tuple[str, ...], name: str
) -> ImageDataset:
    if labels.size and (labels.min() < 0 or labels.max() >= len(classes)):
        raise ArchiveError(f"{name}: labels outside 0..{len(classes) - 1}")
    images_t = torch.from_numpy(np.ascontiguousarray(images))
    return ImageDataset(images_t, torch.from_numpy(labels.astype(np.int64)), classes, name)


# --- image folders ------------------------------------------------------------------------


def _decode(blob: bytes) -> np.ndarray:
    """Encoded image bytes -> (3, H, W) uint8 RGB."""
    from PIL import Image

    with Image.open(io.BytesIO(blob)) as image:
        image.load()
        rgb = image if image.mode == "RGB" else image.convert("RGB")
        array = np.asarray(rgb, dtype=np.uint8)  # (H, W, 3)
    return array.transpose(2, 0, 1)


def _iter_folder(root: Path) -> Iterator[tuple[str, bytes]]:
    for path in sorted(root.rglob("*")):
        if path.suffix.lower() in _IMAGE_SUFFIXES and path.is_file():
            yield path.relative_to(root).as_posix(), path.read_bytes()


def _iter_tar(path: Path) -> Iterator[tuple[str, bytes]]:
    with tarfile.open(path, mode="r|*") as tar:  # streaming: one pass over the archive
        for member in tar:
            if member.isfile() and member.name.lower().endswith(_IMAGE_SUFFIXES):
                handle = tar.extractfile(member)
                if handle is not None:
                    yield member.name, handle.read()


def _decode_layout(files: Iterable[tuple[str, bytes]], source: Path) -> dict[str, dict]:
    """Group ``<split>/<class>/<file>`` entries and decode them: split -> arrays and classes."""
    grouped: dict[str, dict[str, list[tuple[str, bytes]]]] = {}
    for name, blob in files:
        parts = [p for p in name.split("/") if p not in ("", ".")]
        if len(parts) < 3:
            continue
        split, cls = parts[-3], parts[-2]
        grouped.setdefault(split, {}).setdefault(cls, []).append((parts[-1], blob))
    if not grouped:
        raise ArchiveError(f"no <split>/<class>/<image> files found in {source}")
    out: dict[str, dict] = {}
    for split, by_class in grouped.items():
        classes = tuple(sorted(by_class))
        arrays, labels = [], []
        for label, cls in enumerate(classes):
            for _, blob in sorted(by_class[cls]):
                arrays.append(_decode(blob))  # serial: PIL decoding gains nothing from threads
                labels.append(label)
        if len({a.shape for a in arrays}) != 1:
            raise ArchiveError(f"{source}/{split}: images differ in size")
        out[split] = {
            "images": np.stack(arrays),
            "labels": np.asarray(labels, np.int64),
            "classes": classes,
        }
    return out


def _source_key(source: Path) -> str:
    """A content key: sha256 of an archive, or of a folder's listing (path, size, mtime)."""
    digest = hashlib.sha256()
    if source.is_file():
        with source.open("rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                digest.update(chunk)
    else:
        for path in sorted(source.rglob("*")):
            stat = path.stat()
            digest.update(f"{path.relative_to(source)}|{stat.st_size}|{stat.st_mtime_ns}".encode())
    return digest.hexdigest()[:16]


def _save_atomic(path: Path, array: np.ndarray) -> None:
    tmp = path.with_name(path.name + ".tmp.npy")
    np.save(tmp, array)
    os.replace(tmp, path)


def read_image_folder(
    source: str | Path, split: str, cache_dir: str | Path | None = None
) -> ImageDataset:
    """Images of ``<source>/<split>/<class>/*`` (a directory or a ``.tar(.gz)`` of the layout).

    Classes are the sorted sub-directory names (label = position); images within a class are in
    file-name order. All images must share one size.

    Args:
        source: the layout's root directory, or an archive whose members are
            ``[<top>/]<split>/<class>/<file>``.
        split: e.g. ``'train'`` or ``'test'``.
        cache_dir: if given, every split of the source is decoded once and stored there as
            ``.npy`` files keyed by the source's content; later calls load those.
    """
    source = Path(source)
    if not source.exists():
        raise ArchiveError(f"image source {source} does not exist")
    stem = source.name.split(".")[0]
    cache = Path(cache_dir) if cache_dir is not None else None
    key = _source_key(source) if cache is not None else ""
    if cache is not None:
        base = cache / f"{stem}-{key}-{split}"
        meta = base.with_name(base.name + "-classes.json")
        if meta.is_file():
            logger.debug("loading cached %s", base)
            images = np.load(base.with_name(base.name + "-images.npy"))
            labels = np.load(base.with_name(base.name + "-labels.npy"))
            classes = tuple(json.loads(meta.read_text()))
            return _dataset(images, labels, classes, f"{stem}/{split}")
    files = _iter_folder(source) if source.is_dir() else _iter_tar(source)
    logger.info("decoding images from %s", source)
    decoded = _decode_layout(files, source)
    if split not in decoded:
        raise ArchiveError(unknown(f"split of {source}", split, sorted(decoded)))
    if cache is not None:
        cache.mkdir(parents=True, exist_ok=True)
        for name, part in decoded.items():
            base = cache / f"{stem}-{key}-{name}"
            _save_atomic(base.with_name(base.name + "-images.npy"), part["images"])
            _save_atomic(base.with_name(base.name + "-labels.npy"), part["labels"])
            meta = base.with_name(base.name + "-classes.json")
            meta.write_text(json.dumps(list(part["classes"])))  # written last: marks completion
    part = decoded[split]
    return _dataset(part["images"], part["labels"], part["classes"], f"{stem}/{split}")


# --- synthetic ----------------------------------------------------------------------------


def synthetic_dataset(
    rng: np.random.Generator, n: int, num_classes: int = 4, size: int = 8, noise: float = 24.0
) -> ImageDataset:
    """A small learnable dataset: each class has a colour and a stripe pattern, plus noise.

    Args:
        rng: source of all randomness (class patterns, labels, noise).
        n: number of images; labels are balanced up to rounding, in random order.
        num_classes, size: classes and image side.
        noise: standard deviation of the per-pixel Gaussian noise, in grey levels.

    Returns:
        (n, 3, size, size) uint8 images; the same ``rng`` state gives the same dataset.
    """
    if n < 1 or num_classes < 1 or size < 1:
        raise ConfigError(f"need n, num_classes, size >= 1; got {n}, {num_classes}, {size}")
    colours = rng.uniform(48, 208, size=(num_classes, 3, 1, 1))
    freq = rng.uniform(0.5, 2.0, size=(num_classes, 1, 1, 1))
    phase = rng.uniform(0, 2 * np.pi, size=(num_classes, 1, 1, 1))
    grid = np.arange(size, dtype=np.float64)[None, None, :, None]  # stripes along rows
    prototypes = colours + 40.0 * np.sin(2 * np.pi * freq * grid / size + phase)
    labels = rng.permutation(np.arange(n) % num_classes).astype(np.int64)
    images = prototypes[labels] + rng.normal(0.0, noise, size=(n, 3, size, size))
    images = np.clip(np.rint(images), 0, 255).astype(np.uint8)
    classes = tuple(f"class{i}" for i in range(num_classes))
    return _dataset(images, labels, classes, f"synthetic-{num_classes}x{size}")
