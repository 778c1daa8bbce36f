"""``harness run``, ``harness report`` and ``harness main`` end to end on a tiny store."""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import pandas as pd
import pytest

from harness import mainjob, runner
from harness.bench.store import Store, open_store
from harness.cli import run as cli_run


def cli(argv: list[str]) -> int:
    from harness.cli import main

    return main(argv)


@pytest.fixture(scope="module")
def tiny(tiny_store: Store) -> Store:
    """The session's tiny tss store (tests/conftest.py)."""
    return tiny_store


def _run_args(store: Store, out: Path, *extra: str) -> list[str]:
    return [
        "run",
        "--methods",
        "rs,rea",
        "--tasks",
        "cifar10",
        "--seeds",
        "0-2",
        "--protocol",
        "nats-tss",
        "--budget",
        "3000",
        "--store",
        str(store.path),
        "--out",
        str(out),
        "--no-progress",
        *extra,
    ]


def test_register_adds_commands_with_handlers() -> None:
    parser = argparse.ArgumentParser()
    cli_run.register(parser.add_subparsers(dest="group"))
    args = parser.parse_args(["run", "--out", "x", "--seeds", "0-1", "--jobs", "-1"])
    assert args.handler is cli_run.run_command and args.jobs >= 1
    assert parser.parse_args(["report", "r"]).handler is cli_run.report_command
    assert parser.parse_args(["main", "--quick"]).handler is cli_run.main_command


def test_run_then_rerun_skips(
    tiny: Store, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "res"
    assert cli(_run_args(tiny, out)) == 0
    printed = capsys.readouterr().out
    assert "6 runs planned: 0 already finished, 6 run now (0 of them retried" in printed
    assert "0 failed" in printed
    assert len(pd.read_parquet(out / "runs.parquet")) == 6
    assert cli(_run_args(tiny, out, "--jobs", "2")) == 0
    assert "6 already finished, 0 run now" in capsys.readouterr().out


def test_run_from_toml(tiny: Store, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "grid.toml"
    config.write_text(
        f'methods = ["rea", {{name = "rea", population_size = 5, tournament_size = 2}}]\n'
        f'tasks = ["cifar100"]\nseeds = "0-1"\nprotocol = "nats-tss"\nbudget = 4000\n'
        f'store = "{tiny.path}"\n'
    )
    assert cli(["run", "--config", str(config), "--out", str(tmp_path / "o"), "--no-progress"]) == 0
    runs = pd.read_parquet(tmp_path / "o" / "runs.parquet")
    sizes = sorted(json.loads(c)["population_size"] for c in runs["config"].unique())
    assert sizes == [5, 10] and len(runs) == 4 and set(runs["dataset"]) == {"cifar100"}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (["--methods", "rs,reaa"], "did you mean 'rea'"),
        (["--tasks", "cifar1000"], "did you mean 'cifar100'"),
        (["--protocol", "nats-sts"], "did you mean 'nats-tss'"),
        (["--seeds", "5-2"], "empty seed range"),
        (["--budget", "0"], "budget"),
        (["--backend", "dusk"], "did you mean 'dask'"),
        (
            ["--methods", "rs,darts_v1"],
            "darts_v1 is a supernet method: run it with `harness supernet run`",
        ),
    ],
)
def test_bad_input_is_one_line_exit_2_and_writes_nothing(
    tiny: Store, tmp_path: Path, capsys: pytest.CaptureFixture[str], change: list[str], message: str
) -> None:
    out = tmp_path / "res"
    argv = _run_args(tiny, out)
    flag = change[0]
    argv = (
        [*argv[: argv.index(flag)], *change, *argv[argv.index(flag) + 2 :]]
        if flag in argv
        else [*argv, *change]
    )
    assert cli(argv) == 2
    err = capsys.readouterr().err
    assert message in err and err.startswith("error: ") and err.count("\n") == 1
    assert not out.exists()


