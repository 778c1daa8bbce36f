"""Run records on disk: one small file per run, consolidated into tidy tables.

A results directory looks like::

    runs/<run_key>.json     one finished run (written atomically: temporary file + os.replace)
    runs.parquet            the run table, one row per (run, eval task)
    trajectories.parquet    the trajectory table, one row per incumbent change per eval task
    manifest.json           provenance: git commit, package versions, data, protocols, machine

The per-run files are the source of truth while a sweep runs: a sweep killed at any moment
leaves only whole files (or stray ``.tmp`` files, removed on the next start), so a restart
finds exactly the runs that finished. Consolidation merges them with the rows already in
``runs.parquet`` (so the ``runs/`` directory may be pruned once consolidated).

A directory is bound to one data checksum (the store's provenance digest): runs made on other
data are refused with :class:`~harness.errors.ConfigError` before anything is written.

Trajectories keep the steps at which the incumbent changed plus the last step: the incumbent
is a step function of simulated time, so nothing is lost. ``incumbent_test`` is the test
accuracy of the incumbent at the protocol's report schedule (seed mean) and ``regret`` the
best test accuracy of the eval task minus it (percentage points). Missing is null.
"""

from __future__ import annotations

import json
import logging
import math
import os
import platform
import subprocess
import tempfile
import time
import weakref
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from harness.bench import names
from harness.errors import ArchiveError, ConfigError
from harness.spaces import get_space

if TYPE_CHECKING:
    from harness.bench.store import Store
    from harness.protocol import ProtocolCard, SearchOutcome
    from harness.runner import RunSpec

logger = logging.getLogger(__name__)

RECORD_FORMAT = 1
RUNS_DIR = "runs"
RUNS_FILE = "runs.parquet"
TRAJECTORIES_FILE = "trajectories.parquet"
MANIFEST_FILE = "manifest.json"

#: Run table columns and their pandas dtypes (nullable ``Int64`` where a failed run has none;
#: NaN is null in float columns).
# fmt: off
RUN_COLUMNS: dict[str, str] = {
    "run_key": "string", "method": "string", "config": "string", "space": "string",
    "dataset": "string", "eval_dataset": "string", "protocol": "string", "seed": "int64",
    "arch_index": "Int64", "arch": "string", "valid_acc": "float64", "test_acc": "float64",
    "regret": "float64", "rank": "Int64", "percentile": "float64", "sim_seconds": "float64",
    "budget": "float64", "queries": "Int64", "distinct_archs": "Int64",
    "wall_seconds": "float64", "device_seconds": "float64", "status": "string",
    "error": "string", "synthetic": "bool", "data_checksum": "string", "rng_entropy": "string",
}
TRAJECTORY_COLUMNS: dict[str, str] = {
    "run_key": "string", "method": "string", "space": "string", "dataset": "string",
    "eval_dataset": "string", "protocol": "string", "seed": "int64", "step": "int64",
    "sim_seconds": "float64", "incumbent_index": "int64", "incumbent_valid": "float64",
    "incumbent_test": "float64", "regret": "float64",
}
#: Columns of a trajectory that vary per row (the others repeat the run's identity).
TRAJECTORY_VARYING: tuple[str, ...] = (
    "eval_dataset", "step", "sim_seconds", "incumbent_index", "incumbent_valid",
    "incumbent_test", "regret",
)
# fmt: on
_PACKAGES = (
    "nats-harness",
    "numpy",
    "scipy",
    "pandas",
    "pyarrow",
    "joblib",
    "tqdm",
    "torch",
    "nats_bench",
)  # fmt: skip


def _clean(value: Any) -> Any:
    """JSON-safe value: NaN becomes null (never -1), numpy scalars become Python numbers."""
    if hasattr(value, "item") and not isinstance(value, list | dict | str):
        value = value.item()
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


