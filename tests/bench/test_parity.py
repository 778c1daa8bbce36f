"""Parity: every value the official API answers on the genuine sample files, the store answers too.

Walks every architecture, hp, dataset, seed (and the seed mean), epoch and split that the
official ``nats_bench`` API (fast mode) holds for the sample archives of both spaces, plus
cost info and ``simulate_train_eval``'s charge, and compares with the store.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest

from harness.bench.names import HPS
from harness.bench.official import import_official
from harness.bench.store import Store

nats_bench = pytest.importorskip("nats_bench")

REL = 2e-6  # float32 storage of float64 values


def _close(ours: float, theirs: Any, what: str) -> None:
    assert theirs is not None, what
    assert math.isclose(ours, float(theirs), rel_tol=REL, abs_tol=1e-6), (
        f"{what}: store {ours!r} != api {theirs!r}"
    )


def _api_and_store(sample_dir: Path, space: str, tmp: Path) -> tuple[Any, Store]:
    api = nats_bench.create(str(sample_dir), space, fast_mode=True, verbose=False)
    store = Store(import_official(sample_dir, tmp / space, n_jobs=1, progress=False))
    return api, store


# get_more_info keys -> (split of the store) for each official dataset
_EVAL_KEYS = {
    "cifar10-valid": {"valid": "x-valid", "test": "ori-test"},
    "cifar10": {"test": "ori-test"},
    "cifar100": {"valid": "x-valid", "test": "x-test", "valtest": "ori-test"},
    "ImageNet16-120": {"valid": "x-valid", "test": "x-test", "valtest": "ori-test"},
}


def _compare_info(
    info: dict[str, Any], store: Store, index: int, dataset: str, hp: str, seed: Any, epoch: int
) -> int:
    """Compare one get_more_info answer; returns how many values were compared."""
    what = f"arch {index} {dataset} hp {hp} seed {seed} epoch {epoch}"
    n = 0
    for key, split in [("train", "train"), *_EVAL_KEYS[dataset].items()]:
        if f"{key}-accuracy" not in info:
            continue  # the API itself has no answer (e.g. a set held only at the last epoch)
        for metric in ("accuracy", "loss"):
            ours = store.metric(index, dataset, split, hp, metric, seed, epoch)
            _close(ours, info[f"{key}-{metric}"], f"{what} {key}-{metric}")
            n += 1
        if info.get(f"{key}-all-time") is not None:
            ours = store.metric(index, dataset, split, hp, "time", seed, epoch)
            _close(ours, info[f"{key}-all-time"], f"{what} {key}-all-time")
            _close(ours / (epoch + 1), info[f"{key}-per-time"], f"{what} {key}-per-time")
            n += 2
    return n


@pytest.mark.parametrize("space", ["tss", "sss"])
def test_store_matches_official_api_everywhere(
    space: str, tss_samples: Path, sss_samples: Path, tmp_path: Path
) -> None:
    sample_dir = tss_samples if space == "tss" else sss_samples
    api, store = _api_and_store(sample_dir, space, tmp_path)
    indices = sorted(int(p.name.split(".")[0]) for p in sample_dir.glob("0*.pickle.pbz2"))
    assert indices == [0, 11, 284]
    compared = 0
    for index in indices:
        for hp in HPS[space]:
            archres = api.query_meta_info_by_index(index, hp=hp)
            for dataset in archres.get_dataset_names():
                seeds = archres.get_dataset_seeds(dataset)
                epochs = archres.get_total_epoch(dataset)
                for seed in [*seeds, False]:
                    ours_seed = "mean" if seed is False else seed
                    for epoch in range(epochs):
                        info = api.get_more_info(
                            index, dataset, iepoch=epoch, hp=hp, is_random=seed
                        )
                        compared += _compare_info(info, store, index, dataset, hp, ours_seed, epoch)
                cost = api.get_cost_info(index, dataset, hp=hp)
                ours = store.cost(index, dataset, hp)
                _close(ours.params, cost["params"], f"{index} {dataset} {hp} params")
                _close(ours.flops, cost["flops"], f"{index} {dataset} {hp} flops")
                _close(ours.latency, cost["latency"], f"{index} {dataset} {hp} latency")
                _close(ours.train_time_per_epoch, cost["T-train@epoch"], "T-train@epoch")
                _close(ours.train_time_total, cost["T-train@total"], "T-train@total")
                for split, per_epoch in ours.eval_time_per_epoch.items():
                    if cost.get(f"T-{split}@epoch") is not None:
                        _close(per_epoch, cost[f"T-{split}@epoch"], f"T-{split}@epoch")
                compared += 5
                assert sorted(store.block(dataset, hp).held_seeds) == sorted(seeds)
    # every sample holds thousands of values; a walk that compared few would prove little
    assert compared > (60_000 if space == "tss" else 20_000), compared


def test_simulate_train_eval_charge_matches(tss_samples: Path, tmp_path: Path) -> None:
    """The oracle's charge (hp-12 training time + one validation epoch) per seed."""
    api, store = _api_and_store(tss_samples, "tss", tmp_path)
    for index in (0, 11, 284):
        for dataset, (run, split) in {
            "cifar10": ("cifar10-valid", "x-valid"),
            "cifar100": ("cifar100", "x-valid"),
            "ImageNet16-120": ("ImageNet16-120", "x-valid"),
        }.items():
            for seed in store.block(run, "12").held_seeds:
                info = api.get_more_info(index, run, hp="12", is_random=seed)
                charge = store.schedule_time(index, run, "12", seed) + store.metric(
                    index, run, split, "12", "time", seed, epoch=0
                )
                _close(
                    charge, info["train-all-time"] + info["valid-per-time"], f"{index} {dataset}"
                )
                _close(
                    store.metric(index, run, split, "12", "accuracy", seed),
                    info["valid-accuracy"],
                    "acc",
                )
