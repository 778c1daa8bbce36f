"""Per-file parsing for the official-archive importer (:mod:`harness.bench.official`).

One architecture's ``{hp: arch_state}`` becomes per-seed array slices (:func:`parse_arch_state`);
a worker reads and parses a batch of files and reduces the batch to stacked arrays with the
seed means taken (:func:`reduce_batch`), so that only small numpy arrays travel between processes.
"""

from __future__ import annotations

import bz2
import hashlib
import logging
import pickle
import statistics
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

from harness.bench.format import BlockSpec
from harness.errors import ArchiveError

logger = logging.getLogger(__name__)

_PER_EPOCH = "per_epoch_times"  # transient array name: per-epoch times before averaging
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
    official API takes seed 888's value, and raises where seed 888 is absent: the value is then
    NaN (the store refuses the query); latency is the mean over runs that measured one.
    """
    seeds = sorted(runs)

    def agreed(field: str) -> float:
        values = [float(runs[s][field]) for s in seeds]
        if len(values) > 1 and len({f"{v:.5f}" for v in values}) > 1:
            # the official API takes seed 888's value, and raises when it has none: NaN here
            return float(runs[888][field]) if 888 in runs else float("nan")
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


def read_batch(
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
    return reduce_batch(records, row_of), sources, len(records)


#: Rows of a batch of architectures per array name: ``(rows (n,), values (..., n))``.
Reduced = dict[str, tuple[np.ndarray, np.ndarray]]


def reduce_batch(records: list[ArchRecord], row_of: dict[int, int] | None) -> Reduced:
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
            prefix = name[: -len(_PER_EPOCH)]
            out[prefix + "times_constant"] = (rows, _constant_over_epochs(stacked))
            stacked = _nanmean_axis(stacked, 0)
            name = prefix + "epoch_time"
        if stacked.ndim >= 2 and not name.endswith("coverage"):  # slot axis is -2
            stacked[..., 0, :] = _nanmean_axis(stacked[..., 1:, :], -2)
        out[name] = (rows, stacked)
    return out


def _constant_over_epochs(times: np.ndarray) -> np.ndarray:
    """(epochs, slots, n) per-epoch times -> (n,) uint8: 1 where some run exists and every run
    has a time for every epoch, the same for all of them (to float32 precision)."""
    finite = np.isfinite(times)
    ran = finite.any(axis=0)  # (slots, n)
    hi = np.where(finite, times, -np.inf).max(axis=0)
    lo = np.where(finite, times, np.inf).min(axis=0)
    with np.errstate(invalid="ignore"):
        same = (hi - lo) <= 1e-6 * np.maximum(np.abs(hi), 1.0)
    ok = np.where(ran, finite.all(axis=0) & same, True).all(axis=0) & ran[1:].any(axis=0)
    return ok.astype(np.uint8)


def _nanmean_axis(values: np.ndarray, axis: int) -> np.ndarray:
    """Mean over ``axis`` ignoring NaN; NaN (without a warning) where all are NaN."""
    finite = np.isfinite(values)
    count = finite.sum(axis=axis)
    total = np.where(finite, values, 0).sum(axis=axis, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, total / np.maximum(count, 1), np.nan).astype(np.float32)
