"""The records of a training run, in the benchmark's vocabulary.

Per-epoch metrics are kept as the official archives key them: ``train_acc1es`` /
``train_acc5es`` / ``train_losses`` / ``train_times`` / ``learning_rates`` by epoch (a string,
0-based) and ``eval_acc1es`` / ``eval_acc5es`` / ``eval_losses`` / ``eval_times`` by
``'<set>@<epoch>'``; accuracies in %, times in seconds. :func:`epoch_rows` turns them into one
tidy row per epoch and set for ``epochs.parquet``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd

from harness.bench.names import EVAL_SETS
from harness.fileio import atomic_write, atomic_write_text

__all__ = [
    "RESULT",
    "TABLE",
    "add_epoch",
    "empty_metrics",
    "epoch_rows",
    "final_accuracy",
    "write_run",
]

#: File names in a run directory.
RESULT, TABLE = "result.json", "epochs.parquet"


def empty_metrics(dataset: str) -> dict[str, Any]:
    """Empty per-epoch metrics of a run of ``dataset`` (its eval sets in the benchmark's order)."""
    keys = ("train_acc1es", "train_acc5es", "train_losses", "train_times", "learning_rates")
    evals = ("eval_acc1es", "eval_acc5es", "eval_losses", "eval_times")
    return {"eval_names": list(EVAL_SETS[dataset]), **{k: {} for k in keys + evals}}


def add_epoch(metrics: dict[str, Any], epoch: int, lr: float, train: dict, evals: dict) -> None:
    """Add an epoch's ``{acc1, acc5, loss, seconds}`` of training and of each eval set."""
    e = str(epoch)
    metrics["learning_rates"][e] = lr
    for key, name in (
        ("acc1", "acc1es"),
        ("acc5", "acc5es"),
        ("loss", "losses"),
        ("seconds", "times"),
    ):
        metrics[f"train_{name}"][e] = train[key]
        for split, values in evals.items():
            metrics[f"eval_{name}"][f"{split}@{epoch}"] = values[key]


def final_accuracy(metrics: dict[str, Any], epochs_done: int) -> dict[str, float]:
    """Top-1 accuracy (%) of ``train`` and each eval set after the last epoch done."""
    if epochs_done == 0:
        return {}
    last = epochs_done - 1
    out = {"train": metrics["train_acc1es"][str(last)]}
    out.update({s: metrics["eval_acc1es"][f"{s}@{last}"] for s in metrics["eval_names"]})
    return out


def epoch_rows(metrics: dict[str, Any], epochs_done: int) -> pd.DataFrame:
    """One row per epoch and set (``train`` first): epoch, split, lr, accuracy (%),
    accuracy_top5 (%), loss, seconds."""
    rows = []
    for epoch in range(epochs_done):
        lr = metrics["learning_rates"][str(epoch)]
        for split in ("train", *metrics["eval_names"]):
            prefix, key = (
                ("train", str(epoch)) if split == "train" else ("eval", f"{split}@{epoch}")
            )
            rows.append(
                {
                    "epoch": epoch, "split": split, "lr": lr,
                    "accuracy": metrics[f"{prefix}_acc1es"][key],
                    "accuracy_top5": metrics[f"{prefix}_acc5es"][key],
                    "loss": metrics[f"{prefix}_losses"][key],
                    "seconds": metrics[f"{prefix}_times"][key],
                }
            )  # fmt: skip
    return pd.DataFrame(
        rows, columns=["epoch", "split", "lr", "accuracy", "accuracy_top5", "loss", "seconds"]
    )


def write_run(run: Path, record: dict[str, Any]) -> None:
    """Write ``epochs.parquet`` and then ``result.json`` into ``run``, each atomically."""
    table = epoch_rows(record["metrics"], record["epochs_done"])
    atomic_write(run / TABLE, lambda tmp: table.to_parquet(tmp, index=False))
    atomic_write_text(run / RESULT, json.dumps(record, indent=1, sort_keys=False) + "\n")
