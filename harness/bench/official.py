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
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import cache
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
from joblib import Parallel, delayed
from tqdm.auto import tqdm

from harness.bench import names
from harness.bench.format import BlockSpec, StoreWriter
from harness.errors import ArchiveError
from harness.spaces import get_space

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
CHUNK = 256


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


# --------------------------------------------------------------------------- per-file parsing
@cache
def _eval_keys(split: str, epochs: int) -> tuple[str, ...]:
    return tuple(f"{split}@{e}" for e in range(epochs))


def _series(values: Any, keys: Iterable[Any]) -> np.ndarray:
    """Values at ``keys``; NaN where absent (some eval sets hold only their last epoch)."""
    if values is None:
        return np.full(len(tuple(keys)), np.nan)
    nan = float("nan")
    return np.array([values.get(k, nan) for k in keys], dtype=np.float64)


def _mean_or_nan(values: np.ndarray) -> float:
    finite = values[np.isfinite(values)]
    return float(finite.mean()) if finite.size else float("nan")


def _nanmean_last(values: np.ndarray) -> np.ndarray:
    """Mean over the last axis ignoring NaN; NaN (without a warning) where all are NaN."""
    finite = np.isfinite(values)
    count = finite.sum(axis=-1)
    total = np.where(finite, values, 0.0).sum(axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, total / np.maximum(count, 1), np.nan)


def _run_arrays(run: dict[str, Any], block: BlockSpec, what: str) -> dict[str, np.ndarray]:
    """Reduce one training run (a dict of per-epoch dicts) to arrays of shape ``(epochs,)``."""
    epochs = block.epochs
    if int(run["epochs"]) != epochs:
        raise ArchiveError(
            f"{what}: run has {run['epochs']} epochs, hp {block.hp} expects {epochs}"
        )
    out: dict[str, np.ndarray] = {}
    rng = range(epochs)
    out["train/accuracy"] = _series(run["train_acc1es"], rng)
    out["train/loss"] = _series(run["train_losses"], rng)
    out["train/epoch_time"] = np.array([np.nanmean(_series(run["train_times"], rng))])
    eval_times = run.get("eval_times") or {}
    for split in block.splits[1:]:
        keys = _eval_keys(split, epochs)
        if split not in run["eval_names"]:
            continue
        out[f"{split}/accuracy"] = _series(run["eval_acc1es"], keys)
        out[f"{split}/loss"] = _series(run["eval_losses"], keys)
        out[f"{split}/epoch_time"] = np.array([_mean_or_nan(_series(eval_times, keys))])
    return out


def _cost(runs: dict[int, dict[str, Any]]) -> tuple[float, float, float]:
    """Params, FLOPs and latency of a block, with the official conventions.

    When the seeds disagree on params or FLOPs (a known legacy issue of the archives), the
    official API takes seed 888's value; latency is the mean over runs that measured one.
    """
    seeds = sorted(runs)

    def agreed(field: str) -> float:
        values = [float(runs[s][field]) for s in seeds]
        if len(values) > 1 and len({f"{v:.5f}" for v in values}) > 1 and 888 in runs:
            return float(runs[888][field])
        return float(np.mean(values))

    latencies = [float(np.mean(runs[s]["latency"])) for s in seeds if runs[s].get("latency")]
    latencies = [x for x in latencies if x > 0]
    return agreed("params"), agreed("flop"), float(np.mean(latencies)) if latencies else np.nan


@dataclass
class ArchRecord:
    """Everything one architecture contributes to the store, keyed by array name."""

    index: int
    arrays: dict[str, np.ndarray]


def parse_arch_state(
    index: int, hp_states: dict[str, Any], space: str, blocks: dict[str, BlockSpec], what: str
) -> ArchRecord:
    """Turn one architecture's ``{hp: arch_state}`` into per-arch array slices."""
    arrays: dict[str, np.ndarray] = {}
    for hp, state in hp_states.items():
        if not isinstance(state, dict) or "all_results" not in state:
            raise ArchiveError(f"{what}: hp {hp!r} holds no 'all_results'")
        by_dataset: dict[str, dict[int, dict[str, Any]]] = {}
        for (dataset, seed), run in state["all_results"].items():
            by_dataset.setdefault(dataset, {})[int(seed)] = run
        for dataset, runs in by_dataset.items():
            key = f"{hp}/{dataset}"
            if key not in blocks:
                raise ArchiveError(f"{what}: unexpected hp/dataset {key} for space {space}")
            block = blocks[key]
            _fill_block(arrays, block, runs, f"{what} [{key}]")
    return ArchRecord(index, arrays)


