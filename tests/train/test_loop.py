"""The training stage: a training epoch on official-format files with the shipped splits, the
benchmark's metrics, bit-identical resume, seeds, and refusals."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from harness.data import training_parts
from harness.data.parts import TrainingParts
from harness.data.testing import write_official_files
from harness.errors import ConfigError
from harness.spaces import get_space
from harness.train import loop, recipe
from harness.train.loop import TrainConfig, build_network, run_dir_name, train_network
from harness.train.recipe import Recipe

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def parts(tmp_path_factory: pytest.TempPathFactory) -> TrainingParts:
    """ImageNet16-120 with 48 training images and the official 6,000 val images, the eval
    sets cut to 64 images each to keep the test short."""
    root = tmp_path_factory.mktemp("root")
    write_official_files(root, "ImageNet16-120", n_train=48, extra_classes=2)
    full = training_parts("ImageNet16-120", "official", root=root)
    evals = {k: v.subset(np.arange(64)) for k, v in full.evals.items()}
    return TrainingParts(
        full.train, evals, full.normalization, full.padding, full.checksum, full.record
    )


@pytest.fixture
def two_epochs(monkeypatch: pytest.MonkeyPatch) -> str:
    """A two-epoch recipe (resume needs more than one epoch; 12 would be slow)."""
    monkeypatch.setitem(recipe.RECIPES, "02E", Recipe("02E", 2))
    return "02E"


def _config(name: str, seed: int = 3, **kwargs: object) -> TrainConfig:
    return TrainConfig("8:8:8:8:8", "sss", name, "ImageNet16-120", "official", seed, **kwargs)  # type: ignore[arg-type]


def test_a_training_epoch_on_official_files_with_the_shipped_split(
    parts: TrainingParts, tmp_path: Path
) -> None:
    lines: list[str] = []
    result = train_network(_config("01E"), parts, tmp_path / "run", progress=lines.append)
    record = result.record
    assert result.complete and record["epochs_done"] == 1 and len(lines) == 1
    assert lines[0].startswith("epoch 1/1: lr 0.10000, train loss")
    metrics = record["metrics"]
    assert metrics["eval_names"] == ["x-valid", "x-test", "ori-test"]
    for key in ("eval_acc1es", "eval_acc5es", "eval_losses", "eval_times"):
        assert set(metrics[key]) == {"x-valid@0", "x-test@0", "ori-test@0"}
    for key in ("train_acc1es", "train_acc5es", "train_losses", "train_times", "learning_rates"):
        assert set(metrics[key]) == {"0"}
    assert 0 <= metrics["train_acc1es"]["0"] <= metrics["train_acc5es"]["0"] <= 100
    assert record["final"] == {
        "train": metrics["train_acc1es"]["0"],
        **{s: metrics["eval_acc1es"][f"{s}@0"] for s in ("x-valid", "x-test", "ori-test")},
    }
    assert record["data"]["splits"][0]["name"] == "ImageNet16-120-test"
    assert record["data"]["splits"][0]["source"] == "package"
    assert record["data"]["checksum"] == parts.checksum
    assert record["network"]["params_mb"] == pytest.approx(
        sum(p.numel() for p in build_network("sss", 0, 120, torch.Generator()).parameters()) / 1e6
    )
    assert record["seeds"] == {"entropy": 3, "init": [0], "data": [1]}
    on_disk = json.loads((tmp_path / "run" / "result.json").read_text())
    assert on_disk["status"] == "complete" and on_disk["final"] == record["final"]
    table = pd.read_parquet(tmp_path / "run" / "epochs.parquet")
    assert table["split"].tolist() == ["train", "x-valid", "x-test", "ori-test"]
    assert table.loc[table["split"] == "x-test", "accuracy"].item() == record["final"]["x-test"]
    assert "epoch 1/1" in (tmp_path / "run" / "progress.log").read_text()


def _strip_times(record: dict) -> dict:
    metrics = {k: v for k, v in record["metrics"].items() if not k.endswith("_times")}
    skip = {"started", "finished", "seconds", "provenance", "resumed", "metrics"}
    return {**{k: v for k, v in record.items() if k not in skip}, "metrics": metrics}


def _weights(run: Path) -> dict[str, torch.Tensor]:
    return torch.load(run / "checkpoint.pt", weights_only=False)["supernet"]


def test_a_resumed_run_equals_an_uninterrupted_one(
    parts: TrainingParts, tmp_path: Path, two_epochs: str
) -> None:
    straight = train_network(_config(two_epochs), parts, tmp_path / "a")
    first = train_network(_config(two_epochs), parts, tmp_path / "b", stop_after_epoch=0)
    assert not first.complete and first.record["epochs_done"] == 1
    assert json.loads((tmp_path / "b" / "result.json").read_text())["status"] == "partial"
    resumed = train_network(_config(two_epochs), parts, tmp_path / "b")
    assert resumed.complete and resumed.record["resumed"][0]["epochs_done"] == 1
    assert _strip_times(resumed.record) == _strip_times(straight.record)
    a, b = _weights(tmp_path / "a"), _weights(tmp_path / "b")
    assert all(torch.equal(a[k], b[k]) for k in a)
    log = (tmp_path / "b" / "progress.log").read_text()
    assert "resuming" in log and "next epoch 2" in log
    assert straight.record["metrics"]["learning_rates"] == {"0": 0.1, "1": pytest.approx(0.05)}


def test_finished_runs_are_returned_and_other_runs_refused(
    parts: TrainingParts, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = tmp_path / "run"
    done = train_network(_config("01E"), parts, run)

    def no_training(*args: object) -> None:
        raise AssertionError("trained again")

    monkeypatch.setattr(loop, "_epoch", no_training)
    again = train_network(_config("01E", device="cpu", eval_batch_size=7), parts, run)
    assert again.record == done.record
    with pytest.raises(ConfigError, match="holds another run"):
        train_network(_config("01E", seed=4), parts, run)


def test_seeds_and_the_global_rng(parts: TrainingParts, tmp_path: Path) -> None:
    state = torch.random.get_rng_state()
    a = build_network("tss", 123, 10, torch.Generator().manual_seed(1))
    b = build_network("tss", 123, 10, torch.Generator().manual_seed(1))
    c = build_network("tss", 123, 10, torch.Generator().manual_seed(2))
    assert torch.equal(torch.random.get_rng_state(), state)  # nothing drawn from it
    sa, sb, sc = a.state_dict(), b.state_dict(), c.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert not all(torch.equal(sa[k], sc[k]) for k in sa)
    one = train_network(_config("01E", seed=5), parts, tmp_path / "one").record
    other = train_network(_config("01E", seed=6), parts, tmp_path / "other").record
    assert one["metrics"]["train_losses"] != other["metrics"]["train_losses"]


def test_configs_are_validated_and_named(parts: TrainingParts) -> None:
    config = _config("12E", train_images=48)
    assert config.arch == "8:8:8:8:8" and config.arch_index == 0
    assert run_dir_name(config) == "sss-00000-ImageNet16-120-12E-official-s3-n48"
    tss = TrainConfig(0, "tss", "200E", "cifar10", "jpeg", 0)
    assert tss.arch == get_space("tss").index_to_str(0) and tss.arch_index == 0
    with pytest.raises(ConfigError, match="did you mean '12E'"):
        _config("12")
    with pytest.raises(Exception, match="dataset"):
        TrainConfig(0, "tss", "12E", "cifar-10", "official", 0)
    with pytest.raises(ConfigError, match="the run asks for cifar10/official"):
        train_network(TrainConfig(0, "sss", "01E", "cifar10", "official", 0), parts, "unused")
    with pytest.raises(ConfigError, match="asks for 10"):
        train_network(_config("01E", train_images=10), parts, "unused")
