"""Import a tidy long table (one row per measurement) into a benchmark store.

The table (see :mod:`harness.bench.tidy_read` for its columns and checks) becomes a store with
the same format as an official import (:mod:`harness.bench.official`): one block per (hp,
dataset) present, holding the seeds and epochs present. Slot 0 of the seed axis holds the
source's seed means; where a source gave per-seed values only, it holds their mean over the
seeds available, and the manifest records how many such values each array has
(``computed_means``). Whole-schedule times are stored per epoch.
"""

from __future__ import annotations

import hashlib
import logging
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from harness.bench import names
from harness.bench.format import BlockSpec, StoreWriter
from harness.bench.tidy_read import (
    COLUMNS,
    METRICS,
    SUFFIXES,
    TidyRows,
    factorize_pairs,
    read_table,
    store_target,
    table_suffix,
    text_column,
    validate,
)
from harness.provenance import package_versions
from harness.spaces import get_space

__all__ = [
    "COLUMNS",
    "METRICS",
    "SUFFIXES",
    "import_table",
    "read_table",
    "store_target",
    "table_suffix",
]

logger = logging.getLogger(__name__)


# --------------------------------------------------------------------------- blocks and writing
def _groups(codes: np.ndarray) -> Iterator[tuple[int, np.ndarray]]:
    """``(code, row positions)`` for every distinct value of the integer array ``codes``."""
    order = np.argsort(codes, kind="stable")
    values, starts = np.unique(codes[order], return_index=True)
    for value, pos in zip(values, np.split(order, starts[1:]), strict=True):
        yield int(value), pos


def _plan_blocks(rows: TidyRows) -> tuple[list[BlockSpec], np.ndarray]:
    """One block per (hp, dataset) present, in official order; returns blocks and a code per row."""
    codes, pairs = factorize_pairs(rows.hp, rows.dataset)
    kinds = np.array([t[1] for t in rows.targets], dtype=object)[rows.target]
    splits = np.array([t[2] for t in rows.targets], dtype=object)[rows.target]
    is_train_time = np.array([t[0] == "train/epoch_time" for t in rows.targets])[rows.target]
    blocks = []
    for code, pos in _groups(codes):
        hp, dataset = pairs[code]
        seeds = np.unique(rows.seed[pos][~np.isnan(rows.seed[pos])]).astype(int)
        curve = pos[kinds[pos] == "curve"]
        held = set(splits[pos][splits[pos] != ""]) | (
            {"train"} if is_train_time[pos].any() else set()
        )
        blocks.append(
            BlockSpec(
                hp=hp,
                dataset=dataset,
                seeds=tuple(int(s) for s in seeds),
                epochs=int(hp),
                epochs_held=tuple(int(e) for e in np.unique(rows.epoch[curve])),
                splits=tuple(s for s in names.SPLITS if s in held),
                mean="source",
            )
        )
    blocks.sort(key=lambda b: (int(b.hp), names.DATASETS.index(b.dataset)))
    order = {(b.hp, b.dataset): i for i, b in enumerate(blocks)}
    return blocks, np.array([order[p] for p in pairs], dtype=np.int64)[codes]


def _scatter(
    views: dict[str, np.ndarray],
    rows: TidyRows,
    blocks: list[BlockSpec],
    block_of: np.ndarray,
    row_pos: np.ndarray,
) -> None:
    """Write every row's value into its array (vectorised per block and target)."""
    for key, pos in _groups(block_of * len(rows.targets) + rows.target):
        b, t = divmod(key, len(rows.targets))
        block = blocks[b]
        array, kind, _split = rows.targets[t]
        seeds = np.asarray(block.seeds, dtype=np.float64)
        seed = rows.seed[pos]
        per_seed = ~np.isnan(seed)
        slot = np.zeros(len(pos), dtype=np.int64)
        slot[per_seed] = 1 + np.searchsorted(seeds, seed[per_seed])
        target = views[f"{block.key}/{array}"]
        cols = row_pos[pos]
        if kind == "curve":
            erow = np.searchsorted(np.asarray(block.epochs_held), rows.epoch[pos].astype(np.int64))
            target[erow, slot, cols] = rows.value[pos]
        elif kind == "time":
            target[slot, cols] = rows.value[pos] / block.epochs
        else:
            target[cols] = rows.value[pos]
        if per_seed.any():
            views[f"{block.key}/coverage"][slot[per_seed] - 1, cols[per_seed]] = 1


def _fill_means(views: dict[str, np.ndarray], blocks: list[BlockSpec]) -> dict[str, int]:
    """Slot 0 where the source gave no seed mean: mean over the seeds available.

    Returns, per array, how many values were computed this way.
    """
    computed: dict[str, int] = {}
    for block in blocks:
        for split in block.splits:
            for metric in ("accuracy", "loss", "epoch_time"):
                name = f"{block.key}/{split}/{metric}"
                array = views[name]  # (E, slots, n) or (slots, n)
                seeds = array[..., 1:, :]
                finite = np.isfinite(seeds)
                need = np.isnan(array[..., 0, :]) & finite.any(axis=-2)
                if not need.any():
                    continue
                total = np.where(finite, seeds, 0.0).sum(axis=-2)
                mean = total / np.maximum(finite.sum(axis=-2), 1)
                array[..., 0, :] = np.where(need, mean, array[..., 0, :])
                computed[name] = int(need.sum())
    return computed


def _sha256(path: Path) -> tuple[int, str]:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return path.stat().st_size, digest.hexdigest()


def import_table(
    path: Path,
    dest: Path,
    *,
    progress: bool = True,
    overwrite: bool = False,
    synthetic: bool = False,
) -> Path:
    """Import the tidy table at ``path`` (.csv, .csv.gz, .parquet) into a store at ``dest``.

    Raises :class:`~harness.errors.ArchiveError` naming the first offending row when the table
    is malformed; nothing is left at ``dest`` then. Returns ``dest``.
    """
    path = Path(path)
    bar = tqdm(total=3, desc=f"import {path.name}", unit="step", disable=not progress)
    frame = read_table(path)
    size, digest = _sha256(path)
    bar.update(1)
    rows = validate(frame, path.name)
    bar.update(1)
    value_sources = Counter(text_column(frame, "source").tolist())
    del frame
    blocks, block_of = _plan_blocks(rows)
    n_archs = get_space(rows.space).num_archs
    present = np.unique(rows.index)
    stored = None if len(present) == n_archs else present.tolist()
    row_pos = rows.index if stored is None else np.searchsorted(present, rows.index)
    logger.info(
        "importing %d rows (%d %s architectures) from %s",
        len(rows.index),
        len(present),
        rows.space,
        path,
    )
    with StoreWriter(
        Path(dest), rows.space, n_archs, blocks, rows=stored, overwrite=overwrite
    ) as writer:
        with writer.arrays() as views:
            _scatter(views, rows, blocks, block_of, row_pos)
            computed = _fill_means(views, blocks)
        provenance = {
            "archive": path.name,
            "layout": "tidy-table",
            "nats_bench_version": package_versions(["nats_bench"])["nats_bench"],
            "sources_sha256": digest,
            "n_source_files": 1,
            "n_rows": len(rows.index),
            "value_sources": dict(sorted(value_sources.items())),
            "computed_means": computed,
            "synthetic": synthetic,
        }
        out = writer.finalize(
            source="tidy", provenance=provenance, sources=[(path.name, size, digest)]
        )
    bar.update(1)
    bar.close()
    return out
