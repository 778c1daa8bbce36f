"""Run records: JSON round trip, atomic writes, consolidation, binding, report tables, manifest."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pandas as pd
import pytest

from harness import results
from harness.errors import ArchiveError, ConfigError
from harness.protocol import SearchOutcome, TrajectoryPoint, get_protocol
from harness.records import ReportTable, make_record
from harness.results import (
    RUN_COLUMNS,
    TRAJECTORY_COLUMNS,
    ResultsDir,
    RunRecord,
)
from harness.runner import RunSpec


def spec(
    seed: int = 0, eval_tasks: tuple[str, ...] = ("cifar10",), checksum: str = "c" * 64
) -> RunSpec:
    return RunSpec(
        method="rea",
        overrides="{}",
        config='{"population_size":10,"tournament_size":3}',
        space="tss",
        task="cifar10",
        protocol="nats-tss@1",
        protocol_name="nats-tss",
        seed=seed,
        budget=20000.0,
        eval_tasks=eval_tasks,
        data_checksum=checksum,
        synthetic=True,
    )


def table(test: list[float]) -> ReportTable:
    """A report table over the first len(test) architectures (hand-made ranks)."""
    t = np.array(test, dtype=np.float64)
    present = np.sort(t[~np.isnan(t)])
    at_most = np.searchsorted(present, t, side="right")
    rank = np.where(np.isnan(t), np.nan, 1 + present.size - at_most)
    pct = np.where(np.isnan(t), np.nan, 100.0 * at_most / present.size)
    return ReportTable(t, t - 1.0, rank, pct, float(present[-1]))


def outcome(points: list[tuple[int, float, int, float]], arch: int) -> SearchOutcome:
    traj = [TrajectoryPoint(*p) for p in points]
    return SearchOutcome(arch, traj, len(traj), traj[-1][1], 3, traj[-1][3])


POINTS = [
    (1, 100.0, 2, 50.0),
    (2, 210.0, 2, 50.0),
    (3, 320.0, 1, 60.0),
    (4, 430.0, 1, 60.0),
    (5, 540.0, 1, 61.0),
    (6, 650.0, 1, 61.0),
]


# --------------------------------------------------------------------------- records
def test_make_record_rows_and_compressed_trajectory() -> None:
    rep = table([90.0, 93.0, 91.0, float("nan")])
    record = make_record(spec(), outcome(POINTS, 1), 0.25, {"cifar10": rep}, None)
    (row,) = record.rows
    assert set(row) == set(RUN_COLUMNS)
    assert (row["arch_index"], row["test_acc"], row["regret"], row["rank"]) == (1, 93.0, 0.0, 1)
    assert row["percentile"] == 100.0 and row["valid_acc"] == 92.0 and row["status"] == "ok"
    assert row["device_seconds"] is None and row["error"] is None
    assert json.loads(row["rng_entropy"])[0] == 0
    # steps where the incumbent (or its best valid) changed, plus the last step
    assert record.trajectory["step"] == [1, 3, 5, 6]
    assert record.trajectory["incumbent_test"] == [91.0, 93.0, 93.0, 93.0]
    assert record.trajectory["regret"] == [2.0, 0.0, 0.0, 0.0]


def test_rank_and_percentile_with_ties() -> None:
    rep = table([80.0, 90.0, 90.0, 70.0, float("nan")])
    assert rep.rank[:4].tolist() == [3, 1, 1, 4] and math.isnan(rep.rank[4])
    assert rep.percentile[:4].tolist() == [50.0, 100.0, 100.0, 25.0]
    record = make_record(spec(), outcome(POINTS[:1], 4), 0.1, {"cifar10": rep}, None)
    row = record.rows[0]
    assert row["test_acc"] is None and row["regret"] is None and row["rank"] is None


def test_failed_run_record_is_null_not_sentinel() -> None:
    record = make_record(spec(eval_tasks=("cifar10", "cifar100")), None, None, {}, "ValueError: x")
    assert [r["eval_dataset"] for r in record.rows] == ["cifar10", "cifar100"]
    for row in record.rows:
        assert row["status"] == "failed" and row["error"] == "ValueError: x"
        assert row["test_acc"] is None and row["arch_index"] is None and row["queries"] is None
    assert all(v == [] for v in record.trajectory.values())


def test_json_round_trip_and_canonical_text() -> None:
    rep = table([90.0, 93.0, 91.0])
    record = make_record(spec(), outcome(POINTS, 1), 0.5, {"cifar10": rep}, None)
    text = record.to_json()
    again = RunRecord.from_json(text)
    assert again.to_json() == text and again.rows[0]["test_acc"] == 93.0
    nan_record = RunRecord("k", ({"x": float("nan"), "y": np.float32(1.5)},), {"step": []})
    assert json.loads(nan_record.to_json())["rows"][0] == {"x": None, "y": 1.5}
    for bad in ["", "{", '{"format": 99}', '{"format": 1, "rows": []}']:
        with pytest.raises(ArchiveError, match="damaged"):
            RunRecord.from_json(bad)


# --------------------------------------------------------------------------- atomic writes
def test_atomic_write_keeps_old_file_on_failure(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "a.json"
    results.atomic_write_text(target, "old")

    def boom(src: Any, dst: Any) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(results.os, "replace", boom)
    with pytest.raises(OSError, match="disk full"):
        results.atomic_write_text(target, "new")
    assert target.read_text() == "old" and sorted(os.listdir(tmp_path)) == ["a.json"]


def test_prepare_removes_stale_temporaries(tmp_path: Path) -> None:
    rd = ResultsDir(tmp_path)
    rd.prepare()
    (rd.runs_dir / ".abc.json.x1.tmp").write_text("{torn")
    rd.write_run(
        make_record(spec(), outcome(POINTS, 1), 0.1, {"cifar10": table([1.0, 2.0, 3.0])}, None)
    )
    assert list(rd.run_files()) == [spec().key]  # temporaries are not runs
    assert rd.prepare() == 1 and len(os.listdir(rd.runs_dir)) == 1


# --------------------------------------------------------------------------- consolidation
def _write(rd: ResultsDir, seeds: range, eval_tasks: tuple[str, ...] = ("cifar10",)) -> None:
    rep = table([90.0, 93.0, 91.0])
    for s in seeds:
        rd.write_run(
            make_record(
                spec(s, eval_tasks), outcome(POINTS, 1), 0.1, {e: rep for e in eval_tasks}, None
            )
        )


def test_consolidate_schema_and_merge_after_pruning(tmp_path: Path) -> None:
    rd = ResultsDir(tmp_path)
    _write(rd, range(3), ("cifar10", "cifar100"))
    rd.write_run(make_record(spec(7), None, None, {}, "RuntimeError: bug"))
    runs, traj = rd.consolidate()
    assert list(runs.columns) == list(RUN_COLUMNS) and list(traj.columns) == list(
        TRAJECTORY_COLUMNS
    )
    assert dict(runs.dtypes.astype(str)) == RUN_COLUMNS
    assert len(runs) == 7 and len(traj) == 3 * 2 * 4
    failed = runs[runs["status"] == "failed"]
    assert failed["test_acc"].isna().all() and failed["arch_index"].isna().all()
    assert (traj["method"] == "rea").all() and set(traj["seed"]) == {0, 1, 2}
    on_disk = pd.read_parquet(tmp_path / results.RUNS_FILE)
    pd.testing.assert_frame_equal(on_disk.astype(RUN_COLUMNS), runs)
    for path in rd.run_files().values():  # prune the run files: the tables keep them
        path.unlink()
    _write(rd, range(10, 12))
    ok = set(runs.loc[runs["status"] == "ok", "run_key"])
    assert rd.finished_keys() == ok | {spec(10).key, spec(11).key}  # a failed run is not
    assert rd.failed_keys() == {spec(7).key}
    runs2, traj2 = rd.load()
    assert len(runs2) == 9 and set(runs2["run_key"]) == rd.finished_keys() | rd.failed_keys()
    assert len(traj2) == len(traj) + 2 * 4


def test_tables_of_an_older_version_load_with_the_new_columns_missing(tmp_path: Path) -> None:
    rd = ResultsDir(tmp_path)
    _write(rd, range(2))
    runs, _ = rd.consolidate(prune=True)
    older = runs.drop(columns=["paired_streams"])
    older.to_parquet(tmp_path / results.RUNS_FILE, index=False)
    runs2, _ = rd.load()
    assert list(runs2.columns) == list(RUN_COLUMNS) and runs2["paired_streams"].isna().all()
    pd.testing.assert_frame_equal(runs2.drop(columns="paired_streams"), older.astype(
        {k: v for k, v in RUN_COLUMNS.items() if k != "paired_streams"}
    ))  # fmt: skip


def test_load_without_results_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="holds no results"):
        ResultsDir(tmp_path).load()


# --------------------------------------------------------------------------- binding and manifest
def test_binding_from_manifest_or_run_files(tmp_path: Path) -> None:
    rd = ResultsDir(tmp_path)
    rd.check_binding("a" * 64)  # empty directory: anything goes
    _write(rd, range(1))
    rd.check_binding("c" * 64)
    with pytest.raises(ConfigError, match="other data"):
        rd.check_binding("a" * 64)
    rd.update_manifest({"data": {"checksum": "b" * 64}})
    with pytest.raises(ConfigError, match="other data"):
        rd.check_binding("c" * 64)


def test_manifest_accumulates_and_records_provenance(tmp_path: Path) -> None:
    store = SimpleNamespace(
        checksum="d" * 64,
        path=Path("stores/tss-x"),
        source="tidy",
        synthetic=True,
        space_name="tss",
        n_present=15625,
        manifest={"created": "2024-01-01T00:00:00Z"},
    )
    card = get_protocol("nats-tss")
    rd = ResultsDir(tmp_path)
    first = results.sweep_manifest(store, {card.key: card}, {})  # type: ignore[arg-type]
    rd.update_manifest({**first, "sweeps": [{"n": 1}]})
    rd.update_manifest({"sweeps": [{"n": 2}], "protocols": {"other@1": {"name": "other"}}})
    manifest = rd.manifest()
    assert manifest is not None
    assert [s["n"] for s in manifest["sweeps"]] == [1, 2]
    assert set(manifest["protocols"]) == {"nats-tss@1", "other@1"}
    assert manifest["protocols"]["nats-tss@1"]["budgets"]["cifar10"] == 20000.0
    assert manifest["data"] == {
        "checksum": "d" * 64,
        "store": "tss-x",
        "source": "tidy",
        "synthetic": True,
        "space": "tss",
        "archs_present": 15625,
        "created": "2024-01-01T00:00:00Z",
    }
    assert manifest["synthetic"] is True and manifest["packages"]["numpy"] == np.__version__
    assert set(manifest["git"]) == {"commit", "dirty"} and manifest["machine"]["cpu_count"] >= 1
    assert manifest["created"] <= manifest["updated"]
