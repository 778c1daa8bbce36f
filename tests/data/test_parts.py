"""Search and training images under the benchmark's protocols, on small files in the official
formats whose held-out sets have the official sizes (so the shipped splits apply), and a
supernet search step on them."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from harness.data import DeviceLoader, search_parts, shipped_split, torch_generator, training_parts
from harness.data.testing import image_number, write_official_files
from harness.errors import ArchiveError, ConfigError


@pytest.fixture(scope="module")
def small_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """ImageNet16-120 (60 train, the official 6,000 val) and CIFAR-100 (40 train, 10,000
    test), with images of other classes among the ImageNet16 ones."""
    root = tmp_path_factory.mktemp("data-root")
    write_official_files(root, "ImageNet16-120", n_train=60, extra_classes=3)
    write_official_files(root, "cifar100", n_train=40)
    return root


@pytest.fixture(scope="module")
def cifar10_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """CIFAR-10 at the official sizes (50,000 + 10,000 numbered images, 180 MB)."""
    root = tmp_path_factory.mktemp("cifar10-root")
    write_official_files(root, "cifar10", n_train=50_000)
    return root


def _numbers(part: object) -> np.ndarray:
    return image_number(part.images).numpy()  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("task", "split", "n_train"),
    [("ImageNet16-120", "ImageNet16-120-test", 60), ("cifar100", "cifar100-test", 40)],
)
def test_search_weights_on_all_train_arch_on_the_xvalid_half(
    small_root: Path, task: str, split: str, n_train: int
) -> None:
    parts = search_parts(task, "official", root=small_root)
    assert _numbers(parts.weights).tolist() == list(range(n_train))  # the whole training set
    assert np.array_equal(_numbers(parts.arch), shipped_split(split)["xvalid"])
    assert parts.num_classes == (120 if task == "ImageNet16-120" else 100)
    assert parts.padding == (2 if task == "ImageNet16-120" else 4)
    record = parts.record
    assert record["splits"][0]["name"] == split and record["splits"][0]["source"] == "package"
    assert len(record["splits"][0]["sha256"]) == 64 and record["checksum"] == parts.checksum
    assert record["data_root"] == str(small_root) and record["data_root_from"] == "--data-root"
    json.dumps(record)
    again = search_parts(task, "official", root=small_root)
    assert again.checksum == parts.checksum and parts.checksum.startswith(f"official:{task}:")


def test_search_subsets_are_fixed_and_recorded(small_root: Path) -> None:
    a = search_parts("ImageNet16-120", "official", root=small_root, sizes=(16, 24))
    b = search_parts("ImageNet16-120", "official", root=small_root, sizes=(16, 24))
    assert (len(a.weights), len(a.arch)) == (16, 24)
    assert torch.equal(a.arch.images, b.arch.images) and a.checksum == b.checksum
    assert set(_numbers(a.arch)) <= set(shipped_split("ImageNet16-120-test")["xvalid"].tolist())
    assert a.record["subsets"]["arch"]["of"] == 3_000
    with pytest.raises(ConfigError, match="asked for 100 images; it holds 60"):
        search_parts("ImageNet16-120", "official", root=small_root, sizes=(100, 10))


def test_training_parts_evaluate_on_the_benchmarks_sets(small_root: Path) -> None:
    parts = training_parts("cifar100", "official", root=small_root)
    split = shipped_split("cifar100-test")
    assert list(parts.evals) == ["x-valid", "x-test", "ori-test"]
    assert np.array_equal(_numbers(parts.evals["x-valid"]), split["xvalid"])
    assert np.array_equal(_numbers(parts.evals["x-test"]), split["xtest"])
    assert _numbers(parts.evals["ori-test"]).tolist() == list(range(10_000))
    assert len(parts.train) == 40 and parts.record["splits"][0]["name"] == "cifar100-test"
    reduced = training_parts("cifar100", "official", root=small_root, train_images=10)
    assert len(reduced.train) == 10 and reduced.record["train"]["subset"]["n"] == 10
    assert reduced.checksum != parts.checksum


@pytest.mark.slow
def test_cifar10_search_and_training_use_cifar_split(cifar10_root: Path) -> None:
    split = shipped_split("cifar10-valid")
    search = search_parts("cifar10", "official", root=cifar10_root)
    assert np.array_equal(_numbers(search.weights), split["train"])
    assert np.array_equal(_numbers(search.arch), split["valid"])
    valid_run = training_parts("cifar10-valid", "official", root=cifar10_root)
    assert np.array_equal(_numbers(valid_run.train), split["train"])
    assert list(valid_run.evals) == ["x-valid", "ori-test"]
    assert np.array_equal(_numbers(valid_run.evals["x-valid"]), split["valid"])
    full_run = training_parts("cifar10", "official", root=cifar10_root)
    assert len(full_run.train) == 50_000 and list(full_run.evals) == ["ori-test"]
    assert full_run.record["splits"] == [] and full_run.train.classes[0] == "c0"


def test_wrong_sources_and_names_are_refused(small_root: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="CIFAR-10 only"):
        search_parts("cifar100", "jpeg", images=tmp_path)
    with pytest.raises(ConfigError, match="did you mean 'official'"):
        search_parts("cifar100", "oficial")
    with pytest.raises(ConfigError, match="did you mean 'cifar100'"):
        search_parts("cifar-100", "official")
    with pytest.raises(ConfigError, match="needs the CIFAR-10 JPEG archive"):
        training_parts("cifar10", "jpeg")
    with pytest.raises(ArchiveError, match="cifar10 data not found"):
        search_parts("cifar10", "official", root=small_root)


def _jpeg_archive(root: Path, n: int) -> Path:
    rng = np.random.default_rng(0)
    for split, count in (("train", n), ("test", n // 2)):
        for i in range(count):
            folder = root / "cifar10" / split / f"class{i % 10}"
            folder.mkdir(parents=True, exist_ok=True)
            pixels = rng.integers(0, 256, size=(32, 32, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(folder / f"{i:04d}.jpg", quality=75)
    archive = root / "cifar10_jpg.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(root / "cifar10", arcname="cifar10")
    return archive


def test_one_shot_cells_keep_their_jpeg_and_synthetic_images(tmp_path: Path) -> None:
    """The cells' images come from search_parts; their checksums (in every committed run row)
    keep the formula they had before: archive digest, split entropy, part sizes."""
    from harness.oneshot.setup import Runtime, make_search_data
    from harness.supernet.cards import get_card

    archive = _jpeg_archive(tmp_path, 40)
    digest = hashlib.sha256(archive.read_bytes()).hexdigest()[:16]
    card = dataclasses.replace(get_card("cpu-cifar10"), weight_images=12, arch_images=8)
    runtime = Runtime(images=str(archive))
    data = make_search_data(card, "cifar10", np.random.default_rng(0), runtime)
    assert data.checksum == f"{digest}:20240811:12+8"
    assert (len(data.train.labels), len(data.eval.labels)) == (12, 8)
    parts = search_parts("cifar10", "jpeg", images=archive, sizes=(12, 8))
    assert torch.equal(parts.arch.labels, data.eval.labels)
    everything = dataclasses.replace(card, train_on="all")
    data = make_search_data(everything, "cifar10", np.random.default_rng(0), runtime)
    assert data.checksum == f"{digest}:all-train+test"
    assert (len(data.train.labels), len(data.eval.labels)) == (40, 20)
    tiny = get_card("tiny-cpu")
    data = make_search_data(tiny, "cifar10", np.random.default_rng(0), Runtime())
    assert data.checksum == "synthetic:4x8:48+48" and data.num_classes == 4
    run = training_parts("cifar10-valid", "jpeg", images=archive)
    assert (len(run.train), len(run.evals["x-valid"]), len(run.evals["ori-test"])) == (20, 20, 20)
    assert run.record["splits"][0]["source"] == "seeded"


def test_a_supernet_search_step_on_official_format_data(small_root: Path) -> None:
    from harness.supernet.search import run_supernet_search
    from harness.supernet.testing import one_torch_thread, tiny_config, tiny_supernet
    from methods.darts import Darts

    parts = search_parts("ImageNet16-120", "official", root=small_root, sizes=(24, 24))
    rng = np.random.default_rng(0)
    train, valid = (
        DeviceLoader(
            part.images, part.labels, batch_size=8, norm=parts.normalization,
            generator=torch_generator(rng), padding=parts.padding,
        )
        for part in (parts.weights, parts.arch)
    )  # fmt: skip
    net = tiny_supernet(0, classes=parts.num_classes)
    before = {k: v.clone() for k, v in net.state_dict().items()}
    with one_torch_thread():
        result = run_supernet_search(
            Darts(), net, train, valid, tiny_config(epochs=1, max_steps_per_epoch=1), rng
        )
    assert (
        result.complete and result.ledger.epochs == 1 and np.isfinite(result.history[0].train_loss)
    )
    assert any(not torch.equal(before[k], v) for k, v in net.state_dict().items())
