"""``harness bench``: import benchmark archives into stores and query them.

Sub-commands: ``import``, ``import-latency``, ``info``, ``list``, ``query`` and ``best``
(``--max METRIC=LIMIT``: the best architecture within hardware limits). Handlers return an exit
code; errors raised on purpose (:class:`~harness.errors.HarnessError`) reach
:func:`harness.cli.main`, which prints them as one line. Argument errors of these sub-commands
are one line too (:class:`OneLineParser`).
"""

from __future__ import annotations

import argparse
import functools
import json
import math
import re
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from harness import paths
from harness.bench import costs, latency, names
from harness.bench.choice import coverage_text, locate_store
from harness.bench.official import import_official
from harness.bench.store import Store, list_stores, seed_policy_error
from harness.bench.tidy import import_table, table_suffix
from harness.cli.common import OneLineParser, jobs_arg
from harness.errors import ArchiveError, ConfigError, HarnessError, did_you_mean

OFFICIAL_WORDS: dict[str, str] = {"official-tss": "tss", "official-sss": "sss"}
COMMANDS: tuple[str, ...] = ("import", "import-latency", "info", "list", "query", "best")
Handler = Callable[[argparse.Namespace], int]


def _io_errors(handler: Handler) -> Handler:
    """Turn file-system errors into a :class:`ArchiveError` (one line, no traceback)."""

    @functools.wraps(handler)
    def wrapped(args: argparse.Namespace) -> int:
        try:
            return handler(args)
        except OSError as err:
            where = f"{err.filename}: " if err.filename else ""
            raise ArchiveError(f"{where}{err.strerror or err}") from None

    return wrapped


def _seed(text: str) -> int | str:
    if text in ("mean", "all"):
        return text
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"seed must be 'mean', 'all' or an integer, got {text!r}"
        ) from None


# --------------------------------------------------------------------------- import
def _source_kind(source: str) -> tuple[str, Path]:
    """``("official" | "table", path)`` for an import SOURCE argument."""
    if source in OFFICIAL_WORDS:
        space = OFFICIAL_WORDS[source]
        found = paths.official_archives(space)
        if not found:
            expected = ", ".join(paths.OFFICIAL_ARCHIVE_NAMES[space])
            raise ArchiveError(
                f"no official {space} archive under {paths.torch_home()} (expected {expected})"
            )
        return "official", found[0]
    path = Path(source).expanduser()
    if not path.exists():
        hint = did_you_mean(source, OFFICIAL_WORDS)
        raise ArchiveError(
            f"{source} does not exist; SOURCE is an official archive (directory or .pickle.pbz2), "
            f"a tidy table (.csv, .csv.gz, .parquet), or one of: {', '.join(OFFICIAL_WORDS)}{hint}"
        )
    if path.is_dir() or path.name.endswith(".pickle.pbz2"):
        return "official", path
    if table_suffix(path) is not None:
        return "table", path
    raise ArchiveError(
        f"{path.name} is neither an official archive (directory or .pickle.pbz2) "
        "nor a tidy table (.csv, .csv.gz, .parquet)"
    )


def _table_space(path: Path) -> str:
    """The ``space`` of a tidy table's first row (read without loading the table)."""
    try:
        if table_suffix(path) == ".parquet":
            first = pd.read_parquet(path, columns=["space"]).head(1)
        else:
            first = pd.read_csv(path, usecols=["space"], nrows=1, dtype=str)
    except Exception as err:  # the importer would fail the same way; say so now
        raise ArchiveError(f"cannot read {path.name}: {type(err).__name__}: {err}") from None
    if first.empty:
        raise ArchiveError(f"{path.name}: the table has no rows")
    return str(first["space"].iloc[0])


def _table_stem(stem: str, space: str) -> str:
    """A table's file stem without the words the store name says already: ``nats_tss_public``
    becomes ``public`` (so the public table imports as ``tss-public``)."""
    words = [w for w in re.split(r"[_\-.]+", stem) if w and w.lower() not in ("nats", space)]
    return "-".join(words) or stem


