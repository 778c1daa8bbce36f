"""Tidy-table importer: hand-made tables round trip, malformed tables fail, public table facts."""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from harness.bench.store import Store
from harness.bench.tidy import COLUMNS, METRICS, import_table, store_target
from harness.errors import ArchiveError, BenchmarkQueryError
from harness.spaces import get_space

TSS = get_space("tss")


def _row(
    index: int,
    dataset: str,
    hp: int,
    seed: float,
    epoch: float,
    split: str,
    metric: str,
    value: float,
    source: str = "hand",
) -> dict[str, object]:
    return {
        "space": "tss",
        "index": index,
        "arch": TSS.index_to_str(index),
        "dataset": dataset,
        "hp": hp,
        "seed": seed,
        "epoch": epoch,
        "split": split,
        "metric": metric,
        "value": value,
        "source": source,
    }


NAN = float("nan")


def small_frame() -> pd.DataFrame:
    """Architectures 0 and 5; per-seed and seed-mean values, times and costs."""
    rows = [
        # hp 200 cifar10-valid: per-seed x-valid only (the mean is computed), arch 5 lacks 888
        _row(0, "cifar10-valid", 200, 777, 199, "x-valid", "accuracy", 80.0, "tpe"),
        _row(0, "cifar10-valid", 200, 888, 199, "x-valid", "accuracy", 82.0, "tpe"),
        _row(5, "cifar10-valid", 200, 777, 199, "x-valid", "accuracy", 70.0, "tpe"),
        _row(0, "cifar10-valid", 200, NAN, NAN, "", "train_time_s", 2000.0),
        _row(5, "cifar10-valid", 200, 777, NAN, "", "train_time_s", 1000.0),
        # hp 200 cifar100: source seed mean and one seed that differs from it
        _row(0, "cifar100", 200, NAN, 199, "x-test", "accuracy", 60.0, "landscape"),
        _row(0, "cifar100", 200, 777, 199, "x-test", "accuracy", 61.5, "tpe"),
        _row(5, "cifar100", 200, NAN, 199, "x-test", "accuracy", 55.0, "landscape"),
        _row(0, "cifar100", 200, NAN, 199, "x-valid", "loss", 1.25),
        _row(0, "cifar100", 200, NAN, NAN, "x-test", "eval_time_s", 400.0),
        _row(0, "cifar100", 200, NAN, NAN, "", "params_mb", 0.5),
        _row(0, "cifar100", 200, NAN, NAN, "", "flops_m", 70.0),
        _row(0, "cifar100", 200, NAN, NAN, "", "latency_s", 0.02),
        # hp 12 cifar10: seed mean at the last epoch
        _row(5, "cifar10", 12, NAN, 11, "ori-test", "accuracy", 66.0),
    ]
    return pd.DataFrame(rows, columns=list(COLUMNS))


def _write(frame: pd.DataFrame, path: Path) -> Path:
    if path.name.endswith(".parquet"):
        frame.to_parquet(path)
    else:
        frame.to_csv(path, index=False)  # compression inferred from .gz
    return path


@pytest.mark.parametrize(
    ("metric", "split", "expected"),
    [
        ("accuracy", "x-valid", ("x-valid/accuracy", "curve")),
        ("accuracy", "train", ("train/accuracy", "curve")),
        ("accuracy", "ori-test", ("ori-test/accuracy", "curve")),
        ("loss", "x-test", ("x-test/loss", "curve")),
        ("loss", "train", ("train/loss", "curve")),
        ("train_time_s", "", ("train/epoch_time", "time")),
        ("eval_time_s", "x-valid", ("x-valid/epoch_time", "time")),
        ("eval_time_s", "ori-test", ("ori-test/epoch_time", "time")),
        ("params_mb", "", ("params", "cost")),
        ("flops_m", "", ("flops", "cost")),
        ("latency_s", "", ("latency", "cost")),
    ],
)
def test_store_target_table(metric: str, split: str, expected: tuple[str, str]) -> None:
    assert store_target(metric, split) == expected


def test_store_target_covers_every_metric() -> None:
    assert set(METRICS) == {
        "accuracy",
        "loss",
        "train_time_s",
        "eval_time_s",
        "params_mb",
        "flops_m",
        "latency_s",
    }


