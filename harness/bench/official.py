"""Import the official NATS-Bench archives into a store.

Two layouts are read, for both spaces:

* the fast-mode directory (``NATS-tss-v1_0-3ffb9-simple/``): ``meta.pickle.pbz2`` plus one
  ``NNNNNN.pickle.pbz2`` (or unpadded ``N.pickle.pbz2``) per architecture;
* the single-file archive (``NATS-tss-v1_0-3ffb9.pickle.pbz2``), which must be unpickled whole.

Files are read directly with bz2 + pickle, in parallel worker processes (joblib), and reduced
in the worker to small numpy arrays, so the parent's memory stays bounded by one chunk of
architectures. The store is written into a temporary directory and moved into place only
when everything succeeded.
"""

from __future__ import annotations

import bz2
import hashlib
import logging
import pickle
import re
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
from joblib import Parallel, delayed
from tqdm.auto import tqdm

from harness.bench import names
from harness.bench.format import BlockSpec, StoreWriter
from harness.bench.official_parse import (
    ArchRecord,
    Reduced,
    parse_arch_state,
    read_batch,
    reduce_batch,
)
from harness.errors import ArchiveError
from harness.provenance import package_versions
from harness.spaces import get_space

__all__ = [
    "BATCH",
    "CHUNK",
    "META",
    "OFFICIAL_SEEDS",
    "ArchRecord",
    "arch_files",
    "import_official",
    "official_blocks",
    "parse_arch_state",
]

logger = logging.getLogger(__name__)

META = "meta.pickle.pbz2"
_ARCH_FILE = re.compile(r"^(\d+)\.pickle\.pbz2$")
#: Seeds an official archive may hold, per (space, hp). The genuine files use a subset.
OFFICIAL_SEEDS: dict[tuple[str, str], tuple[int, ...]] = {
    ("tss", "12"): (111, 777, 888, 999),
    ("tss", "200"): (777, 888, 999),
    ("sss", "01"): (777, 888, 999),
    ("sss", "12"): (777, 888, 999),
    ("sss", "90"): (777, 888, 999),
}
CHUNK = 1024  # architectures written per mapping of the store
BATCH = 32  # architectures per worker task; only their stacked arrays travel back


def official_blocks(space: str) -> list[BlockSpec]:
    """The blocks an official archive of ``space`` fills."""
    blocks = []
    for hp in names.HPS[space]:
        epochs = int(hp)
        for dataset in names.DATASETS:
            blocks.append(
                BlockSpec(
                    hp=hp,
                    dataset=dataset,
                    seeds=OFFICIAL_SEEDS[(space, hp)],
                    epochs=epochs,
                    epochs_held=tuple(range(epochs)),
                    splits=("train", *names.EVAL_SETS[dataset]),
                )
            )
    return blocks


# --------------------------------------------------------------------------- archive discovery
def _load_pickle(path: Path) -> Any:
    try:
        with bz2.open(path, "rb") as fh:
            return pickle.load(fh)
    except Exception as err:
        raise ArchiveError(f"cannot read {path.name}: {type(err).__name__}: {err}") from None


def _detect_space(meta_archs: list[str], where: str) -> str:
    if not meta_archs:
        raise ArchiveError(f"{where}: 'meta_archs' is empty")
    space = "tss" if meta_archs[0].startswith("|") else "sss"
    sp = get_space(space)
    expected = [sp.index_to_str(i) for i in range(sp.num_archs)]
    if tuple(meta_archs) != tuple(expected):
        raise ArchiveError(
            f"{where}: its {len(meta_archs)} architecture strings are not the official "
            f"{space} list of {len(expected)} in official order"
        )
    return space


def arch_files(directory: Path) -> dict[int, Path]:
    """Map index -> file for every per-architecture file in a fast-mode directory."""
    files: dict[int, Path] = {}
    for path in directory.iterdir():
        match = _ARCH_FILE.match(path.name)
        if not match:
            continue
        index = int(match.group(1))
        if index in files:
            raise ArchiveError(
                f"{directory.name}: index {index} appears twice ({files[index].name}, {path.name})"
            )
        files[index] = path
    return files