@dataclass(frozen=True)
class RunRecord:
    """One finished run: its run-table rows (one per eval task) and its trajectory columns.

    ``rows`` are dicts keyed by :data:`RUN_COLUMNS`; ``trajectory`` maps each column of
    :data:`TRAJECTORY_VARYING` to a list (all of equal length).
    """

    run_key: str
    rows: tuple[dict[str, Any], ...]
    trajectory: dict[str, list[Any]]

    def to_json(self) -> str:
        """Canonical JSON text (NaN as null, sorted keys), so equal records give equal text."""
        obj = {
            "format": RECORD_FORMAT,
            "run_key": self.run_key,
            "rows": [{k: _clean(v) for k, v in row.items()} for row in self.rows],
            "trajectory": {k: [_clean(v) for v in vs] for k, vs in self.trajectory.items()},
        }
        return json.dumps(obj, sort_keys=True, allow_nan=False, separators=(",", ":"))

    @staticmethod
    def from_json(text: str, where: str = "run record") -> RunRecord:
        """Parse :meth:`to_json` output; a damaged file raises :class:`ArchiveError`."""
        try:
            obj = json.loads(text)
            if obj.get("format") != RECORD_FORMAT:
                raise ValueError(f"format {obj.get('format')!r}, expected {RECORD_FORMAT}")
            rows = tuple(dict(r) for r in obj["rows"])
            trajectory = {k: list(v) for k, v in obj["trajectory"].items()}
            return RunRecord(str(obj["run_key"]), rows, trajectory)
        except (ValueError, KeyError, TypeError, AttributeError) as err:
            raise ArchiveError(f"{where} is damaged: {err}") from None