@pytest.mark.parametrize(
    ("metric", "split", "message"),
    [
        ("acuracy", "x-valid", "did you mean 'accuracy'"),
        ("accuracy", "", "needs a split"),
        ("accuracy", "x-vaild", "did you mean 'x-valid'"),
        ("params_mb", "x-valid", "run-level"),
        ("train_time_s", "train", "run-level"),
        ("eval_time_s", "train", "train_time_s"),
    ],
)
def test_store_target_errors(metric: str, split: str, message: str) -> None:
    with pytest.raises(ArchiveError, match=message):
        store_target(metric, split)


@pytest.mark.parametrize("suffix", [".csv", ".csv.gz", ".parquet"])
def test_round_trip(tmp_path: Path, suffix: str) -> None:
    source = _write(small_frame(), tmp_path / f"table{suffix}")
    store = Store(import_table(source, tmp_path / "store", progress=False, synthetic=True))
    assert store.n_present == 2 and store.space_name == "tss"
    assert store.synthetic and store.source == "tidy"
    assert store.checksum == hashlib.sha256(source.read_bytes()).hexdigest()
    assert store.manifest["value_sources"] == {"hand": 8, "landscape": 2, "tpe": 4}
    block = store.block("cifar10-valid", 200)
    assert (block.seeds, block.epochs, block.epochs_held) == ((777, 888), 200, (199,))
    assert block.splits == ("train", "x-valid") and block.mean == "source"
    assert store.block("cifar100", "200").splits == ("x-valid", "x-test")
    # per seed, computed mean (recorded in the manifest), and 'all' only where both seeds ran
    assert store.metric(0, "cifar10-valid", "x-valid", 200, "accuracy", 888) == 82.0
    assert store.metric(0, "cifar10-valid", "x-valid", 200, "accuracy", "mean") == 81.0
    assert store.metric(5, "cifar10-valid", "x-valid", 200, "accuracy", "mean") == 70.0
    assert store.metric(0, "cifar10-valid", "x-valid", 200, "accuracy", "all") == 81.0
    with pytest.raises(BenchmarkQueryError, match="'all' requires"):
        store.metric(5, "cifar10-valid", "x-valid", 200, "accuracy", "all")
    assert store.manifest["computed_means"] == {
        "200/cifar10-valid/x-valid/accuracy": 2,
        "200/cifar10-valid/train/epoch_time": 1,
    }
    # the source's seed mean wins over the one seed it also gives
    assert store.metric(0, "cifar100", "x-test", 200, "accuracy", "mean") == 60.0
    assert store.metric(0, "cifar100", "x-test", 200, "accuracy", 777) == 61.5
    assert store.metric(0, "cifar100", "x-valid", 200, "loss", "mean") == 1.25
    assert store.metric(5, "cifar10", "ori-test", "12", "accuracy", "mean") == 66.0
    # whole-schedule times are stored per epoch
    assert store.metric(0, "cifar10-valid", "train", 200, "time", "mean") == 2000.0
    # a table of totals cannot say what half the schedule took
    with pytest.raises(BenchmarkQueryError, match="holds totals only"):
        store.metric(0, "cifar10-valid", "train", 200, "time", "mean", epoch=99)
    assert store.metric(5, "cifar10-valid", "train", 200, "time", 777) == 1000.0
    cost = store.cost(0, "cifar100", 200)
    assert math.isclose(cost.params, 0.5) and math.isclose(cost.flops, 70.0)
    assert math.isclose(cost.latency, 0.02, rel_tol=1e-6)
    assert cost.eval_time_per_epoch == pytest.approx({"x-valid": NAN, "x-test": 2.0}, nan_ok=True)
    assert math.isnan(cost.train_time_per_epoch)  # this block holds no training time


def test_round_trip_absent_and_unheld(tmp_path: Path) -> None:
    store = Store(
        import_table(_write(small_frame(), tmp_path / "t.csv"), tmp_path / "s", progress=False)
    )
    with pytest.raises(BenchmarkQueryError, match="holds 2 of 15625"):
        store.metric(1, "cifar100", "x-test", 200, "accuracy", "mean")
    with pytest.raises(BenchmarkQueryError, match="epochs held: 199"):
        store.metric(0, "cifar100", "x-test", 200, "accuracy", "mean", epoch=100)
    with pytest.raises(BenchmarkQueryError, match="holds no cifar10-valid @ hp 12"):
        store.metric(0, "cifar10-valid", "x-valid", 12, "accuracy", "mean")
    values = store.metric_all("cifar100", "x-test", 200, "accuracy", "mean")
    assert values.shape == (15625,) and np.isfinite(values).sum() == 2
    assert store.present("cifar100", 200).sum() == 2
    assert store.present("cifar10", 12).tolist().count(True) == 1


