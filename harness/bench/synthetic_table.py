"""A small synthetic topology-space benchmark as a tidy table, built in seconds.

The last-resort data of the main job when neither an imported store nor the public table is
available. It holds only what a multi-trial comparison needs: final-epoch accuracies per seed
(hp 12 and 200) on the three tasks, training and validation times, and parameter counts.
Architecture quality and costs follow :mod:`harness.bench.synthetic` (the same value model
as the synthetic archives); every value is labelled with the source ``synthetic`` and the
store imported from it is flagged synthetic.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from harness.bench.synthetic import network_costs, quality
from harness.bench.tidy import import_table
from harness.spaces import tss

SEEDS: tuple[int, ...] = (777, 888, 999)
#: dataset -> (eval splits held, chance accuracy, accuracy of a perfect-quality cell at hp 200)
_TASKS: dict[str, tuple[tuple[str, ...], float, float]] = {
    "cifar10-valid": (("x-valid",), 10.0, 92.0),
    "cifar10": (("ori-test",), 10.0, 95.0),
    "cifar100": (("x-valid", "x-test"), 1.0, 74.0),
    "ImageNet16-120": (("x-valid", "x-test"), 0.83, 47.5),
}
_CLASSES = {"cifar10-valid": 10, "cifar10": 10, "cifar100": 100, "ImageNet16-120": 120}
_EPOCH_SECONDS = {"cifar10-valid": 1.0, "cifar10": 2.0, "cifar100": 2.0, "ImageNet16-120": 6.0}


def synthetic_table(rng: np.random.Generator) -> pd.DataFrame:
    """The tidy table (columns of :data:`harness.bench.tidy.COLUMNS`) of a synthetic tss."""
    n = tss.NUM_ARCHS
    q = np.array([quality("tss", i) for i in range(n)])  # (n,) in [0, 1]
    strings = np.array(tss.all_strings(), dtype=object)
    frames = []
    for dataset, (splits, chance, top) in _TASKS.items():
        params = np.array([network_costs("tss", i, _CLASSES[dataset])[0] for i in range(n)])
        epoch_s = _EPOCH_SECONDS[dataset] * (4.0 + 20.0 * params) * rng.lognormal(0, 0.1, n)
        for hp, scale, noise in (("200", 1.0, 0.3), ("12", 0.8, 0.8)):
            epochs = int(hp)
            final = chance + (top * scale - chance) * q**4  # (n,)
            for split in splits:
                for seed in SEEDS:
                    value = np.clip(final + rng.normal(0, noise, n), 0, 100)
                    frames.append(
                        _rows(strings, dataset, hp, seed, epochs - 1, split, "accuracy", value)
                    )
                for seed in SEEDS:  # times per run, so that the oracle can charge any seed
                    eval_s = 0.15 * epoch_s * epochs
                    frames.append(
                        _rows(strings, dataset, hp, seed, None, split, "eval_time_s", eval_s)
                    )
            for seed in SEEDS:
                train_s = epoch_s * epochs
                frames.append(_rows(strings, dataset, hp, seed, None, "", "train_time_s", train_s))
            frames.append(_rows(strings, dataset, hp, None, None, "", "params_mb", params))
    return pd.concat(frames, ignore_index=True)


def _rows(
    strings: np.ndarray,
    dataset: str,
    hp: str,
    seed: int | None,
    epoch: int | None,
    split: str,
    metric: str,
    value: np.ndarray,
) -> pd.DataFrame:
    n = len(strings)
    return pd.DataFrame(
        {
            "space": "tss",
            "index": np.arange(n),
            "arch": strings,
            "dataset": dataset,
            "hp": hp,
            "seed": pd.array([seed] * n, dtype="Int64"),
            "epoch": pd.array([epoch] * n, dtype="Int64"),
            "split": split,
            "metric": metric,
            "value": np.asarray(value, dtype=float),
            "source": "synthetic",
        }
    )


def write_synthetic_store(dest: Path, rng: np.random.Generator, *, progress: bool = False) -> Path:
    """Generate the synthetic table and import it into a store flagged synthetic at ``dest``."""
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    table = dest.with_name(f".{dest.name}.synthetic.parquet")
    try:
        synthetic_table(rng).to_parquet(table, index=False)
        return import_table(table, dest, progress=progress, overwrite=True, synthetic=True)
    finally:
        table.unlink(missing_ok=True)
