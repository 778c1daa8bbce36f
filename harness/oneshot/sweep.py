"""Supernet sweeps: (supernet methods x tasks x seeds) under one card -> a results directory.

The supernet counterpart of :mod:`harness.runner`, with the same conventions: a
:class:`SupernetGrid` is validated completely before anything is written; every cell gets an
idempotent run key over (method, full config, task, the card actually run, seed, ground-truth
checksum, image source); finished cells are skipped; each cell's rows are written atomically as
``runs/<run_key>.json`` and consolidated into

    runs.parquet                    one row per (run, selection rule, eval task):
                                    :data:`SUPERNET_RUN_COLUMNS`
    supernet_trajectories.parquet   one row per (run, eval task, search epoch): the argmax
                                    architecture's true accuracy (:data:`TRAJECTORY_COLUMNS`)
    manifest.json                   provenance, ``kind = "supernet"``

A directory is bound to one ground-truth checksum (the store) and one image source. A finished
cell that lacks a selection rule asked for now is run again with the union of the rules (the
search is deterministic, so its rows only gain the new rule). Cells run one after another by
default (GPU work); ``jobs > 1`` runs them in joblib (loky) processes.

Each cell runs through :func:`harness.oneshot.cell.run_cell`, which owns the cell's
random streams; ground truth comes from a benchmark store (:func:`quality.ground_truth`).
``data="synthetic"`` replaces the card's images with a few synthetic ones (smoke runs, tests);
such runs and their reports are labelled synthetic.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from joblib import Parallel, delayed
from tqdm.auto import tqdm

from harness import results, runner
from harness.bench.store import Store
from harness.data import check_official
from harness.data import data_root as resolve_data_root
from harness.errors import ConfigError, HarnessError, unknown
from harness.grid import canonical_json
from harness.oneshot.cell import SELECTIONS, run_cell
from harness.oneshot.grid import (
    DATA_MODES,
    SupernetGrid,
    effective_card,
    jpeg_archive,
    load_supernet_grid,
)
from harness.oneshot.resultsdir import (
    SUPERNET_RUN_COLUMNS,
    TRAJECTORIES_FILE,
    TRAJECTORY_COLUMNS,
    TRAJECTORY_VARYING,
    SupernetResultsDir,
)
from harness.oneshot.setup import Runtime, TruthSet, check_train_on
from harness.paths import harness_home
from harness.registry import get_method
from harness.supernet.cards import SupernetCard
from harness.supernet.compiled import check_compile_mode

logger = logging.getLogger(__name__)

__all__ = [
    "DATA_MODES",
    "SUPERNET_RUN_COLUMNS",
    "TRAJECTORIES_FILE",
    "TRAJECTORY_COLUMNS",
    "CellSpec",
    "SupernetGrid",
    "SupernetResultsDir",
    "effective_card",
    "jpeg_archive",
    "load_supernet_grid",
    "plan_cells",
    "run_supernet_cell",
    "run_supernet_sweep",
]


def _image_source(card: SupernetCard, images: Path | None) -> str:
    if card.data in ("synthetic", "official"):  # official: each row records its data checksum
        return card.data
    assert images is not None
    digest = hashlib.sha256()
    with images.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return f"cifar10-jpeg:{digest.hexdigest()[:16]}"


# --------------------------------------------------------------------------- cells
@dataclass(frozen=True)
class CellSpec:
    """One cell: everything a worker needs to run and record one supernet search."""

    method: str
    overrides: str
    config: str
    task: str
    seed: int
    card: SupernetCard
    protocol: str
    selections: tuple[str, ...]
    data_checksum: str
    images: str
    synthetic: bool

    @property
    def key(self) -> str:
        """First 16 hex digits of the SHA-256 of the cell's identity and its data."""
        ident = [self.method, self.config, self.card.space, self.task, self.card.to_dict(),
                 self.seed, self.data_checksum, self.images]  # fmt: skip
        return hashlib.sha256(canonical_json(ident).encode()).hexdigest()[:16]


