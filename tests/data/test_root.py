"""The data root: how it resolves, and the one-line errors of a missing or malformed root."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest

from harness.data.root import DATA_ROOT_ENV, data_root, read_official
from harness.data.testing import image_number, write_official_files
from harness.errors import ArchiveError, ConfigError


def test_the_root_resolves_override_then_env_then_torch_home(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(DATA_ROOT_ENV, raising=False)
    monkeypatch.delenv("TORCH_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert data_root().path == tmp_path / "home" / ".cache" / "torch" / "cifar.python"
    assert "TORCH_HOME unset" in data_root().origin
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "th"))
    assert data_root().path == tmp_path / "th" / "cifar.python"
    assert data_root().origin == "$TORCH_HOME/cifar.python"
    monkeypatch.setenv(DATA_ROOT_ENV, str(tmp_path / "env"))
    assert data_root().path == tmp_path / "env" and data_root().origin == f"${DATA_ROOT_ENV}"
    chosen = data_root(tmp_path / "flag")
    assert chosen.path == tmp_path / "flag" and chosen.origin == "--data-root"
    assert chosen.record() == {"data_root": str(tmp_path / "flag"), "data_root_from": "--data-root"}


def _one_line(err: pytest.ExceptionInfo[BaseException]) -> str:
    message = str(err.value)
    assert "\n" not in message
    return message


def test_a_missing_root_says_what_was_looked_for_and_where(tmp_path: Path) -> None:
    with pytest.raises(ArchiveError) as err:
        read_official("cifar10", "train", data_root(tmp_path / "absent"))
    message = _one_line(err)
    assert "cifar-10-batches-py/{data_batch_1..5, test_batch}" in message
    assert str(tmp_path / "absent") in message and "not a directory" in message
    assert "--data-root" in message and DATA_ROOT_ENV in message


def test_missing_files_are_named_with_what_the_folder_holds(tmp_path: Path) -> None:
    folder = write_official_files(tmp_path, "ImageNet16-120", n_train=20, n_test=10)
    (folder / "train_data_batch_7").unlink()
    with pytest.raises(ArchiveError) as err:
        read_official("ImageNet16-120", "train", data_root(tmp_path))
    message = _one_line(err)
    assert "ImageNet16/{train_data_batch_1..10, val_data}" in message
    assert "missing train_data_batch_7" in message and "val_data" in message
    with pytest.raises(ArchiveError, match="missing train, test; no cifar-100-python/"):
        read_official("cifar100", "test", data_root(tmp_path))


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"not a pickle", "not a readable pickle batch"),
        (pickle.dumps([1, 2, 3]), "expected a pickled dict"),
        (pickle.dumps({b"labels": [0]}), "no 'data' entry"),
        (pickle.dumps({b"data": [[0] * 7], b"labels": [0]}), "expected rows of 3\\*16\\*16"),
        (pickle.dumps({b"data": [[0] * 768], b"labels": [1, 2]}), "2 labels for 1 images"),
    ],
)
def test_malformed_files_give_one_line(tmp_path: Path, content: bytes, expected: str) -> None:
    folder = write_official_files(tmp_path, "ImageNet16-120", n_train=20, n_test=10)
    (folder / "val_data").write_bytes(content)
    with pytest.raises(ArchiveError, match=expected) as err:
        read_official("ImageNet16-120", "test", data_root(tmp_path))
    assert _one_line(err).startswith("ImageNet16-120 data under ")


def test_official_sets_are_read_in_file_order(tmp_path: Path) -> None:
    write_official_files(tmp_path, "ImageNet16-120", n_train=30, n_test=12, extra_classes=4)
    write_official_files(tmp_path, "cifar100", n_train=7, n_test=5)
    root = data_root(tmp_path)
    train = read_official("ImageNet16-120", "train", root)
    assert len(train) == 30 and train.images.shape[1:] == (3, 16, 16)  # extra classes dropped
    assert image_number(train.images).tolist() == list(range(30))
    assert train.labels.tolist() == [i % 120 for i in range(30)]
    test = read_official("cifar100", "test", root)
    assert image_number(test.images).tolist() == list(range(5)) and test.num_classes == 100
    assert test.classes[3] == "f3"
    with pytest.raises(ConfigError, match="did you mean 'cifar10'"):
        read_official("cifar-10", "train", root)
    with pytest.raises(ConfigError, match="official image set"):
        read_official("cifar100", "val", root)
