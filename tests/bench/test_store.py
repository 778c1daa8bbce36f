"""Store queries and on-disk format, on the genuine official sample files (indices 0, 11, 284)."""

from __future__ import annotations

import bz2
import json
import pickle
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from harness.bench.format import MANIFEST, BlockSpec, StoreWriter
from harness.bench.official import import_official
from harness.bench.store import Store, list_stores, open_store
from harness.errors import ArchiveError, BenchmarkQueryError

HELD = (0, 11, 284)


@pytest.fixture(scope="module")
def tss(tss_samples: Path, tmp_path_factory: pytest.TempPathFactory) -> Store:
    dest = tmp_path_factory.mktemp("store") / "tss"
    return Store(import_official(tss_samples, dest, n_jobs=1, progress=False))


@pytest.fixture(scope="module")
def sss(sss_samples: Path, tmp_path_factory: pytest.TempPathFactory) -> Store:
    dest = tmp_path_factory.mktemp("store") / "sss"
    return Store(import_official(sss_samples, dest, n_jobs=1, progress=False))


def _run(samples: Path, index: int, hp: str, dataset: str, seed: int) -> dict[str, Any]:
    """One training run read straight from the official file (the reference)."""
    with bz2.open(samples / f"{index:06d}.pickle.pbz2", "rb") as fh:
        run: dict[str, Any] = pickle.load(fh)[hp]["all_results"][(dataset, seed)]
    return run


def test_absent_architecture_names_how_many_are_held(tss: Store, sss: Store) -> None:
    with pytest.raises(BenchmarkQueryError, match=r"absent .* holds 3 of 15625 architectures"):
        tss.metric(1, "cifar10", "ori-test", 200, "accuracy", "mean")
    with pytest.raises(BenchmarkQueryError, match="holds 3 of 32768 architectures"):
        sss.cost(5, "cifar100", 90)
    assert tss.n_present == 3 and sss.n_present == 3


def test_seed_policies(tss: Store, tss_samples: Path) -> None:
    finals = []
    for seed in (777, 888, 999):
        run = _run(tss_samples, 11, "200", "cifar10-valid", seed)
        expected = run["eval_acc1es"]["x-valid@199"]
        ours = tss.metric(11, "cifar10-valid", "x-valid", 200, "accuracy", seed)
        assert ours == pytest.approx(expected, rel=1e-6)
        finals.append(expected)
    mean = tss.metric(11, "cifar10-valid", "x-valid", 200, "accuracy", "mean")
    assert mean == pytest.approx(np.mean(finals), rel=1e-6)
    assert tss.metric(11, "cifar10-valid", "x-valid", 200, "accuracy", "all") == mean
    # hp 12: seeds 111 and 777 exist for cifar10-valid, only 111 for cifar10
    assert tss.block("cifar10", 12).held_seeds == (111,)
    with pytest.raises(BenchmarkQueryError, match=r"seed 777 not held .* seeds: 111"):
        tss.metric(0, "cifar10", "ori-test", 12, "accuracy", 777)
    with pytest.raises(BenchmarkQueryError, match="seed must be an int, 'mean' or 'all'"):
        tss.metric(0, "cifar10", "ori-test", 12, "accuracy", "random")  # type: ignore[arg-type]


def test_epoch_default_is_last_and_range_is_checked(tss: Store) -> None:
    last = tss.metric(0, "cifar100", "x-test", 200, "accuracy", 777, epoch=199)
    assert tss.metric(0, "cifar100", "x-test", 200, "accuracy", 777) == last
    assert tss.metric(0, "cifar100", "train", 12, "loss", 111) == tss.metric(
        0, "cifar100", "train", 12, "loss", 111, epoch=11
    )
    for bad in (200, -1):
        with pytest.raises(BenchmarkQueryError, match=r"outside the hp-200 schedule \(0..199\)"):
            tss.metric(0, "cifar100", "x-test", 200, "accuracy", 777, epoch=bad)
    epochs, curve = tss.curve(0, "cifar10", "train", 200, "accuracy", "mean")
    assert epochs.shape == curve.shape == (200,) and curve[-1] == pytest.approx(
        tss.metric(0, "cifar10", "train", 200, "accuracy", "mean")
    )


def test_time_metric(tss: Store, tss_samples: Path) -> None:
    run = _run(tss_samples, 284, "200", "cifar100", 888)
    times = np.array([run["train_times"][e] for e in range(200)])
    total = tss.metric(284, "cifar100", "train", 200, "time", 888)
    assert total == pytest.approx(times.sum(), rel=1e-5)
    assert tss.metric(284, "cifar100", "train", 200, "time", 888, epoch=9) == pytest.approx(
        times.mean() * 10, rel=1e-5
    )
    assert tss.schedule_time(284, "cifar100", 200, 888) == total
    with pytest.raises(BenchmarkQueryError, match="outside the hp-200 schedule"):
        tss.metric(284, "cifar100", "train", 200, "time", 888, epoch=200)


