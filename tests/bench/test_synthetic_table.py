"""The small synthetic benchmark of the main job: fast, complete, seeded, labelled synthetic."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from scipy.stats import spearmanr

from harness.bench.names import resolve
from harness.bench.store import Store
from harness.bench.synthetic import quality
from harness.bench.synthetic_table import synthetic_table, write_synthetic_store
from harness.oracle import FitnessTables
from harness.protocol import get_protocol


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Store:
    dest = tmp_path_factory.mktemp("syn") / "tss-synthetic"
    return Store(write_synthetic_store(dest, np.random.default_rng(3)))


def test_store_is_complete_and_labelled(store: Store) -> None:
    assert store.synthetic
    for task in ("cifar10", "cifar100", "ImageNet16-120"):
        for role in ("valid", "test"):
            dataset, split = resolve(task, role)
            for hp in (12, 200):
                values = store.metric_all(dataset, split, hp, "accuracy", "mean")
                assert np.isfinite(values).all(), (task, role, hp)
        assert np.isfinite(
            store.metric_all(resolve(task, "valid")[0], "train", 12, "time", 777)
        ).all()


def test_accuracy_follows_the_quality_model(store: Store) -> None:
    acc = store.metric_all("cifar10", "ori-test", 200, "accuracy", "mean")
    q = np.array([quality("tss", i) for i in range(len(acc))])
    assert spearmanr(acc, q).statistic > 0.9
    assert acc[q == 0].max() < 15  # cells without an input-output path stay near chance


def test_oracle_tables_build_from_it(store: Store) -> None:
    tables = FitnessTables.from_store(store, get_protocol("nats-tss"), "cifar100")
    assert tables.complete


def test_same_seed_same_table() -> None:
    a = synthetic_table(np.random.default_rng(5))
    b = synthetic_table(np.random.default_rng(5))
    c = synthetic_table(np.random.default_rng(6))
    assert a.equals(b) and not a["value"].equals(c["value"])
    assert set(a["source"]) == {"synthetic"}


def test_write_leaves_no_temporary_file(tmp_path: Path) -> None:
    write_synthetic_store(tmp_path / "s", np.random.default_rng(0))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s"]


def test_mean_only_data_is_reported_as_a_note(tss_public_table: Path, tmp_path: Path) -> None:
    """The public table holds only seed means at hp 12: the tables say so, once per task."""
    from harness.bench.tidy import import_table

    public = Store(import_table(tss_public_table, tmp_path / "public", progress=False))
    notes = FitnessTables.from_store(public, get_protocol("nats-tss"), "cifar100").notes
    assert any("only seed means" in n for n in notes)
    assert any("evaluation times" in n for n in notes)
    assert len(notes) == len(set(notes))


def test_complete_data_has_no_notes(store: Store) -> None:
    assert FitnessTables.from_store(store, get_protocol("nats-tss"), "cifar10").notes == ()
