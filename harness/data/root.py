"""Where the official image files live, and reading them with one-line errors.

The layout is the one NAS-Bench-201 / NATS-Bench code reads (``$TORCH_HOME/cifar.python``)::

    <data root>/cifar-10-batches-py/   data_batch_1..5, test_batch (batches.meta)
    <data root>/cifar-100-python/      train, test (meta)
    <data root>/ImageNet16/            train_data_batch_1..10, val_data

The root is, in order: the caller's override (a ``--data-root`` flag), ``$HARNESS_DATA_ROOT``,
``$TORCH_HOME/cifar.python`` with ``TORCH_HOME`` defaulting to ``~/.cache/torch`` (PyTorch's
own default). :func:`read_official` reads one set of images of a task from there; a missing or
malformed root raises :class:`~harness.errors.ArchiveError` with one line that names what was
looked for, where, and how the root was chosen.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from harness.data.datasets import ImageDataset, read_cifar, read_imagenet16
from harness.errors import ArchiveError, ConfigError, unknown

__all__ = [
    "DATA_ROOT_ENV",
    "OFFICIAL_FILES",
    "DataRoot",
    "OfficialFiles",
    "check_official",
    "data_root",
    "read_official",
]

#: Environment variable naming the data root (overrides ``$TORCH_HOME/cifar.python``).
DATA_ROOT_ENV = "HARNESS_DATA_ROOT"


@dataclass(frozen=True)
class OfficialFiles:
    """The official files of one task: a folder under the data root and its batch files."""

    folder: str
    train: tuple[str, ...]
    test: tuple[str, ...]
    test_name: str  # what the benchmark calls the held-out set: 'test' or 'val'


#: Official files per task (``cifar10``, ``cifar100``, ``ImageNet16-120``).
OFFICIAL_FILES: dict[str, OfficialFiles] = {
    "cifar10": OfficialFiles(
        "cifar-10-batches-py",
        tuple(f"data_batch_{i}" for i in range(1, 6)),
        ("test_batch",),
        "test",
    ),
    "cifar100": OfficialFiles("cifar-100-python", ("train",), ("test",), "test"),
    "ImageNet16-120": OfficialFiles(
        "ImageNet16",
        tuple(f"train_data_batch_{i}" for i in range(1, 11)),
        ("val_data",),
        "val",
    ),
}


@dataclass(frozen=True)
class DataRoot:
    """A resolved data root and where the choice came from (for messages and run records)."""

    path: Path
    origin: str  # '--data-root', '$HARNESS_DATA_ROOT', '$TORCH_HOME/cifar.python', ...

    def record(self) -> dict[str, str]:
        return {"data_root": str(self.path), "data_root_from": self.origin}


def data_root(override: str | Path | None = None) -> DataRoot:
    """The data root: ``override``, else ``$HARNESS_DATA_ROOT``, else ``$TORCH_HOME/cifar.python``
    (``TORCH_HOME`` unset: ``~/.cache/torch``). Nothing is checked here (see
    :func:`read_official`)."""
    if override is not None:
        return DataRoot(Path(override).expanduser(), "--data-root")
    env = os.environ.get(DATA_ROOT_ENV)
    if env:
        return DataRoot(Path(env).expanduser(), f"${DATA_ROOT_ENV}")
    torch_home = os.environ.get("TORCH_HOME")
    if torch_home:
        return DataRoot(Path(torch_home).expanduser() / "cifar.python", "$TORCH_HOME/cifar.python")
    default = Path.home() / ".cache" / "torch" / "cifar.python"
    return DataRoot(default, "~/.cache/torch/cifar.python (TORCH_HOME unset)")


def _files(task: str) -> OfficialFiles:
    if task not in OFFICIAL_FILES:
        raise ConfigError(unknown("task with official image files", task, OFFICIAL_FILES))
    return OFFICIAL_FILES[task]


def _listing(names: tuple[str, ...]) -> str:
    return names[0] if len(names) == 1 else f"{names[0]}..{names[-1].rsplit('_', 1)[-1]}"


def check_official(task: str, root: DataRoot) -> Path:
    """The task's folder under ``root``; one-line :class:`ArchiveError` when files are missing."""
    files = _files(task)
    folder = root.path / files.folder
    wanted = f"{files.folder}/{{{_listing(files.train)}, {_listing(files.test)}}}"
    hint = f"(root from {root.origin}; set --data-root or ${DATA_ROOT_ENV})"
    if not root.path.is_dir():
        raise ArchiveError(
            f"{task} data not found: looked for {wanted} under {root.path}, which is not a "
            f"directory {hint}"
        )
    missing = [n for n in (*files.train, *files.test) if not (folder / n).is_file()]
    if missing:
        present = sorted(p.name for p in folder.iterdir()) if folder.is_dir() else None
        found = f"{folder} holds {present}" if present is not None else f"no {files.folder}/"
        raise ArchiveError(
            f"{task} data not found: looked for {wanted} under {root.path}; missing "
            f"{', '.join(missing)}; {found} {hint}"
        )
    return folder


def read_official(task: str, split: str, root: DataRoot) -> ImageDataset:
    """One set of a task's official images: ``split`` ``'train'`` or ``'test'`` (for
    ImageNet16-120 ``'test'`` is its ``val_data``, 6,000 images of the first 120 classes).

    Raises :class:`ArchiveError` in one line when the root lacks the files or they are
    malformed (the reader's own message, with the file named)."""
    if split not in ("train", "test"):
        raise ConfigError(unknown("official image set", split, ("train", "test")))
    folder = check_official(task, root)
    try:
        if task == "ImageNet16-120":
            return read_imagenet16(folder, "train" if split == "train" else "val", 120)
        return read_cifar(folder, task, split)
    except ArchiveError as err:
        raise ArchiveError(f"{task} data under {root.path} is malformed: {err}") from err