def test_cost(tss: Store, sss: Store, tss_samples: Path) -> None:
    run = _run(tss_samples, 11, "200", "cifar10", 777)
    cost = tss.cost(11, "cifar10", 200)
    assert cost.params == pytest.approx(run["params"], rel=1e-6)
    assert cost.flops == pytest.approx(run["flop"], rel=1e-6)
    assert cost.train_time_total == pytest.approx(cost.train_time_per_epoch * 200)
    assert set(cost.eval_time_per_epoch) == {"ori-test"}
    assert np.isfinite(cost.latency) and cost.latency > 0
    small = sss.cost(0, "cifar10", 1)  # hp 1 of sss, normalised to "01"
    assert small.train_time_total == pytest.approx(small.train_time_per_epoch)
    with pytest.raises(BenchmarkQueryError, match="unknown cost field"):
        tss.cost_all("cifar10", 200, "weights")


def test_best_and_vectorised_metric_all(tss: Store, sss: Store) -> None:
    values = tss.metric_all("cifar10", "ori-test", 200, "accuracy", "mean")
    assert values.shape == (15625,) and values.dtype == np.float32
    assert np.flatnonzero(np.isfinite(values)).tolist() == list(HELD)
    singles = {i: tss.metric(i, "cifar10", "ori-test", 200, "accuracy", "mean") for i in HELD}
    for index, value in singles.items():
        assert values[index] == np.float32(value)
    top = max(singles, key=lambda i: singles[i])
    assert tss.best("cifar10", "ori-test", 200, "mean") == (top, pytest.approx(singles[top]))
    fastest = tss.best("cifar10", "train", 200, "mean", metric="time")[0]
    times = tss.metric_all("cifar10", "train", 200, "time", "mean")
    assert fastest == int(np.nanargmin(times))
    assert sss.metric_all("ImageNet16-120", "x-test", "90", "loss", 777).shape == (32768,)


def test_results_are_read_only_and_cached(tss: Store) -> None:
    first = tss.metric_all("cifar100", "x-valid", 200, "accuracy", 777)
    assert tss.metric_all("cifar100", "x-valid", 200, "accuracy", 777) is first
    assert not first.flags.writeable
    with pytest.raises(ValueError, match="read-only"):
        first[0] = 1.0
    assert tss.metric_all("cifar100", "x-valid", 200, "accuracy", 888) is not first


def test_bad_names_say_what_exists(tss: Store) -> None:
    with pytest.raises(BenchmarkQueryError, match="did you mean 'x-valid'"):
        tss.metric(0, "cifar100", "x-vaild", 200, "accuracy", "mean")
    with pytest.raises(BenchmarkQueryError, match="did you mean 'accuracy'"):
        tss.metric_all("cifar100", "x-valid", 200, "acuracy", "mean")
    with pytest.raises(BenchmarkQueryError, match="unknown hp for tss"):
        tss.metric(0, "cifar100", "x-valid", 90, "accuracy", "mean")
    with pytest.raises(BenchmarkQueryError, match="unknown dataset"):
        tss.block("imagenet", 200)


def test_info_counts_present_architectures(tss: Store) -> None:
    info = tss.info()
    assert len(info["blocks"]) == 8
    assert all(b["archs_present"] == 3 for b in info["blocks"])
    assert info["source"] == "official" and info["n_source_files"] == 4


def test_damaged_store(tss: Store, tmp_path: Path) -> None:
    copy = Path(shutil.copytree(tss.path, tmp_path / "damaged"))
    with open(copy / "data.bin", "r+b") as fh:
        fh.truncate(1000)
    with pytest.raises(ArchiveError, match="damaged"):
        Store(copy).metric(0, "cifar10", "ori-test", 200, "accuracy", "mean")


def test_wrong_format_version_and_missing_manifest(tss: Store, tmp_path: Path) -> None:
    copy = Path(shutil.copytree(tss.path, tmp_path / "old"))
    manifest = json.loads((copy / MANIFEST).read_text())
    manifest["format_version"] = 99
    (copy / MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(ArchiveError, match=r"format version 99.*re-import"):
        Store(copy)
    (copy / MANIFEST).unlink()
    with pytest.raises(ArchiveError, match="not a benchmark store"):
        Store(copy)


def test_atomic_writer_leaves_nothing_on_exception(tmp_path: Path) -> None:
    block = BlockSpec(
        hp="12", dataset="cifar10", seeds=(111,), epochs=12, epochs_held=(11,), splits=("train",)
    )
    dest = tmp_path / "partial"
    with pytest.raises(RuntimeError, match="boom"), StoreWriter(dest, "tss", 10, [block]) as writer:
        with writer.arrays() as views:
            views["12/cifar10/train/accuracy"][0, 0, :] = 50.0
        raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []
    with StoreWriter(dest, "tss", 10, [block]) as writer:
        writer.finalize(source="test", provenance={}, sources=[])
    with pytest.raises(ArchiveError, match="already exists"):
        StoreWriter(dest, "tss", 10, [block])


def test_named_stores(tss: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HARNESS_HOME", str(tmp_path))
    assert list_stores() == []
    shutil.copytree(tss.path, tmp_path / "stores" / "tss-official")
    assert list_stores() == ["tss-official"]
    assert open_store("tss-official").n_present == 3
    with pytest.raises(ArchiveError, match="did you mean 'tss-official'"):
        open_store("tss-oficial")
