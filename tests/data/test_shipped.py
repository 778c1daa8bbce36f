"""The official splits shipped in the package: equal to the official files, loadable without
the shared data, and checked against their recorded digests."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from importlib import resources
from pathlib import Path

import numpy as np
import pytest

from harness.data import shipped
from harness.data.shipped import SHIPPED_FILES, indices_sha256, shipped_split, write_shipped_splits
from harness.data.splits import SPLIT_SPECS, load_official_split
from harness.errors import ArchiveError, ConfigError


@pytest.fixture(scope="module")
def splits_dir(shared_data: Path) -> Path:
    return shared_data / "nats-splits"


@pytest.mark.parametrize("name", list(SPLIT_SPECS))
def test_shipped_split_equals_the_official_file(splits_dir: Path, name: str) -> None:
    official = load_official_split(name, splits_dir)
    ours = shipped_split(name)
    assert list(ours.parts) == list(official.parts) and ours.total == official.total
    for part, indices in official.parts.items():
        assert ours[part].dtype == np.int64 and np.array_equal(ours[part], indices)
    assert ours.provenance["source"] == "package"
    assert ours.provenance["file"] == official.provenance["file"]
    assert ours.provenance["sha256"] == official.provenance["sha256"]  # the official file's
    assert ours.provenance["indices_sha256"] == indices_sha256(official.parts)
    record = ours.record()
    assert record["sizes"] == dict(
        zip(SPLIT_SPECS[name].parts, SPLIT_SPECS[name].sizes, strict=True)
    )
    json.dumps(record)


def test_the_generation_script_reproduces_the_package_data(
    splits_dir: Path, tmp_path: Path
) -> None:
    manifest = write_shipped_splits(splits_dir, tmp_path)
    package = resources.files("harness.data.splits_data")
    assert manifest == json.loads(package.joinpath("splits.json").read_text())
    with np.load(tmp_path / "splits.npz") as fresh, package.joinpath("splits.npz").open("rb") as f:
        with np.load(f) as ours:
            assert sorted(fresh.files) == sorted(ours.files) == sorted(SPLIT_SPECS)
            for name in fresh.files:
                assert ours[name].dtype == np.uint8 and np.array_equal(fresh[name], ours[name])
    assert (tmp_path / "LICENSE-AutoDL-Projects.txt").read_text() == package.joinpath(
        "LICENSE-AutoDL-Projects.txt"
    ).read_text()


def test_package_data_is_small_and_carries_the_mit_notice() -> None:
    package = resources.files("harness.data.splits_data")
    sizes = {name: len(package.joinpath(name).read_bytes()) for name in SHIPPED_FILES}
    assert sizes["splits.npz"] < 40_000  # 1 bit per image of 217,700 images, compressed
    notice = package.joinpath("LICENSE-AutoDL-Projects.txt").read_text()
    assert "MIT License" in notice and "Xuanyi Dong" in notice and "AutoDL-Projects" in notice


def test_package_data_loads_without_the_shared_data(tmp_path: Path) -> None:
    code = (
        "from harness.data.shipped import shipped_split\n"
        "from harness.paths import shared_data_dir\n"
        "assert shared_data_dir() is None\n"
        "for name, sizes in [('cifar10-valid', [25000, 25000]), ('cifar100-test', [5000, 5000]),"
        " ('ImageNet16-120-test', [3000, 3000]), ('ImageNet16-120-train', [75850, 75850])]:\n"
        "    split = shipped_split(name)\n"
        "    assert [v.size for v in split.parts.values()] == sizes, name\n"
        "print(shipped_split('cifar10-valid')['train'][:4].tolist())\n"
    )
    env = {**os.environ, "HARNESS_SHARED_DATA": str(tmp_path / "nowhere")}
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True,
        timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[0, 5, 7, 11]"  # the official file's first indices


def test_damaged_package_data_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    manifest, arrays = shipped._package_data()
    damaged = dict(arrays)
    damaged["cifar100-test"] = arrays["cifar100-test"].copy()
    damaged["cifar100-test"][0] ^= 0b1000_0000  # move image 0 to the other half
    monkeypatch.setattr(shipped, "_package_data", lambda: (manifest, damaged))
    with pytest.raises(ArchiveError, match="digest"):
        shipped_split("cifar100-test")
    with pytest.raises(ConfigError, match="did you mean 'cifar100-test'"):
        shipped_split("cifar100-tset")
