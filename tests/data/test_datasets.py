"""Image readers (official pickle batches, image folders and archives, synthetic data) and the
batched augmentation / device-resident loader."""

from __future__ import annotations

import pickle
import tarfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

from harness.data import datasets as ds
from harness.data.augment import (
    NORMALIZATION,
    DeviceLoader,
    Normalization,
    augment,
    normalization_for,
    normalize,
    random_crop,
    random_flip,
    torch_generator,
)
from harness.errors import ArchiveError, ConfigError


def _rows(rng: np.random.Generator, n: int, side: int) -> np.ndarray:
    return rng.integers(0, 256, size=(n, 3 * side * side), dtype=np.uint8)


def _dump(path: Path, entry: dict) -> None:
    """Write a batch as the official files are: a python-2 era pickle with bytes keys."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as f:
        pickle.dump({k.encode(): v for k, v in entry.items()}, f, protocol=2)


# --- official pickle batches ------------------------------------------------------------------


def test_cifar10_batches_round_trip(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    folder = tmp_path / "cifar-10-batches-py"
    rows, labels = {}, {}
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        rows[name], labels[name] = _rows(rng, 4, 32), rng.integers(0, 10, 4).tolist()
        _dump(folder / name, {"data": rows[name], "labels": labels[name]})
    _dump(folder / "batches.meta", {"label_names": [f"c{i}" for i in range(10)]})
    train = ds.read_cifar(tmp_path, "cifar10", "train")  # the parent directory is accepted
    assert train.images.shape == (20, 3, 32, 32) and train.images.dtype == torch.uint8
    assert train.labels.dtype == torch.int64 and train.classes[3] == "c3"
    # row layout: 1024 red bytes, then green, then blue, each row-major
    red_row2_col5 = rows["data_batch_2"][1, 2 * 32 + 5]
    blue_row0_col0 = rows["data_batch_2"][1, 2048]
    assert train.images[5, 0, 2, 5] == red_row2_col5 and train.images[5, 2, 0, 0] == blue_row0_col0
    test = ds.read_cifar(folder, "cifar10", "test")
    assert test.labels.tolist() == labels["test_batch"]


def test_cifar100_reads_fine_labels(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    for split in ("train", "test"):
        entry = {"data": _rows(rng, 3, 32), "fine_labels": [99, 0, 42], "coarse_labels": [1, 2, 3]}
        _dump(tmp_path / split, entry)
    data = ds.read_cifar(tmp_path, "cifar100", "test")
    assert data.labels.tolist() == [99, 0, 42] and data.num_classes == 100


def test_imagenet16_keeps_the_first_120_classes_zero_based(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    labels = [1, 120, 121, 1000, 60, 7]
    data = _rows(rng, 6, 16)
    _dump(tmp_path / "val_data", {"data": data, "labels": labels})
    val = ds.read_imagenet16(tmp_path, "val")
    assert val.labels.tolist() == [0, 119, 59, 6]
    assert val.images.shape == (4, 3, 16, 16)
    assert torch.equal(val.images[2].flatten(), torch.from_numpy(data[4]))
    assert ds.read_imagenet16(tmp_path, "val", num_classes=200).labels.tolist() == [
        0,
        119,
        120,
        59,
        6,
    ]


def test_missing_batches_say_what_exists(tmp_path: Path) -> None:
    _dump(
        tmp_path / "data_batch_1", {"data": _rows(np.random.default_rng(3), 1, 32), "labels": [0]}
    )
    with pytest.raises(ArchiveError, match="data_batch_1"):
        ds.read_cifar(tmp_path, "cifar10", "train")  # data_batch_2 is missing
    with pytest.raises(ArchiveError, match="found"):
        ds.read_imagenet16(tmp_path, "train")
    with pytest.raises(ConfigError, match="did you mean"):
        ds.read_cifar(tmp_path, "cifar10", "tset")


# --- image folders ---------------------------------------------------------------------------


def _write_png_layout(root: Path, rng: np.random.Generator) -> dict[str, list[np.ndarray]]:
    images: dict[str, list[np.ndarray]] = {}
    for split, classes in (("train", ("zebra", "ant")), ("test", ("zebra", "ant"))):
        for cls in classes:
            for i in range(3):
                array = rng.integers(0, 256, size=(6, 6, 3), dtype=np.uint8)
                (root / split / cls).mkdir(parents=True, exist_ok=True)
                Image.fromarray(array).save(root / split / cls / f"{i:04d}.png")
                images.setdefault(f"{split}/{cls}", []).append(array.transpose(2, 0, 1))
    return images


def test_image_folder_directory_and_archive_agree(tmp_path: Path) -> None:
    root = tmp_path / "layout"
    images = _write_png_layout(root, np.random.default_rng(4))
    from_dir = ds.read_image_folder(root, "train")
    assert from_dir.classes == ("ant", "zebra")  # sorted
    assert from_dir.labels.tolist() == [0, 0, 0, 1, 1, 1]
    expected = np.stack(images["train/ant"] + images["train/zebra"])
    assert np.array_equal(from_dir.images.numpy(), expected)  # PNG is lossless
    archive = tmp_path / "layout.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(root, arcname="top")
    from_tar = ds.read_image_folder(archive, "test")
    assert np.array_equal(
        from_tar.images.numpy(), np.stack(images["test/ant"] + images["test/zebra"])
    )
    with pytest.raises(ArchiveError, match="train"):
        ds.read_image_folder(archive, "valid")


def test_image_folder_cache_is_used_on_the_second_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "layout"
    _write_png_layout(root, np.random.default_rng(5))
    first = ds.read_image_folder(root, "train", cache_dir=tmp_path / "cache")
    assert len(list((tmp_path / "cache").glob("*.npy"))) == 4  # images + labels, both splits

    def no_decoding(*args: object) -> None:
        raise AssertionError("decoded again despite the cache")

    monkeypatch.setattr(ds, "_decode_layout", no_decoding)
    again = ds.read_image_folder(root, "test", cache_dir=tmp_path / "cache")
    assert again.classes == first.classes and len(again) == 6


def test_the_shared_cifar10_jpeg_archive(shared_data: Path, tmp_path: Path) -> None:
    archive = shared_data / "cifar10-jpg" / "cifar10_jpg.tar.gz"
    train = ds.read_image_folder(archive, "train", cache_dir=tmp_path)
    test = ds.read_image_folder(archive, "test", cache_dir=tmp_path)
    assert (len(train), len(test)) == (50_000, 10_000)
    assert train.num_classes == test.num_classes == 10 and train.classes[0] == "airplane"
    assert train.images.shape[1:] == (3, 32, 32)
    assert train.labels.bincount().tolist() == [5_000] * 10
    assert test.labels.bincount().tolist() == [1_000] * 10
    # channel means close to the CIFAR-10 normalisation constants (JPEG is lossy)
    means = train.images.float().mean(dim=(0, 2, 3)) / 255
    assert torch.allclose(means, torch.tensor(NORMALIZATION["cifar10"].mean), atol=0.01)


# --- synthetic data --------------------------------------------------------------------------


def test_synthetic_dataset_is_seeded_balanced_and_learnable() -> None:
    a = ds.synthetic_dataset(np.random.default_rng(6), 200, num_classes=4, size=8)
    b = ds.synthetic_dataset(np.random.default_rng(6), 200, num_classes=4, size=8)
    c = ds.synthetic_dataset(np.random.default_rng(7), 200, num_classes=4, size=8)
    assert torch.equal(a.images, b.images) and torch.equal(a.labels, b.labels)
    assert not torch.equal(a.images, c.images)
    assert a.labels.bincount().tolist() == [50] * 4 and a.images.shape == (200, 3, 8, 8)
    # nearest class mean (fitted on half) classifies the other half well
    x = a.images.float().flatten(1)
    means = torch.stack([x[:100][a.labels[:100] == k].mean(0) for k in range(4)])
    predicted = torch.cdist(x[100:], means).argmin(1)
    assert (predicted == a.labels[100:]).float().mean() > 0.9
    subset = a.subset(np.array([3, 1]))
    assert torch.equal(subset.images[1], a.images[1]) and len(subset) == 2


# --- augmentation ---------------------------------------------------------------------------


def _uint8_batch(n: int = 5, side: int = 8) -> torch.Tensor:
    return torch.randint(0, 256, (n, 3, side, side), generator=torch.Generator().manual_seed(8)).to(
        torch.uint8
    )


def test_random_crop_is_a_window_of_the_padded_image_and_deterministic() -> None:
    x = _uint8_batch()
    out = random_crop(x, 2, torch.Generator().manual_seed(1))
    again = random_crop(x, 2, torch.Generator().manual_seed(1))
    assert out.shape == x.shape and out.dtype == torch.uint8 and torch.equal(out, again)
    padded = torch.nn.functional.pad(x, (2, 2, 2, 2))
    for i in range(len(x)):
        windows = [padded[i, :, r : r + 8, c : c + 8] for r in range(5) for c in range(5)]
        assert any(torch.equal(out[i], w) for w in windows)
    others = [random_crop(x, 2, torch.Generator().manual_seed(s)) for s in range(2, 6)]
    assert any(not torch.equal(out, o) for o in others)
    assert random_crop(x, 0, torch.Generator()) is x


def test_random_flip_probabilities_and_determinism() -> None:
    x = _uint8_batch()
    assert torch.equal(random_flip(x, torch.Generator(), p=1.0), x.flip(3))
    assert torch.equal(random_flip(x, torch.Generator(), p=0.0), x)
    a = random_flip(x, torch.Generator().manual_seed(3))
    assert torch.equal(a, random_flip(x, torch.Generator().manual_seed(3)))
    assert all(torch.equal(a[i], x[i]) or torch.equal(a[i], x[i].flip(2)) for i in range(len(x)))


def test_normalize_matches_the_formula() -> None:
    x = _uint8_batch()
    norm = normalization_for("ImageNet16-120")
    mean = torch.tensor(norm.mean)[:, None, None]
    std = torch.tensor(norm.std)[:, None, None]
    out = normalize(x, norm)
    assert out.dtype == torch.float32
    torch.testing.assert_close(out, (x.float() / 255 - mean) / std)
    assert augment(x, 4, torch.Generator(), norm).shape == x.shape
    with pytest.raises(ConfigError):
        normalization_for("cifar10-valid")


def _loader(n: int, generator: torch.Generator | None, **kwargs: Any) -> DeviceLoader:
    images = _uint8_batch(n)
    labels = torch.arange(n)
    norm = Normalization((0.5, 0.5, 0.5), (0.25, 0.25, 0.25))
    return DeviceLoader(images, labels, batch_size=4, norm=norm, generator=generator, **kwargs)


def test_device_loader_epochs_are_permutations_and_reproducible() -> None:
    loader = _loader(10, torch.Generator().manual_seed(0))
    assert len(loader) == 3
    first = [(x, y) for x, y in loader]
    assert [y.numel() for _, y in first] == [4, 4, 2]
    assert all(x.shape[1:] == (3, 8, 8) and x.dtype == torch.float32 for x, _ in first)
    labels = torch.cat([y for _, y in first])
    assert sorted(labels.tolist()) == list(range(10))
    second = torch.cat([y for _, y in loader])
    assert not torch.equal(labels, second)  # a new permutation each epoch
    replay = [(x, y) for x, y in _loader(10, torch.Generator().manual_seed(0))]
    assert all(
        torch.equal(a, c) and torch.equal(b, d)
        for (a, b), (c, d) in zip(first, replay, strict=True)
    )


def test_device_loader_eval_order_drop_last_and_channels_last() -> None:
    loader = _loader(10, None, train=False, shuffle=False, drop_last=True, channels_last=True)
    batches = list(loader)
    assert len(loader) == len(batches) == 2
    assert torch.cat([y for _, y in batches]).tolist() == list(range(8))
    assert batches[0][0].is_contiguous(memory_format=torch.channels_last)
    with pytest.raises(ConfigError, match="Generator"):
        _loader(10, None)


def test_torch_generator_is_seeded_from_the_numpy_generator() -> None:
    a = torch_generator(np.random.default_rng(11))
    b = torch_generator(np.random.default_rng(11))
    assert torch.equal(torch.rand(4, generator=a), torch.rand(4, generator=b))
