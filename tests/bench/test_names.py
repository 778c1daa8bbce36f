"""The one mapping from protocol names to official NATS keys, pinned entry by entry."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from harness.bench import names
from harness.errors import BenchmarkQueryError

RESOLVE = [
    ("cifar10", "train", ("cifar10-valid", "train")),
    ("cifar10", "valid", ("cifar10-valid", "x-valid")),
    ("cifar10", "test", ("cifar10", "ori-test")),
    ("cifar100", "train", ("cifar100", "train")),
    ("cifar100", "valid", ("cifar100", "x-valid")),
    ("cifar100", "test", ("cifar100", "x-test")),
    ("ImageNet16-120", "train", ("ImageNet16-120", "train")),
    ("ImageNet16-120", "valid", ("ImageNet16-120", "x-valid")),
    ("ImageNet16-120", "test", ("ImageNet16-120", "x-test")),
]


@pytest.mark.parametrize(("task", "role", "expected"), RESOLVE)
def test_resolve_table(task: str, role: str, expected: tuple[str, str]) -> None:
    assert names.resolve(task, role) == expected
    dataset, split = expected
    assert split == "train" or split in names.EVAL_SETS[dataset]


def test_resolve_table_is_complete() -> None:
    assert {(t, r) for t, r, _ in RESOLVE} == {(t, r) for t in names.TASKS for r in names.ROLES}


@pytest.mark.parametrize(
    ("task", "role", "message"),
    [
        ("cifar10-valid", "valid", "is a training run, not a task"),
        ("cifar-100", "test", "did you mean 'cifar100'"),
        ("cifar10", "validation", "did you mean 'valid'"),
        ("cifar10", "x-valid", "unknown role 'x-valid'"),
    ],
)
def test_resolve_errors(task: str, role: str, message: str) -> None:
    with pytest.raises(BenchmarkQueryError, match=message):
        names.resolve(task, role)


HP_KEYS = [
    ("tss", 200, "200"),
    ("tss", "200", "200"),
    ("tss", 12, "12"),
    ("tss", "012", "12"),
    ("tss", np.int64(12), "12"),
    ("tss", 12.0, "12"),
    ("sss", 1, "01"),
    ("sss", "1", "01"),
    ("sss", "01", "01"),
    ("sss", 12, "12"),
    ("sss", "90", "90"),
]


@pytest.mark.parametrize(("space", "hp", "key"), HP_KEYS)
def test_hp_key(space: str, hp: object, key: str) -> None:
    assert names.hp_key(space, hp) == key  # type: ignore[arg-type]
    assert key in names.HPS[space]


@pytest.mark.parametrize(
    ("space", "hp", "message"),
    [
        ("tss", 1, r"unknown hp for tss 1 .*expected one of: 12, 200"),
        ("sss", 200, "unknown hp for sss"),
        ("tss", "twelve", "unknown hp for tss 'twelve'"),
        ("tss", 12.5, "unknown hp for tss 12.5"),
        ("sss", True, "unknown hp for sss True"),
        ("tss", None, "unknown hp for tss None"),
        ("tss", float("inf"), "unknown hp for tss inf"),
        ("xss", 12, "unknown space 'xss'"),
    ],
)
def test_hp_key_errors(space: str, hp: object, message: str) -> None:
    with pytest.raises(BenchmarkQueryError, match=message):
        names.hp_key(space, hp)  # type: ignore[arg-type]


def test_check_dataset() -> None:
    for dataset in names.DATASETS:
        assert names.check_dataset(dataset) == dataset
    with pytest.raises(BenchmarkQueryError, match="did you mean 'ImageNet16-120'"):
        names.check_dataset("imagenet16-120")


def test_cifar10_validation_split_points_to_the_valid_run(
    tss_samples: Path, tmp_path: Path
) -> None:
    from harness.bench.official import import_official
    from harness.bench.store import Store

    store = Store(import_official(tss_samples, tmp_path / "s", n_jobs=1, progress=False))
    with pytest.raises(BenchmarkQueryError, match="cifar10-valid"):
        store.metric(0, "cifar10", "x-valid", 200, "accuracy", "mean")