def _full_config(name: str, overrides: str, card: SupernetCard) -> str:
    cls = get_method(name, "supernet")
    if card.space not in cls.spaces:
        raise ConfigError(
            f"supernet method {name!r} searches the {'/'.join(cls.spaces)} space only; card "
            f"{card.key} searches {card.space}"
        )
    values = {**card.method_overrides(cls.Config, name), **json.loads(overrides)}
    allowed = [f.name for f in dataclasses.fields(cls.Config)]
    for key in values:
        if key not in allowed:
            raise ConfigError(unknown(f"hyperparameter of {name}", key, allowed))
    try:
        method = cls(cls.Config(**values))
    except TypeError as err:
        raise ConfigError(f"bad hyperparameters for {name}: {err}") from None
    check_train_on(card, method)
    try:
        return canonical_json(dataclasses.asdict(method.config))
    except TypeError as err:
        raise ConfigError(f"bad hyperparameters for {name}: {err}") from None


def plan_cells(
    grid: SupernetGrid, card: SupernetCard, label: str, truth: TruthSet, images: str
) -> list[CellSpec]:
    """Expand ``grid`` into cells (validates hyperparameters and tasks; writes nothing)."""
    synthetic = truth.synthetic or card.data == "synthetic"
    configs = {m: _full_config(*m, card) for m in grid.methods}
    cells = []
    for task in grid.tasks:
        card.data_split(task)  # e.g. only CIFAR-10 has images
        for method, overrides in grid.methods:
            for seed in grid.seeds:
                cells.append(CellSpec(
                    method, overrides, configs[(method, overrides)], task, seed, card, label,
                    grid.selections, truth.checksum, images, synthetic,
                ))  # fmt: skip
    if len({c.key for c in cells}) < len(cells):
        raise ConfigError("the grid lists the same run twice (duplicate method configs?)")
    return cells


def _record(spec: CellSpec, rows: Iterable[Mapping[str, Any]], traj: list[dict[str, Any]],
            ) -> results.RunRecord:  # fmt: skip
    entropy = canonical_json({"seed": spec.seed, "cell": [spec.method, spec.config,
                              spec.card.space, spec.task, spec.card.key]})  # fmt: skip
    fixed = {"run_key": spec.key, "protocol": spec.protocol, "budget": None,
             "rng_entropy": entropy, "synthetic": spec.synthetic}  # fmt: skip
    out = tuple({**dict.fromkeys(SUPERNET_RUN_COLUMNS), **row, **fixed} for row in rows)
    columns = {c: [point.get(c) for point in traj] for c in TRAJECTORY_VARYING}
    return results.RunRecord(spec.key, out, columns)


def run_supernet_cell(spec: CellSpec, truth: TruthSet, runtime: Runtime) -> results.RunRecord:
    """Run one cell; an unexpected error gives rows with status ``failed`` (results null)."""
    workdir = None if runtime.workdir is None else str(Path(runtime.workdir) / spec.key)
    try:
        cell = run_cell(
            spec.method, spec.card, spec.task, spec.seed, truth,
            overrides=json.loads(spec.overrides), selections=spec.selections,
            runtime=dataclasses.replace(runtime, workdir=workdir),
        )  # fmt: skip
    except Exception as err:  # one broken cell must not end a long GPU sweep
        logger.warning("cell %s (%s, %s, seed %d) failed: %r", spec.key, spec.method,
                       spec.task, spec.seed, err)  # fmt: skip
        base = {"method": spec.method, "config": spec.config, "space": spec.card.space,
                "dataset": spec.task, "seed": spec.seed, "status": "failed",
                "error": f"{type(err).__name__}: {err}", "data_checksum": spec.data_checksum,
                "card": canonical_json(spec.card.to_dict())}  # fmt: skip
        rows = [{**base, "eval_dataset": e, "selection": s}
                for e in spec.card.eval_tasks(spec.task) for s in spec.selections]  # fmt: skip
        return _record(spec, rows, [])
    return _record(spec, cell.rows, cell.trajectory)


# --------------------------------------------------------------------------- sweeps
def _check_device(device: str) -> None:
    import torch

    if device == "cuda" and not torch.cuda.is_available():
        raise ConfigError("--device cuda: no CUDA device is available here; use --device cpu")
    if device not in ("cpu", "cuda") and not device.startswith("cuda:"):
        raise ConfigError(unknown("device", device, ("cpu", "cuda")))


