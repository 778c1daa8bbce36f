"""The parity corners with ``nats_bench`` on an official-format archive with the real quirks.

The genuine sample files, with changes the full archives are known to hold: per-epoch times
that vary within a run, a seed missing an evaluation at one epoch, seeds disagreeing on params
without seed 888, and evaluation times at epochs whose accuracy the file does not hold (this
last one is in the genuine files already: ``cifar10-valid`` holds ``ori-test`` accuracy only
at the last epoch but its times at every epoch). Where the official API answers, the store
answers the same; where it refuses, the store refuses with a message.
"""

from __future__ import annotations

import bz2
import logging
import pickle
import shutil
from pathlib import Path
from typing import Any

import pytest

from harness.bench import names
from harness.bench.official import import_official
from harness.bench.store import Store
from harness.errors import BenchmarkQueryError

nats_bench = pytest.importorskip("nats_bench")

VARYING, MISSING, DISAGREE = 0, 11, 284  # the three genuine architectures, each given a quirk


def _edit(path: Path, change: Any) -> None:
    data = pickle.loads(bz2.decompress(path.read_bytes()))
    change(data)
    path.write_bytes(bz2.compress(pickle.dumps(data)))


def _vary_times(data: dict[str, Any]) -> None:
    run = data["200"]["all_results"][("cifar10-valid", 777)]
    run["train_times"] = {e: 10.0 + e % 3 for e in run["train_times"]}  # 10, 11, 12, 10, ...


def _drop_an_evaluation(data: dict[str, Any]) -> None:
    run = data["200"]["all_results"][("cifar100", 888)]
    for field in ("eval_acc1es", "eval_losses"):
        del run[field]["ori-test@100"]


def _disagree(data: dict[str, Any]) -> None:
    runs = data["200"]["all_results"]
    for seed in (777, 999):
        runs[("cifar100", seed)]["params"] = 1.0 + seed / 1000
    del runs[("cifar100", 888)]
    data["200"]["dataset_seed"]["cifar100"] = [777, 999]


@pytest.fixture(scope="module")
def quirky(tss_samples: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, Store]:
    root = tmp_path_factory.mktemp("quirks")
    archive = root / tss_samples.name
    shutil.copytree(tss_samples, archive)
    for index, change in ((VARYING, _vary_times), (MISSING, _drop_an_evaluation),
                          (DISAGREE, _disagree)):  # fmt: skip
        path = archive / f"{index:06d}.pickle.pbz2"
        path.chmod(0o644)
        _edit(path, change)
    api = nats_bench.create(str(archive), "tss", fast_mode=True, verbose=False)
    store = Store(import_official(archive, root / "store", n_jobs=1, progress=False))
    return api, store


def test_intermediate_times_are_the_recorded_sums_or_refused(quirky: tuple[Any, Store]) -> None:
    api, store = quirky
    # constant per-epoch times: the mean times (epoch + 1) is the official sum
    official = api.get_more_info(MISSING, "cifar10-valid", iepoch=99, hp="200", is_random=777)
    ours = store.metric(MISSING, "cifar10-valid", "train", 200, "time", 777, epoch=99)
    assert ours == pytest.approx(official["train-all-time"], rel=2e-6)
    # varying per-epoch times: refused at intermediate epochs, the total still exact
    with pytest.raises(BenchmarkQueryError, match="vary within a run"):
        store.metric(VARYING, "cifar10-valid", "train", 200, "time", 777, epoch=99)
    official = api.get_more_info(VARYING, "cifar10-valid", hp="200", is_random=777)
    total = store.metric(VARYING, "cifar10-valid", "train", 200, "time", 777)
    assert total == pytest.approx(official["train-all-time"], rel=2e-6)
    every = store.metric_all("cifar10-valid", "train", 200, "time", 777, epoch=99)
    assert every[VARYING] != every[VARYING] and every[MISSING] == pytest.approx(ours)


def test_evaluation_times_only_where_the_set_was_evaluated(quirky: tuple[Any, Store]) -> None:
    api, store = quirky
    official = api.get_more_info(MISSING, "cifar10-valid", iepoch=100, hp="200", is_random=777)
    assert "valid-all-time" in official and "test-all-time" not in official  # no test time
    with pytest.raises(BenchmarkQueryError, match="not evaluated"):
        store.metric(MISSING, "cifar10-valid", "ori-test", 200, "time", 777, epoch=100)
    last = store.metric(MISSING, "cifar10-valid", "ori-test", 200, "time", 777)
    assert last > 0
    assert (
        store.metric_all("cifar10-valid", "ori-test", 200, "time", 777, epoch=100)[MISSING]
        != (store.metric_all("cifar10-valid", "ori-test", 200, "time", 777, epoch=100)[MISSING])
    )  # NaN


def test_all_refuses_and_mean_says_which_seeds_at_an_epoch_a_seed_lacks(
    quirky: tuple[Any, Store], caplog: pytest.LogCaptureFixture
) -> None:
    _, store = quirky
    with pytest.raises(BenchmarkQueryError, match=r"seed\(s\) \[888\].*'all' requires every seed"):
        store.metric(MISSING, "cifar100", "ori-test", 200, "accuracy", "all", epoch=100)
    assert (
        store.metric_all("cifar100", "ori-test", 200, "accuracy", "all", epoch=100)[MISSING]
        != (store.metric_all("cifar100", "ori-test", 200, "accuracy", "all", epoch=100)[MISSING])
    )
    with caplog.at_level(logging.WARNING, logger="harness.bench.store"):
        mean = store.metric(MISSING, "cifar100", "ori-test", 200, "accuracy", "mean", epoch=100)
    seeds = [store.metric(MISSING, "cifar100", "ori-test", 200, "accuracy", s, epoch=100)
             for s in (777, 999)]  # fmt: skip
    assert mean == pytest.approx(sum(seeds) / 2, rel=1e-6)
    assert "covers seeds [777, 999] only ([888] lack it)" in caplog.text
    # at an epoch every seed has, 'all' answers
    assert store.metric(MISSING, "cifar100", "ori-test", 200, "accuracy", "all", epoch=101) > 0


def test_disagreeing_params_without_seed_888_are_refused(quirky: tuple[Any, Store]) -> None:
    api, store = quirky
    with pytest.raises(ValueError):
        api.get_cost_info(DISAGREE, "cifar100", hp="200")
    with pytest.raises(BenchmarkQueryError, match="seed 888, the official API's tie-break"):
        store.cost(DISAGREE, "cifar100", 200)
    official = api.get_cost_info(DISAGREE, "cifar10", hp="200")  # untouched dataset
    assert store.cost(DISAGREE, "cifar10", 200).params == pytest.approx(official["params"])


def test_cifar10_training_role_is_the_25k_run() -> None:
    """Decided: the search side of CIFAR-10 reads one run, ``cifar10-valid`` (trained on the
    25k half, validated on the other), training metrics included; the official API's remap
    of a ``cifar10`` training query reads the run trained on all 50k instead."""
    assert names.resolve("cifar10", "train") == ("cifar10-valid", "train")
    assert names.resolve("cifar10", "valid")[0] == names.resolve("cifar10", "train")[0]
    assert names.resolve("cifar10", "test") == ("cifar10", "ori-test")
