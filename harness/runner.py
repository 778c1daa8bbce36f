"""Experiments x seeds -> runs: run keys, RNG streams, resume and parallel execution.

A :class:`~harness.grid.Grid` (:mod:`harness.grid`: methods x spaces x tasks x seeds x
protocols, from flags or TOML) is validated against a store and expanded by :func:`plan_runs`
into :class:`RunSpec` cells, each with an idempotent key over (method, full config, space,
task, protocol, seed, data checksum). :func:`run_sweep` skips finished keys, runs the rest in
chunks with joblib (loky processes, or dask with a ``distributed`` client) and writes each run
atomically (:mod:`harness.results`), then consolidates the tables and the manifest. Only
black-box methods run here; supernet methods run with ``harness supernet run``
(:mod:`harness.oneshot.sweep`).

Randomness: each run owns ``SeedSequence(entropy=[seed, *cell_hash])`` (the cell hash is a
stable SHA-256 of method, config, space, task and protocol), spawned into two streams: child 0
drives the method, child 1 the oracle (training-seed draws). No global random state is used.

Plug-ins (:func:`harness.registry.load_plugins`) given to :func:`run_sweep` travel with every
chunk, and each worker (a loky process, a Dask worker) loads them before it resolves a method;
a method a worker cannot resolve stops the sweep with an error naming the plug-ins.

A protocol card with a ``constraint`` needs a store that answers its cost metrics (e.g. an
attached latency table, :mod:`harness.bench.costs`); runs that saw no feasible architecture
are finished with status ``infeasible`` and are not run again.

The grid names (:func:`load_grid`, :func:`parse_seeds`, :class:`Grid`, :class:`MethodSpec`,
:class:`RunSpec`, :data:`METHOD_ALIASES`) are re-exported from :mod:`harness.grid`.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import ExitStack
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from joblib import Parallel, delayed, parallel_config
from tqdm.auto import tqdm

from harness import records, results
from harness.bench import costs as bench_costs
from harness.bench import names
from harness.bench.choice import choose_store, coverage_text, locate_store
from harness.bench.latency import latency_table
from harness.bench.store import Store, open_store
from harness.errors import ConfigError, HarnessError, unknown
from harness.grid import (
    METHOD_ALIASES,
    Grid,
    MethodSpec,
    RunSpec,
    load_grid,
    parse_seeds,
    require_blackbox,
)
from harness.oracle import FitnessTables, SharedNoise, run_search
from harness.protocol import ProtocolCard, get_protocol
from harness.registry import load_plugins, make_method, require_method

__all__ = [
    "BACKENDS",
    "METHOD_ALIASES",
    "Grid",
    "MethodSpec",
    "RunSpec",
    "SweepSummary",
    "default_store",
    "load_grid",
    "open_data",
    "parse_seeds",
    "plan_runs",
    "protocol_label",
    "run_chunk",
    "run_one",
    "run_sweep",
]

logger = logging.getLogger(__name__)

BACKENDS: tuple[str, ...] = ("loky", "dask")


# --------------------------------------------------------------------------- run cells
def protocol_label(card: ProtocolCard, budgets: Mapping[str, float]) -> str:
    """The card key, with the grid's budget overrides (task or ``*``) appended if any.

    The label depends on the overrides as given, not on the grid's tasks, so that adding a
    task to a grid keeps the keys of the runs already made.
    """
    if not budgets:
        return card.key
    return f"{card.key}[budget " + ",".join(f"{t}={b:g}s" for t, b in sorted(budgets.items())) + "]"


def _check_store(store: Store, card: ProtocolCard, task: str, eval_tasks: Sequence[str]) -> None:
    needs = [(*names.resolve(task, card.fitness_role), card.fitness_hp)]
    for e in eval_tasks:
        needs += [(*names.resolve(e, "test"), card.report_hp)]
    for dataset, split, hp in needs:
        try:
            block = store.block(dataset, hp)
        except HarnessError as err:
            raise ConfigError(f"{card.key} on {task} needs {dataset} @ hp {hp}: {err}") from None
        if split not in block.splits:
            raise ConfigError(
                f"store {store.path.name} lacks {dataset}/{split} @ hp {hp} ({card.key})"
            )
    if card.constraint:
        try:
            feasible = bench_costs.feasible_mask(
                store, card.constraint, bench_costs.cost_dataset(task)
            )
        except HarnessError as err:
            raise ConfigError(f"{card.key} on {task} is constrained: {err}") from None
        if not feasible.any():
            raise ConfigError(f"no architecture of store {store.path.name} meets "
                              f"{bench_costs.describe(card.constraint)} ({card.key})")  # fmt: skip


def _check_answerable(store: Store, card: ProtocolCard, task: str, budget: float) -> None:
    """Refuse a store that cannot answer every query of a search, or a budget that buys none.

    A search may sample any architecture, so every architecture needs a fitness value; a
    budget below the cheapest query would end every search after one random query.
    """
    tables = FitnessTables.from_store(store, card, task)
    present = tables.present
    if not present.all():
        raise ConfigError(
            f"store {store.path.name} holds {coverage_text(store)} and has fitness for "
            f"{int(present.sum()):,} of {present.size:,} on {task} ({card.key}); a search "
            "samples every architecture, so every run would fail: use --store with a store "
            "that covers the space (harness bench list)"
        )
    cheapest = float(np.min(tables.cost[~np.isnan(tables.fitness)]))
    if budget < cheapest:
        raise ConfigError(
            f"budget {budget:g} s on {task} buys less than one query: the cheapest query on "
            f"store {store.path.name} costs {cheapest:,.1f} s ({card.key}); give at least that"
        )


def plan_runs(grid: Grid, store: Store) -> list[RunSpec]:
    """Expand and validate ``grid`` against ``store`` (:class:`ConfigError`; writes nothing)."""
    require_blackbox(m.name for m in grid.methods)
    configs = {m: m.instance_config() for m in grid.methods}
    cards = [get_protocol(p) for p in grid.protocols]
    for space in grid.spaces:
        if space != store.space_name:
            raise ConfigError(
                f"store {store.path.name} holds {store.space_name}, the grid asks for {space}"
            )
        if not any(c.space == space for c in cards):
            raise ConfigError(
                f"no protocol of the grid is for space {space}: {list(grid.protocols)}"
            )
    overrides = dict(grid.budgets)
    specs: list[RunSpec] = []
    for card in cards:
        if card.space not in grid.spaces:
            raise ConfigError(
                f"protocol {card.key} is for {card.space}, grid spaces: {list(grid.spaces)}"
            )
        for task in grid.tasks:
            if task not in card.tasks:
                raise ConfigError(unknown(f"search task of protocol {card.key}", task, card.tasks))
        used = {t: overrides.get(t, overrides.get("*", card.budgets[t])) for t in grid.tasks}
        label = protocol_label(card, overrides)
        for task in grid.tasks:
            _check_store(store, card, task, card.eval_tasks(task))
            _check_answerable(store, card, task, used[task])
            for method in grid.methods:
                for seed in grid.seeds:
                    specs.append(RunSpec(
                        method.name, method.overrides, configs[method], card.space, task, label,
                        card.name, seed, used[task], card.eval_tasks(task), store.checksum,
                        store.synthetic,
                    ))  # fmt: skip
    keys = [s.key for s in specs]
    if len(set(keys)) != len(keys):
        raise ConfigError("the grid lists the same run twice (duplicate method configs?)")
    return specs


# --------------------------------------------------------------------------- workers
_STORES: dict[tuple[str, str], Store] = {}


def _open_cached(path: str, checksum: str) -> Store:
    """The store at ``path``, opened once per process (and again if it was replaced)."""
    store = _STORES.get((path, checksum))
    if store is None:
        store = open_store(path)
        if store.checksum != checksum:
            raise ConfigError(f"the store at {path} changed during the sweep")
        _STORES[(path, checksum)] = store
    return store


def run_one(spec: RunSpec, store: Store) -> results.RunRecord:
    """Run one search and build its record; an unexpected error gives a ``failed`` record."""
    card = get_protocol(spec.protocol_name)
    tables = FitnessTables.from_store(store, card, spec.task)
    method_rng, _ = spec.streams()
    noise = SharedNoise(spec.oracle_key, tables.space.num_archs)  # shared by the seed's methods
    start = time.perf_counter()
    try:
        method = make_method(spec.method, **json.loads(spec.overrides))
        outcome = run_search(method, tables.oracle(noise, spec.budget), method_rng)
    except Exception as err:  # a bug in one method must not stop a sweep of thousands
        logger.warning(
            "run %s (%s, %s, seed %d) failed: %r", spec.key, spec.method, spec.task, spec.seed, err
        )
        return records.make_record(spec, None, None, {}, f"{type(err).__name__}: {err}")
    wall = time.perf_counter() - start
    reports = {
        e: records.report_table(store, card.report_hp, e, card.constraint, spec.task)
        for e in spec.eval_tasks
    }
    return records.make_record(spec, outcome, wall, reports, None)


def run_chunk(
    specs: Sequence[RunSpec], store_path: str, plugins: Sequence[str] = ()
) -> list[results.RunRecord]:
    """Run several searches (of one data checksum) in one worker, amortising set-up.

    ``plugins`` are loaded first; a method that is still unknown raises :class:`ConfigError`
    (which stops the sweep), never a silently failed record."""
    if not specs:
        return []
    for method in dict.fromkeys(s.method for s in specs):
        require_method(method, plugins)
    store = _open_cached(store_path, specs[0].data_checksum)
    return [run_one(spec, store) for spec in specs]


def _chunks(specs: list[RunSpec], size: int) -> Iterator[list[RunSpec]]:
    for i in range(0, len(specs), size):
        yield specs[i : i + size]


# --------------------------------------------------------------------------- sweeps
@dataclass(frozen=True)
class SweepSummary:
    """What a sweep did: runs planned, skipped (already finished), run now (``retried`` of
    them had failed before), failed now."""

    out: Path
    planned: int
    skipped: int
    ran: int
    failed: int
    wall_seconds: float
    #: Departures from the protocol that the data forced (see ``FitnessTables.notes``).
    notes: tuple[str, ...] = ()
    retried: int = 0
    #: Runs made now that saw no feasible architecture (status ``infeasible``; not failed).
    infeasible: int = 0


def default_store(space: str) -> str:
    """The imported store of ``space`` that covers the whole space, chosen by coverage
    (:func:`harness.bench.choice.choose_store`: real before synthetic, official first);
    :class:`ConfigError` saying what each store holds when none does, or none exists."""
    return choose_store(space).name


def open_data(store: Store | str | Path | None, space: str) -> Store:
    """A store given as object, name or path; None: :func:`default_store` for ``space``."""
    if isinstance(store, Store):
        return store
    try:
        return Store(locate_store(store if store is not None else default_store(space)))
    except HarnessError as err:
        raise ConfigError(str(err)) from None


def parallel_context(backend: str, scheduler: str | None, jobs: int) -> Any:
    """A context manager configuring joblib; dask starts (or connects to) a distributed client."""
    if backend not in BACKENDS:
        raise ConfigError(unknown("backend", backend, BACKENDS))
    if backend == "loky":
        return parallel_config(backend="loky", n_jobs=jobs)
    try:
        from distributed import Client, LocalCluster
    except ImportError:
        raise ConfigError(
            "--backend dask needs dask[distributed]: pip install 'dask[distributed]'"
        ) from None
    stack = ExitStack()
    if scheduler:
        stack.enter_context(Client(scheduler))
    else:
        cluster = stack.enter_context(
            LocalCluster(n_workers=jobs, threads_per_worker=1, processes=True)
        )
        stack.enter_context(Client(cluster))
    stack.enter_context(parallel_config(backend="dask"))
    return stack


def run_sweep(
    grid: Grid,
    out: str | Path,
    *,
    store: Store | str | Path | None = None,
    jobs: int = 1,
    backend: str = "loky",
    scheduler: str | None = None,
    chunk_size: int = 50,
    progress: bool = True,
    prune: bool = False,
    plugins: Sequence[str] = (),
) -> SweepSummary:
    """Run every unfinished cell of ``grid`` into ``out``; all input is checked first.

    ``prune`` deletes the per-run files once they are consolidated into the tables.
    ``plugins`` (module names or ``.py`` paths) are the modules that register the grid's
    methods of one's own: load them before :func:`load_grid` too; every worker loads them.
    """
    plugins = load_plugins(plugins)
    if not (isinstance(jobs, int) and jobs >= 1) or not (
        isinstance(chunk_size, int) and chunk_size >= 1
    ):
        raise ConfigError(f"jobs and chunk_size must be ints >= 1, got {jobs!r}, {chunk_size!r}")
    if backend not in BACKENDS:
        raise ConfigError(unknown("backend", backend, BACKENDS))
    data = open_data(store if store is not None else grid.store, grid.spaces[0])
    specs = plan_runs(grid, data)
    _STORES[(str(data.path), data.checksum)] = data  # in-process workers reuse its tables
    target = results.ResultsDir(out)
    target.check_writable()
    target.check_binding(data.checksum, data.path.name)
    started, t0 = results.now(), time.perf_counter()
    statuses = _finished(target)
    todo = sorted(
        (s for s in specs if not statuses.get(s.key, False)),
        key=lambda s: (s.protocol, s.task, s.method, s.config, s.seed),
    )
    retried = sum(s.key in statuses for s in todo)  # failed before: run again
    notes = _data_notes(data, specs)
    if not todo and not target.run_files():  # all finished and consolidated: touch nothing
        logger.info("sweep into %s: all %d runs finished before; nothing written", out, len(specs))
        wall = time.perf_counter() - t0
        return SweepSummary(target.path, len(specs), len(specs), 0, 0, wall, notes, 0)
    target.prepare()
    provenance: dict[str, Any] = {}
    if todo or target.manifest() is None:  # the code and machine that compute the runs
        cards = {s.protocol: get_protocol(s.protocol_name) for s in specs}
        provenance = results.sweep_manifest(data, cards, dict(grid.budgets))
        provenance.update(_cost_provenance(target, data, cards.values()))
        target.update_manifest(provenance)
    failed, infeasible = _execute(
        todo, target, str(data.path), jobs, backend, scheduler, chunk_size, progress, plugins
    )
    runs, traj = target.consolidate(prune)
    wall = time.perf_counter() - t0
    summary = SweepSummary(
        target.path, len(specs), len(specs) - len(todo), len(todo), failed, wall, notes, retried,
        infeasible,
    )  # fmt: skip
    sweep = {"started": started, "grid": grid.describe(), "jobs": jobs, "backend": backend,
             **{k: v for k, v in asdict(summary).items() if k != "out"}}  # fmt: skip
    if plugins:
        sweep["plugins"] = list(plugins)
    if todo:
        sweep["git"] = provenance["git"]
    n_runs = int(runs["run_key"].nunique())
    target.update_manifest({"sweeps": [sweep], "n_runs": n_runs, "n_run_rows": len(runs),
                            "n_trajectory_rows": len(traj)})  # fmt: skip
    logger.info("sweep into %s: %s", target.path, sweep)
    return summary


def _finished(target: results.ResultsDir) -> dict[str, bool]:
    """Run key -> finished (status ``ok``, or ``infeasible``: a search that saw no feasible
    architecture gives the same answer when run again); False: failed, to run again."""
    statuses = target.run_statuses()
    unfinished = {k for k, ok in statuses.items() if not ok}
    if not unfinished:
        return statuses
    infeasible: set[str] = set()
    table = target.path / results.RUNS_FILE
    if table.is_file():
        frame = pd.read_parquet(table, columns=["run_key", "status"])
        infeasible |= set(frame.loc[frame["status"] == "infeasible", "run_key"].astype(str))
    files = target.run_files()
    for key in unfinished & set(files):  # run files win over the table
        infeasible.discard(key)
        if all(row.get("status") == "infeasible" for row in target.read_run(key).rows):
            infeasible.add(key)
    return {k: ok or k in infeasible for k, ok in statuses.items()}


def _cost_provenance(
    target: results.ResultsDir, data: Store, cards: Iterable[ProtocolCard]
) -> dict[str, Any]:
    """The latency table a constrained sweep reads (manifest ``cost_tables``); a results
    directory whose runs read another one is refused."""
    if not any(any(m.startswith("latency:") for m in c.constraint) for c in cards):
        return {}
    table = latency_table(data)
    assert table is not None  # plan_runs checked the constraint's costs
    entry = {"latency": {"source": table.source, "sha256": table.sha256}}
    old = ((target.manifest() or {}).get("cost_tables") or {}).get("latency")
    if old is not None and old.get("sha256") != table.sha256:
        raise ConfigError(
            f"results directory {target.path} holds constrained runs made with another "
            f"latency table ({old.get('source')}, sha256 {str(old.get('sha256'))[:12]}...): "
            "use another --out"
        )
    return {"cost_tables": entry}


def _data_notes(data: Store, specs: list[RunSpec]) -> tuple[str, ...]:
    """The data caveats of every (protocol, task) of a sweep, each said once."""
    pairs = dict.fromkeys((s.protocol_name, s.task) for s in specs)
    notes = (n for p, t in pairs for n in FitnessTables.from_store(data, p, t).notes)
    return tuple(dict.fromkeys(notes))


def _execute(
    todo: list[RunSpec], target: results.ResultsDir, store_path: str, jobs: int,
    backend: str, scheduler: str | None, chunk_size: int, progress: bool,
    plugins: Sequence[str] = (),
) -> tuple[int, int]:  # fmt: skip
    """Run ``todo`` in chunks, writing each record as its chunk returns; returns the numbers
    of failed and of infeasible runs."""
    if not todo:
        return 0, 0
    size = max(1, min(chunk_size, math.ceil(len(todo) / (4 * jobs))))
    failed = infeasible = 0
    bar = tqdm(total=len(todo), desc="runs", unit="run", disable=not progress)
    with bar, parallel_context(backend, scheduler, jobs):
        n_jobs = jobs if backend == "loky" else -1
        parallel = Parallel(n_jobs=n_jobs, return_as="generator_unordered")
        chunks = (delayed(run_chunk)(c, store_path, plugins) for c in _chunks(todo, size))
        for records in parallel(chunks):
            for record in records:
                target.write_run(record)
                failed += record.rows[0]["status"] == "failed"
                infeasible += record.rows[0]["status"] == "infeasible"
            bar.update(len(records))
    return failed, infeasible