def _chunks(items: list[Any], size: int) -> Iterator[list[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _write_reduced(views: dict[str, np.ndarray], reduced: Reduced) -> None:
    for name, (rows, values) in reduced.items():
        views[name][..., rows] = values


def import_official(
    source: Path,
    dest: Path,
    *,
    n_jobs: int = -1,
    progress: bool = True,
    overwrite: bool = False,
    synthetic: bool = False,
) -> Path:
    """Import an official archive (fast-mode directory or single file) into a store at ``dest``."""
    source = Path(source)
    if source.is_dir():
        return _import_directory(source, dest, n_jobs, progress, overwrite, synthetic)
    if source.is_file():
        return _import_single_file(source, dest, progress, overwrite, synthetic)
    raise ArchiveError(f"{source} does not exist")


def _provenance(
    source: Path, layout: str, sources: list[tuple[str, int, str]], synthetic: bool
) -> dict[str, Any]:
    combined = hashlib.sha256()
    for name, size, digest in sorted(sources):
        combined.update(f"{name}\t{size}\t{digest}\n".encode())
    return {
        "archive": source.name,
        "layout": layout,
        "nats_bench_version": package_versions(["nats_bench"])["nats_bench"],
        "sources_sha256": combined.hexdigest(),
        "n_source_files": len(sources),
        "synthetic": synthetic,
    }


def _import_directory(
    source: Path, dest: Path, n_jobs: int, progress: bool, overwrite: bool, synthetic: bool
) -> Path:
    meta_path = source / META
    if not meta_path.is_file():
        raise ArchiveError(f"{source} is not a fast-mode NATS-Bench directory (no {META})")
    meta_raw = meta_path.read_bytes()
    meta = _load_pickle(meta_path)
    if not isinstance(meta, dict) or "meta_archs" not in meta:
        raise ArchiveError(f"{META}: expected a dict with 'meta_archs'")
    space = _detect_space(list(meta["meta_archs"]), f"{source.name}/{META}")
    files = arch_files(source)
    n_archs = get_space(space).num_archs
    bad = [i for i in files if i >= n_archs]
    if bad:
        raise ArchiveError(
            f"{files[bad[0]].name}: index {bad[0]} is outside the {space} space (0..{n_archs - 1})"
        )
    if not files:
        raise ArchiveError(f"{source} holds no per-architecture files (NNNNNN.pickle.pbz2)")
    by_key = {b.key: b for b in official_blocks(space)}
    order = sorted(files)
    sources = [(META, len(meta_raw), hashlib.sha256(meta_raw).hexdigest())]
    logger.info("importing %d %s architectures from %s", len(order), space, source)
    parallel = Parallel(n_jobs=n_jobs, return_as="generator")

    def read(chunk: list[int], row_of: dict[int, int] | None) -> Iterator[tuple[Reduced, int]]:
        batches = [[(files[i], i) for i in batch] for batch in _chunks(chunk, BATCH)]
        tasks = (delayed(read_batch)(batch, space, by_key, row_of) for batch in batches)
        for reduced, batch_sources, count in parallel(tasks):
            sources.extend(batch_sources)
            yield reduced, count

    return _write_store(
        Path(dest), space, order, read, overwrite=overwrite, progress=progress,
        provenance=lambda: _provenance(source, "fast-dir", sources, synthetic), sources=sources,
    )  # fmt: skip


def _import_single_file(
    source: Path, dest: Path, progress: bool, overwrite: bool, synthetic: bool
) -> Path:
    raw = source.read_bytes()
    try:
        content = pickle.loads(bz2.decompress(raw))
    except Exception as err:
        raise ArchiveError(f"cannot read {source.name}: {type(err).__name__}: {err}") from None
    if not isinstance(content, dict) or "meta_archs" not in content or "arch2infos" not in content:
        raise ArchiveError(f"{source.name}: expected a dict with 'meta_archs' and 'arch2infos'")
    space = _detect_space(list(content["meta_archs"]), source.name)
    n_archs = get_space(space).num_archs
    by_key = {b.key: b for b in official_blocks(space)}
    infos: dict[int, Any] = content["arch2infos"]
    sources = [(source.name, len(raw), hashlib.sha256(raw).hexdigest())]
    del raw
    order = sorted(int(i) for i in infos)
    bad = [i for i in order if not 0 <= i < n_archs]
    if bad:
        raise ArchiveError(
            f"{source.name}: index {bad[0]} outside the {space} space (0..{n_archs - 1})"
        )

    def read(chunk: list[int], row_of: dict[int, int] | None) -> Iterator[tuple[Reduced, int]]:
        records = []
        for index in chunk:
            what = f"{source.name} [arch {index}]"
            try:
                records.append(parse_arch_state(index, infos[index], space, by_key, what))
            except (KeyError, TypeError, AttributeError, ValueError) as err:
                raise ArchiveError(
                    f"{what}: malformed content ({type(err).__name__}: {err})"
                ) from None
        yield reduce_batch(records, row_of), len(records)

    return _write_store(
        Path(dest), space, order, read, overwrite=overwrite, progress=progress,
        provenance=lambda: _provenance(source, "single-file", sources, synthetic), sources=sources,
    )  # fmt: skip


def _write_store(
    dest: Path,
    space: str,
    order: list[int],
    read: Callable[[list[int], dict[int, int] | None], Iterable[tuple[Reduced, int]]],
    *,
    overwrite: bool,
    progress: bool,
    provenance: Callable[[], dict[str, Any]],
    sources: list[tuple[str, int, str]],
) -> Path:
    """Write the records of ``order`` (read chunk by chunk) into a new store at ``dest``."""
    n_archs = get_space(space).num_archs
    rows = None if len(order) == n_archs else order
    row_of = None if rows is None else {index: row for row, index in enumerate(order)}
    blocks = official_blocks(space)
    with StoreWriter(dest, space, n_archs, blocks, rows=rows, overwrite=overwrite) as writer:
        bar = tqdm(total=len(order), desc=f"import {space}", unit="arch", disable=not progress)
        for chunk in _chunks(order, CHUNK):
            with writer.arrays() as views:
                for reduced, count in read(chunk, row_of):
                    _write_reduced(views, reduced)
                    bar.update(count)
        bar.close()
        return writer.finalize(source="official", provenance=provenance(), sources=sources)
