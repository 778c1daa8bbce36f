"""``harness train``: a run on official-format files, its summary, resume, one-line errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.bench.names import DATASETS
from harness.cli import main
from harness.cli import train as train_cli
from harness.data import TRAIN_SOURCES
from harness.data.testing import write_official_files
from harness.train import RECIPES

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_the_offered_names_equal_the_librarys() -> None:
    assert train_cli.DATASETS == DATASETS
    assert train_cli.RECIPES == tuple(RECIPES)
    assert train_cli.SOURCES == TRAIN_SOURCES


def test_a_run_prints_its_summary_and_is_not_repeated(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_official_files(tmp_path / "root", "ImageNet16-120", n_train=24)
    argv = [
        "train", "8:8:8:8:8", "--space", "sss", "--recipe", "01E", "--data", "ImageNet16-120",
        "--seed", "0", "--out", str(tmp_path / "out"), "--data-root", str(tmp_path / "root"),
        "--eval-batch", "1000",
    ]  # fmt: skip
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "epoch 1/1: lr 0.10000" in out
    assert "sss 8:8:8:8:8 (index 0)" in out and "M FLOPs" in out
    assert "split: ImageNet16-120-test (package, sha256 " in out
    assert "01E complete: top-1 after epoch 1: train " in out and "x-test" in out
    run = tmp_path / "out" / "sss-00000-ImageNet16-120-01E-official-s0"
    assert f"results: {run}" in out and (run / "result.json").is_file()
    assert main(argv) == 0
    assert "epoch 1/1" not in capsys.readouterr().out  # finished: summarised, not retrained


def test_missing_data_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = [
        "train", "0", "--space", "tss", "--recipe", "12E", "--data", "cifar100", "--seed", "1",
        "--out", str(tmp_path), "--data-root", str(tmp_path / "none"),
    ]  # fmt: skip
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and err.startswith("error: cifar100 data not found: looked for ")
    assert "cifar-100-python/{train, test}" in err
    with pytest.raises(SystemExit):
        main(["train", "0", "--space", "tss", "--recipe", "13E", "--data", "cifar10"])
