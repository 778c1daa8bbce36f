"""On-disk layout of a benchmark store, and its atomic writer.

A store is a directory::

    manifest.json   what the store holds: blocks, arrays (offset/shape/dtype), provenance
    data.bin        every array, concatenated, 64-byte aligned, memory-mapped when read
    sources.tsv     one line per source file: name, bytes, sha256 (may be empty)

Results are organised in *blocks*, one per (hp, dataset) pair. A block holds, for each split
(``train`` and the eval sets) and each curve metric (accuracy, loss), an array shaped
``(n_epochs_held, 1 + n_seeds, n_archs)``: epoch-major so that one epoch over all
architectures is one contiguous row; slot 0 of the seed axis is the mean over the seeds the
source had (computed at import, or given by the source), slots 1.. are the seeds in
``block.seeds`` order. Per-epoch wall times are ``(1 + n_seeds, n_archs)`` per split, the
seed coverage is ``(n_seeds, n_archs)``, and params / FLOPs / latency are ``(n_archs,)``.
Missing is NaN (never -1).
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import socket
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from harness.errors import ArchiveError

logger = logging.getLogger(__name__)

FORMAT_VERSION = 1
MANIFEST = "manifest.json"
DATA = "data.bin"
SOURCES = "sources.tsv"
_ALIGN = 64
COST_FIELDS: tuple[str, ...] = ("params", "flops", "latency")


@dataclass(frozen=True)
class BlockSpec:
    """What one (hp, dataset) block holds.

    ``epochs`` is the schedule length; ``epochs_held`` the 0-based epochs stored (all of them
    for official archives, usually only the last for derived tables). ``mean`` says where
    slot 0 comes from: ``"computed"`` (mean over available seeds) or ``"source"``.
    """

    hp: str
    dataset: str
    seeds: tuple[int, ...]
    epochs: int
    epochs_held: tuple[int, ...]
    splits: tuple[str, ...]
    mean: str = "computed"
    #: Seeds that at least one architecture actually has (``seeds`` is the slot order).
    present_seeds: tuple[int, ...] | None = None

    @property
    def key(self) -> str:
        return f"{self.hp}/{self.dataset}"

    @cached_property
    def epoch_rows(self) -> dict[int, int]:
        """0-based epoch -> row of the epoch axis, for the epochs held."""
        return {epoch: row for row, epoch in enumerate(self.epochs_held)}

    @property
    def held_seeds(self) -> tuple[int, ...]:
        return self.seeds if self.present_seeds is None else self.present_seeds

    def array_shapes(self, n_archs: int) -> dict[str, tuple[int, ...]]:
        """Name -> shape of every array of this block."""
        slots = 1 + len(self.seeds)
        shapes: dict[str, tuple[int, ...]] = {}
        for split in self.splits:
            for metric in ("accuracy", "loss"):
                shapes[f"{self.key}/{split}/{metric}"] = (len(self.epochs_held), slots, n_archs)
            shapes[f"{self.key}/{split}/epoch_time"] = (slots, n_archs)
            # 1: every run of the architecture spent the same time on each epoch of this
            # split, so totals at intermediate epochs are exact; 0: they vary, or are unknown
            shapes[f"{self.key}/{split}/times_constant"] = (n_archs,)
        shapes[f"{self.key}/coverage"] = (len(self.seeds), n_archs)
        for name in COST_FIELDS:
            shapes[f"{self.key}/{name}"] = (n_archs,)
        return shapes

    @staticmethod
    def from_json(obj: dict[str, Any]) -> BlockSpec:
        return BlockSpec(
            hp=obj["hp"],
            dataset=obj["dataset"],
            seeds=tuple(obj["seeds"]),
            epochs=int(obj["epochs"]),
            epochs_held=tuple(obj["epochs_held"]),
            splits=tuple(obj["splits"]),
            mean=obj.get("mean", "computed"),
            present_seeds=None if obj.get("present_seeds") is None else tuple(obj["present_seeds"]),
        )


@dataclass(frozen=True)
class ArrayEntry:
    offset: int
    shape: tuple[int, ...]
    dtype: str


@dataclass
class Layout:
    """Where each array lives inside ``data.bin``; the last axis of every array is the row."""

    arrays: dict[str, ArrayEntry] = field(default_factory=dict)
    nbytes: int = 0

    @staticmethod
    def plan(blocks: Sequence[BlockSpec], n_archs: int) -> Layout:
        """Place every array of ``blocks``; ``n_archs`` is the number of stored rows."""
        layout = Layout()
        for block in blocks:
            for name, shape in block.array_shapes(n_archs).items():
                flags = name.endswith(("/coverage", "/times_constant"))
                dtype = "uint8" if flags else "float32"
                layout.nbytes = -(-layout.nbytes // _ALIGN) * _ALIGN
                layout.arrays[name] = ArrayEntry(layout.nbytes, shape, dtype)
                layout.nbytes += int(np.prod(shape)) * np.dtype(dtype).itemsize
        return layout

    def view(self, buffer: np.ndarray, name: str) -> np.ndarray:
        """The array ``name`` as a view of a byte buffer covering ``data.bin``."""
        entry = self.arrays[name]
        count = int(np.prod(entry.shape))
        dtype = np.dtype(entry.dtype)
        raw = buffer[entry.offset : entry.offset + count * dtype.itemsize]
        return raw.view(dtype).reshape(entry.shape)


class StoreWriter:
    """Builds a store in a temporary sibling directory and moves it into place at the end.

    ``rows`` lists the architecture indices stored, in row order (``None``: the whole space,
    row i = index i). Archives that hold only some architectures store only those rows.

    Use as a context manager: an exception (or an interrupt) inside the ``with`` block
    removes the temporary directory, so a failed import leaves no store behind.
    """

    def __init__(
        self,
        dest: Path,
        space: str,
        n_archs: int,
        blocks: Sequence[BlockSpec],
        *,
        rows: Sequence[int] | None = None,
        overwrite: bool = False,
    ) -> None:
        self.dest = Path(dest)
        if self.dest.exists() and not overwrite:
            raise ArchiveError(f"a store already exists at {self.dest} (pass overwrite=True)")
        self.space = space
        self.n_archs = n_archs
        self.rows = None if rows is None else [int(r) for r in rows]
        n_rows = n_archs if self.rows is None else len(self.rows)
        self.blocks = list(blocks)
        self.layout = Layout.plan(self.blocks, n_rows)
        self.tmp = _temp_name(self.dest, "tmp")
        self._done = False

    def __enter__(self) -> StoreWriter:
        self.dest.parent.mkdir(parents=True, exist_ok=True)
        remove_stale_temporaries(self.dest.parent)
        self.tmp.mkdir()
        with open(self.tmp / DATA, "wb") as fh:
            fh.truncate(self.layout.nbytes)
        self._fill_missing()
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if not self._done:
            shutil.rmtree(self.tmp, ignore_errors=True)

    @contextmanager
    def arrays(self) -> Iterator[dict[str, np.ndarray]]:
        """Writable views of every array; mapped only for the duration of the block.

        Unmapping after each chunk keeps the importer's resident memory bounded: written
        pages go to the page cache instead of staying in this process. They reach the disk
        once, in :meth:`finalize`.
        """
        buffer = np.memmap(self.tmp / DATA, dtype=np.uint8, mode="r+")
        try:
            yield {name: self.layout.view(buffer, name) for name in self.layout.arrays}
        finally:
            del buffer

    def _fill_missing(self) -> None:
        # One array mapped at a time, so that resident memory stays at one array's size.
        for entry in self.layout.arrays.values():
            view = np.memmap(
                self.tmp / DATA,
                dtype=entry.dtype,
                mode="r+",
                offset=entry.offset,
                shape=entry.shape,
            )
            view[...] = 0 if view.dtype == np.uint8 else np.nan
            del view

    def finalize(
        self, *, source: str, provenance: dict[str, Any], sources: list[tuple[str, int, str]]
    ) -> Path:
        """Record which seeds occur, write the manifest, then move the store into place."""
        with self.arrays() as views:
            self.blocks = [
                replace(
                    b,
                    present_seeds=_seen_seeds(b, views[f"{b.key}/coverage"]),
                )
                for b in self.blocks
            ]
        with open(self.tmp / DATA, "rb+") as fh:  # the data is durable before the manifest exists
            os.fsync(fh.fileno())
        manifest = {
            "format_version": FORMAT_VERSION,
            "space": self.space,
            "source": source,
            "n_archs": self.n_archs,
            "rows": self.rows,
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "blocks": [asdict(b) for b in self.blocks],
            "arrays": {k: asdict(v) for k, v in self.layout.arrays.items()},
            "data_bytes": self.layout.nbytes,
            **provenance,
        }
        with open(self.tmp / SOURCES, "w") as fh:
            fh.write("name\tbytes\tsha256\n")
            for name, size, digest in sources:
                fh.write(f"{name}\t{size}\t{digest}\n")
        with open(self.tmp / MANIFEST, "w") as fh:
            json.dump(manifest, fh, indent=1)
        _replace_dir(self.tmp, self.dest)
        self._done = True
        return self.dest


def _seen_seeds(block: BlockSpec, coverage: np.ndarray) -> tuple[int, ...]:
    seen = np.asarray(np.asarray(coverage).any(axis=1), dtype=bool).tolist()
    return tuple(seed for seed, hit in zip(block.seeds, seen, strict=True) if hit)


def _replace_dir(src: Path, dest: Path) -> None:
    """Move ``src`` to ``dest``, replacing an existing ``dest`` with a single rename."""
    if dest.exists():
        trash = _temp_name(dest, "old")
        os.replace(dest, trash)
        os.replace(src, dest)
        shutil.rmtree(trash, ignore_errors=True)
    else:
        os.replace(src, dest)


# --------------------------------------------------------------------------- temporaries
#: ``.<store>.<tmp|old>-<pid>-<time ns>-<host>``: a store being written (``tmp``) or the old
#: store being replaced (``old``). Names without the host come from older versions.
_TEMP = re.compile(r"^\.(?P<store>.+)\.(?:tmp|old)-(?P<pid>\d+)-(?P<ns>\d+)(?:-(?P<host>.+))?$")
_START_SLACK_S = 2.0  # boot time is known to the second only


def _host() -> str:
    return socket.gethostname().replace("/", "_") or "localhost"


def _temp_name(dest: Path, kind: str) -> Path:
    return dest.with_name(f".{dest.name}.{kind}-{os.getpid()}-{time.time_ns()}-{_host()}")


def _process_start(pid: int) -> float | None:
    """Start of process ``pid`` in seconds since the epoch (Linux ``/proc``), or None."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        boot = next(
            float(line.split()[1])
            for line in Path("/proc/stat").read_text().splitlines()
            if line.startswith("btime ")
        )
        ticks = float(stat[stat.rindex(")") + 2 :].split()[19])  # field 22, starttime
        return boot + ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, StopIteration):
        return None


