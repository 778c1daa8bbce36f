"""``harness supernet run`` and ``harness supernet report`` end to end on the tiny CPU card."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import torch

from harness.bench.store import Store
from harness.cli import main

pytestmark = [
    pytest.mark.filterwarnings("ignore::UserWarning"),
    pytest.mark.usefixtures("one_torch_thread"),
]


def _run_args(store: Store, out: Path, *extra: str) -> list[str]:
    args = {
        "--methods": "darts_v1,gaea", "--card": "tiny-cpu", "--tasks": "cifar10",
        "--seeds": "0-1", "--selections": "magnitude,perturbation", "--data": "synthetic",
        "--store": str(store.path), "--out": str(out),
    }  # fmt: skip
    for flag, value in zip(extra[::2], extra[1::2], strict=True):
        args[flag] = value
    return ["supernet", "run", *[x for kv in args.items() for x in kv], "--no-progress"]


@pytest.fixture(scope="module")
def swept(tiny_store: Store, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished sweep: 2 methods x 2 seeds x 2 selection rules."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    out = tmp_path_factory.mktemp("supernet") / "res"
    assert main(_run_args(tiny_store, out)) == 0
    torch.set_num_threads(before)
    return out


def test_run_writes_tables_and_resume_skips(
    swept: Path, tiny_store: Store, capsys: pytest.CaptureFixture[str]
) -> None:
    runs = pd.read_parquet(swept / "runs.parquet")
    traj = pd.read_parquet(swept / "supernet_trajectories.parquet")
    assert len(runs) == 8 and runs["run_key"].nunique() == 4  # one row per run and rule
    assert set(runs["selection"]) == {"magnitude", "perturbation"}
    assert set(runs["method"]) == {"darts_v1", "gaea"} and set(runs["seed"]) == {0, 1}
    assert (runs["status"] == "ok").all() and runs["synthetic"].all()
    assert runs["test_acc"].notna().all() and runs["protocol"].eq("tiny-cpu@4").all()
    assert runs["data_checksum"].eq(tiny_store.checksum).all()
    assert runs["kendall_tau"].between(-1, 1).all() and runs["epochs"].eq(2).all()
    assert len(traj) == 4 * 2 and set(traj["epoch"]) == {0, 1}
    manifest = json.loads((swept / "manifest.json").read_text())
    assert manifest["kind"] == "supernet" and manifest["n_runs"] == 4
    assert manifest["data"]["images"] == "synthetic" and manifest["synthetic"] is True
    files = {p: p.stat().st_mtime_ns for p in (swept / "runs").glob("*.json")}
    capsys.readouterr()
    assert main(_run_args(tiny_store, swept)) == 0
    printed = capsys.readouterr().out
    assert "4 cells planned (tiny-cpu@4): 4 already finished, 0 run now" in printed
    assert "SYNTHETIC" in printed
    assert {p: p.stat().st_mtime_ns for p in (swept / "runs").glob("*.json")} == files


def test_report_writes_leaderboard_selection_tests_and_figures(
    swept: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rep = tmp_path / "rep"
    assert main(["supernet", "report", str(swept), "--out", str(rep), "--n-boot", "50"]) == 0
    printed = capsys.readouterr().out.split()
    names = {"leaderboard.md", "leaderboard.tex", "selection.md", "collapse_cifar10.png",
             "kendall_tau.png"}  # fmt: skip
    assert names <= {p.name for p in rep.iterdir()}
    assert {str(rep / n) for n in names} <= set(printed)
    board = (rep / "leaderboard.md").read_text()
    for label in ("darts_v1+magnitude", "darts_v1+perturbation", "gaea+perturbation"):
        assert label in board
    assert "SYNTHETIC" in board
    selection = (rep / "selection.md").read_text()
    assert "perturbation (a) vs magnitude (b)" in selection and "Wilcoxon p" in selection
    paired, cost = selection.split("## Cost")
    table = [line for line in paired.splitlines() if line.startswith("| darts_v1 |")]
    assert len(table) == 1 and table[0].split("|")[5].strip() == "2"  # n = 2 paired seeds
    rules = [line.split("|")[3].strip() for line in cost.splitlines() if "| darts_v1 |" in line]
    assert rules == ["magnitude", "perturbation"]
    assert (rep / "collapse_cifar10.png").read_bytes()[:4] == b"\x89PNG"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (["--methods", "darts_v1,rea"], "rea is a black-box method: run it with `harness run`"),
        (["--methods", "darts-v1"], "did you mean 'darts_v1'"),
        (["--card", "tiny"], "did you mean 'tiny-cpu'"),
        (["--tasks", "cifar1000"], "search task"),
        (["--card", "cpu-cifar10", "--tasks", "cifar100"], "search task"),
        (
            ["--data", "cifar100", "--tasks", "cifar100", "--data-root", "/nowhere/cifar.python"],
            "cifar100 data not found: looked for cifar-100-python/",
        ),
        (["--data", "ImageNet16-120"], "--data ImageNet16-120 searches ImageNet16-120"),
        (["--selections", "magnitude,argmax"], "selection rule"),
        (["--data", "png"], "data source"),
        (["--seeds", "3-1"], "empty seed range"),
        (["--device", "tpu"], "device"),
        (["--max-steps", "0"], "expected an int >= 1"),
    ],
)
def test_bad_input_is_one_line_exit_2_and_writes_nothing(
    tiny_store: Store, tmp_path: Path, capsys: pytest.CaptureFixture[str], change: list[str],
    message: str,
) -> None:  # fmt: skip
    out = tmp_path / "res"
    assert _exit_code(_run_args(tiny_store, out, *change)) == 2
    err = capsys.readouterr().err
    assert message in err and err.startswith("error: ") and err.count("\n") == 1
    assert not out.exists()


def _exit_code(argv: list[str]) -> int:
    """``main``'s return value, or the code of the SystemExit argparse raises on bad flags."""
    try:
        return main(argv)
    except SystemExit as stop:
        return int(stop.code or 0)


