"""Shared fixtures: locating the shared development data, and a tiny benchmark store.

Tests that need ``../shared/data`` (or ``$HARNESS_SHARED_DATA``) skip with a reason when it is
absent, and fail instead when ``HARNESS_REQUIRE_SHARED=1`` (as in CI); so do the parity tests
that need the reference implementation (the ``xautodl`` fixture). ``tiny_store`` is a
small made-up tss store (whole space, smooth accuracies) built once per session.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from harness.bench.store import Store, open_store
from harness.bench.tidy import import_table
from harness.paths import shared_data_dir
from harness.spaces import get_space, sss, tss


def _require_shared() -> bool:
    return os.environ.get("HARNESS_REQUIRE_SHARED", "") not in ("", "0")


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """Root of the shared data directory (skips, or fails under HARNESS_REQUIRE_SHARED=1)."""
    path = shared_data_dir()
    if path is None:
        msg = "shared data not found (set HARNESS_SHARED_DATA or place ../shared/data)"
        if _require_shared():
            pytest.fail(msg)
        pytest.skip(msg)
    return path


def shared_path(root: Path, *parts: str) -> Path:
    """A path inside the shared data; fails or skips like ``shared_data`` when it is missing."""
    path = root.joinpath(*parts)
    if not path.exists():
        msg = f"shared data file missing: {'/'.join(parts)}"
        if _require_shared():
            pytest.fail(msg)
        pytest.skip(msg)
    return path


@pytest.fixture(scope="session")
def tss_samples(shared_data: Path) -> Path:
    return shared_path(shared_data, "nats-official-samples", "NATS-tss-v1_0-3ffb9-simple")


@pytest.fixture(scope="session")
def sss_samples(shared_data: Path) -> Path:
    return shared_path(shared_data, "nats-official-samples", "NATS-sss-v1_0-50262-simple")


@pytest.fixture(scope="session")
def xautodl() -> object:
    """The reference implementation (``xautodl`` 1.0.0, a test-only dependency installed with
    ``pip install --no-deps xautodl==1.0.0``); skips when it is absent, or fails under
    HARNESS_REQUIRE_SHARED=1 (as in CI, which installs it)."""
    try:
        import xautodl as module
    except ImportError:
        msg = "xautodl is not installed (pip install --no-deps xautodl==1.0.0)"
        if _require_shared():
            pytest.fail(msg)
        pytest.skip(msg)
    return module


@pytest.fixture(scope="session")
def tss_public_table(shared_data: Path) -> Path:
    return shared_path(shared_data, "nats-tss-public", "nats_tss_public.csv.gz")


# --------------------------------------------------------------------------- a tiny benchmark
def tiny_table(seed: int = 0, space_name: str = "tss") -> pd.DataFrame:
    """A tidy table over the whole tss (or sss) space: short-schedule fitness (seeds 777, 888)
    and train/eval times for all three tasks, long-schedule (hp 200 / 90) seed-mean valid and
    test accuracy. Accuracy is a smooth function of the choices, so search beats chance;
    values depend only on ``seed``."""
    rng = np.random.default_rng(seed)
    space = get_space(space_name)
    ops = space.all_choices().astype(np.int64)  # (n, positions)
    n, (rows, width) = space.num_archs, space.shape
    long_hp = "200" if space_name == "tss" else "90"
    quality = rng.normal(size=(rows, width))[np.arange(rows), ops].sum(axis=1)
    quality = (quality - quality.min()) / np.ptp(quality)  # (n,) in [0, 1]
    cost = 60.0 + rng.uniform(20, 120, size=(rows, width))[np.arange(rows), ops].sum(axis=1)
    parts = []

    def add(
        dataset: str, hp: str, split: str, metric: str, values: np.ndarray, seed_: object
    ) -> None:
        epoch = float(int(hp) - 1) if metric == "accuracy" else np.nan
        parts.append(
            pd.DataFrame(
                {
                    "index": np.arange(n),
                    "dataset": dataset,
                    "hp": hp,
                    "seed": seed_,
                    "epoch": epoch,
                    "split": split,
                    "metric": metric,
                    "value": values,
                }
            )
        )

    tops = {"cifar10": 95.0, "cifar100": 74.0, "ImageNet16-120": 47.0}
    for task, top in tops.items():
        fit_set = "cifar10-valid" if task == "cifar10" else task
        for s in (777, 888):
            noise = rng.normal(scale=0.4, size=n)
            add(fit_set, "12", "x-valid", "accuracy", top - 12 - 25 * (1 - quality) + noise, s)
            add(fit_set, "12", "", "train_time_s", cost * rng.uniform(0.97, 1.03, n), s)
            add(fit_set, "12", "x-valid", "eval_time_s", 12 * 2.0 * np.ones(n), s)
        test = top - 20 * (1 - quality) + rng.normal(scale=0.3, size=n)
        add(fit_set, long_hp, "x-valid", "accuracy", test - 2.5, np.nan)
        add(task, long_hp, "ori-test" if task == "cifar10" else "x-test", "accuracy", test, np.nan)
    frame = pd.concat(parts, ignore_index=True)
    frame["space"] = space_name
    strings = tss.all_strings() if space_name == "tss" else sss.all_strings()
    frame["arch"] = np.array(strings, dtype=object)[frame["index"]]
    frame["seed"] = frame["seed"].astype("Float64")
    frame["source"] = "tiny-test"
    return frame[
        [
            "space",
            "index",
            "arch",
            "dataset",
            "hp",
            "seed",
            "epoch",
            "split",
            "metric",
            "value",
            "source",
        ]
    ]


def make_tiny_store(
    dest: Path, seed: int = 0, space: str = "tss", synthetic: bool = False
) -> Store:
    """Write :func:`tiny_table` and import it as a store at ``dest``."""
    table = dest.parent / f"{dest.name}.parquet"
    tiny_table(seed, space).to_parquet(table, index=False)
    return open_store(import_table(table, dest, progress=False, synthetic=synthetic))


@pytest.fixture
def one_torch_thread() -> Iterator[None]:
    """Torch on one intra-op thread for the test (use via ``pytest.mark.usefixtures``)."""
    from harness.supernet.testing import one_torch_thread as single_thread

    with single_thread():
        yield


@pytest.fixture(scope="session")
def tiny_store(tmp_path_factory: pytest.TempPathFactory) -> Store:
    """One tiny tss store (:func:`tiny_table`, seed 0) per test session."""
    return make_tiny_store(tmp_path_factory.mktemp("stores") / "tiny")


@pytest.fixture(scope="session")
def tiny_sss_store(tmp_path_factory: pytest.TempPathFactory) -> Store:
    """A tiny synthetic sss store (the size space has no public table to test against)."""
    return make_tiny_store(tmp_path_factory.mktemp("stores") / "tiny-sss", 0, "sss", True)
