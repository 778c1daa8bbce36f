"""The main job: compare the black-box methods on the topology space and write the leaderboard.

Random search, REA, REINFORCE and alpha-NAS search tss under the ``nats-tss`` protocol on
CIFAR-10, CIFAR-100 and ImageNet16-120, over 500 seeds (``quick``: 10). The data is the best
available, in this order:

1. an imported store of real data that covers the whole space, chosen by coverage
   (:func:`harness.bench.choice.choose_store`: an official archive first; a store that holds
   only some architectures, like the 3-architecture sample directory, never qualifies);
2. the public tidy table in the shared data directory, imported into ``tss-public``;
3. a small synthetic benchmark generated on the spot in seconds (final accuracies of the
   whole space, fixed seed; :mod:`harness.bench.synthetic_table`), imported into
   ``tss-synthetic`` and reused by later runs while no real data appears. Every output of
   such a run says it is synthetic (the run rows, the manifest, the leaderboard banner).

The choice is made afresh on every run, so real data wins as soon as it appears, and it
comes with its reason (:class:`DataChoice`). Results go to ``results/<store name>``
(``results/<store name>-quick`` for quick runs): the run and trajectory tables, the manifest
and the report; the per-run files are pruned once consolidated. A killed job resumes where it
stopped. :func:`plan_main` says before anything runs how many runs are already finished in
the results directory (a fresh clone holds the committed ones) and so are reused, and how to
recompute them; when every run was finished, no file is touched.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from harness import paths, runner
from harness.bench.choice import choose_store, coverage_text, store_summary
from harness.bench.store import Store, open_store
from harness.errors import ConfigError
from harness.results import RUNS_FILE, ResultsDir

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
class DataChoice:
    """The store the job uses, where it came from (``origin``: given / imported / public /
    synthetic) and why it was chosen, in words."""

    store: Store
    origin: str
    reason: str


@dataclass(frozen=True)
class MainPlan:
    """What the job will do, known before it computes anything: the grid, the data, the
    results directory, and how many of the ``planned`` runs are ``finished`` there already
    (``made_at`` says by which commit, from the directory's manifest)."""

    grid: runner.Grid
    data: DataChoice
    target: Path
    planned: int
    finished: int
    unconsolidated: bool
    made_at: str | None
    quick: bool

    def describe(self) -> str:
        """One line for the start of the job: what is computed, what is reused and how to
        recompute it."""
        if not self.finished:
            return f"computing {self.planned:,} runs into {self.target}"
        made = f" (made {self.made_at})" if self.made_at else ""
        redo = (
            f"to recompute them, run `harness main{' --quick' if self.quick else ''} --out "
            f"NEW_DIR` (or delete {self.target / RUNS_FILE})"
        )
        if self.finished == self.planned:
            return (
                f"reusing the {self.planned:,} finished runs in {self.target}{made}: nothing "
                f"is recomputed; {redo}"
            )
        return (
            f"reusing {self.finished:,} of {self.planned:,} runs finished in {self.target}{made}"
            f" and computing the other {self.planned - self.finished:,}; {redo}"
        )


@dataclass(frozen=True)
class MainResult:
    """What the main job did: the data it used (``origin``: given / imported / public /
    synthetic, and why), the sweep summary and the report files written (none when nothing
    changed and the report was already there: ``report_unchanged``)."""

    data: str
    origin: str
    synthetic: bool
    summary: runner.SweepSummary
    report: list[Path]
    reason: str = ""
    report_unchanged: bool = False


def _public_table() -> Path | None:
    shared = paths.shared_data_dir()
    table = None if shared is None else shared.joinpath(*PUBLIC_TABLE)
    return table if table is not None and table.is_file() else None


def _public_store(table: Path, progress: bool) -> Store:
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


def select_data(store: str | Path | None = None, *, progress: bool = True) -> DataChoice:
    """The best data available, chosen afresh on every call (module docstring): a store that
    covers the space, else the public table, else synthetic data (reused once generated)."""
    if store is not None:
        given = runner.open_data(store, "tss")
        kind = "SYNTHETIC data" if given.synthetic else coverage_text(given)
        return DataChoice(given, "given", f"given with --store; {kind}")
    try:
        choice = choose_store("tss")
    except ConfigError:
        pass  # no real store covers the space: said below
    else:
        return DataChoice(open_store(choice.name), "imported", choice.reason)
    table = _public_table()
    if table is not None:
        return DataChoice(
            _public_store(table, progress), "public", f"imported the public tss table {table}"
        )
    shared = paths.shared_data_dir()
    looked = f"no {'/'.join(PUBLIC_TABLE)} in {shared or 'a shared data directory'}"
    reason = f"no real benchmark data covers the tss space ({store_summary('tss')}; {looked})"
    if (paths.stores_dir() / "tss-synthetic").is_dir():
        found = open_store("tss-synthetic")
        if not (found.synthetic and found.n_present == found.n_archs):
            raise ConfigError(
                f"{reason}, and the store tss-synthetic is not the synthetic benchmark this job "
                "generates (it would be replaced): remove it, or pass --store"
            )
        return DataChoice(found, "synthetic", reason + "; reusing tss-synthetic")
    return DataChoice(_synthetic_store(progress), "synthetic", reason + "; generated tss-synthetic")


def choose_data(
    store: str | Path | None = None, *, progress: bool = True, n_jobs: int = 1
) -> tuple[Store, str]:
    """The store to use and its origin (:func:`select_data` without the reason)."""
    choice = select_data(store, progress=progress)
    return choice.store, choice.origin


def _made_at(manifest: dict[str, Any] | None) -> str | None:
    """``"at commit abc123def456 on 2026-11-22"`` for the latest sweep that computed runs."""
    if not manifest:
        return None
    computed = [s for s in manifest.get("sweeps", []) if s.get("ran")]
    last = computed[-1] if computed else {}
    git = last.get("git") or manifest.get("git") or {}
    commit = git.get("commit")
    when = str(last.get("started") or manifest.get("updated") or "")[:10]
    if commit is None:
        return f"on {when}" if when else None
    dirty = " with uncommitted changes" if git.get("dirty") else ""
    return f"at commit {commit[:12]}{dirty}" + (f" on {when}" if when else "")


def plan_main(
    *,
    out: str | Path | None = None,
    seeds: str | None = None,
    quick: bool = False,
    store: str | Path | None = None,
    progress: bool = True,
) -> MainPlan:
    """Choose the data, check the grid against it and count the runs already finished;
    nothing is computed or written (except a store the data choice imports)."""
    grid = runner.load_grid(
        methods=list(METHODS),
        tasks=list(TASKS),
        protocols=PROTOCOL,
        seeds=seeds or (QUICK_SEEDS if quick else SEEDS),
    )
    data = select_data(store, progress=progress)
    target = (
        Path(out)
        if out is not None
        else Path("results") / (data.store.path.name + ("-quick" if quick else ""))
    )
    specs = runner.plan_runs(grid, data.store)
    results = ResultsDir(target)
    results.check_writable()
    results.check_binding(data.store.checksum, data.store.path.name)
    statuses = results.run_statuses()
    finished = sum(statuses.get(s.key, False) for s in specs)
    unconsolidated = bool(results.run_files())
    made_at = _made_at(results.manifest()) if finished else None
    return MainPlan(grid, data, target, len(specs), finished, unconsolidated, made_at, quick)


def run_main(
    plan: MainPlan, *, jobs: int = 1, report: bool = True, progress: bool = True
) -> MainResult:
    """Run the sweep of ``plan`` (resuming), then write the report beside the results.

    When every run was finished before and nothing was left to consolidate, no file is
    touched: the report is kept if it exists (``harness report DIR`` rewrites it).
    """
    store = plan.data.store
    summary = runner.run_sweep(
        plan.grid, plan.target, store=store, jobs=jobs, progress=progress, prune=True
    )
    unchanged = summary.ran == 0 and not plan.unconsolidated
    kept = unchanged and (plan.target / "leaderboard.md").is_file()
    written: list[Path] = []
    if report and not kept:
        from harness.report import write_report

        target = ResultsDir(plan.target)
        runs, trajectories = target.load()
        written = write_report(
            runs, trajectories, plan.target, np.random.default_rng(REPORT_SEED),
            manifest=target.manifest(),
        )  # fmt: skip
    return MainResult(
        store.path.name, plan.data.origin, store.synthetic, summary, written,
        plan.data.reason, report and kept,
    )  # fmt: skip


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
    plan = plan_main(out=out, seeds=seeds, quick=quick, store=store, progress=progress)
    return run_main(plan, jobs=jobs, report=report, progress=progress)