def test_size_space_with_unpadded_hp(tmp_path: Path) -> None:
    sss = get_space("sss")
    frame = pd.DataFrame(
        [
            {**_row(7, "cifar10", 1, 777, 0, "train", "accuracy", 30.0), "hp": "1"},
            {**_row(7, "cifar10", 90, NAN, 89, "ori-test", "accuracy", 88.0), "hp": "90"},
        ],
        columns=list(COLUMNS),
    ).assign(space="sss", arch=sss.index_to_str(7))
    store = Store(
        import_table(_write(frame, tmp_path / "s.parquet"), tmp_path / "s", progress=False)
    )
    assert store.space_name == "sss" and store.hps() == ["01", "90"]
    assert store.metric(7, "cifar10", "train", "01", "accuracy", 777, epoch=0) == 30.0
    assert store.metric(sss.index_to_str(7), "cifar10", "ori-test", 90, "accuracy", "mean") == 88.0
    assert store.block("cifar10", 1).epochs == 1


def test_existing_store_needs_overwrite(tmp_path: Path) -> None:
    table = _write(small_frame(), tmp_path / "t.csv")
    import_table(table, tmp_path / "s", progress=False)
    with pytest.raises(ArchiveError, match="already exists"):
        import_table(table, tmp_path / "s", progress=False)
    frame = small_frame()
    frame.loc[0, "value"] = 90.0
    import_table(_write(frame, table), tmp_path / "s", progress=False, overwrite=True)
    assert Store(tmp_path / "s").metric(0, "cifar10-valid", "x-valid", 200, "accuracy", 777) == 90.0


Edit = Callable[[pd.DataFrame], pd.DataFrame]


def _set(row: int, **values: Any) -> Edit:
    def edit(frame: pd.DataFrame) -> pd.DataFrame:
        frame = frame.astype(object)
        for column, value in values.items():
            frame.at[row, column] = value
        return frame

    return edit


MALFORMED: list[tuple[str, Edit, str]] = [
    ("no value column", lambda f: f.drop(columns=["value"]), r"missing column\(s\) value"),
    ("no rows", lambda f: f.iloc[:0], "no rows"),
    ("two spaces", _set(3, space="sss"), "row 4 .*one space per table"),
    ("unknown space", lambda f: f.assign(space="tsss"), "unknown space 'tsss'"),
    ("index out of range", _set(2, index=15625), r"row 3 .*outside the tss space \(0..15624\)"),
    ("index not a number", _set(2, index="five"), "index 'five' is not a number"),
    ("wrong arch", _set(1, arch=TSS.index_to_str(7)), "row 2 .*not the official string of index 0"),
    ("unknown dataset", _set(0, dataset="cifar-10"), "did you mean 'cifar10'"),
    ("unknown hp", _set(0, hp=100), "unknown hp for tss"),
    ("unknown split", _set(0, split="x-vaild"), "did you mean 'x-valid'"),
    (
        "split not of dataset",
        _set(13, split="x-valid"),
        "row 14 .*unknown split for cifar10 'x-valid'",
    ),
    ("unknown metric", _set(0, metric="acuracy"), "did you mean 'accuracy'"),
    ("duplicate", lambda f: pd.concat([f, f.iloc[[5]]]), "row 15 .*duplicate of row 6"),
    ("no epoch", _set(0, epoch=NAN), "needs an epoch"),
    (
        "epoch past the schedule",
        _set(13, epoch=12),
        r"epoch 12 is outside the hp-12 schedule \(0..11\)",
    ),
    ("epoch on a run-level metric", _set(3, epoch=199), "must have an empty epoch"),
    ("fractional seed", _set(0, seed=777.5), "seed 777.5 is not an integer"),
    ("empty value", _set(4, value=NAN), "row 5 .*value is empty"),
    ("per-seed cost", _set(10, seed=777), "seed must be empty"),
    ("run-level with split", _set(3, split="x-valid"), "run-level"),
]