def _truth(
    store: Store | str | Path | None, card: SupernetCard, tasks: Sequence[str]
) -> tuple[TruthSet, Store | None]:
    """The ground truth of the card's eval tasks and the store it came from. With no store
    given and none imported for the card's space, a truth without accuracies (costs only) that
    says so: selection quality is then reported as missing, never invented."""
    evals = list(dict.fromkeys(e for t in tasks for e in card.eval_tasks(t)))
    if store is None:
        try:
            store = runner.default_store(card.space)
        except ConfigError as err:
            reason = f"no ground truth: {err}"
            logger.warning("%s; selection quality columns stay empty", reason)
            return TruthSet.without_truth(card.space, evals, card.report_hp, reason), None
    data = runner.open_data(store, card.space)
    if data.space_name != card.space:
        raise ConfigError(
            f"store {data.path.name} holds the {data.space_name} space; card {card.key} "
            f"searches {card.space}"
        )
    try:
        return TruthSet.from_store(data, evals, card.report_hp), data
    except HarnessError as err:
        raise ConfigError(f"store {data.path.name} cannot give the ground truth: {err}") from None


def _todo(cells: list[CellSpec], done: Mapping[str, set[str]]) -> list[CellSpec]:
    """Cells not finished, or finished without some selection rule (rerun with the union);
    a rule that failed before is not finished."""
    todo = []
    for cell in cells:
        have = done.get(cell.key)
        if not have:
            todo.append(cell)
        elif not set(cell.selections) <= have:
            union = tuple(s for s in SELECTIONS if s in have or s in cell.selections)
            todo.append(dataclasses.replace(cell, selections=union))
    return sorted(todo, key=lambda c: (c.task, c.method, c.config, c.seed))


def _manifest(store: Store | None, truth: TruthSet, card: SupernetCard, label: str,
              images: str, device: str, synthetic: bool) -> dict[str, Any]:  # fmt: skip
    data: dict[str, Any] = {"checksum": truth.checksum, "space": card.space, "images": images}
    if store is not None:
        data.update(store=store.path.name, source=store.source, synthetic=store.synthetic,
                    created=store.manifest.get("created"))  # fmt: skip
    else:
        data.update(store=None, synthetic=False, missing=truth.missing)
    return {
        "kind": "supernet", "git": results.git_commit(), "packages": results.package_versions(),
        "machine": results.machine_info(device), "data": data, "synthetic": synthetic,
        "protocols": {label: card.to_dict()},
    }  # fmt: skip