def _atomic(path: Path, write: Callable[[Path], object]) -> Path:
    """Call ``write(tmp)`` on a temporary file beside ``path``, then rename it into place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        write(Path(tmp))
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)
    return path


def atomic_write_text(path: Path, text: str) -> Path:
    """Write ``text`` to ``path`` atomically (a reader sees the old or the new file, whole)."""
    return _atomic(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def _typed(
    records: list[dict[str, Any]] | dict[str, list[Any]], schema: Mapping[str, str]
) -> pd.DataFrame:
    frame = pd.DataFrame(records, columns=list(schema))
    return frame.astype(dict(schema))


class ResultsDir:
    """A results directory: finished-run lookup, atomic run files, consolidation, manifest."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.runs_dir = self.path / RUNS_DIR

    # ------------------------------------------------------------------ reading
    def manifest(self) -> dict[str, Any] | None:
        """The manifest, or None when the directory has none yet."""
        file = self.path / MANIFEST_FILE
        if not file.is_file():
            return None
        try:
            result: dict[str, Any] = json.loads(file.read_text(encoding="utf-8"))
        except ValueError as err:
            raise ArchiveError(f"{file} is damaged: {err}") from None
        return result

    def run_files(self) -> dict[str, Path]:
        """Run key -> file of every finished run in ``runs/`` (temporary files excluded)."""
        if not self.runs_dir.is_dir():
            return {}
        return {p.stem: p for p in self.runs_dir.glob("*.json") if not p.name.startswith(".")}

    def finished_keys(self) -> set[str]:
        """Keys of finished runs: run files plus runs already consolidated into the table."""
        keys = set(self.run_files())
        table = self.path / RUNS_FILE
        if table.is_file():
            keys.update(pd.read_parquet(table, columns=["run_key"])["run_key"].astype(str))
        return keys

    def read_run(self, key: str) -> RunRecord:
        file = self.runs_dir / f"{key}.json"
        return RunRecord.from_json(file.read_text(encoding="utf-8"), str(file))

    def data_checksum(self) -> str | None:
        """The data checksum this directory is bound to (manifest, else any run file)."""
        manifest = self.manifest()
        if manifest is not None and manifest.get("data", {}).get("checksum") is not None:
            return str(manifest["data"]["checksum"])
        for key in self.run_files():
            rows = self.read_run(key).rows
            if rows:
                return str(rows[0]["data_checksum"])
        table = self.path / RUNS_FILE
        if table.is_file():
            col = pd.read_parquet(table, columns=["data_checksum"])["data_checksum"]
            return str(col.iloc[0]) if len(col) else None
        return None

    def check_binding(self, checksum: str, source: str = "") -> None:
        """Raise :class:`ConfigError` if this directory holds runs made on other data."""
        bound = self.data_checksum()
        if bound is not None and bound != checksum:
            raise ConfigError(
                f"results directory {self.path} holds runs made on other data "
                f"(data checksum {bound[:12]}..., this store{' ' + source if source else ''} "
                f"has {checksum[:12]}...): use another --out directory"
            )

    # ------------------------------------------------------------------ writing
    def prepare(self) -> int:
        """Create ``runs/`` and remove temporary files a killed sweep left; returns how many."""
        self.runs_dir.mkdir(parents=True, exist_ok=True)
        stale = [p for p in self.runs_dir.glob(".*.tmp")]
        for p in stale:
            p.unlink(missing_ok=True)
        if stale:
            logger.info("removed %d temporary files left by an interrupted sweep", len(stale))
        return len(stale)

    def write_run(self, record: RunRecord) -> Path:
        """Write one run atomically as ``runs/<run_key>.json``."""
        return atomic_write_text(self.runs_dir / f"{record.run_key}.json", record.to_json())

    def write_manifest(self, manifest: Mapping[str, Any]) -> Path:
        text = json.dumps(manifest, indent=1, sort_keys=True, allow_nan=False)
        return atomic_write_text(self.path / MANIFEST_FILE, text + "\n")

    def update_manifest(self, updates: Mapping[str, Any]) -> dict[str, Any]:
        """Merge ``updates`` into the manifest (``protocols`` and ``sweeps`` accumulate)."""
        manifest = self.manifest() or {"created": now()}
        for key, value in updates.items():
            if key == "protocols":
                manifest.setdefault("protocols", {}).update(value)
            elif key == "sweeps":
                manifest.setdefault("sweeps", []).extend(value)
            else:
                manifest[key] = value
        manifest["updated"] = now()
        self.write_manifest(manifest)
        return manifest

    # ------------------------------------------------------------------ consolidation
    def consolidate(self, prune: bool = False) -> tuple[pd.DataFrame, pd.DataFrame]:
        """Rewrite ``runs.parquet`` and ``trajectories.parquet`` from every finished run.

        Run files win over rows already in the tables (same key). With ``prune`` the run files
        are deleted once both tables are in place (the tables then hold them). Returns both.
        """
        files = self.run_files()
        run_rows: list[dict[str, Any]] = []
        traj_cols: dict[str, list[Any]] = {c: [] for c in TRAJECTORY_COLUMNS}
        for key in sorted(files):
            record = self.read_run(key)
            run_rows.extend(record.rows)
            _append_trajectory(traj_cols, record)
        runs = _typed(run_rows, RUN_COLUMNS)
        traj = _typed(traj_cols, TRAJECTORY_COLUMNS)
        old_runs, old_traj = self._existing_tables()
        if old_runs is not None and old_traj is not None:
            keep_runs = old_runs[~old_runs["run_key"].isin(files)]
            keep_traj = old_traj[~old_traj["run_key"].isin(files)]
            runs = pd.concat([keep_runs, runs], ignore_index=True) if len(keep_runs) else runs
            traj = pd.concat([keep_traj, traj], ignore_index=True) if len(keep_traj) else traj
        runs = runs.sort_values(["method", "config", "dataset", "eval_dataset", "seed", "run_key"])
        traj = traj.sort_values(["run_key", "eval_dataset", "step"])
        runs, traj = runs.reset_index(drop=True), traj.reset_index(drop=True)
        self.path.mkdir(parents=True, exist_ok=True)
        _atomic(self.path / RUNS_FILE, lambda tmp: runs.to_parquet(tmp, index=False))
        _atomic(self.path / TRAJECTORIES_FILE, lambda tmp: traj.to_parquet(tmp, index=False))
        logger.info("consolidated %d run rows, %d trajectory rows", len(runs), len(traj))
        if prune:
            for path in files.values():
                path.unlink(missing_ok=True)
            if self.runs_dir.is_dir() and not any(self.runs_dir.iterdir()):
                self.runs_dir.rmdir()
        return runs, traj

    def _existing_tables(self) -> tuple[pd.DataFrame | None, pd.DataFrame | None]:
        runs_file, traj_file = self.path / RUNS_FILE, self.path / TRAJECTORIES_FILE
        if not (runs_file.is_file() and traj_file.is_file()):
            return None, None
        return (
            pd.read_parquet(runs_file).astype(RUN_COLUMNS),
            pd.read_parquet(traj_file).astype(TRAJECTORY_COLUMNS),
        )

    def load(self) -> tuple[pd.DataFrame, pd.DataFrame]:
        """The run and trajectory tables, consolidating first when run files exist."""
        if self.run_files():
            return self.consolidate()
        runs, traj = self._existing_tables()
        if runs is None or traj is None:
            raise ConfigError(
                f"{self.path} holds no results (no {RUNS_DIR}/ files and no {RUNS_FILE})"
            )
        return runs, traj


