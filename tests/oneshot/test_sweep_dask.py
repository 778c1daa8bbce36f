"""Supernet sweeps on a real Dask cluster: a local scheduler with two worker processes, one of
them killed in the middle of a cell, which then runs again on a worker and resumes from its
checkpoint."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import pandas as pd
import pytest

from harness.bench.store import Store
from harness.oneshot import sweep

distributed = pytest.importorskip("distributed")
pytestmark = pytest.mark.slow


def _grid() -> sweep.SupernetGrid:
    # cpu-cifar10 on synthetic images: 5 epochs of 2 steps, long enough to kill mid-cell
    return sweep.load_supernet_grid("darts_v1,gaea", "cpu-cifar10", "0", "cifar10",
                                    "magnitude", data="synthetic", max_steps=2)  # fmt: skip


def test_a_worker_killed_mid_cell_resumes_the_cell_elsewhere(
    tiny_store: Store, tmp_path: Path
) -> None:
    serial = sweep.run_supernet_sweep(_grid(), tmp_path / "serial", store=tiny_store,
                                      progress=False)  # fmt: skip
    assert (serial.ran, serial.failed) == (2, 0)
    workdir = tmp_path / "cells"
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                       dashboard_address=None)  # fmt: skip
    client = distributed.Client(cluster)
    summary: list[sweep.runner.SweepSummary] = []
    worker = threading.Thread(target=lambda: summary.append(sweep.run_supernet_sweep(
        _grid(), tmp_path / "dask", store=tiny_store, progress=False, backend="dask",
        scheduler=cluster.scheduler_address, workdir=workdir)))  # fmt: skip
    try:
        worker.start()
        deadline = time.monotonic() + 240
        killed = None
        while killed is None:  # wait for a cell's first saved epoch, then kill its worker
            assert time.monotonic() < deadline, "no cell reached its second epoch"
            logs = [p for p in workdir.glob("*/*.progress.log") if "epoch 2/5" in p.read_text()]
            busy = {w: ts for w, ts in client.processing().items() if ts}
            if logs and busy:
                pids = client.run(os.getpid)
                victim = next(iter(busy))
                os.kill(pids[victim], signal.SIGKILL)
                killed = victim
            time.sleep(0.2)
        worker.join(timeout=300)
        assert not worker.is_alive(), "the sweep did not finish"
    finally:
        client.close()
        cluster.close()
    assert summary and (summary[0].ran, summary[0].failed) == (2, 0)
    resumed = [p for p in workdir.glob("*/*.progress.log") if "resuming search" in p.read_text()]
    assert len(resumed) == 1  # the killed cell picked up its checkpoint on another worker
    mine = pd.read_parquet(tmp_path / "dask" / "runs.parquet").sort_values("run_key")
    theirs = pd.read_parquet(tmp_path / "serial" / "runs.parquet").sort_values("run_key")
    assert list(mine["run_key"]) == list(theirs["run_key"])
    assert list(mine["arch_index"]) == list(theirs["arch_index"])
    assert mine["status"].eq("ok").all() and mine["epochs"].eq(5).all()
    manifest_sweep = pd.read_json(tmp_path / "dask" / "manifest.json", typ="series")["sweeps"][-1]
    assert manifest_sweep["backend"] == "dask"