def _default_name(kind: str, path: Path) -> str:
    if kind == "table":
        suffix = table_suffix(path) or ""
        space = _table_space(path)
        return f"{space}-{_table_stem(path.name[: len(path.name) - len(suffix)], space)}"
    lowered = path.name.lower()
    for space in ("tss", "sss"):
        if f"-{space}-" in lowered or lowered.startswith(f"{space}-"):
            return f"{space}-official"
    raise ConfigError(f"cannot tell the search space of {path.name} from its name; pass --name")


@_io_errors
def _cmd_import(args: argparse.Namespace) -> int:
    kind, path = _source_kind(args.source)
    name = args.name or _default_name(kind, path)
    if not name or "/" in name or name.startswith("."):
        raise ConfigError(f"store name {name!r} must be a plain directory name")
    dest = paths.stores_dir() / name
    if dest.exists() and not args.overwrite:
        raise ArchiveError(
            f"store {name!r} already exists at {dest}; pass --overwrite to replace it"
        )
    progress = sys.stderr.isatty()
    start = time.perf_counter()
    if kind == "official":
        out = import_official(
            path,
            dest,
            n_jobs=args.jobs,
            progress=progress,
            overwrite=args.overwrite,
            synthetic=args.synthetic,
        )
    else:
        out = import_table(
            path, dest, progress=progress, overwrite=args.overwrite, synthetic=args.synthetic
        )
    seconds = time.perf_counter() - start
    store = Store(out)
    print(
        f"imported {name}: {store.space_name}, {store.n_present} architectures, "
        f"{len(store.blocks)} blocks in {seconds:.1f} s -> {out}"
    )
    return 0


@_io_errors
def _cmd_import_latency(args: argparse.Namespace) -> int:
    store = _open(args.store)
    table = latency.import_latency(store, args.source, overwrite=args.overwrite)
    print(f"attached {table.source} to {store.path.name}: {len(table.devices)} devices "
          f"({', '.join(table.devices)}), ms; query them as latency:<device>")  # fmt: skip
    return 0


