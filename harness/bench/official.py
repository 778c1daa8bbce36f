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
import statistics
from collections.abc import Callable, Iterable, Iterator
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
CHUNK = 1024  # architectures written per mapping of the store
BATCH = 32  # architectures per worker task; only their stacked arrays travel back
_PER_EPOCH = "per_epoch_times"  # transient array name: per-epoch times before averaging


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
_PLANS: dict[tuple[int, int, int], np.ndarray] = {}


def _positions(keys: tuple[Any, ...], wanted: tuple[Any, ...]) -> np.ndarray:
    """Position of each wanted key among ``keys``; ``len(keys)`` (a NaN sentinel) if absent.

    Runs of one archive share a handful of key layouts, so this is computed once per layout
    and the values of every later run are gathered with one vectorised take. A layout is
    recognised by its length and tuple hash (comparing the keys themselves would cost as much
    as the gather); ``wanted`` is always one of the cached key tuples, so its id is stable.
    """
    token = (id(wanted), len(keys), hash(keys))
    plan = _PLANS.get(token)
    if plan is None:
        where = {k: i for i, k in enumerate(keys)}
        plan = np.array([where.get(k, len(keys)) for k in wanted], dtype=np.intp)
        _PLANS[token] = plan
    return plan


def _gather(values: dict[Any, Any] | None, wanted: tuple[Any, ...]) -> np.ndarray:
    """``values[k]`` for each wanted key as float64, NaN where absent; shape ``(len(wanted),)``."""
    if not values:
        return np.full(len(wanted), np.nan)
    keys = tuple(values)
    flat = np.empty(len(keys) + 1)
    flat[:-1] = np.fromiter(values.values(), dtype=np.float64, count=len(keys))
    flat[-1] = np.nan
    return flat[_positions(keys, wanted)]


@cache
def _eval_keys(splits: tuple[str, ...], epochs: int) -> tuple[str, ...]:
    return tuple(f"{split}@{e}" for split in splits for e in range(epochs))


@cache
def _epoch_keys(epochs: int) -> tuple[int, ...]:
    return tuple(range(epochs))


def _run_arrays(run: dict[str, Any], block: BlockSpec, what: str) -> tuple[np.ndarray, np.ndarray]:
    """Reduce one run to ``curves (2 * n_splits, epochs)`` and ``times (n_splits, epochs)``.

    Curve rows are (accuracy, loss) per split in ``block.splits`` order; times are seconds
    per epoch. Eval sets held only at some epochs (the genuine tss hp-200 files keep
    some sets at the last epoch only) are NaN elsewhere.
    """
    epochs = block.epochs
    if int(run["epochs"]) != epochs:
        raise ArchiveError(
            f"{what}: run has {run['epochs']} epochs, hp {block.hp} expects {epochs}"
        )
    n_eval = len(block.splits) - 1
    train_keys = _epoch_keys(epochs)
    eval_keys = _eval_keys(block.splits[1:], epochs)
    curves = np.empty((2 * len(block.splits), epochs))
    curves[0] = _gather(run["train_acc1es"], train_keys)
    curves[1] = _gather(run["train_losses"], train_keys)
    curves[2::2] = _gather(run["eval_acc1es"], eval_keys).reshape(n_eval, epochs)
    curves[3::2] = _gather(run["eval_losses"], eval_keys).reshape(n_eval, epochs)
    times = np.empty((len(block.splits), epochs))
    times[0] = _gather(run["train_times"], train_keys)
    times[1:] = _gather(run.get("eval_times"), eval_keys).reshape(n_eval, epochs)
    return curves, times


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
        return statistics.fmean(values)

    latencies = [statistics.fmean(runs[s]["latency"]) for s in seeds if runs[s].get("latency")]
    latencies = [x for x in latencies if x > 0]
    return agreed("params"), agreed("flop"), statistics.fmean(latencies) if latencies else np.nan


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
    """Per-seed slots of one block; the seed means are taken later, over a whole chunk."""
    slots = 1 + len(block.seeds)
    curves = np.full((2 * len(block.splits), block.epochs, slots), np.nan, dtype=np.float32)
    times = np.full((len(block.splits), block.epochs, slots), np.nan, dtype=np.float32)
    coverage = np.zeros(len(block.seeds), dtype=np.uint8)
    for seed, run in runs.items():
        if seed not in block.seeds:
            raise ArchiveError(f"{what}: unexpected seed {seed}; expected one of {block.seeds}")
        slot = 1 + block.seeds.index(seed)
        coverage[slot - 1] = 1
        curves[..., slot], times[..., slot] = _run_arrays(run, block, f"{what} seed {seed}")
    for i, split in enumerate(block.splits):
        arrays[f"{block.key}/{split}/accuracy"] = curves[2 * i]
        arrays[f"{block.key}/{split}/loss"] = curves[2 * i + 1]
        arrays[f"{block.key}/{split}/{_PER_EPOCH}"] = times[i]
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