def writer_alive(pid: int, created_ns: int) -> bool:
    """Whether the process that made a temporary at ``created_ns`` may still be running here.

    True when process ``pid`` exists and did not start after the temporary was made (a
    process that started later only reuses the number); True for this process itself (one
    of its own writers may be at work) and whenever it cannot be told.
    """
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # e.g. PermissionError: the process exists, owned by someone else
        pass
    started = _process_start(pid)
    return started is None or started <= created_ns / 1e9 + _START_SLACK_S


def remove_stale_temporaries(directory: Path) -> list[Path]:
    """Remove what killed imports left in ``directory`` (the stores directory); return it.

    Only temporaries made on this host by a process that is no longer running are removed,
    never those of a live import (here, or on another host sharing the directory).
    """
    removed: list[Path] = []
    if not directory.is_dir():
        return removed
    for path in directory.iterdir():
        match = _TEMP.match(path.name)
        if match is None or not path.is_dir() or path.is_symlink():
            continue
        if match["host"] not in (None, _host()):
            continue
        if writer_alive(int(match["pid"]), int(match["ns"])):
            continue
        shutil.rmtree(path, ignore_errors=True)
        removed.append(path)
        logger.info("removed %s, left by an import that was killed", path.name)
    return removed


def read_manifest(path: Path) -> dict[str, Any]:
    """Read and check a store manifest."""
    file = Path(path) / MANIFEST
    if not file.is_file():
        raise ArchiveError(f"{path} is not a benchmark store (no {MANIFEST})")
    with open(file) as fh:
        manifest: dict[str, Any] = json.load(fh)
    version = manifest.get("format_version")
    if version != FORMAT_VERSION:
        raise ArchiveError(
            f"store {path} has format version {version}; this harness reads {FORMAT_VERSION}: "
            "re-import it"
        )
    return manifest
