"""The results directory of a supernet sweep: its schemas, what it has finished, and the
Pareto fronts its report draws.

:class:`SupernetResultsDir` is a :class:`~harness.results.ResultsDir` with the supernet run and
trajectory schemas (:data:`SUPERNET_RUN_COLUMNS`, :data:`TRAJECTORY_COLUMNS`), a record of the
selection rules each run has, and a refusal of black-box directories or other images.
:func:`pareto_fronts` reads the accuracy-FLOPs fronts of a directory's eval tasks from the
store its manifest names, when that store is here.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

import numpy as np
import numpy.typing as npt
import pandas as pd

from harness import results
from harness.bench.store import open_store
from harness.errors import ConfigError, HarnessError
from harness.supernet.quality import ground_truth, pareto_front

logger = logging.getLogger(__name__)

__all__ = [
    "SUPERNET_RUN_COLUMNS",
    "TRAJECTORIES_FILE",
    "TRAJECTORY_COLUMNS",
    "TRAJECTORY_VARYING",
    "SupernetResultsDir",
    "pareto_fronts",
]

TRAJECTORIES_FILE = "supernet_trajectories.parquet"
# fmt: off
SUPERNET_RUN_COLUMNS: dict[str, str] = {
    **results.RUN_COLUMNS, "selection": "string", "epochs": "Int64", "forward_passes": "Int64",
    "backward_passes": "Int64", "kendall_tau": "float64", "spearman_rho": "float64",
    "selection_config": "string", "selection_seconds": "float64",
    "selection_forward_passes": "Int64", "selection_backward_passes": "Int64",
    "supernet_acc": "float64", "regret_at_flops": "float64", "params_mb": "float64",
    "flop_m": "float64", "latency_ms": "float64", "truth_note": "string",
    "image_checksum": "string",
    "card": "string", "search_config": "string", "data": "string",
}
TRAJECTORY_COLUMNS: dict[str, str] = {
    "run_key": "string", "method": "string", "config": "string", "space": "string",
    "dataset": "string", "eval_dataset": "string", "protocol": "string", "seed": "int64",
    "synthetic": "bool", "epoch": "int64", "argmax_index": "Int64", "argmax_arch": "string",
    "argmax_test_acc": "float64", "regret": "float64", "train_loss": "float64",
}
# fmt: on
TRAJECTORY_VARYING: tuple[str, ...] = (
    "eval_dataset",
    "epoch",
    "argmax_index",
    "argmax_arch",
    "argmax_test_acc",
    "regret",
    "train_loss",
)  # fmt: skip


class SupernetResultsDir(results.ResultsDir):
    """A :class:`~harness.results.ResultsDir` with the supernet run and trajectory schemas."""

    run_columns = SUPERNET_RUN_COLUMNS
    trajectory_columns = TRAJECTORY_COLUMNS
    trajectory_varying = TRAJECTORY_VARYING
    trajectory_file = TRAJECTORIES_FILE
    trajectory_order = ("run_key", "eval_dataset", "epoch")
    run_order = ("method", "config", "dataset", "eval_dataset", "seed", "run_key", "selection")

    def finished_selections(self) -> dict[str, set[str]]:
        """Run key -> selection rules recorded as finished for it (``ok`` rows of the run
        files and the consolidated table; a failed rule is not finished)."""
        done: dict[str, set[str]] = {}
        table = self.path / results.RUNS_FILE
        if table.is_file():
            frame = pd.read_parquet(table, columns=["run_key", "selection", "status"])
            for key, sel, status in frame.itertuples(index=False):
                done.setdefault(str(key), set())
                if status == "ok":
                    done[str(key)].add(str(sel))
        for key in self.run_files():
            rows = self.read_run(key).rows
            done[key] = {str(r["selection"]) for r in rows if r.get("status") == "ok"}
        return done

    def merge_failure(self, record: results.RunRecord) -> results.RunRecord:
        """A failed ``record`` that keeps every ``ok`` row (and the trajectory) a run already
        has on file: a rerun that fails never overwrites good rows, it only adds failed rows
        for the rules that were not finished."""
        if record.rows[0]["status"] == "ok" or record.run_key not in self.run_files():
            return record
        old = self.read_run(record.run_key)
        kept = [r for r in old.rows if r.get("status") == "ok"]
        if not kept:
            return record
        have = {(r["selection"], r["eval_dataset"]) for r in kept}
        added = [r for r in record.rows if (r["selection"], r["eval_dataset"]) not in have]
        logger.warning("run %s failed again; its %d finished rows are kept", record.run_key,
                       len(kept))  # fmt: skip
        return results.RunRecord(record.run_key, (*kept, *added), old.trajectory)

    def check_sources(self, images: str) -> None:
        """Refuse a black-box results directory, or one made on other images."""
        manifest = self.manifest()
        if manifest is None:
            return
        if manifest.get("kind") != "supernet":
            raise ConfigError(f"{self.path} holds results of `harness run`: use another --out")
        bound = manifest.get("data", {}).get("images")
        if bound is not None and bound != images:
            raise ConfigError(
                f"results directory {self.path} holds runs made on other images ({bound}, "
                f"now {images}): use another --out directory"
            )


def pareto_fronts(
    target: SupernetResultsDir, tasks: Iterable[str], store: str | None = None
) -> dict[str, tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]] | None:
    """``{task: (FLOPs, test accuracy)}`` of the Pareto front of each eval task at the
    directory's report schedule, from ``store`` (a name or path; default: the store its
    manifest names); None (logged) when there is none or it is not on this machine."""
    manifest = target.manifest() or {}
    name = store or manifest.get("data", {}).get("store")
    hps = {card.get("report_hp") for card in manifest.get("protocols", {}).values()}
    if name is None or len(hps) != 1:
        logger.info("%s: no single store and schedule to draw Pareto fronts from", target.path)
        return None
    hp = str(hps.pop())
    try:
        data = open_store(name)
        truths = {task: ground_truth(data, task, hp) for task in tasks}
    except HarnessError as err:
        logger.info("no Pareto fronts for %s: %s", target.path, err)
        return None
    fronts = {}
    for task, truth in truths.items():
        index = pareto_front(truth.flops, truth.test)
        fronts[task] = (truth.flops[index], truth.test[index])
    return fronts