def _read_batch(
    items: list[tuple[Path, int]],
    space: str,
    blocks: dict[str, BlockSpec],
    row_of: dict[int, int] | None,
) -> tuple[Reduced, list[tuple[str, int, str]], int]:
    """Worker: read a batch of files and reduce them, so that only stacked arrays travel."""
    records, sources = [], []
    for path, index in items:
        record, size, digest = _read_arch_file(path, index, space, blocks)
        records.append(record)
        sources.append((path.name, size, digest))
    return _reduce(records, row_of), sources, len(records)


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


#: Rows of a batch of architectures per array name: ``(rows (n,), values (..., n))``.
Reduced = dict[str, tuple[np.ndarray, np.ndarray]]


def _reduce(records: list[ArchRecord], row_of: dict[int, int] | None) -> Reduced:
    """Stack a batch of records per array and take the seed means, vectorised over the batch.

    Per-epoch times become the mean seconds per epoch of each run; slot 0 of every curve and
    time is the mean over the seeds present (NaN where none is).
    """
    out: Reduced = {}
    names_in_batch = {name for rec in records for name in rec.arrays}
    for name in names_in_batch:
        recs = [r for r in records if name in r.arrays]
        rows = np.array([r.index if row_of is None else row_of[r.index] for r in recs])
        stacked = np.stack([r.arrays[name] for r in recs], axis=-1)  # (..., n)
        if name.endswith(_PER_EPOCH):  # (epochs, slots, n) -> (slots, n)
            stacked = _nanmean_axis(stacked, 0)
            name = name[: -len(_PER_EPOCH)] + "epoch_time"
        if stacked.ndim >= 2 and not name.endswith("coverage"):  # slot axis is -2
            stacked[..., 0, :] = _nanmean_axis(stacked[..., 1:, :], -2)
        out[name] = (rows, stacked)
    return out


def _write_reduced(views: dict[str, np.ndarray], reduced: Reduced) -> None:
    for name, (rows, values) in reduced.items():
        views[name][..., rows] = values


def _nanmean_axis(values: np.ndarray, axis: int) -> np.ndarray:
    """Mean over ``axis`` ignoring NaN; NaN (without a warning) where all are NaN."""
    finite = np.isfinite(values)
    count = finite.sum(axis=axis)
    total = np.where(finite, values, 0).sum(axis=axis, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, total / np.maximum(count, 1), np.nan).astype(np.float32)


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
    by_key = {b.key: b for b in official_blocks(space)}
    order = sorted(files)
    sources = [(META, len(meta_raw), hashlib.sha256(meta_raw).hexdigest())]
    logger.info("importing %d %s architectures from %s", len(order), space, source)
    parallel = Parallel(n_jobs=n_jobs, return_as="generator")

    def read(chunk: list[int], row_of: dict[int, int] | None) -> Iterator[tuple[Reduced, int]]:
        batches = [[(files[i], i) for i in batch] for batch in _chunks(chunk, BATCH)]
        tasks = (delayed(_read_batch)(batch, space, by_key, row_of) for batch in batches)
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
        yield _reduce(records, row_of), len(records)

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
