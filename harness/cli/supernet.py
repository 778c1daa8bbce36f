"""``harness supernet run`` and ``harness supernet report``: supernet sweeps and their reports."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np

from harness.cli.common import (
    add_plugin_argument,
    add_report_arguments,
    print_sweep_summary,
    require_results_dir,
    use_plugins,
)
from harness.errors import ConfigError, unknown

#: Cards offered on the command line (:mod:`harness.supernet.cards`, which imports torch; a
#: test keeps the two lists equal).
CARDS = (
    "tiny-cpu", "cpu-cifar10", "nb201-darts", "nb201-gdas", "nats-ws", "darts-pt",
    "drnas-nb201", "gaea-nb201", "tiny-cpu-sss", "cpu-cifar10-sss", "nats-ws-sss",
)  # fmt: skip


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an int >= 1, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected an int >= 1, got {value}")
    return value


def register(groups: Any) -> None:
    """Add the ``supernet`` group (``run``, ``report``) to ``groups``."""
    group = groups.add_parser(
        "supernet", help="supernet (weight-sharing) searches: run a sweep, write its report"
    )
    commands = group.add_subparsers(dest="command", metavar="COMMAND", required=True)
    run = commands.add_parser(
        "run",
        help="run supernet methods x tasks x seeds under one card into a results directory",
        description="Run every unfinished cell; finished cells are skipped, so a killed sweep "
        "is resumed by running the same command again.",
    )
    run.add_argument("--methods", required=True, help="comma-separated, e.g. darts_v1,gaea")
    run.add_argument("--card", required=True, help="protocol card: " + ", ".join(CARDS))
    run.add_argument("--tasks", help="comma-separated search tasks (default: the card's)")
    run.add_argument("--seeds", required=True, help="e.g. 0-2 (inclusive) or 0,3,7-9")
    run.add_argument("--selections", default="magnitude,perturbation",
                     help="selection rules: magnitude, perturbation, topk")  # fmt: skip
    run.add_argument("--data", default="jpeg", help="images: jpeg (the CIFAR-10 JPEG copy), "
                     "official (the benchmark's images under the data root, every task), "
                     "cifar10 / cifar100 / ImageNet16-120 (official, that task) or "
                     "synthetic")  # fmt: skip
    run.add_argument("--out", type=Path, required=True, help="results directory")
    run.add_argument("--store", help="ground-truth store name or path (default: tss-official, "
                     "else tss-public)")  # fmt: skip
    run.add_argument("--device", default="cpu", help="cpu or cuda")
    run.add_argument("--bf16", action="store_true", help="bf16 autocast")
    run.add_argument("--channels-last", action="store_true", help="channels-last memory format")
    run.add_argument("--compile", metavar="MODE", help="torch.compile the dense supernet "
                     "forwards: default, reduce-overhead, max-autotune-no-cudagraphs")  # fmt: skip
    run.add_argument("--cuda-graph", action="store_true", help="capture search steps as CUDA "
                     "graphs (first-order DARTS, GAEA)")  # fmt: skip
    run.add_argument("--images", type=Path, help="CIFAR-10 JPEG archive (default: the shared "
                     "data's)")  # fmt: skip
    run.add_argument("--data-root", type=Path, help="official images (default: "
                     "$HARNESS_DATA_ROOT, else $TORCH_HOME/cifar.python)")  # fmt: skip
    run.add_argument("--max-steps", type=_positive, help="cap on steps per epoch (smoke runs)")
    run.add_argument("--jobs", type=_positive, default=1, help="cells at once (default 1)")
    run.add_argument(
        "--backend",
        default="loky",
        choices=("loky", "dask"),
        help="loky: processes here; dask: the workers of a Dask cluster",
    )
    run.add_argument("--scheduler", metavar="ADDRESS", help="Dask scheduler, e.g. "
                     "tcp://host:8786 (default: a local cluster of --jobs workers)")  # fmt: skip
    run.add_argument("--workdir", type=Path, help="where cells keep checkpoints, saved "
                     "supernets and progress logs (default: <out>/supernets)")  # fmt: skip
    run.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    add_plugin_argument(run)
    run.set_defaults(handler=run_command)

    report = commands.add_parser(
        "report", help="leaderboard, selection tests and figures of a supernet results dir"
    )
    add_report_arguments(report, "harness supernet run", n_boot_type=_positive)
    report.add_argument("--control", help="method+selection label to test the others against")
    report.add_argument("--pairwise", action="store_true", help="also write pairwise.md / "
                        ".csv: every pair of labels per dataset, Holm over the pairs")  # fmt: skip
    report.add_argument("--store", help="store (name or path) of the Pareto fronts (default: "
                        "the one the sweep ran against, when it is here)")  # fmt: skip
    report.set_defaults(handler=report_command)


def run_command(args: argparse.Namespace) -> int:
    use_plugins(args.plugin, export=True)  # local workers inherit $HARNESS_PLUGINS
    from harness.oneshot import sweep

    if args.card not in CARDS:
        raise ConfigError(unknown("card", args.card, CARDS))
    grid = sweep.load_supernet_grid(
        args.methods, args.card, args.seeds, args.tasks, args.selections, args.data,
        args.max_steps,
    )  # fmt: skip
    store = args.store
    if store is None:  # say which store gives the ground truth, and why, before it starts
        from harness.bench.choice import choose_store

        space = sweep.effective_card(grid)[0].space
        try:
            choice = choose_store(space)
        except ConfigError as err:
            print(f"NOTE: {err}: the cells run without ground truth", flush=True)
        else:
            print(f"store: {choice}", flush=True)
            store = choice.name
    summary = sweep.run_supernet_sweep(
        grid, args.out, store=store, device=args.device, jobs=args.jobs,
        images=args.images, data_root=args.data_root, progress=not args.no_progress, bf16=args.bf16,
        channels_last=args.channels_last, compile=args.compile, cuda_graph=args.cuda_graph,
        workdir=args.workdir, backend=args.backend, scheduler=args.scheduler,
    )  # fmt: skip
    card, label = sweep.effective_card(grid)
    if card.data == "synthetic":
        print("NOTE: synthetic images; these results are SYNTHETIC")
    print_sweep_summary(summary, f"cells planned ({label})")
    return 1 if summary.failed else 0


def report_command(args: argparse.Namespace) -> int:
    from harness.oneshot.resultsdir import SupernetResultsDir, pareto_fronts
    from harness.report.supernet import write_supernet_report

    require_results_dir(args.results)
    target = SupernetResultsDir(args.results)
    manifest = target.manifest()
    if manifest is not None and manifest.get("kind") != "supernet":
        raise ConfigError(f"{args.results} holds results of `harness run`: use `harness report`")
    runs, trajectories = target.load()
    tasks = sorted(runs["eval_dataset"].dropna().astype(str).unique())
    fronts = pareto_fronts(target, tasks, args.store)
    if fronts is None:
        print("NOTE: the ground-truth store is not here: the Pareto figures draw no front")
    paths = write_supernet_report(
        runs, trajectories, args.out or args.results, np.random.default_rng(args.seed),
        n_boot=args.n_boot, control=args.control, fronts=fronts, manifest=manifest,
        pairwise=args.pairwise,
    )  # fmt: skip
    for path in paths:
        print(path)
    return 0
