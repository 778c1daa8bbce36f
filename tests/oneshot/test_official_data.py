"""Supernet sweeps on the official image files: a data root in the official formats, the
shipped splits, per-task search, the DARTS code's halves of the training set, and the record
each row keeps of its data."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from harness.bench.store import Store
from harness.cli import main as cli
from harness.data import shipped_split
from harness.data.testing import image_number, write_official_files
from harness.errors import ArchiveError
from harness.oneshot.setup import Runtime, make_search_data
from harness.supernet.cards import get_card


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """ImageNet16-120: 96 training images and the official 6,000 val images."""
    path = tmp_path_factory.mktemp("cifar.python")
    write_official_files(path, "ImageNet16-120", n_train=96)
    return path


def _numbers(loader: object) -> list[int]:
    return sorted(image_number(loader.images).tolist())  # type: ignore[attr-defined]


def test_a_sweep_searches_imagenet16_on_its_own_images(
    root: Path, tiny_store: Store, tmp_path: Path
) -> None:
    out = tmp_path / "res"
    code = cli([
        "supernet", "run", "--methods", "darts_v1", "--card", "tiny-cpu", "--seeds", "0",
        "--selections", "magnitude", "--data", "ImageNet16-120", "--data-root", str(root),
        "--store", str(tiny_store.path), "--out", str(out), "--no-progress",
    ])  # fmt: skip
    assert code == 0
    runs = pd.read_parquet(out / "runs.parquet")
    assert (runs["status"] == "ok").all() and len(runs) == 1
    row = runs.iloc[0]
    assert row["dataset"] == row["eval_dataset"] == "ImageNet16-120"
    assert row["protocol"] == "tiny-cpu@4[official images]" and not row["synthetic"]
    data = json.loads(row["data"])
    assert data["images"] == "official ImageNet16-120" and data["split"] == "benchmark"
    source = data["source"]
    assert source["data_root"] == str(root) and source["data_root_from"] == "--data-root"
    (split,) = source["splits"]
    assert split["name"] == "ImageNet16-120-test" and len(split["sha256"]) == 64
    assert source["checksum"] == data["checksum"] and data["checksum"].startswith("official:")
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["data"]["images"] == "official"


def test_published_sizes_take_the_benchmark_parts_whole_smaller_ones_subsets(root: Path) -> None:
    card = dataclasses.replace(
        get_card("nats-ws"), data="official", weight_images=25_000, arch_images=25_000
    )
    runtime = Runtime(data_root=str(root))
    data = make_search_data(card, "ImageNet16-120", np.random.default_rng(0), runtime)
    assert data.num_classes == 120
    assert _numbers(data.train) == list(range(96))  # every training image
    assert _numbers(data.eval) == sorted(shipped_split("ImageNet16-120-test")["xvalid"].tolist())
    small = dataclasses.replace(card, weight_images=40, arch_images=30)
    data = make_search_data(small, "ImageNet16-120", np.random.default_rng(0), runtime)
    assert (len(data.train.labels), len(data.eval.labels)) == (40, 30)
    assert set(_numbers(data.eval)) <= set(shipped_split("ImageNet16-120-test")["xvalid"].tolist())
    assert "a fixed-seed subset of 30 images" in data.record["arch"]


def test_darts_pt_and_drnas_search_on_the_halves_of_the_training_set(root: Path) -> None:
    """The DARTS code's train_portion=0.5: the first half of the task's training set for the
    weights, the second for the architecture; the held-out set is never searched on."""
    for name in ("darts-pt", "drnas-nb201"):
        card = dataclasses.replace(
            get_card(name), data="official", search_tasks=("ImageNet16-120",)
        )
        runtime = Runtime(data_root=str(root))
        data = make_search_data(card, "ImageNet16-120", np.random.default_rng(0), runtime)
        assert _numbers(data.train) == list(range(48)) and _numbers(data.eval) == list(
            range(48, 96)
        )
        assert data.record["split"] == "train_halves" and data.record["source"]["splits"] == []


def test_single_level_cards_train_on_all_training_images_and_select_on_the_test_set(
    root: Path,
) -> None:
    card = dataclasses.replace(get_card("gaea-nb201"), data="official")
    runtime = Runtime(data_root=str(root))
    data = make_search_data(card, "ImageNet16-120", np.random.default_rng(0), runtime)
    assert _numbers(data.train) == list(range(96)) and len(data.eval.labels) == 6_000


def test_a_missing_root_is_refused_before_any_cell_runs(tiny_store: Store, tmp_path: Path) -> None:
    from harness.oneshot import sweep

    grid = sweep.load_supernet_grid("darts_v1", "tiny-cpu", "0", data="cifar100")
    assert grid.tasks == ("cifar100",) and grid.data == "official"
    with pytest.raises(ArchiveError, match="cifar100 data not found: looked for cifar-100-python"):
        sweep.run_supernet_sweep(
            grid, tmp_path / "res", store=tiny_store, data_root=tmp_path / "none", progress=False
        )
    assert not (tmp_path / "res").exists()
