"""The main job: compare the black-box methods on the topology space and write the leaderboard.

Random search, REA, REINFORCE and alpha-NAS search tss under the ``nats-tss`` protocol on
CIFAR-10, CIFAR-100 and ImageNet16-120, over 500 seeds (``quick``: 10). The data is the best
available, in this order:

1. an imported store: ``tss-official`` (the official archive), else ``tss-public``;
2. the public tidy table in the shared data directory, imported into ``tss-public``;
3. a small synthetic benchmark generated on the spot in seconds (final accuracies of the
   whole space, fixed seed; :mod:`harness.bench.synthetic_table`), imported into
   ``tss-synthetic``. Every output of such a run says it is synthetic (the run rows, the
   manifest, the leaderboard banner).

Results go to ``results/<store name>`` (``results/<store name>-quick`` for quick runs): the
run and trajectory tables, the manifest and the report; the per-run files are pruned once
consolidated. A killed job resumes where it stopped.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from harness import paths, runner
from harness.bench.store import Store, list_stores, open_store
from harness.results import ResultsDir

logger = logging.getLogger(__name__)

METHODS: tuple[str, ...] = ("random_search", "rea", "reinforce", "alpha_nas")
TASKS: tuple[str, ...] = ("cifar10", "cifar100", "ImageNet16-120")
PROTOCOL = "nats-tss"
SEEDS = "0-499"
QUICK_SEEDS = "0-9"
PUBLIC_TABLE: tuple[str, str] = ("nats-tss-public", "nats_tss_public.csv.gz")
#: Seed of the synthetic benchmark (fixed, so that every machine generates the same one).
SYNTHETIC_SEED = 20_240_501
#: Seed of the report's bootstrap intervals.
REPORT_SEED = 0


@dataclass(frozen=True)
class MainResult:
    """What the main job did: the data it used (``origin``: imported / public / synthetic),
    the sweep summary and the report files written."""

    data: str
    origin: str
    synthetic: bool
    summary: runner.SweepSummary
    report: list[Path]


def _public_store(progress: bool) -> Store | None:
    shared = paths.shared_data_dir()
    table = None if shared is None else shared.joinpath(*PUBLIC_TABLE)
    if table is None or not table.is_file():
        return None
    from harness.bench.tidy import import_table

    dest = paths.stores_dir() / "tss-public"
    logger.info("importing the public tss table %s into %s", table.name, dest)
    return open_store(import_table(table, dest, progress=progress))


def _synthetic_store(progress: bool) -> Store:
    from harness.bench.synthetic_table import write_synthetic_store

    dest = paths.stores_dir() / "tss-synthetic"
    logger.warning("no benchmark data found: generating a SYNTHETIC tss benchmark")
    return open_store(
        write_synthetic_store(dest, np.random.default_rng(SYNTHETIC_SEED), progress=progress)
    )


def choose_data(
    store: str | Path | None = None, *, progress: bool = True, n_jobs: int = 1
) -> tuple[Store, str]:
    """The store to use and its origin: ``given``, ``imported``, ``public`` or ``synthetic``."""
    if store is not None:
        return runner.open_data(store, "tss"), "given"
    held = list_stores()
    for name in ("tss-official", "tss-public", "tss-synthetic"):
        if name in held:
            found = open_store(name)
            return found, "synthetic" if found.synthetic else "imported"
    public = _public_store(progress)
    if public is not None:
        return public, "public"
    return _synthetic_store(progress), "synthetic"


def main_job(
    *,
    out: str | Path | None = None,
    seeds: str | None = None,
    quick: bool = False,
    store: str | Path | None = None,
    jobs: int = 1,
    report: bool = True,
    progress: bool = True,
) -> MainResult:
    """Run the main comparison (resuming), then write the report beside the results."""
    grid = runner.load_grid(
        methods=list(METHODS),
        tasks=list(TASKS),
        protocols=PROTOCOL,
        seeds=seeds or (QUICK_SEEDS if quick else SEEDS),
    )
    data, origin = choose_data(store, progress=progress, n_jobs=jobs)
    target = (
        Path(out)
        if out is not None
        else Path("results") / (data.path.name + ("-quick" if quick else ""))
    )
    summary = runner.run_sweep(grid, target, store=data, jobs=jobs, progress=progress, prune=True)
    written: list[Path] = []
    if report:
        from harness.report import write_report

        runs, trajectories = ResultsDir(target).load()
        written = write_report(runs, trajectories, target, np.random.default_rng(REPORT_SEED))
    return MainResult(data.path.name, origin, data.synthetic, summary, written)
