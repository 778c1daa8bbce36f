"""The official-archive importer: both layouts, odd file names, bad files, atomicity."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from harness.bench.official import import_official
from harness.bench.store import Store
from harness.bench.synthetic import corrupt_file, write_synthetic_archive
from harness.errors import ArchiveError

TSS = [0, 11, 284, 5000, 15624]
SSS = [0, 7, 32767]


@pytest.fixture(scope="module")
def archives(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("archives")
    out = {}
    for space, indices in (("tss", TSS), ("sss", SSS)):
        for layout in ("dir", "file"):
            rng = np.random.default_rng(7)  # the same content in both layouts
            path = write_synthetic_archive(root / f"{space}-{layout}", space, rng, indices, layout)
            out[f"{space}-{layout}"] = path
    rng = np.random.default_rng(7)
    out["tss-unpadded"] = write_synthetic_archive(
        root / "tss-unpadded", "tss", rng, TSS, "dir", unpadded_names=True
    )
    return out


def _data(store_dir: Path) -> bytes:
    return (store_dir / "data.bin").read_bytes()


@pytest.mark.parametrize("space", ["tss", "sss"])
def test_single_file_and_directory_layouts_give_the_same_store(
    space: str, archives: dict[str, Path], tmp_path: Path
) -> None:
    a = import_official(archives[f"{space}-dir"], tmp_path / "a", n_jobs=1, progress=False)
    b = import_official(archives[f"{space}-file"], tmp_path / "b", progress=False)
    assert _data(a) == _data(b)
    store = Store(b)
    indices = TSS if space == "tss" else SSS
    assert store.n_present == len(indices)
    hp = 200 if space == "tss" else 90
    values = store.metric_all("cifar10", "ori-test", hp, "accuracy", "mean")
    assert np.isfinite(values[indices]).all() and np.isnan(np.delete(values, indices)).all()


def test_unpadded_names_and_parallel_import_match(
    archives: dict[str, Path], tmp_path: Path
) -> None:
    a = import_official(archives["tss-dir"], tmp_path / "a", n_jobs=1, progress=False)
    b = import_official(archives["tss-unpadded"], tmp_path / "b", n_jobs=2, progress=False)
    assert _data(a) == _data(b)


def _copy(archive: Path, tmp_path: Path) -> Path:
    target = tmp_path / archive.name
    shutil.copytree(archive, target)
    for p in target.iterdir():
        p.chmod(0o644)
    return target


@pytest.mark.parametrize("mode", ["truncate", "garbage", "wrong_type"])
def test_bad_file_names_the_file_and_leaves_nothing(
    mode: str, archives: dict[str, Path], tmp_path: Path
) -> None:
    archive = _copy(archives["tss-dir"], tmp_path)
    corrupt_file(archive / "005000.pickle.pbz2", mode)
    dest = tmp_path / "stores" / "x"
    dest.parent.mkdir()
    with pytest.raises(ArchiveError, match=r"005000\.pickle\.pbz2"):
        import_official(archive, dest, n_jobs=1, progress=False)
    assert list(dest.parent.iterdir()) == []  # no store, no temporary directory


def test_truncated_single_file_is_an_archive_error(
    archives: dict[str, Path], tmp_path: Path
) -> None:
    single = archives["tss-file"]
    broken = tmp_path / single.name
    broken.write_bytes(single.read_bytes()[: single.stat().st_size // 2])
    with pytest.raises(ArchiveError, match=single.name):
        import_official(broken, tmp_path / "s", progress=False)
    assert not (tmp_path / "s").exists()


def test_duplicate_and_out_of_range_indices(archives: dict[str, Path], tmp_path: Path) -> None:
    archive = _copy(archives["tss-dir"], tmp_path)
    shutil.copy(archive / "000011.pickle.pbz2", archive / "11.pickle.pbz2")
    with pytest.raises(ArchiveError, match="index 11 appears twice"):
        import_official(archive, tmp_path / "s", progress=False)
    (archive / "11.pickle.pbz2").unlink()
    shutil.copy(archive / "000011.pickle.pbz2", archive / "099999.pickle.pbz2")
    with pytest.raises(ArchiveError, match="outside the tss space"):
        import_official(archive, tmp_path / "s", progress=False)


def test_not_an_archive(tmp_path: Path) -> None:
    with pytest.raises(ArchiveError, match=r"no meta\.pickle\.pbz2"):
        import_official(tmp_path, tmp_path / "s", progress=False)
    with pytest.raises(ArchiveError, match="does not exist"):
        import_official(tmp_path / "missing", tmp_path / "s", progress=False)


def test_existing_store_needs_overwrite(archives: dict[str, Path], tmp_path: Path) -> None:
    dest = import_official(archives["sss-dir"], tmp_path / "s", progress=False)
    with pytest.raises(ArchiveError, match="already exists"):
        import_official(archives["sss-dir"], dest, progress=False)
    import_official(archives["sss-dir"], dest, progress=False, overwrite=True)
    assert Store(dest).n_present == len(SSS)
