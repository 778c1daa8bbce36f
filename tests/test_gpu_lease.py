"""The GPU lease script's CPU-side pieces: return limits, checkpoint choice, pack/collect, resume
detection and the printed run call (``benchmarks/gpu_lease.sh dry-run`` runs it all end to end
on the CPU; too slow for the suite)."""

from __future__ import annotations

import argparse
import importlib.util
import subprocess
import sys
import time
from pathlib import Path
from types import ModuleType

import pytest
import torch

BENCH = Path(__file__).parents[1] / "benchmarks"


def _load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, BENCH / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def lease() -> ModuleType:
    return _load("gpu_lease")


def _file(path: Path, size: int) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as handle:
        handle.truncate(size)  # sparse: no real bytes written
    return path


def test_check_out_names_depth_count_and_size(lease: ModuleType, tmp_path: Path) -> None:
    out = tmp_path / "out"
    _file(out / "lease-results.tar.gz", 100)
    _file(out / "0123abcd" / "k.search.pt", lease.RETURN_FILE)
    assert lease.check_out(out) == []
    _file(out / "a" / "b" / "c" / "deep.json", 1)
    _file(out / "bad name.json", 1)
    _file(out / "big.pt", lease.RETURN_FILE + 1)
    for i in range(4):
        _file(out / f"f{i}.log", 1)
    problems = " | ".join(lease.check_out(out))
    for expected in ("9 files", "folders down", "bad name.json", "big.pt"):
        assert expected in problems


def test_checkpoints_most_advanced_first_and_search_before_selection(
    lease: ModuleType, tmp_path: Path
) -> None:
    mib = lease.MiB
    files = {"a": ["a.search.pt", "a.select.pt"], "b": ["b.search.pt"], "c": ["c.select.pt"]}
    for key, names in files.items():
        for name in names:
            _file(tmp_path / key / name, 10 * mib)
    cells = [{"run_key": k, "files": v} for k, v in files.items()]  # already in priority order
    chosen, dropped = lease.choose_checkpoints(cells, tmp_path, room=25 * mib)
    assert [p.name for p in chosen] == ["a.search.pt", "a.select.pt"]
    assert [p.name for p in dropped] == ["b.search.pt", "c.select.pt"]
    chosen, _ = lease.choose_checkpoints(cells[1:], tmp_path, room=100 * mib)
    assert [p.name for p in chosen] == ["b.search.pt"]  # a selection without its search: no


def test_resumed_runs_tell_a_resume_from_a_fresh_start(lease: ModuleType, tmp_path: Path) -> None:
    stamp = "2026-01-01 00:00:00"
    head = f"{stamp} cell 0123456789abcdef: darts_v1 on cifar10, seed 0"
    fresh = [head, f"{stamp} epoch 1/5: loss 2.0", f"{stamp} epoch 2/5: loss 1.9"]
    log = tmp_path / "k" / "c.progress.log"
    log.parent.mkdir()
    log.write_text("\n".join([*fresh, f"{stamp} cell done in 3.0 s", *fresh]) + "\n")
    assert lease.resumed_runs(log) == []  # two fresh starts ("cell done" is no new run)
    log.write_text("\n".join([*fresh, head, f"{stamp} epoch 3/5: loss 1.8"]) + "\n")
    assert lease.resumed_runs(log) == ["epoch 3/5: loss 1.8"]
    resumed = f"{stamp} resuming perturbation selection after edge 2/6"
    log.write_text("\n".join([*fresh, head, f"{stamp} search done: 5 epochs", resumed]) + "\n")
    assert lease.resumed_runs(log) == ["resuming perturbation selection after edge 2/6"]


def test_pack_then_collect_restores_the_checkpoints(
    lease: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(lease, "ROOT", tmp_path)
    work, logs, bench, out = (tmp_path / n for n in ("work", "logs", "bench", "out"))
    extra = {"epoch": 2, "method": "darts_v1", "search_config": {"epochs": 5},
             "ledger": {"device_seconds": 1.5}}  # fmt: skip
    torch.save({"extra": extra}, _file(work / "runkey1" / "cell1.search.pt", 0))
    (work / "runkey1" / "cell1.progress.log").write_text("cell started\n")
    logs.mkdir()
    (logs / "stages.tsv").write_text("tests\t0\t12\t120\t\n")
    args = argparse.Namespace(
        out=out, bench_dir=bench, work_dir=work, logs_dir=logs, device="cpu", budget=60,
        started=time.time() - 1, study=[f"tiny-cpu:{tmp_path / 'study'}:darts_v1,gaea:0-1"],
    )  # fmt: skip
    assert lease.pack(args) == 0
    assert lease.check_out(out) == []
    assert (out / "runkey1" / "cell1.search.pt").is_file()
    for stale in work.rglob("*"):
        if stale.is_file():
            stale.unlink()  # as on a fresh machine: only what comes back
    assert lease.collect(out, tmp_path) == 0
    assert torch.load(work / "runkey1" / "cell1.search.pt", weights_only=False)["extra"] == extra
    assert (work / "runkey1" / "cell1.progress.log").read_text() == "cell started\n"
    (out / "runkey1" / "cell1.search.pt").unlink()  # left out on the way back
    assert lease.collect(out, tmp_path) == 0
    assert (work / "runkey1" / "cell1.search.pt").is_file()  # the older copy stays
    ledger = (bench / "gpu_leases.json").read_text()
    assert '"planned": 12' in ledger and "runkey1/cell1.search.pt" in ledger  # 2 x 3 tasks x 2


def test_help_prints_the_device_call(lease: ModuleType) -> None:
    script = BENCH / "gpu_lease.sh"
    assert subprocess.run(["bash", "-n", str(script)], check=False).returncode == 0
    text = subprocess.run(["bash", str(script), "--help"], capture_output=True, text=True,
                          check=True).stdout  # fmt: skip
    assert lease.RUN_CALL["command"] in text
    assert all(path in text for path in lease.RUN_CALL["carry"])
    assert f"timeout_s={lease.RUN_CALL['timeout_s']}" in text
    shell = [line.split("=", 1)[1].strip("'") for line in script.read_text().splitlines()
             if line.startswith("RUN_CALL")]  # fmt: skip
    assert "".join(shell) == lease.run_call()  # the script and the summary print one call