# --------------------------------------------------------------------------- info / list
def _format_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[str]:
    cells = [[str(h) for h in headers], *[[str(c) for c in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    return [
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in cells
    ]


def _open(name_or_path: str) -> Store:
    """A store by name or path (a missing path is reported as such, not as a name)."""
    return Store(locate_store(name_or_path))


@_io_errors
def _cmd_info(args: argparse.Namespace) -> int:
    store = _open(args.store)
    info = store.info()
    info["archs_present"] = store.n_present
    info["coverage"] = coverage_text(store)
    info["covers_space"] = store.n_present == store.n_archs
    for extra in ("value_sources", "computed_means"):  # tidy-table provenance
        if extra in store.manifest:
            info[extra] = store.manifest[extra]
    devices = latency.latency_table(store)
    if devices is not None:
        info["latency_devices"] = {"source": devices.source, "devices": list(devices.devices)}
    if args.json:
        print(json.dumps(info, indent=1))
        return 0
    for key in (
        "path",
        "space",
        "source",
        "n_archs",
        "created",
        "synthetic",
        "nats_bench_version",
        "sources_sha256",
    ):
        print(f"{key:<19}{info.get(key)}")
    partial = "" if info["covers_space"] else " (partial: never chosen as a default store)"
    print(f"{'coverage':<19}{info['coverage']}{partial}")
    for extra in ("value_sources", "computed_means"):
        if info.get(extra):
            print(f"{extra:<19}" + ", ".join(f"{k} ({v})" for k, v in info[extra].items()))
    if devices is not None:
        print(f"{'latency (ms)':<19}{', '.join(devices.devices)} ({devices.source})")
    rows = [
        (
            b["hp"],
            b["dataset"],
            ",".join(map(str, b["seeds"])) or "-",
            b["epochs"],
            b["epochs_held"],
            ",".join(b["splits"]),
            b["archs_present"],
            b["mean"],
        )
        for b in info["blocks"]
    ]
    headers = ("hp", "dataset", "seeds", "epochs", "held", "splits", "archs", "mean")
    print("\n".join(_format_table(headers, rows)))
    return 0


@_io_errors
def _cmd_list(args: argparse.Namespace) -> int:
    found = list_stores()
    if not found:
        print(
            f"no stores under {paths.stores_dir()} (import one with: harness bench import SOURCE)"
        )
        return 0
    rows: list[tuple[object, ...]] = []
    for name in found:
        try:
            store = _open(name)
            rows.append((name, store.space_name, store.source, store.n_present, len(store.blocks)))
        except HarnessError as err:
            rows.append((name, "?", f"unreadable: {err}", "", ""))
    print("\n".join(_format_table(("name", "space", "source", "archs", "blocks"), rows)))
    return 0


# --------------------------------------------------------------------------- query / best
def _dataset_split(args: argparse.Namespace) -> tuple[str, str]:
    """``(dataset, split)`` from ``--dataset/--split`` or from ``--task/--role``."""
    official = args.dataset is not None or args.split is not None
    protocol = args.task is not None or args.role is not None
    if official and protocol:
        raise ConfigError("give either --dataset and --split, or --task and --role, not both")
    if protocol:
        if args.task is None or args.role is None:
            raise ConfigError("--task and --role go together")
        return names.resolve(args.task, args.role)
    if args.dataset is None or args.split is None:
        raise ConfigError("give --dataset and --split (or --task and --role)")
    return names.check_dataset(args.dataset), args.split


def _parse_arch(text: str) -> int | str:
    """An index (``"11"``, also ``"-1"``, which the space reports as out of range) or a string."""
    return int(text) if re.fullmatch(r"[+-]?\d+", text.strip()) else text


def _check_seed(store: Store, dataset: str, hp: str, seed: int | str) -> None:
    problem = seed_policy_error(store, dataset, hp, seed)
    if problem is not None:
        raise ConfigError(problem)


@_io_errors
def _cmd_query(args: argparse.Namespace) -> int:
    store = _open(args.store)
    dataset, split = _dataset_split(args)
    index = store.space.parse(_parse_arch(args.arch))
    _check_seed(store, dataset, args.hp, args.seed)
    value = store.metric(index, dataset, split, args.hp, args.metric, args.seed, args.epoch)
    block = store.block(dataset, args.hp)
    epoch = block.epochs - 1 if args.epoch is None else args.epoch
    record = {
        "index": index,
        "arch": store.space.index_to_str(index),
        "dataset": dataset,
        "split": split,
        "hp": block.hp,
        "seed": args.seed,
        "metric": args.metric,
        "epoch": epoch,
        "value": value,
    }
    if args.json:
        print(json.dumps(record))
    else:
        print(
            f"{index}\t{record['arch']}\t{dataset}/{split} hp {block.hp} seed {args.seed} "
            f"epoch {epoch}\t{args.metric} {value:.4f}"
        )
    return 0


@_io_errors
def _cmd_best(args: argparse.Namespace) -> int:
    store = _open(args.store)
    dataset, split = _dataset_split(args)
    _check_seed(store, dataset, args.hp, args.seed)
    if args.max:
        return _constrained_best(args, store, dataset, split)
    index, value = store.best(dataset, split, args.hp, args.seed, args.metric, args.epoch)
    arch = store.space.index_to_str(index)
    if args.json:
        print(
            json.dumps(
                {"index": index, "arch": arch, "dataset": dataset, "split": split, "value": value}
            )
        )
    else:
        print(f"{index}\t{arch}\t{value:.4f}")
    return 0


def _constrained_best(args: argparse.Namespace, store: Store, dataset: str, split: str) -> int:
    """``best --max``: the optimum within the limits, how many are feasible, the unconstrained
    optimum beside it (costs of ``dataset``'s network)."""
    limits: dict[str, float] = {}
    for given in args.max:
        limits[given.metric] = min(given.limit, limits.get(given.metric, math.inf))
    best = costs.constrained_best(
        store, dataset, split, args.hp, args.seed, limits, args.metric, args.epoch
    )
    arch = store.space.index_to_str(best.index)
    if args.json:
        print(json.dumps({"index": best.index, "arch": arch, "dataset": dataset, "split": split,
                          "value": best.value, "constraint": limits, "feasible": best.n_feasible,
                          "n_archs": best.n_archs, "unconstrained": {"index": best.best_index,
                          "value": best.best_value}}))  # fmt: skip
        return 0
    print(f"{best.index}\t{arch}\t{best.value:.4f}")
    print(f"feasible: {best.n_feasible:,} of {best.n_archs:,} architectures "
          f"({costs.describe(limits)}); unconstrained best: {best.best_index} "
          f"{best.best_value:.4f}")  # fmt: skip
    return 0


def _limit(text: str) -> costs.Constraint:
    try:
        return costs.parse_constraint(text)
    except ConfigError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def _no_command(args: argparse.Namespace) -> int:
    print(f"error: harness bench: choose a command: {', '.join(COMMANDS)}", file=sys.stderr)
    return 2


# --------------------------------------------------------------------------- parsers
def _add_selection(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "store", metavar="STORE", help="store name (see `harness bench list`) or path"
    )
    parser.add_argument("--dataset", help=f"official training run ({', '.join(names.DATASETS)})")
    parser.add_argument("--split", help=f"train or an eval set ({', '.join(names.SPLITS[1:])})")
    parser.add_argument("--task", help=f"protocol task ({', '.join(names.TASKS)}), with --role")
    parser.add_argument("--role", help=f"protocol role ({', '.join(names.ROLES)}), with --task")
    parser.add_argument(
        "--hp", required=True, help="training schedule in epochs (tss: 12, 200; sss: 1, 12, 90)"
    )
    parser.add_argument("--seed", required=True, type=_seed, help="'mean', 'all' or a seed")
    parser.add_argument("--metric", default="accuracy", help="accuracy (default), loss or time")
    parser.add_argument(
        "--epoch", type=int, help="0-based epoch (default: the last of the schedule)"
    )
    parser.add_argument("--json", action="store_true", help="print JSON")


def register(groups: Any) -> None:
    """Add the ``bench`` group to the top-level sub-parsers ``groups``."""
    bench = groups.add_parser("bench", help="import and query benchmark stores")
    bench.set_defaults(handler=_no_command)
    commands = bench.add_subparsers(
        dest="bench_command", metavar="COMMAND", parser_class=OneLineParser
    )

    imp = commands.add_parser("import", help="import an official archive or a tidy table")
    imp.add_argument(
        "source",
        metavar="SOURCE",
        help="fast-mode directory, .pickle.pbz2 archive, tidy table (.csv, .csv.gz, .parquet), "
        "or official-tss / official-sss (found under $TORCH_HOME)",
    )
    imp.add_argument(
        "--name", help="store name (default: <space>-official or <space>-<table stem>)"
    )
    imp.add_argument(
        "--jobs", type=jobs_arg, default="-1",
        help="worker processes for official archives (-1 or 0: all CPUs)",
    )  # fmt: skip
    imp.add_argument("--overwrite", action="store_true", help="replace an existing store")
    imp.add_argument("--synthetic", action="store_true", help="mark the store as synthetic data")
    imp.set_defaults(handler=_cmd_import)

    info = commands.add_parser("info", help="what a store holds")
    info.add_argument("store", metavar="STORE", help="store name or path")
    info.add_argument("--json", action="store_true", help="print JSON")
    info.set_defaults(handler=_cmd_info)

    commands.add_parser("list", help="imported stores").set_defaults(handler=_cmd_list)

    query = commands.add_parser("query", help="one metric of one architecture")
    _add_selection(query)
    query.add_argument("arch", metavar="ARCH", help="official index or architecture string")
    query.set_defaults(handler=_cmd_query)

    best = commands.add_parser("best", help="the best architecture on a metric")
    _add_selection(best)
    best.add_argument("--max", action="append", type=_limit, default=[], metavar="METRIC=LIMIT",
                      help="hardware limit (repeatable): latency:<device>=5ms (see `bench "
                      "import-latency`), latency=20ms, params=1.0 (M), flops=100 (M)")  # fmt: skip
    best.set_defaults(handler=_cmd_best)

    lat = commands.add_parser("import-latency", help="attach a latency table (ms per device)")
    lat.add_argument("store", metavar="STORE", help="store name or path")
    lat.add_argument("source", metavar="FILE", help="CSV(.gz): index, arch_str, <device>...")
    lat.add_argument("--overwrite", action="store_true", help="replace an attached table")
    lat.set_defaults(handler=_cmd_import_latency)