@pytest.mark.parametrize(("what", "edit", "message"), MALFORMED, ids=[m[0] for m in MALFORMED])
def test_malformed_tables(tmp_path: Path, what: str, edit: Edit, message: str) -> None:
    table = _write(edit(small_frame()), tmp_path / "bad.csv")
    with pytest.raises(ArchiveError, match=message) as info:
        import_table(table, tmp_path / "store", progress=False)
    assert str(info.value).startswith("bad.csv"), what
    assert list(tmp_path.iterdir()) == [table]  # nothing left behind


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("table.txt", b"space,index\n", "not a tidy table"),
        ("table.csv.gz", b"not gzip at all", "cannot read table.csv.gz"),
        ("table.parquet", b"PAR1 garbage", "cannot read table.parquet"),
    ],
)
def test_unreadable_files(tmp_path: Path, name: str, content: bytes, message: str) -> None:
    (tmp_path / name).write_bytes(content)
    with pytest.raises(ArchiveError, match=message):
        import_table(tmp_path / name, tmp_path / "store", progress=False)
    with pytest.raises(ArchiveError, match="does not exist"):
        import_table(tmp_path / "absent.csv", tmp_path / "store", progress=False)
    assert not (tmp_path / "store").exists()


# --------------------------------------------------------------------------- the public table
@pytest.fixture(scope="session")
def public_store(
    tss_public_table: Path, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Store, float]:
    """The public tss table imported once per session, with the import's wall time (s)."""
    start = time.perf_counter()
    path = import_table(
        tss_public_table, tmp_path_factory.mktemp("tidy") / "public", progress=False
    )
    return Store(path), time.perf_counter() - start


def test_public_import(public_store: tuple[Store, float]) -> None:
    store, seconds = public_store
    assert seconds < 15.0, f"import took {seconds:.1f} s"
    assert store.n_present == 15625 and store.manifest["rows"] is None
    assert store.manifest["n_rows"] == 477632
    assert store.manifest["value_sources"]["constrained-tpe"] == 227632
    assert store.hps() == ["12", "200"]


@pytest.mark.parametrize(
    ("dataset", "split", "best", "at_9930"),
    [
        ("cifar10", "ori-test", 94.37, 94.36),
        ("cifar100", "x-test", 73.51, 73.51),
        ("ImageNet16-120", "x-test", 47.31, 46.34),
    ],
)
def test_public_known_facts(
    public_store: tuple[Store, float], dataset: str, split: str, best: float, at_9930: float
) -> None:
    store, _ = public_store
    index, value = store.best(dataset, split, 200, "mean")
    assert value == pytest.approx(best, abs=0.005)
    if dataset == "cifar100":
        assert index == 9930
    assert store.metric(9930, dataset, split, 200, "accuracy", "mean") == pytest.approx(
        at_9930, abs=0.005
    )


def test_public_seeds_and_means(public_store: tuple[Store, float]) -> None:
    store, _ = public_store
    x_valid = store.metric_all("cifar100", "x-valid", 200, "accuracy", "mean")
    assert np.isfinite(x_valid).all()
    counts = {}
    for seed in (777, 888, 999):
        values = store.metric_all("cifar10-valid", "x-valid", 200, "accuracy", seed)
        counts[seed] = int(np.isfinite(values).sum())
    assert counts == {777: 15625, 888: 15625, 999: 8169}
    first = [
        store.metric(0, "cifar10-valid", "x-valid", 200, "accuracy", s) for s in (777, 888, 999)
    ]
    assert first == pytest.approx([82.092, 81.616, 82.24], abs=1e-4)
    assert store.metric(0, "cifar10-valid", "x-valid", 200, "accuracy", "mean") == pytest.approx(
        np.mean(first)
    )
    # 'all': the seed mean where all three seeds exist, NaN elsewhere
    every = store.metric_all("cifar10-valid", "x-valid", 200, "accuracy", "all")
    mean = store.metric_all("cifar10-valid", "x-valid", 200, "accuracy", "mean")
    has_999 = store.coverage("cifar10-valid", 200)[2]
    assert np.isfinite(every).sum() == 8169
    np.testing.assert_array_equal(every[has_999], mean[has_999])
    lacking = int(np.flatnonzero(~has_999)[0])
    with pytest.raises(BenchmarkQueryError, match="'all' requires"):
        store.metric(lacking, "cifar10-valid", "x-valid", 200, "accuracy", "all")
    assert np.isfinite(store.metric_all("cifar10", "ori-test", 12, "accuracy", "mean")).all()
    assert store.metric(0, "cifar100", "train", 200, "time", "mean") > 0