def test_report_refuses_missing_and_black_box_dirs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["supernet", "report", str(tmp_path / "missing")]) == 2
    assert "does not exist" in capsys.readouterr().err
    (tmp_path / "bb").mkdir()
    (tmp_path / "bb" / "manifest.json").write_text('{"data": {"checksum": "x"}}')
    assert main(["supernet", "report", str(tmp_path / "bb")]) == 2
    assert "use `harness report`" in capsys.readouterr().err
    assert sorted(p.name for p in (tmp_path / "bb").iterdir()) == ["manifest.json"]


def test_cli_offers_every_card() -> None:
    from harness.cli.supernet import CARDS
    from harness.supernet.cards import card_names

    assert sorted(CARDS) == sorted(card_names())


def test_run_keeps_cell_files_in_the_workdir(tiny_store: Store, tmp_path: Path) -> None:
    out, scratch = tmp_path / "res", tmp_path / "scratch"
    args = _run_args(tiny_store, out, "--methods", "gaea", "--seeds", "0")
    assert main([*args, "--workdir", str(scratch)]) == 0
    key = pd.read_parquet(out / "runs.parquet")["run_key"].iloc[0]
    logs = list((scratch / key).glob("*.progress.log"))
    assert len(logs) == 1 and "cell done" in logs[0].read_text()
    assert not (out / "supernets").exists()


def test_size_space_sweep_and_report_with_and_without_ground_truth(
    tiny_sss_store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With a store: leaderboard, paired tests, chosen architectures, Pareto front. With no
    store for the space: the chosen architectures with their costs and the reason the true
    accuracies are missing, the Pareto figure of supernet estimates, and no leaderboard."""
    args = ["--methods", "tas,dnal", "--card", "tiny-cpu-sss", "--seeds", "0",
            "--selections", "magnitude,topk"]  # fmt: skip
    scored = tmp_path / "scored"
    assert main(_run_args(tiny_sss_store, scored, *args)) == 0
    report = ["supernet", "report", str(scored), "--n-boot", "20"]
    assert main([*report, "--store", str(tiny_sss_store.path)]) == 0
    names = {p.name for p in scored.iterdir()}
    assert {"leaderboard.md", "selection.md", "pareto_cifar10.png", "kendall_tau.png"} <= names
    chosen = (scored / "selection.md").read_text().split("## Chosen architectures")[1]
    rows = [line for line in chosen.splitlines() if line.startswith("| cifar10 |")]
    assert len(rows) == 4 and all(line.count(":") == 4 for line in rows)  # sss strings
    assert "Test accuracy missing" not in chosen

    monkeypatch.setenv("HARNESS_HOME", str(tmp_path / "empty-home"))
    blind = tmp_path / "blind"
    run = ["supernet", "run", *args, "--data", "synthetic", "--out", str(blind), "--no-progress"]
    assert main(run) == 0
    assert main(["supernet", "report", str(blind), "--n-boot", "20"]) == 0
    names = {p.name for p in blind.iterdir()}
    assert "pareto_cifar10.png" in names and "leaderboard.md" not in names
    assert "kendall_tau.png" not in names and "collapse_cifar10.png" not in names
    selection = (blind / "selection.md").read_text()
    assert "Test accuracy missing:** no ground truth: no store for sss imported" in selection