def _append_trajectory(cols: dict[str, list[Any]], record: RunRecord) -> None:
    if not record.rows:
        return
    n = len(record.trajectory.get("step", []))
    head = record.rows[0]
    for name in TRAJECTORY_COLUMNS:
        if name in TRAJECTORY_VARYING:
            cols[name].extend(record.trajectory[name])
        else:
            cols[name].extend([head[name]] * n)


def now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def git_commit() -> dict[str, Any]:
    """Commit hash and dirty flag of the checkout holding this package, or nulls."""
    root = Path(__file__).resolve().parents[1]
    try:
        head = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=10
        )
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=root, capture_output=True, text=True, timeout=10,
        )  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return {"commit": None, "dirty": None}
    if head.returncode != 0:
        return {"commit": None, "dirty": None}
    return {
        "commit": head.stdout.strip(),
        "dirty": bool(dirty.stdout.strip()) if dirty.returncode == 0 else None,
    }


def package_versions(names: Iterable[str] = _PACKAGES) -> dict[str, str | None]:
    """Installed version of each package (None when absent)."""
    out: dict[str, str | None] = {}
    for name in names:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def machine_info() -> dict[str, Any]:
    """Platform, Python and CPU count of the machine that ran the sweep."""
    return {
        "platform": platform.platform(),
        "python": platform.python_version(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "device": "cpu",
    }


# --------------------------------------------------------------------------- building records
@dataclass(frozen=True, eq=False)
class ReportTable:
    """What a chosen architecture is reported with, for one (data, report hp, eval task).

    Arrays are ``(n_archs,)`` float64, NaN where the store lacks the value: ``test`` and
    ``valid`` accuracy (%, seed mean), ``rank`` (1 = best test accuracy; ties share the best
    rank) and ``percentile`` (share of architectures, in %, whose test accuracy is at most
    this one's: 100 for the best). ``best`` is the highest test accuracy.
    """

    test: npt.NDArray[np.float64]
    valid: npt.NDArray[np.float64]
    rank: npt.NDArray[np.float64]
    percentile: npt.NDArray[np.float64]
    best: float


_REPORTS: weakref.WeakKeyDictionary[Store, dict[tuple[str, str], ReportTable]] = (
    weakref.WeakKeyDictionary()
)


def report_table(store: Store, hp: str, task: str) -> ReportTable:
    """The :class:`ReportTable` of ``task`` at schedule ``hp`` (computed once per store)."""
    cached = _REPORTS.setdefault(store, {})
    if (hp, task) not in cached:
        test = store.metric_all(*names.resolve(task, "test"), hp, "accuracy", "mean").astype(
            np.float64
        )
        dataset, split = names.resolve(task, "valid")
        block = store.block(dataset, hp)
        valid = (
            store.metric_all(dataset, split, hp, "accuracy", "mean").astype(np.float64)
            if split in block.splits
            else np.full(test.shape, np.nan)
        )
        present = np.sort(test[~np.isnan(test)])
        if not present.size:
            raise ConfigError(f"store {store.path.name} has no test accuracy for {task} @ hp {hp}")
        at_most = np.searchsorted(present, test, side="right").astype(np.float64)
        rank = np.where(np.isnan(test), np.nan, 1 + present.size - at_most)
        percentile = np.where(np.isnan(test), np.nan, 100.0 * at_most / present.size)
        cached[(hp, task)] = ReportTable(test, valid, rank, percentile, float(present[-1]))
    return cached[(hp, task)]


def _num(values: npt.NDArray[np.float64], index: int) -> float | None:
    value = float(values[index])
    return None if math.isnan(value) else value


def _changes(points: list[Any]) -> list[Any]:
    """Trajectory points where the incumbent (or its best valid) changed, plus the last."""
    kept = [p for i, p in enumerate(points) if i == 0 or p[2:4] != points[i - 1][2:4]]
    if points and kept[-1] is not points[-1]:
        kept.append(points[-1])
    return kept


def make_record(
    spec: RunSpec,
    outcome: SearchOutcome | None,
    wall_seconds: float | None,
    reports: Mapping[str, ReportTable],
    error: str | None,
) -> RunRecord:
    """The record of one run: a row per eval task and the compressed trajectory.

    ``outcome`` None means the run failed with ``error`` (status ``failed``, results null).
    """
    base = dict.fromkeys(RUN_COLUMNS)
    base.update(
        run_key=spec.key, method=spec.method, config=spec.config, space=spec.space,
        dataset=spec.task, protocol=spec.protocol, seed=spec.seed, budget=spec.budget,
        wall_seconds=wall_seconds, synthetic=spec.synthetic, data_checksum=spec.data_checksum,
        rng_entropy=json.dumps(spec.entropy), status="ok" if outcome is not None else "failed",
        error=error,
    )  # fmt: skip
    traj: dict[str, list[Any]] = {c: [] for c in TRAJECTORY_VARYING}
    if outcome is None:
        return RunRecord(
            spec.key, tuple({**base, "eval_dataset": e} for e in spec.eval_tasks), traj
        )
    arch = outcome.arch
    rows = []
    points = _changes(outcome.trajectory)
    for task in spec.eval_tasks:
        rep = reports[task]
        test = _num(rep.test, arch)
        rank = _num(rep.rank, arch)
        rows.append({
            **base, "eval_dataset": task, "arch_index": arch,
            "arch": get_space(spec.space).index_to_str(arch), "valid_acc": _num(rep.valid, arch),
            "test_acc": test, "regret": None if test is None else rep.best - test,
            "rank": None if rank is None else int(rank), "percentile": _num(rep.percentile, arch),
            "sim_seconds": outcome.spent, "queries": outcome.queries,
            "distinct_archs": outcome.distinct_archs,
        })  # fmt: skip
        for step, spent, incumbent, inc_valid in points:
            inc_test = _num(rep.test, incumbent)
            traj["eval_dataset"].append(task)
            traj["step"].append(step)
            traj["sim_seconds"].append(spent)
            traj["incumbent_index"].append(incumbent)
            traj["incumbent_valid"].append(inc_valid)
            traj["incumbent_test"].append(inc_test)
            traj["regret"].append(None if inc_test is None else rep.best - inc_test)
    return RunRecord(spec.key, tuple(rows), traj)


def sweep_manifest(
    store: Store, cards: Mapping[str, ProtocolCard], budgets: Mapping[str, float]
) -> dict[str, Any]:
    """Manifest entries of a sweep: code, packages, machine, data and protocol cards."""
    return {
        "git": git_commit(),
        "packages": package_versions(),
        "machine": machine_info(),
        "data": {
            "checksum": store.checksum, "store": store.path.name, "source": store.source,
            "synthetic": store.synthetic, "space": store.space_name,
            "archs_present": store.n_present, "created": store.manifest.get("created"),
        },
        "synthetic": store.synthetic,
        "protocols": {
            label: {**card.to_dict(), **({"budget_overrides": dict(budgets)} if budgets else {})}
            for label, card in cards.items()
        },
    }  # fmt: skip
