"""The benchmark table: query an imported store, one architecture or all of them at once.

Nothing is defaulted silently: the dataset, the split and the training schedule (hp) are
always given, and so is the seed policy:

* an ``int`` seed: that training run only;
* ``"mean"``: the mean over the seeds the source holds for that architecture;
* ``"all"``: the same mean, but only where every seed of the block is present.

The epoch defaults to the last epoch of the schedule, which is what "the result of training
for hp epochs" means. A request for something the store does not hold raises
:class:`~harness.errors.BenchmarkQueryError` listing what it does hold.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

import numpy as np

from harness import paths
from harness.bench import names
from harness.bench.format import DATA, ArrayEntry, BlockSpec, Layout, read_manifest
from harness.errors import ArchiveError, BenchmarkQueryError, unknown
from harness.spaces import get_space

logger = logging.getLogger(__name__)

Seed = int | Literal["mean", "all"]
METRICS: tuple[str, ...] = ("accuracy", "loss", "time")


@dataclass(frozen=True)
class CostInfo:
    """Cost of one architecture on one (dataset, hp) block.

    ``params`` in millions (the official "MB"), ``flops`` in millions, ``latency`` in seconds
    per batch, times in seconds (means over the available seeds).
    """

    params: float
    flops: float
    latency: float
    train_time_per_epoch: float
    train_time_total: float
    eval_time_per_epoch: dict[str, float]


class Store:
    """A read-only, memory-mapped benchmark table."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self.manifest = read_manifest(self.path)
        self.space_name: str = self.manifest["space"]
        self.space = get_space(self.space_name)
        self.n_archs: int = int(self.manifest["n_archs"])
        self.blocks: dict[str, BlockSpec] = {}
        for obj in self.manifest["blocks"]:
            block = BlockSpec.from_json(obj)
            self.blocks[block.key] = block
        self._layout = Layout()
        for name, entry in self.manifest["arrays"].items():
            self._layout.arrays[name] = ArrayEntry(
                int(entry["offset"]), tuple(entry["shape"]), entry["dtype"]
            )
        rows = self.manifest.get("rows")
        self._rows: np.ndarray | None = None if rows is None else np.asarray(rows, dtype=np.int64)
        self._row_of: np.ndarray | None = None
        if self._rows is not None:
            self._row_of = np.full(self.n_archs, -1, dtype=np.int64)
            self._row_of[self._rows] = np.arange(len(self._rows))
        self._cache: dict[tuple[Any, ...], np.ndarray] = {}
        self._views: dict[str, np.ndarray] = {}  # array name -> view into data.bin

    # ------------------------------------------------------------------ plumbing
    @cached_property
    def _buffer(self) -> np.ndarray:
        file = self.path / DATA
        expected = int(self.manifest["data_bytes"])
        if not file.is_file() or file.stat().st_size != expected:
            raise ArchiveError(f"store {self.path} is damaged: {DATA} missing or truncated")
        # a plain ndarray view of the mapping: slicing a memmap subclass costs microseconds
        return np.memmap(file, dtype=np.uint8, mode="r").view(np.ndarray)

    def _array(self, name: str) -> np.ndarray:
        view = self._views.get(name)
        if view is None:
            view = self._views[name] = self._layout.view(self._buffer, name)
        return view

    def _spread(self, values: np.ndarray, fill: float | bool) -> np.ndarray:
        """Rows -> architectures along the last axis (identity for a whole-space store)."""
        if self._rows is None:
            return np.asarray(values)
        out = np.full((*values.shape[:-1], self.n_archs), fill, dtype=values.dtype)
        out[..., self._rows] = values
        return out

    def _row(self, index: int) -> int:
        if self._row_of is None:
            return index
        row = int(self._row_of[index])
        if row < 0:
            raise BenchmarkQueryError(
                f"architecture {index} is absent from store {self.path.name} "
                f"(it holds {self.n_present} of {self.n_archs} architectures)"
            )
        return row

    @property
    def n_present(self) -> int:
        """Number of architectures this store holds rows for."""
        return self.n_archs if self._rows is None else len(self._rows)

    @property
    def source(self) -> str:
        return str(self.manifest["source"])

    @property
    def synthetic(self) -> bool:
        return bool(self.manifest.get("synthetic", False))

    @property
    def checksum(self) -> str:
        """Digest of the source data this store was built from (run provenance)."""
        return str(self.manifest.get("sources_sha256", ""))

    def datasets(self, hp: int | str | None = None) -> list[str]:
        """Datasets held (for one hp, or any)."""
        keys = [b for b in self.blocks.values() if hp is None or b.hp == self._hp(hp)]
        return sorted({b.dataset for b in keys}, key=names.DATASETS.index)

    def hps(self) -> list[str]:
        return sorted({b.hp for b in self.blocks.values()}, key=int)

    # ------------------------------------------------------------------ validation
    def _hp(self, hp: int | str) -> str:
        return names.hp_key(self.space_name, hp)

    def block(self, dataset: str, hp: int | str) -> BlockSpec:
        """The block for ``(dataset, hp)``, or an error saying which exist."""
        names.check_dataset(dataset)
        key = f"{self._hp(hp)}/{dataset}"
        if key not in self.blocks:
            held = ", ".join(f"{b.dataset} @ hp {b.hp}" for b in self.blocks.values())
            raise BenchmarkQueryError(
                f"store {self.path.name} holds no {dataset} @ hp {hp}; held: {held}"
            )
        return self.blocks[key]

    def _check_split(self, block: BlockSpec, split: str) -> None:
        if split not in block.splits:
            hint = (
                " (CIFAR-10 validation lives in the 'cifar10-valid' run, trained on 25k images)"
                if block.dataset == "cifar10" and split == "x-valid"
                else ""
            )
            raise BenchmarkQueryError(
                unknown(f"split for {block.dataset} @ hp {block.hp}", split, block.splits) + hint
            )

    def _epoch_row(self, block: BlockSpec, epoch: int | None) -> int:
        ep = block.epochs - 1 if epoch is None else int(epoch)
        if ep < 0 or ep >= block.epochs:
            raise BenchmarkQueryError(
                f"epoch {epoch} is outside the hp-{block.hp} schedule (0..{block.epochs - 1})"
            )
        row = block.epoch_rows.get(ep)
        if row is None:
            held = block.epochs_held
            shown = (
                f"0..{held[-1]}" if held == tuple(range(len(held))) else ", ".join(map(str, held))
            )
            raise BenchmarkQueryError(
                f"epoch {ep} of {block.dataset} @ hp {block.hp} is not held by this store "
                f"(source {self.source}); epochs held: {shown}"
            )
        return row

    def _slot(self, block: BlockSpec, seed: Seed) -> int:
        if seed in ("mean", "all"):
            return 0
        if isinstance(seed, bool) or not isinstance(seed, int | np.integer):
            raise BenchmarkQueryError(f"seed must be an int, 'mean' or 'all', got {seed!r}")
        if int(seed) not in block.held_seeds:
            raise BenchmarkQueryError(
                f"seed {seed} not held for {block.dataset} @ hp {block.hp}; seeds: "
                + (", ".join(map(str, block.held_seeds)) or "none (only the source's seed mean)")
            )
        return 1 + block.seeds.index(int(seed))

    # ------------------------------------------------------------------ vectorised
    def metric_all(
        self,
        dataset: str,
        split: str,
        hp: int | str,
        metric: str,
        seed: Seed,
        epoch: int | None = None,
    ) -> np.ndarray:
        """One metric for every architecture, shape ``(n_archs,)`` float32, NaN where absent.

        ``metric`` is ``accuracy`` (%), ``loss``, or ``time``: seconds spent on that split
        up to and including ``epoch`` (training time for ``train``, evaluation time otherwise).
        NaN also where :meth:`metric` refuses: ``"all"`` where a seed lacks the value at that
        epoch, an intermediate-epoch time whose per-epoch times vary, an evaluation time at an
        epoch the set was not evaluated at. The result is read-only and cached.
        """
        key = (dataset, split, str(hp), metric, seed, epoch)
        hit = self._cache.get(key)
        if hit is not None:
            return hit
        block = self.block(dataset, hp)
        self._check_split(block, split)
        if metric not in METRICS:
            raise BenchmarkQueryError(unknown("metric", metric, METRICS))
        policy = seed_policy_error(self, dataset, hp, seed)
        if policy is not None:
            raise BenchmarkQueryError(policy)
        slot = self._slot(block, seed)
        if metric == "time":
            ep = self._epoch_of(block, epoch)
            if not 0 <= ep < block.epochs:
                raise BenchmarkQueryError(
                    f"epoch {epoch} is outside the hp-{block.hp} schedule (0..{block.epochs - 1})"
                )
            per_epoch = np.array(self._array(f"{block.key}/{split}/epoch_time")[slot])
            if ep < block.epochs - 1:
                per_epoch[~self._times_constant(block, split)] = np.nan
            if split != "train":
                erow = block.epoch_rows.get(ep)
                evaluated = (
                    np.isfinite(self._array(f"{block.key}/{split}/accuracy")[erow, slot])
                    if erow is not None
                    else np.zeros(per_epoch.shape, dtype=bool)
                )
                per_epoch[~evaluated] = np.nan
            values = self._spread(per_epoch * np.float32(ep + 1), np.nan)
        else:
            row = self._epoch_row(block, epoch)
            values = np.array(self._array(f"{block.key}/{split}/{metric}")[row, slot])
            if seed == "all":  # every held seed must have the value at this epoch
                held = [1 + block.seeds.index(s) for s in block.held_seeds]
                per_seed = self._array(f"{block.key}/{split}/{metric}")[row][held]
                values[~np.isfinite(per_seed).all(axis=0)] = np.nan
            values = self._spread(values, np.nan)
        if seed == "all":
            values = np.where(self._covers_all(block), values, np.nan)
        values = np.asarray(values, dtype=np.float32)
        values.setflags(write=False)
        self._cache[key] = values
        return values

    def epoch_time_all(self, dataset: str, split: str, hp: int | str, seed: Seed) -> np.ndarray:
        """Seconds per epoch on ``split`` for every architecture (the mean over the epochs of
        a run: the per-epoch time where it is constant), ``(n_archs,)`` float32, NaN where
        absent; what a query's evaluation epoch is charged."""
        block = self.block(dataset, hp)
        self._check_split(block, split)
        if seed == "all":
            raise BenchmarkQueryError("epoch_time_all takes one seed or 'mean', not 'all'")
        slot = self._slot(block, seed)
        values = self._spread(
            np.array(self._array(f"{block.key}/{split}/epoch_time")[slot]), np.nan
        )
        return np.asarray(values, dtype=np.float32)

    def _covers_all(self, block: BlockSpec) -> np.ndarray:
        """Architectures that have every held seed of ``block``, shape ``(n_archs,)``."""
        held = [block.seeds.index(s) for s in block.held_seeds]
        cov = np.asarray(self._array(f"{block.key}/coverage"), dtype=bool)[held]
        every = np.asarray(cov.all(axis=0)) if held else np.zeros(cov.shape[1], dtype=bool)
        return self._spread(every, False)

    def coverage(self, dataset: str, hp: int | str) -> np.ndarray:
        """Seed coverage, shape ``(len(block.seeds), n_archs)`` bool, in ``block.seeds`` order."""
        block = self.block(dataset, hp)
        return self._spread(np.asarray(self._array(f"{block.key}/coverage"), dtype=bool), False)

    def present(self, dataset: str, hp: int | str) -> np.ndarray:
        """Architectures with at least one value for this block, shape ``(n_archs,)`` bool."""
        block = self.block(dataset, hp)
        return np.asarray(self._spread(self._has_values(block, slice(None)), False))

    def _has_values(self, block: BlockSpec, rows: slice | int) -> np.ndarray:
        """Rows with a run, a time or a last-epoch accuracy in ``block`` (any split).

        Derived tables may hold no ``train`` split, or seed means only, so no single array
        tells whether an architecture was run.
        """
        have = np.asarray(self._array(f"{block.key}/coverage")[:, rows], dtype=bool).any(axis=0)
        for split in block.splits:
            have = have | ~np.isnan(self._array(f"{block.key}/{split}/epoch_time")[0, rows])
            if block.epochs_held:
                have = have | ~np.isnan(self._array(f"{block.key}/{split}/accuracy")[-1, 0, rows])
        return np.asarray(have)

    def cost_all(self, dataset: str, hp: int | str, field: str) -> np.ndarray:
        """``params`` (M), ``flops`` (M) or ``latency`` (s) for every architecture."""
        block = self.block(dataset, hp)
        if field not in ("params", "flops", "latency"):
            raise BenchmarkQueryError(unknown("cost field", field, ("params", "flops", "latency")))
        return self._spread(np.array(self._array(f"{block.key}/{field}")), np.nan)

    def cost_metric_all(self, metric: str, dataset: str) -> np.ndarray:
        """A named cost metric of every architecture for ``dataset``'s network: ``params``
        (M), ``flops`` (M), ``latency`` (ms) or ``latency:<device>`` (ms, from the attached
        latency table); ``(n_archs,)`` float64, NaN where unknown (:mod:`harness.bench.costs`)."""
        from harness.bench.costs import cost_values

        return cost_values(self, metric, dataset)

    # ------------------------------------------------------------------ single architecture
    def metric(
        self,
        arch: int | str,
        dataset: str,
        split: str,
        hp: int | str,
        metric: str,
        seed: Seed,
        epoch: int | None = None,
    ) -> float:
        """One metric of one architecture (index or string); raises if the value is absent.

        As the official API: ``seed="all"`` refuses when a seed lacks the value at ``epoch``
        (``"mean"`` then averages the seeds that have it, and logs which); a time is the sum
        of the recorded per-epoch times, so intermediate epochs are answered only where every
        run spent the same time on each epoch (the store keeps the mean per epoch); an
        evaluation time only at an epoch the set was evaluated at.
        """
        index = self.space.parse(arch)
        block = self.block(dataset, hp)
        self._check_split(block, split)
        if metric not in METRICS:
            raise BenchmarkQueryError(unknown("metric", metric, METRICS))
        policy = seed_policy_error(self, dataset, hp, seed)
        if policy is not None:
            raise BenchmarkQueryError(policy)
        slot = self._slot(block, seed)
        row = self._row(index)
        if metric == "time":
            value = self._time(block, split, slot, row, index, epoch)
        else:
            erow = self._epoch_row(block, epoch)
            value = float(self._array(f"{block.key}/{split}/{metric}")[erow, slot, row])
        have = self._seeds_of(block, row)
        if seed == "all" and (not block.held_seeds or set(have) != set(block.held_seeds)):
            raise BenchmarkQueryError(
                f"architecture {index} lacks seeds on {dataset} @ hp {block.hp}: has {have}, "
                f"'all' requires {list(block.held_seeds)}"
            )
        if value != value:  # NaN: absent
            raise BenchmarkQueryError(self._absent_message(index, have, block, split, metric, seed))
        if seed in ("all", "mean") and metric != "time":
            self._check_epoch_seeds(block, split, metric, row, index, epoch, have, seed)
        return value

    def _check_epoch_seeds(
        self, block: BlockSpec, split: str, metric: str, row: int, index: int,
        epoch: int | None, have: list[int], seed: Seed,
    ) -> None:  # fmt: skip
        """``all``: every run has the value at ``epoch``; ``mean``: log the seeds averaged."""
        erow = self._epoch_row(block, epoch)
        values = self._array(f"{block.key}/{split}/{metric}")[erow, 1:, row]
        valued = [s for s, v in zip(block.seeds, values.tolist(), strict=True) if v == v]
        missing = sorted(set(have) - set(valued))
        if not missing:
            return
        where = f"{block.dataset}/{split} @ hp {block.hp}, epoch {self._epoch_of(block, epoch)}"
        if seed == "all":
            raise BenchmarkQueryError(
                f"architecture {index} has no {metric} for seed(s) {missing} on {where}; "
                f"'all' requires every seed (the official API answers nothing here)"
            )
        logger.warning("architecture %d, %s: the mean covers seeds %s only (%s lack it)",
                       index, where, valued, missing)  # fmt: skip

    @staticmethod
    def _epoch_of(block: BlockSpec, epoch: int | None) -> int:
        return block.epochs - 1 if epoch is None else int(epoch)

    def _time(
        self, block: BlockSpec, split: str, slot: int, row: int, index: int, epoch: int | None
    ) -> float:
        """Seconds on ``split`` up to and including ``epoch`` (see :meth:`metric`)."""
        ep = self._epoch_of(block, epoch)
        if not 0 <= ep < block.epochs:
            raise BenchmarkQueryError(
                f"epoch {epoch} is outside the hp-{block.hp} schedule (0..{block.epochs - 1})"
            )
        where = f"{block.dataset}/{split} @ hp {block.hp}"
        if ep < block.epochs - 1 and not self._times_constant(block, split)[row]:
            raise BenchmarkQueryError(
                f"architecture {index}: the time up to epoch {ep} of {where} is not known: "
                "its per-epoch times vary within a run (or the source holds totals only), and "
                f"the store keeps their mean; the total of the schedule is (epoch "
                f"{block.epochs - 1})"
            )
        if split != "train":
            erow = block.epoch_rows.get(ep)
            evaluated = erow is not None and bool(
                np.isfinite(self._array(f"{block.key}/{split}/accuracy")[erow, slot, row])
            )
            if not evaluated:
                raise BenchmarkQueryError(
                    f"architecture {index} was not evaluated on {where} at epoch {ep}: no "
                    "evaluation time there"
                )
        return float(self._array(f"{block.key}/{split}/epoch_time")[slot, row]) * (ep + 1)

    def _times_constant(self, block: BlockSpec, split: str) -> np.ndarray:
        """(n_rows,) bool: runs whose per-epoch times are all equal (False where unknown,
        and everywhere in a store imported before this was recorded)."""
        name = f"{block.key}/{split}/times_constant"
        if name not in self._layout.arrays:
            rows = self.n_archs if self._rows is None else len(self._rows)
            return np.zeros(rows, dtype=bool)
        return np.asarray(self._array(name), dtype=bool)

    def _seeds_of(self, block: BlockSpec, row: int) -> list[int]:
        cov = self._array(f"{block.key}/coverage")[:, row]
        return [s for s, c in zip(block.seeds, cov.tolist(), strict=True) if c]

    def _absent_message(
        self, index: int, have: list[int], block: BlockSpec, split: str, metric: str, seed: Seed
    ) -> str:
        if not have and seed != "mean":
            return f"architecture {index} has no runs on {block.dataset} @ hp {block.hp}"
        return (
            f"architecture {index} has no {metric} on {block.dataset}/{split} @ hp {block.hp} "
            f"for seed {seed!r} (seeds present: {have or 'none'}; source {self.source})"
        )

    def curve(
        self, arch: int | str, dataset: str, split: str, hp: int | str, metric: str, seed: Seed
    ) -> tuple[np.ndarray, np.ndarray]:
        """Per-epoch curve of one architecture: ``(epochs, values)``, both ``(n_epochs_held,)``."""
        index = self.space.parse(arch)
        block = self.block(dataset, hp)
        self._check_split(block, split)
        if metric not in names.CURVE_METRICS:
            raise BenchmarkQueryError(unknown("curve metric", metric, names.CURVE_METRICS))
        slot = self._slot(block, seed)
        values = np.array(self._array(f"{block.key}/{split}/{metric}")[:, slot, self._row(index)])
        return np.asarray(block.epochs_held), values

    def cost(self, arch: int | str, dataset: str, hp: int | str) -> CostInfo:
        """Params, FLOPs, latency and mean per-epoch times of one architecture."""
        index = self.space.parse(arch)
        block = self.block(dataset, hp)
        row = self._row(index)
        if not self._has_values(block, row):
            raise BenchmarkQueryError(
                f"architecture {index} has no runs on {dataset} @ hp {block.hp}"
            )
        get = lambda name: float(self._array(f"{block.key}/{name}")[row])  # noqa: E731
        if get("params") != get("params") or get("flops") != get("flops"):
            raise BenchmarkQueryError(
                f"architecture {index} has no params/FLOPs on {dataset} @ hp {block.hp}: its "
                "seeds disagree and seed 888, the official API's tie-break, is absent (the "
                "official API raises here too), or the source holds none"
            )
        per_epoch = (
            float(self._array(f"{block.key}/train/epoch_time")[0, row])
            if "train" in block.splits
            else float("nan")
        )
        evals = {
            s: float(self._array(f"{block.key}/{s}/epoch_time")[0, row])
            for s in block.splits
            if s != "train"
        }
        return CostInfo(
            params=get("params"),
            flops=get("flops"),
            latency=get("latency"),
            train_time_per_epoch=per_epoch,
            train_time_total=per_epoch * block.epochs,
            eval_time_per_epoch=evals,
        )

    def best(
        self,
        dataset: str,
        split: str,
        hp: int | str,
        seed: Seed,
        metric: str = "accuracy",
        epoch: int | None = None,
    ) -> tuple[int, float]:
        """Index and value of the best architecture (highest accuracy, lowest loss/time)."""
        values = self.metric_all(dataset, split, hp, metric, seed, epoch)
        if np.isnan(values).all():
            raise BenchmarkQueryError(
                f"no architecture has {metric} on {dataset}/{split} @ hp {hp}"
            )
        index = int(np.nanargmax(values) if metric == "accuracy" else np.nanargmin(values))
        return index, float(values[index])

    def schedule_time(
        self, arch: int | str, dataset: str, hp: int | str, seed: Seed, epochs: int | None = None
    ) -> float:
        """Simulated seconds to train ``arch`` for ``epochs`` epochs of the hp schedule.

        This is the budget charge of a benchmark query; defaults to the whole schedule.
        """
        return self.metric(
            arch, dataset, "train", hp, "time", seed, None if epochs is None else epochs - 1
        )

    def info(self) -> dict[str, Any]:
        """A summary of what the store holds (for ``harness bench info``)."""
        blocks = []
        for block in self.blocks.values():
            present = self.present(block.dataset, block.hp)
            blocks.append(
                {
                    "hp": block.hp,
                    "dataset": block.dataset,
                    "seeds": list(block.held_seeds),
                    "epochs": block.epochs,
                    "epochs_held": len(block.epochs_held),
                    "splits": list(block.splits),
                    "archs_present": int(present.sum()),
                    "mean": block.mean,
                }
            )
        keep = (
            "space",
            "source",
            "n_archs",
            "created",
            "format_version",
            "nats_bench_version",
            "synthetic",
            "sources_sha256",
            "n_source_files",
        )
        return {**{k: self.manifest.get(k) for k in keep}, "path": str(self.path), "blocks": blocks}


