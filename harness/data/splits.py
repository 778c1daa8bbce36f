"""Data splits: the benchmark's official split files, or seeded splits of the same sizes.

The official files (AutoDL-Projects ``configs/nas-benchmark``) are JSON of the form
``{"key": [type, [values]]}``. A :class:`Split` holds disjoint index arrays into one set of
images and records where it came from, so a run record can store its provenance.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from harness.errors import ArchiveError, ConfigError, unknown

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class SplitSpec:
    """What an official split file holds: ``parts`` of the sizes given, of ``total`` images."""

    file: str
    parts: tuple[str, ...]
    sizes: tuple[int, ...]
    total: int
    of: str


#: The official split files, by name.
SPLIT_SPECS: dict[str, SplitSpec] = {
    "cifar10-valid": SplitSpec(
        "cifar-split.txt", ("train", "valid"), (25_000, 25_000), 50_000, "CIFAR-10 train"
    ),
    "cifar100-test": SplitSpec(
        "cifar100-test-split.txt", ("xvalid", "xtest"), (5_000, 5_000), 10_000, "CIFAR-100 test"
    ),
    "ImageNet16-120-test": SplitSpec(
        "imagenet-16-120-test-split.txt",
        ("xvalid", "xtest"),
        (3_000, 3_000),
        6_000,
        "ImageNet16-120 val",
    ),
    "ImageNet16-120-train": SplitSpec(
        "ImageNet16-120-split.txt",
        ("train", "valid"),
        (75_850, 75_850),
        151_700,
        "ImageNet16-120 train",
    ),
}


@dataclass(frozen=True)
class Split:
    """Disjoint index arrays into a set of ``total`` images.

    Attributes:
        name: the spec name (e.g. ``'cifar10-valid'``) or a caller's label.
        parts: part name -> (n,) int64 indices, sorted ascending.
        total: size of the indexed set.
        provenance: ``{'source': 'file', 'file': name, 'sha256': hex}`` or
            ``{'source': 'seeded', 'entropy': int | None, 'spawn_key': [...]}``.
    """

    name: str
    parts: dict[str, np.ndarray]
    total: int
    provenance: dict[str, Any] = field(default_factory=dict)

    def __getitem__(self, part: str) -> np.ndarray:
        if part not in self.parts:
            raise ConfigError(unknown(f"part of split {self.name!r}", part, self.parts))
        return self.parts[part]

    def record(self) -> dict[str, Any]:
        """JSON-ready description for a run record (sizes and provenance, not the indices)."""
        sizes = {k: int(v.size) for k, v in self.parts.items()}
        return {"name": self.name, "total": self.total, "sizes": sizes, **self.provenance}


def read_split_config(path: str | Path) -> dict[str, Any]:
    """Parse an AutoDL config file ``{"key": [type, value or [values]]}`` into typed values.

    Types ``int``, ``float``, ``str``, ``bool`` are converted (bool from ``"0"``/``"1"``);
    lists stay lists.
    """
    path = Path(path)
    try:
        raw = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise ArchiveError(f"cannot read split/config file {path}: {err}") from err
    casts: dict[str, Callable[[Any], Any]] = {
        "int": int,
        "float": float,
        "str": str,
        "bool": lambda v: bool(int(v)),
    }
    out: dict[str, Any] = {}
    for key, entry in raw.items():
        if not (isinstance(entry, list) and len(entry) == 2 and entry[0] in casts):
            raise ArchiveError(f"{path}: entry {key!r} is not [type, value] with a known type")
        cast, value = casts[entry[0]], entry[1]
        out[key] = [cast(v) for v in value] if isinstance(value, list) else cast(value)
    return out


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _check_parts(name: str, parts: dict[str, np.ndarray], total: int) -> None:
    everything = np.concatenate(list(parts.values()))
    if everything.size and (everything.min() < 0 or everything.max() >= total):
        raise ArchiveError(f"split {name!r}: indices outside 0..{total - 1}")
    if np.unique(everything).size != everything.size:
        raise ArchiveError(f"split {name!r}: parts overlap or repeat indices")


def load_official_split(name: str, splits_dir: str | Path) -> Split:
    """Read the official split ``name`` (a key of :data:`SPLIT_SPECS`) from ``splits_dir``.

    Checks the part sizes and disjointness against the spec; raises :class:`ArchiveError` if
    the file is missing or differs.
    """
    if name not in SPLIT_SPECS:
        raise ConfigError(unknown("official split", name, SPLIT_SPECS))
    spec = SPLIT_SPECS[name]
    path = Path(splits_dir) / spec.file
    if not path.is_file():
        raise ArchiveError(f"official split file {spec.file} not found in {splits_dir}")
    config = read_split_config(path)
    parts: dict[str, np.ndarray] = {}
    for part, size in zip(spec.parts, spec.sizes, strict=True):
        if part not in config:
            raise ArchiveError(unknown(f"part in {path.name}", part, config))
        parts[part] = np.sort(np.asarray(config[part], dtype=np.int64))
        if parts[part].size != size:
            raise ArchiveError(f"{path.name}: part {part!r} has {parts[part].size}, not {size}")
    _check_parts(name, parts, spec.total)
    provenance = {"source": "file", "file": spec.file, "sha256": _sha256(path)}
    return Split(name, parts, spec.total, provenance)


def seeded_split(name: str, total: int, sizes: dict[str, int], rng: np.random.Generator) -> Split:
    """Disjoint random parts of ``range(total)`` with the given sizes, drawn from ``rng``.

    The provenance records the generator's seed entropy and spawn key when it was built from a
    ``SeedSequence`` (as the runner does), so the split can be rebuilt.
    """
    if sum(sizes.values()) > total or any(s < 0 for s in sizes.values()):
        raise ConfigError(f"split {name!r}: sizes {sizes} do not fit in {total} items")
    order = rng.permutation(total)
    parts, start = {}, 0
    for part, size in sizes.items():
        parts[part] = np.sort(order[start : start + size]).astype(np.int64)
        start += size
    seq = getattr(rng.bit_generator, "seed_seq", None)
    provenance = {
        "source": "seeded",
        "entropy": getattr(seq, "entropy", None),
        "spawn_key": list(getattr(seq, "spawn_key", ())),
    }
    return Split(name, parts, total, provenance)


def official_or_seeded_split(
    name: str, splits_dir: str | Path | None, rng: np.random.Generator
) -> Split:
    """The official split ``name`` if ``splits_dir`` holds its file, else a seeded one of the
    same sizes (logged, and recorded as ``'seeded'`` in the provenance)."""
    if name not in SPLIT_SPECS:
        raise ConfigError(unknown("official split", name, SPLIT_SPECS))
    spec = SPLIT_SPECS[name]
    if splits_dir is not None and (Path(splits_dir) / spec.file).is_file():
        return load_official_split(name, splits_dir)
    logger.warning("official split file %s not available; drawing a seeded split", spec.file)
    return seeded_split(name, spec.total, dict(zip(spec.parts, spec.sizes, strict=True)), rng)