def run_supernet_sweep(
    grid: SupernetGrid,
    out: str | Path,
    *,
    store: Store | str | Path | None = None,
    device: str = "cpu",
    jobs: int = 1,
    images: str | Path | None = None,
    data_root: str | Path | None = None,
    cache_dir: str | Path | None = None,
    progress: bool = True,
    bf16: bool = False,
    channels_last: bool = False,
    compile: str | None = None,
    cuda_graph: bool = False,
    workdir: str | Path | None = None,
    backend: str = "loky",
    scheduler: str | None = None,
) -> runner.SweepSummary:
    """Run every unfinished cell of ``grid`` into ``out``; all input is checked first.

    Args:
        store: ground truth (a Store, a store name or path; None: the runner's default store
            of the card's space, ``<space>-official`` else ``<space>-public``; when neither is
            imported, the cells run without ground truth and their rows say why).
        device: ``cpu`` or ``cuda``; ``jobs``: cells at once (1: one after another).
        backend: ``loky`` (processes of this machine) or ``dask`` (the workers of the cluster
            at ``scheduler``, e.g. ``tcp://host:8786``, one GPU per worker where there are
            GPUs; without ``scheduler`` a local cluster of ``jobs`` workers). Cells stay
            resumable: a cell whose worker is lost runs again on another and resumes from
            its checkpoint, so ``workdir`` must be on storage every worker sees.
        images: the CIFAR-10 JPEG archive (default: the shared one; only for JPEG data);
            ``data_root``: where the official images are (default ``$HARNESS_DATA_ROOT``, else
            ``$TORCH_HOME/cifar.python``; only for official data);
            ``cache_dir``: where decoded images are cached (default ``$HARNESS_HOME/images``).
        bf16, channels_last, compile, cuda_graph: speed settings of :class:`Runtime` (in the
            manifest, not in run keys).
        workdir: where each cell keeps its checkpoints, saved supernet and progress log, in a
            folder named by its run key (default ``<out>/supernets``; e.g. a scratch disk). A
            cell finds its checkpoints there when the sweep runs again.
    """
    if not (isinstance(jobs, int) and not isinstance(jobs, bool) and jobs >= 1):
        raise ConfigError(f"jobs must be an int >= 1, got {jobs!r}")
    if backend not in runner.BACKENDS:
        raise ConfigError(unknown("backend", backend, runner.BACKENDS))
    if scheduler is not None and backend != "dask":
        raise ConfigError("a scheduler address needs backend 'dask' (--backend dask)")
    _check_device(device)
    check_compile_mode(compile)
    card, label = effective_card(grid)
    archive = None
    if card.data == "cifar10-jpeg":
        archive = Path(images) if images is not None else jpeg_archive()
        if not archive.is_file():
            raise ConfigError(f"image archive {archive} does not exist")
    elif card.data == "official":  # every task's files are there before a cell starts
        root = resolve_data_root(data_root)
        for task in grid.tasks:
            check_official(task, root)
    source = _image_source(card, archive)
    truth, data = _truth(store, card, grid.tasks)
    cells = plan_cells(grid, card, label, truth, source)
    target = SupernetResultsDir(out)
    target.check_binding(truth.checksum, "" if data is None else data.path.name)
    target.check_sources(source)
    started, t0 = results.now(), time.perf_counter()
    target.prepare()
    done = target.finished_selections()
    todo = _todo(cells, done)
    retried = sum(c.key in done and not done[c.key] for c in todo)  # failed before
    synthetic = truth.synthetic or card.data == "synthetic"
    target.update_manifest(_manifest(data, truth, card, label, source, device, synthetic))
    runtime = Runtime(
        device=device, bf16=bf16, channels_last=channels_last, compile=compile,
        cuda_graph=cuda_graph,
        images=None if archive is None else str(archive),
        data_root=None if data_root is None else str(data_root),
        cache_dir=str(cache_dir or harness_home() / "images"),
        workdir=str(target.path / "supernets" if workdir is None else Path(workdir)),
    )  # fmt: skip
    failed = _execute(todo, truth, runtime, target, jobs, progress, backend, scheduler)
    runs, traj = target.consolidate()
    wall = time.perf_counter() - t0
    summary = runner.SweepSummary(
        target.path, len(cells), len(cells) - len(todo), len(todo), failed, wall, retried=retried
    )
    sweep = {"started": started, "grid": grid.describe(), "protocol": label, "jobs": jobs,
             "backend": backend, "scheduler": scheduler,
             "device": device, "bf16": bf16, "channels_last": channels_last,
             "compile": compile, "cuda_graph": cuda_graph,
             **{k: v for k, v in dataclasses.asdict(summary).items() if k != "out"}}  # fmt: skip
    target.update_manifest({"sweeps": [sweep], "n_runs": int(runs["run_key"].nunique()),
                            "n_run_rows": len(runs), "n_trajectory_rows": len(traj)})  # fmt: skip
    logger.info("supernet sweep into %s: %s", target.path, sweep)
    return summary


def _execute(todo: list[CellSpec], truth: TruthSet, runtime: Runtime,
             target: SupernetResultsDir, jobs: int, progress: bool, backend: str,
             scheduler: str | None) -> int:  # fmt: skip
    """Run ``todo``, writing each record as it arrives; returns the number that failed.

    ``loky``: one after another (``jobs == 1``) or in ``jobs`` processes; ``dask``: on the
    workers of the cluster at ``scheduler`` (a local one of ``jobs`` workers if None), where
    a cell lost with its worker is run again elsewhere and resumes from its checkpoint (the
    work directory must be one every worker sees)."""
    failed = 0
    bar = tqdm(total=len(todo), desc="supernet cells", unit="cell", disable=not progress)
    with bar:
        if backend == "loky" and jobs == 1:
            records: Iterable[results.RunRecord] = (
                run_supernet_cell(c, truth, runtime) for c in todo
            )
            failed = _write_all(records, target, bar)
        else:
            with runner.parallel_context(backend, scheduler, jobs):
                n_jobs = jobs if backend == "loky" else -1
                parallel = Parallel(n_jobs=n_jobs, return_as="generator_unordered")
                records = parallel(delayed(run_supernet_cell)(c, truth, runtime) for c in todo)
                failed = _write_all(records, target, bar)
    return failed


def _write_all(records: Iterable[results.RunRecord], target: SupernetResultsDir,
               bar: Any) -> int:  # fmt: skip
    failed = 0
    for record in records:
        target.write_run(target.merge_failure(record))
        failed += record.rows[0]["status"] != "ok"
        bar.update(1)
    return failed
