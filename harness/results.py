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

:class:`ResultsDir` takes its table schemas from class attributes, so another kind of run
(supernet sweeps, :mod:`harness.oneshot.sweep`) keeps the same conventions with its own
columns. Building a black-box run's record (:func:`~harness.records.report_table`,
:func:`~harness.records.make_record`) lives in :mod:`harness.records`, which imports this
module (never the other way round). The manifest's provenance entries (git commit, packages,
machine) are built in :mod:`harness.provenance` (a lower module), re-exported here.
"""

from __future__ import annotations

import json
import logging
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import pandas as pd

from harness.errors import ArchiveError, ConfigError
from harness.fileio import atomic_write
from harness.fileio import atomic_write_text as atomic_write_text
from harness.provenance import git_commit as git_commit
from harness.provenance import machine_info as machine_info
from harness.provenance import now as now
from harness.provenance import package_versions as package_versions
from harness.provenance import sweep_manifest as sweep_manifest

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
    # True: the seed's runs of every method share the randomness they can (the oracle's
    # noise; a supernet's data order and initial weights), so pairing them by seed is sound
    "paired_streams": "boolean",
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


def _typed(
    records: list[dict[str, Any]] | dict[str, list[Any]], schema: Mapping[str, str]
) -> pd.DataFrame:
    frame = pd.DataFrame(records, columns=list(schema))
    return frame.astype(dict(schema))


class ResultsDir:
    """A results directory: finished-run lookup, atomic run files, consolidation, manifest.

    Subclasses may change the schemas: ``run_columns`` (run table columns -> dtypes),
    ``trajectory_columns`` and ``trajectory_varying`` (see :data:`TRAJECTORY_VARYING`), the
    ``trajectory_file`` name and ``run_order`` (the run table's sort columns).
    """

    run_columns: ClassVar[Mapping[str, str]] = RUN_COLUMNS
    trajectory_columns: ClassVar[Mapping[str, str]] = TRAJECTORY_COLUMNS
    trajectory_varying: ClassVar[tuple[str, ...]] = TRAJECTORY_VARYING
    trajectory_file: ClassVar[str] = TRAJECTORIES_FILE
    trajectory_order: ClassVar[tuple[str, ...]] = ("run_key", "eval_dataset", "step")
    run_order: ClassVar[tuple[str, ...]] = (
        "method", "config", "dataset", "eval_dataset", "seed", "run_key",
    )  # fmt: skip

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

    def run_statuses(self) -> dict[str, bool]:
        """Run key -> whether the run finished (every row ``ok``; False: it failed), over the
        runs consolidated into the table and the run files (which win)."""
        statuses: dict[str, bool] = {}
        table = self.path / RUNS_FILE
        if table.is_file():
            frame = pd.read_parquet(table, columns=["run_key", "status"])
            ok = frame["status"].astype(str).eq("ok").groupby(frame["run_key"].astype(str)).all()
            statuses.update({str(k): bool(v) for k, v in ok.items()})
        for key in self.run_files():
            statuses[key] = all(row.get("status") == "ok" for row in self.read_run(key).rows)
        return statuses

    def finished_keys(self) -> set[str]:
        """Keys of finished runs (failed runs are not finished: a sweep retries them)."""
        return {key for key, ok in self.run_statuses().items() if ok}

    def failed_keys(self) -> set[str]:
        """Keys of runs recorded as failed."""
        return {key for key, ok in self.run_statuses().items() if not ok}

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

    def check_writable(self) -> None:
        """Raise :class:`ConfigError` if this path, or the nearest existing folder above it,
        is a file (a results directory cannot be made there)."""
        for path in (self.path, *self.path.parents):
            if path.exists():
                if not path.is_dir():
                    raise ConfigError(
                        f"cannot write results to {self.path}: {path} is a file, not a "
                        "directory; choose another --out"
                    )
                return

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
        traj_cols: dict[str, list[Any]] = {c: [] for c in self.trajectory_columns}
        for key in sorted(files):
            record = self.read_run(key)
            run_rows.extend(record.rows)
            _append_trajectory(traj_cols, record, self.trajectory_varying)
        runs = _typed(run_rows, self.run_columns)
        traj = _typed(traj_cols, self.trajectory_columns)
        old_runs, old_traj = self._existing_tables()
        if old_runs is not None and old_traj is not None:
            keep_runs = old_runs[~old_runs["run_key"].isin(files)]
            keep_traj = old_traj[~old_traj["run_key"].isin(files)]
            runs = pd.concat([keep_runs, runs], ignore_index=True) if len(keep_runs) else runs
            traj = pd.concat([keep_traj, traj], ignore_index=True) if len(keep_traj) else traj
        runs = runs.sort_values(list(self.run_order), kind="stable")
        traj = traj.sort_values(list(self.trajectory_order), kind="stable")
        runs, traj = runs.reset_index(drop=True), traj.reset_index(drop=True)
        self.path.mkdir(parents=True, exist_ok=True)
        atomic_write(self.path / RUNS_FILE, lambda tmp: runs.to_parquet(tmp, index=False))
        atomic_write(
            self.path / self.trajectory_file, lambda tmp: traj.to_parquet(tmp, index=False)
        )
        logger.info("consolidated %d run rows, %d trajectory rows", len(runs), len(traj))
        if prune:
            for path in files.values():
                path.unlink(missing_ok=True)
            if self.runs_dir.is_dir() and not any(self.runs_dir.iterdir()):
                self.runs_dir.rmdir()
        return runs, traj

    def _existing_tables(self) -> tuple[pd.DataFrame | None, pd.DataFrame | None]:
        runs_file, traj_file = self.path / RUNS_FILE, self.path / self.trajectory_file
        if not (runs_file.is_file() and traj_file.is_file()):
            return None, None
        return (
            _with_columns(pd.read_parquet(runs_file), self.run_columns, runs_file),
            _with_columns(pd.read_parquet(traj_file), self.trajectory_columns, traj_file),
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


def _with_columns(table: pd.DataFrame, columns: Mapping[str, str], source: Path) -> pd.DataFrame:
    """``table`` typed by ``columns``; columns a table written by an older version lacks are
    added empty (missing values: e.g. no ``paired_streams``, so no claim of pairing)."""
    missing = [name for name in columns if name not in table.columns]
    if missing:
        logger.info("%s predates the columns %s: read as missing", source.name, missing)
        table = table.copy()
        for name in missing:
            table[name] = pd.Series(index=table.index, dtype=columns[name])
    return table.astype(dict(columns))


def _append_trajectory(
    cols: dict[str, list[Any]], record: RunRecord, varying: tuple[str, ...]
) -> None:
    if not record.rows:
        return
    n = len(record.trajectory.get(varying[0], [])) if varying else 0
    head = record.rows[0]
    for name in cols:
        if name in varying:
            cols[name].extend(record.trajectory[name])
        else:
            cols[name].extend([head[name]] * n)