def store_path(name_or_path: str | Path) -> Path:
    """Resolve a store name (under ``$HARNESS_HOME/stores``) or an explicit path."""
    candidate = Path(name_or_path)
    if candidate.is_dir():
        return candidate
    named = paths.stores_dir() / str(name_or_path)
    if named.is_dir():
        return named
    existing = sorted(p.name for p in paths.stores_dir().glob("*") if not p.name.startswith("."))
    raise ArchiveError(unknown("store", str(name_or_path), existing or ["<none imported yet>"]))


def seed_policy_error(store: Store, dataset: str, hp: int | str, seed: Seed | str) -> str | None:
    """Why ``seed`` cannot be answered on ``(dataset, hp)`` at all, or None if it can be.

    ``"all"`` needs per-seed values; a table that holds only the source's seed means has
    none, so the answer is "use 'mean'" rather than "has [], 'all' requires []".
    """
    block = store.block(dataset, hp)
    if seed == "all" and not block.held_seeds:
        return (
            f"store {store.path.name} holds only seed means for {dataset} @ hp {block.hp} "
            "(no per-seed values), so seed 'all' cannot be checked; use seed 'mean'"
        )
    return None


def open_store(name_or_path: str | Path) -> Store:
    """Open a store by name or path."""
    return Store(store_path(name_or_path))


def list_stores() -> list[str]:
    root = paths.stores_dir()
    return (
        sorted(p.name for p in root.glob("*") if (p / "manifest.json").is_file())
        if root.is_dir()
        else []
    )