def test_report_writes_leaderboard(
    tiny: Store, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "res"
    assert cli(_run_args(tiny, out)) == 0
    capsys.readouterr()
    assert cli(["report", str(out), "--out", str(tmp_path / "rep"), "--n-boot", "50"]) == 0
    printed = capsys.readouterr().out.split()
    board = (tmp_path / "rep" / "leaderboard.md").read_text()
    assert str(tmp_path / "rep" / "leaderboard.md") in printed
    assert "rea" in board and "random_search" in board
    assert cli(["report", str(tmp_path / "missing")]) == 2


def test_main_quick_on_a_given_synthetic_store(
    tiny: Store, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fake = tmp_path / "tss-fake"
    shutil.copytree(tiny.path, fake)
    manifest = json.loads((fake / "manifest.json").read_text())
    (fake / "manifest.json").write_text(json.dumps({**manifest, "synthetic": True}))
    out = tmp_path / "main"
    argv = [
        "main",
        "--quick",
        "--seeds",
        "0-1",
        "--store",
        str(fake),
        "--out",
        str(out),
        "--jobs",
        "1",
        "--no-progress",
    ]
    assert cli(argv) == 0
    printed = capsys.readouterr().out
    assert "SYNTHETIC" in printed and "24 runs planned" in printed
    runs = pd.read_parquet(out / "runs.parquet")
    assert set(runs["method"]) == set(mainjob.METHODS) and set(runs["dataset"]) == set(
        mainjob.TASKS
    )
    assert runs["synthetic"].all() and json.loads((out / "manifest.json").read_text())["synthetic"]
    assert "SYNTHETIC" in (out / "leaderboard.md").read_text()
    assert not (out / "runs").exists()  # consolidated, then pruned


def test_main_data_order(tiny: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home, shared = tmp_path / "home", tmp_path / "shared"
    monkeypatch.setenv("HARNESS_HOME", str(home))
    monkeypatch.setenv("HARNESS_SHARED_DATA", str(shared))
    made: list[str] = []

    def fake_synthetic(progress: bool) -> Store:
        made.append("synthetic")
        return tiny

    monkeypatch.setattr(mainjob, "_synthetic_store", fake_synthetic)
    # nothing at all: synthetic
    (shared / "nats-tss-public").mkdir(parents=True)
    assert mainjob.choose_data(progress=False)[1] == "synthetic" and made == ["synthetic"]
    # the public table in the shared data dir: imported into $HARNESS_HOME/stores/tss-public
    table = shared / "nats-tss-public" / "table.parquet"
    shutil.copy(tiny.path.parent / f"{tiny.path.name}.parquet", table)
    monkeypatch.setattr(mainjob, "PUBLIC_TABLE", ("nats-tss-public", table.name))
    store, origin = mainjob.choose_data(progress=False)
    assert (origin, store.path) == ("public", home / "stores" / "tss-public")
    assert mainjob.choose_data(progress=False)[1] == "imported"  # now it is an imported store
    # an official import wins over everything
    shutil.copytree(store.path, home / "stores" / "tss-official")
    store, origin = mainjob.choose_data(progress=False)
    assert (origin, store.path.name) == ("imported", "tss-official")
    assert open_store("tss-official").checksum == tiny.checksum


def test_failed_runs_are_retried_and_fail_the_command(
    tiny: Store,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A sweep in which runs failed exits 1; run again, the failures are retried (not counted
    as finished), and once they pass the command exits 0."""
    real = runner.run_search

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("method bug")

    monkeypatch.setattr(runner, "run_search", broken)
    out = tmp_path / "res"
    assert cli(_run_args(tiny, out)) == 1
    assert "6 failed" in capsys.readouterr().out
    assert cli(_run_args(tiny, out)) == 1
    printed = capsys.readouterr().out
    assert "0 already finished, 6 run now (6 of them retried" in printed and "6 failed" in printed
    monkeypatch.setattr(runner, "run_search", real)
    assert cli(_run_args(tiny, out)) == 0
    printed = capsys.readouterr().out
    assert "6 run now (6 of them retried after failing before), 0 failed" in printed
    assert pd.read_parquet(out / "runs.parquet")["status"].eq("ok").all()


# --------------------------------------------------------------------------- one-line errors
REPO = Path(__file__).resolve().parents[2]


def _one_line(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and "Traceback" not in err, err
    return err


def test_run_out_is_a_file(tiny: Store, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    afile = tmp_path / "afile"
    afile.write_text("x")
    for out in (afile, afile / "sub"):
        assert cli(_run_args(tiny, out)) == 2  # was NotADirectoryError
        assert f"{afile} is a file, not a directory; choose another --out" in _one_line(capsys)
    assert afile.read_text() == "x"


def test_a_budget_below_one_query_is_refused(
    tiny: Store, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = _run_args(tiny, tmp_path / "res")
    argv[argv.index("--budget") + 1] = "1"
    assert cli(argv) == 2
    err = _one_line(capsys)
    assert "budget 1 s on cifar10 buys less than one query: the cheapest query" in err
    cheapest = float(err.split("costs ")[1].split(" s")[0].replace(",", ""))
    assert cheapest > 1 and not (tmp_path / "res").exists()


def test_a_missing_store_path_is_called_missing(
    tiny: Store, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = _run_args(tiny, tmp_path / "res")
    argv[argv.index("--store") + 1] = str(tmp_path / "nowhere")
    assert cli(argv) == 2
    assert f"store path {tmp_path / 'nowhere'} does not exist" in _one_line(capsys)


def test_report_on_a_file_or_a_supernet_directory(
    tiny: Store, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    afile = tmp_path / "runs.parquet"
    afile.write_text("x")
    assert cli(["report", str(afile)]) == 2
    assert f"{afile} is a file, not a results directory" in _one_line(capsys)
    assert cli(["report", str(tmp_path / "missing")]) == 2
    assert "does not exist" in _one_line(capsys)
    supernet = tmp_path / "ws"
    supernet.mkdir()
    (supernet / "manifest.json").write_text(json.dumps({"kind": "supernet"}))
    assert cli(["report", str(supernet)]) == 2
    assert f"use `harness supernet report {supernet}`" in _one_line(capsys)


def test_report_on_the_committed_supernet_results(capsys: pytest.CaptureFixture[str]) -> None:
    committed = REPO / "results" / "cpu-cifar10"
    if not (committed / "supernet_trajectories.parquet").is_file():
        pytest.skip("results/cpu-cifar10 is not in this checkout")
    assert cli(["report", str(committed), "--out", "/nonexistent-never-written"]) == 2
    assert "use `harness supernet report" in _one_line(capsys)  # was KeyError: 'step'


def test_jobs_zero_means_all_cpus_everywhere() -> None:
    from harness.cli import build_parser

    parser = build_parser()
    cpus = cli_run.jobs_arg("-1")
    assert cpus >= 1 and cli_run.jobs_arg("0") == cpus and cli_run.jobs_arg("3") == 3
    for argv in (["run", "--out", "x", "--jobs", "0"], ["main", "--jobs", "0"],
                 ["bench", "import", "src", "--jobs", "0"]):  # fmt: skip
        assert parser.parse_args(argv).jobs == cpus, argv


def test_list_prints_methods_protocols_and_cards(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli(["list", "methods"]) == 0
    lines = capsys.readouterr().out.splitlines()
    rea = next(line for line in lines if line.startswith("rea "))
    assert "[blackbox, tss/sss]" in rea and "population_size=10" in rea
    assert any(line.startswith("tas [supernet, sss]") for line in lines)
    assert cli(["list", "protocols"]) == 0
    assert "nats-tss@1: " in capsys.readouterr().out
    assert cli(["list", "cards", "nats-ws-sss"]) == 0
    printed = capsys.readouterr().out
    assert printed.startswith("nats-ws-sss@1 [sss]") and "lr_schedule='epoch'" in printed
    assert cli(["list", "methods", "reaa"]) == 2
    assert "did you mean 'rea'" in capsys.readouterr().err
