"""``harness run``, ``harness report`` and ``harness main``: sweeps, reports, the main job."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np

from harness.cli.common import (
    add_plugin_argument,
    add_report_arguments,
    jobs_arg,
    print_sweep_summary,
    require_results_dir,
    use_plugins,
)
from harness.errors import ConfigError, unknown


def register(groups: Any) -> None:
    """Add the ``run``, ``report`` and ``main`` sub-commands to ``groups``."""
    run = groups.add_parser(
        "run",
        help="run a grid of searches (methods x tasks x seeds) into a results directory",
        description="Run every unfinished search of a grid; finished runs are skipped, so a "
        "killed sweep is resumed by running the same command again.",
    )
    run.add_argument("--config", type=Path, help="grid TOML file (flags override its values)")
    run.add_argument("--methods", help="comma-separated, e.g. rs,rea,reinforce,alpha_nas")
    run.add_argument("--space", "--spaces", dest="spaces", help="search space(s), e.g. tss")
    run.add_argument("--tasks", help="comma-separated, e.g. cifar10,cifar100,ImageNet16-120")
    run.add_argument("--seeds", help="e.g. 0-499 (inclusive) or 0,3,7-9")
    run.add_argument("--protocol", dest="protocols", help="e.g. nats-tss, nats-tss-transfer")
    run.add_argument("--budget", type=float, help="override the protocol budget (seconds)")
    run.add_argument("--store", help="store name (under $HARNESS_HOME/stores) or path")
    run.add_argument("--out", type=Path, required=True, help="results directory")
    run.add_argument("--jobs", type=jobs_arg, default=1, help="workers (-1 or 0: all CPUs)")
    run.add_argument("--backend", default="loky", help="joblib backend: loky or dask")
    run.add_argument("--scheduler", help="dask scheduler address (default: a local cluster)")
    run.add_argument("--chunk-size", type=int, default=50, help="searches per joblib task")
    run.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    run.add_argument("--prune", action="store_true", help="delete per-run files once consolidated")
    add_plugin_argument(run)
    run.set_defaults(handler=run_command)

    report = groups.add_parser(
        "report", help="write the leaderboard (Markdown, LaTeX) and figures of a results dir"
    )
    add_report_arguments(report, "harness run")
    report.add_argument("--control", default="random_search", help="method label the others "
                        "are tested against, e.g. rea(population_size=20); none: no control "
                        "(default random_search)")  # fmt: skip
    report.add_argument("--metric", default="test_acc", help="what the tables compare: "
                        "test_acc (default), valid_acc, regret, rank, percentile, sim_seconds, "
                        "wall_seconds, queries")  # fmt: skip
    report.add_argument("--pairwise", action="store_true", help="also write pairwise.md / "
                        ".csv: every pair of methods per dataset, Holm over the pairs")  # fmt: skip
    report.set_defaults(handler=report_command)

    main = groups.add_parser(
        "main",
        help="the main comparison: RS, REA, REINFORCE, alpha-NAS on tss, three tasks",
        description="Runs the main comparison end to end on the best data available (an "
        "imported store, else the public table, else a synthetic benchmark, labelled as such) "
        "and writes the leaderboard.",
    )
    main.add_argument("--seeds", help="seed range (default 0-499; 0-9 with --quick)")
    main.add_argument("--quick", action="store_true", help="few seeds, separate output dir")
    main.add_argument("--store", help="use this store instead of choosing one")
    main.add_argument("--out", type=Path, help="results directory (default results/<store>)")
    main.add_argument("--jobs", type=jobs_arg, default="-1", help="workers (-1 or 0: all CPUs)")
    main.add_argument("--no-report", action="store_true", help="run only, write no report")
    main.add_argument("--no-progress", action="store_true", help="hide progress bars")
    main.set_defaults(handler=main_command)


def run_command(args: argparse.Namespace) -> int:
    from harness import runner
    from harness.registry import PLUGIN_HINT

    plugins = use_plugins(args.plugin)
    try:
        grid = runner.load_grid(
            args.config,
            methods=args.methods,
            spaces=args.spaces,
            tasks=args.tasks,
            seeds=args.seeds,
            protocols=args.protocols,
            store=args.store,
            budget=args.budget,
        )
    except ConfigError as err:
        if str(err).startswith("unknown method "):  # a method of one's own: say how
            loaded = f" (plug-ins loaded: {', '.join(plugins)})" if plugins else ""
            raise ConfigError(f"{err}; {PLUGIN_HINT}{loaded}") from None
        raise
    store = grid.store
    if store is None:  # say which store the sweep uses, and why, before it starts
        from harness.bench.choice import choose_store

        choice = choose_store(grid.spaces[0])
        print(f"store: {choice}", flush=True)
        store = choice.name
    summary = runner.run_sweep(
        grid,
        args.out,
        store=store,
        jobs=args.jobs,
        backend=args.backend,
        scheduler=args.scheduler,
        chunk_size=args.chunk_size,
        progress=not args.no_progress,
        prune=args.prune,
        plugins=plugins,
    )
    _print_summary(summary)
    return 1 if summary.failed else 0


def _print_summary(summary: Any) -> None:
    print_sweep_summary(summary, "runs planned")


def report_command(args: argparse.Namespace) -> int:
    from harness.report import write_report
    from harness.report.leaderboard import method_labels
    from harness.results import ResultsDir
    from harness.stats import higher_is_better

    require_results_dir(args.results)
    target = ResultsDir(args.results)
    supernet = (target.manifest() or {}).get("kind") == "supernet"
    if supernet or (args.results / "supernet_trajectories.parquet").exists():
        raise ConfigError(
            f"{args.results} holds supernet results (`harness supernet run`): "
            f"use `harness supernet report {args.results}`"
        )
    runs, trajectories = target.load()
    rng = np.random.default_rng(args.seed)
    higher_is_better(args.metric)  # an unknown metric: one line with the known ones
    control = None if args.control == "none" else args.control
    labels = set(method_labels(runs))
    if control is not None and control not in labels:
        raise ConfigError(unknown("control method", control, sorted(labels)))
    paths = write_report(
        runs, trajectories, args.out or args.results, rng, n_boot=args.n_boot,
        metric=args.metric, control=control, pairwise=args.pairwise, manifest=target.manifest(),
    )  # fmt: skip
    for path in paths:
        print(path)
    return 0


def main_command(args: argparse.Namespace) -> int:
    from harness import mainjob

    plan = mainjob.plan_main(
        out=args.out,
        seeds=args.seeds,
        quick=args.quick,
        store=args.store,
        progress=not args.no_progress,
    )
    data = plan.data
    print(f"data: {data.store.path.name} ({data.origin}: {data.reason})")
    if data.store.synthetic:
        print(f"NOTE: these results are SYNTHETIC: {data.reason}")
    print(plan.describe(), flush=True)
    result = mainjob.run_main(
        plan, jobs=args.jobs, report=not args.no_report, progress=not args.no_progress
    )
    _print_summary(result.summary)
    if result.report_unchanged:
        print(
            f"report unchanged: {plan.target / 'leaderboard.md'} (no run changed; "
            f"`harness report {plan.target}` rewrites it)"
        )
    for path in result.report:
        print(path)
    return 1 if result.summary.failed else 0
