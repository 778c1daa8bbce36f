"""Official split files and seeded splits: sizes, disjointness, provenance, errors."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from harness.data.splits import (
    SPLIT_SPECS,
    load_official_split,
    official_or_seeded_split,
    read_split_config,
    seeded_split,
)
from harness.errors import ArchiveError, ConfigError


@pytest.fixture(scope="module")
def splits_dir(shared_data: Path) -> Path:
    return shared_data / "nats-splits"


@pytest.mark.parametrize(
    ("name", "sizes"),
    [
        ("cifar10-valid", {"train": 25_000, "valid": 25_000}),
        ("cifar100-test", {"xvalid": 5_000, "xtest": 5_000}),
        ("ImageNet16-120-test", {"xvalid": 3_000, "xtest": 3_000}),
        ("ImageNet16-120-train", {"train": 75_850, "valid": 75_850}),
    ],
)
def test_official_splits_have_the_benchmark_sizes(
    splits_dir: Path, name: str, sizes: dict[str, int]
) -> None:
    split = load_official_split(name, splits_dir)
    assert {k: v.size for k, v in split.parts.items()} == sizes
    a, b = split.parts.values()
    assert np.intersect1d(a, b).size == 0
    # the two halves cover the whole indexed set
    assert np.array_equal(np.union1d(a, b), np.arange(split.total))
    path = splits_dir / SPLIT_SPECS[name].file
    assert split.provenance == {
        "source": "file",
        "file": path.name,
        "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
    }
    record = split.record()
    assert record["sizes"] == sizes and record["sha256"] == split.provenance["sha256"]
    json.dumps(record)


def test_known_official_indices(splits_dir: Path) -> None:
    cifar = load_official_split("cifar10-valid", splits_dir)
    assert cifar["train"][:4].tolist() == [0, 5, 7, 11] and cifar["valid"][0] == 1
    with pytest.raises(ConfigError, match="did you mean 'valid'"):
        cifar["vaild"]


def test_hyperparameter_configs_parse_with_types(splits_dir: Path) -> None:
    config = read_split_config(splits_dir / "hyper-opts" / "200E.config")
    assert config["epochs"] == 200 and config["LR"] == pytest.approx(0.1)
    assert config["nesterov"] is True and config["scheduler"] == "cos"
    assert config["batch_size"] == 256


def test_seeded_split_is_reproducible_and_records_its_seed() -> None:
    seq = np.random.SeedSequence(1234)
    a = seeded_split("cifar10-jpg", 100, {"train": 50, "valid": 30}, np.random.default_rng(seq))
    b = seeded_split("cifar10-jpg", 100, {"train": 50, "valid": 30}, np.random.default_rng(seq))
    assert all(np.array_equal(a[k], b[k]) for k in ("train", "valid"))
    assert a["train"].size == 50 and a["valid"].size == 30
    assert np.intersect1d(a["train"], a["valid"]).size == 0
    assert a.provenance["source"] == "seeded" and a.provenance["entropy"] == 1234
    other = seeded_split("x", 100, {"train": 50}, np.random.default_rng(4321))
    assert not np.array_equal(a["train"], other["train"])
    with pytest.raises(ConfigError, match="do not fit"):
        seeded_split("x", 10, {"a": 6, "b": 6}, np.random.default_rng(0))


def test_official_or_seeded_falls_back_with_the_same_sizes(
    splits_dir: Path, tmp_path: Path
) -> None:
    official = official_or_seeded_split("cifar100-test", splits_dir, np.random.default_rng(0))
    assert official.provenance["source"] == "file"
    fallback = official_or_seeded_split("cifar100-test", tmp_path, np.random.default_rng(0))
    assert fallback.provenance["source"] == "seeded"
    assert {k: v.size for k, v in fallback.parts.items()} == {"xvalid": 5_000, "xtest": 5_000}
    assert fallback.total == 10_000
    assert official_or_seeded_split("cifar100-test", None, np.random.default_rng(0)).total == 10_000


def _write(path: Path, content: dict) -> Path:
    path.write_text(json.dumps(content))
    return path


def test_malformed_split_files_raise(tmp_path: Path) -> None:
    spec = SPLIT_SPECS["ImageNet16-120-test"]
    halves = [str(i) for i in range(3000)], [str(i) for i in range(2999, 5999)]
    _write(tmp_path / spec.file, {"xvalid": ["int", halves[0]], "xtest": ["int", halves[1]]})
    with pytest.raises(ArchiveError, match="overlap"):
        load_official_split("ImageNet16-120-test", tmp_path)
    _write(tmp_path / spec.file, {"xvalid": ["int", halves[0][:10]], "xtest": ["int", []]})
    with pytest.raises(ArchiveError, match="has 10, not 3000"):
        load_official_split("ImageNet16-120-test", tmp_path)
    _write(tmp_path / spec.file, {"xvalid": ["complex", []]})
    with pytest.raises(ArchiveError, match="known type"):
        load_official_split("ImageNet16-120-test", tmp_path)
    (tmp_path / spec.file).write_text("{not json")
    with pytest.raises(ArchiveError, match="cannot read"):
        read_split_config(tmp_path / spec.file)
    with pytest.raises(ArchiveError, match="not found"):
        load_official_split("cifar10-valid", tmp_path)
    with pytest.raises(ConfigError, match="cifar10-valid"):
        load_official_split("cifar10", tmp_path)