def _fill_block(
    arrays: dict[str, np.ndarray], block: BlockSpec, runs: dict[int, dict[str, Any]], what: str
) -> None:
    slots = 1 + len(block.seeds)
    per_seed: dict[str, np.ndarray] = {}
    coverage = np.zeros(len(block.seeds), dtype=np.uint8)
    for seed, run in runs.items():
        if seed not in block.seeds:
            raise ArchiveError(f"{what}: unexpected seed {seed}; expected one of {block.seeds}")
        slot = 1 + block.seeds.index(seed)
        coverage[slot - 1] = 1
        for name, series in _run_arrays(run, block, f"{what} seed {seed}").items():
            if name not in per_seed:
                shape = (slots,) if name.endswith("epoch_time") else (block.epochs, slots)
                per_seed[name] = np.full(shape, np.nan)
            target = per_seed[name]
            if target.ndim == 1:
                target[slot] = series[0]
            else:
                target[:, slot] = series
    for name, values in per_seed.items():
        seed_axis = values[..., 1:]
        values[..., 0] = _nanmean_last(seed_axis)
        arrays[f"{block.key}/{name}"] = values.astype(np.float32)
    arrays[f"{block.key}/coverage"] = coverage
    params, flops, latency = _cost(runs)
    arrays[f"{block.key}/params"] = np.array(params, dtype=np.float32)
    arrays[f"{block.key}/flops"] = np.array(flops, dtype=np.float32)
    arrays[f"{block.key}/latency"] = np.array(latency, dtype=np.float32)


def _read_arch_file(
    path: Path, index: int, space: str, blocks: dict[str, BlockSpec]
) -> tuple[ArchRecord, int, str]:
    """Worker: decompress, unpickle and reduce one per-architecture file."""
    try:
        raw = path.read_bytes()
        digest = hashlib.sha256(raw).hexdigest()
        content = pickle.loads(bz2.decompress(raw))
    except (OSError, EOFError, ValueError, pickle.UnpicklingError) as err:
        raise ArchiveError(f"cannot read {path.name}: {type(err).__name__}: {err}") from None
    except Exception as err:  # unpickling garbage can raise nearly anything
        raise ArchiveError(f"cannot read {path.name}: {type(err).__name__}: {err}") from None
    if not isinstance(content, dict):
        raise ArchiveError(
            f"{path.name}: expected a dict of hp -> results, got {type(content).__name__}"
        )
    try:
        record = parse_arch_state(index, content, space, blocks, path.name)
    except ArchiveError:
        raise
    except (KeyError, TypeError, AttributeError, ValueError) as err:
        raise ArchiveError(
            f"{path.name}: malformed content ({type(err).__name__}: {err})"
        ) from None
    return record, len(raw), digest


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


def _write_chunk(
    views: dict[str, np.ndarray], records: list[ArchRecord], row_of: dict[int, int] | None
) -> None:
    names_in_chunk = {name for rec in records for name in rec.arrays}
    for name in names_in_chunk:
        recs = [r for r in records if name in r.arrays]
        idx = np.array([r.index if row_of is None else row_of[r.index] for r in recs])
        stacked = np.stack([r.arrays[name] for r in recs], axis=-1)  # (..., n_chunk)
        views[name][..., idx] = stacked


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
        "nats_bench_version": metadata.version("nats_bench"),
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
    blocks = official_blocks(space)
    by_key = {b.key: b for b in blocks}
    order = sorted(files)
    rows = None if len(order) == n_archs else order
    row_of = None if rows is None else {index: row for row, index in enumerate(order)}
    sources = [(META, len(meta_raw), hashlib.sha256(meta_raw).hexdigest())]
    logger.info("importing %d %s architectures from %s", len(order), space, source)
    with StoreWriter(Path(dest), space, n_archs, blocks, rows=rows, overwrite=overwrite) as writer:
        bar = tqdm(total=len(order), desc=f"import {space}", unit="arch", disable=not progress)
        parallel = Parallel(n_jobs=n_jobs, return_as="generator", batch_size=16)
        for chunk in _chunks(order, CHUNK):
            results = parallel(delayed(_read_arch_file)(files[i], i, space, by_key) for i in chunk)
            records = []
            for record, size, digest in results:
                records.append(record)
                sources.append((files[record.index].name, size, digest))
                bar.update(1)
            with writer.arrays() as views:
                _write_chunk(views, records, row_of)
        bar.close()
        return writer.finalize(
            source="official",
            provenance=_provenance(source, "fast-dir", sources, synthetic),
            sources=sources,
        )


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
    blocks = official_blocks(space)
    by_key = {b.key: b for b in blocks}
    infos: dict[int, Any] = content["arch2infos"]
    sources = [(source.name, len(raw), hashlib.sha256(raw).hexdigest())]
    del raw
    order = sorted(int(i) for i in infos)
    bad = [i for i in order if not 0 <= i < n_archs]
    if bad:
        raise ArchiveError(
            f"{source.name}: index {bad[0]} outside the {space} space (0..{n_archs - 1})"
        )
    rows = None if len(order) == n_archs else order
    row_of = None if rows is None else {index: row for row, index in enumerate(order)}
    with StoreWriter(Path(dest), space, n_archs, blocks, rows=rows, overwrite=overwrite) as writer:
        bar = tqdm(total=len(order), desc=f"import {space}", unit="arch", disable=not progress)
        for chunk in _chunks(order, CHUNK):
            records = []
            for index in chunk:
                what = f"{source.name} [arch {index}]"
                try:
                    records.append(parse_arch_state(index, infos[index], space, by_key, what))
                except (KeyError, TypeError, AttributeError, ValueError) as err:
                    raise ArchiveError(
                        f"{what}: malformed content ({type(err).__name__}: {err})"
                    ) from None
                bar.update(1)
            with writer.arrays() as views:
                _write_chunk(views, records, row_of)
        bar.close()
        return writer.finalize(
            source="official",
            provenance=_provenance(source, "single-file", sources, synthetic),
            sources=sources,
        )
