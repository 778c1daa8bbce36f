"""Atomic writes respect the umask: every results file is as readable as an ordinary file."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from harness import fileio
from harness.bench.store import Store
from harness.report import write_report
from harness.results import ResultsDir
from harness.runner import load_grid, run_sweep


@pytest.fixture
def umask() -> Iterator[None]:
    """Restore the process umask after the test (it is process-wide state)."""
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.usefixtures("umask")
@pytest.mark.parametrize(("mask", "expected"), [(0o022, 0o644), (0o027, 0o640), (0o077, 0o600)])
def test_atomic_writes_follow_the_umask(tmp_path: Path, mask: int, expected: int) -> None:
    os.umask(mask)
    text = fileio.atomic_write_text(tmp_path / "a" / "x.md", "hello")
    data = fileio.atomic_write_bytes(tmp_path / "y.bin", b"\x00")
    made = fileio.atomic_write(
        tmp_path / "z.parquet", lambda p: pd.DataFrame({"a": [1]}).to_parquet(p)
    )
    assert [mode(p) for p in (text, data, made)] == [expected] * 3
    assert text.read_text() == "hello" and pd.read_parquet(made)["a"].tolist() == [1]
    assert not list(tmp_path.glob(".*.tmp"))  # no temporary file left
    folder = fileio.temp_dir(tmp_path, ".t.")
    assert folder.is_dir() and mode(folder) == 0o777 & ~mask


@pytest.mark.usefixtures("umask")
def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path: Path) -> None:
    target = fileio.atomic_write_text(tmp_path / "x.txt", "old")

    def broken(tmp: Path) -> None:
        tmp.write_text("half")
        raise RuntimeError("killed")

    with pytest.raises(RuntimeError):
        fileio.atomic_write(target, broken)
    assert target.read_text() == "old" and sorted(tmp_path.iterdir()) == [target]


@pytest.mark.usefixtures("umask")
def test_every_results_file_is_readable_by_others(tiny_store: Store, tmp_path: Path) -> None:
    """Run files, tables, the manifest and the report (md, tex, png) get mode 0644 under the
    usual umask 0022 (they were 0600: mkstemp's mode survived the rename)."""
    os.umask(0o022)
    out = tmp_path / "res"
    grid = load_grid(methods="rs", tasks="cifar10", seeds="0-1", protocols="nats-tss", budget=3000)
    run_sweep(grid, out, store=tiny_store, progress=False)
    runs, traj = ResultsDir(out).load()
    write_report(runs, traj, out, np.random.default_rng(0), n_boot=20)
    files = [p for p in out.rglob("*") if p.is_file()]
    suffixes = {p.suffix for p in files}
    assert {".json", ".parquet", ".md", ".tex", ".png"} <= suffixes
    assert {p.name: oct(mode(p)) for p in files} == {p.name: oct(0o644) for p in files}
