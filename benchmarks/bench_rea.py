"""1,000 REA searches through the harness vs the same REA driving the official ``nats_bench`` API.

Both sides run the registered REA (population 10, tournament 3) on tss / CIFAR-10 under the
``nats-tss`` budget (20,000 simulated seconds; each query answers the hp-12 validation accuracy
of a randomly drawn training seed and is charged that seed's training time plus one epoch of
validation time), on the same full-size synthetic archive:

* ours: the archive imported into a store; 1,000 searches with ``--jobs`` workers, timed twice:
  the search loop alone (``runner.run_chunk`` per chunk, records built but not written) and
  the whole sweep (``runner.run_sweep``: plan, run, write 1,000 run files, consolidate);
* the API: ``nats_bench.create(archive, 'tss', fast_mode=True)`` and ``simulate_train_eval``
  per query. It is far slower, so ``--api-runs`` searches are timed in one process and the
  time for 1,000 is extrapolated linearly (the JSON says so).

Every answer of the API is checked against the store (same accuracy and charge for one of the
architecture's seeds). The API draws each query's training seed from Python's global ``random``
(its own behaviour), so its query counts vary slightly between invocations. Results go to
``results/benchmarks/rea_speed.json``.

    python benchmarks/bench_rea.py --workdir .work/bench_rea            # full size (recorded)
    python benchmarks/bench_rea.py --workdir .work/quick --indices 300  # quick smoke run

``--indices N`` generates only N architectures; a search may then propose an architecture the
archive lacks, so both sides answer it with the present architecture ``present[i % N]``
(identity on a full archive). Subset runs are labelled and written beside the real file.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from joblib import Parallel, delayed

from harness import results, runner
from harness.bench.official import arch_files, import_official
from harness.bench.store import Store, open_store
from harness.bench.synthetic import write_synthetic_archive
from harness.oracle import FitnessTables
from harness.paths import OFFICIAL_ARCHIVE_NAMES
from harness.protocol import get_protocol
from harness.registry import make_method
from harness.spaces import get_space

logger = logging.getLogger("bench_rea")
ROOT = Path(__file__).resolve().parents[1]
TASK = "cifar10"
PROTOCOL = "nats-tss"


def prepare(workdir: Path, indices: int | None, seed: int, jobs: int) -> tuple[Path, Store]:
    """The synthetic archive and its store under ``workdir`` (generated/imported once)."""
    archive = workdir / OFFICIAL_ARCHIVE_NAMES["tss"][0]
    if not archive.is_dir():
        subset = None if indices is None else range(indices)
        logger.info("generating a synthetic tss archive (%s architectures)", indices or "all")
        write_synthetic_archive(workdir, "tss", np.random.default_rng(seed), subset, "dir", jobs)
    store_dir = workdir / "store"
    if not store_dir.is_dir():
        logger.info("importing %s", archive)
        import_official(archive, store_dir, n_jobs=jobs, progress=False, synthetic=True)
    return archive, open_store(store_dir)


def remap(store: Store) -> np.ndarray:
    """Index -> index answered: identity for present architectures, ``present[i % N]`` else."""
    present = np.flatnonzero(store.present("cifar10-valid", "12"))
    ids = np.arange(store.n_archs)
    mask = np.zeros(store.n_archs, dtype=bool)
    mask[present] = True
    return np.where(mask, ids, present[ids % len(present)])


def time_ours(store: Store, runs: int, jobs: int) -> dict[str, Any]:
    """Wall seconds of ``runs`` searches: search loop only, then the whole sweep (full size)."""
    grid = runner.load_grid(methods="rea", tasks=TASK, seeds=f"0-{runs - 1}", protocols=PROTOCOL)
    specs = runner.plan_runs(grid, store)
    chunks = [specs[i : i + 50] for i in range(0, len(specs), 50)]
    out: dict[str, Any] = {}
    if store.n_present == store.n_archs:
        start = time.perf_counter()
        records = Parallel(n_jobs=jobs)(
            delayed(runner.run_chunk)(c, str(store.path)) for c in chunks
        )
        out["search_loop_seconds"] = time.perf_counter() - start
        rows = [r.rows[0] for chunk in records for r in chunk]
        assert all(r["status"] == "ok" for r in rows), "some searches failed"
        out["mean_queries"] = float(np.mean([r["queries"] for r in rows]))
        with tempfile.TemporaryDirectory() as tmp:
            start = time.perf_counter()
            summary = runner.run_sweep(
                grid, Path(tmp) / "res", store=store, jobs=jobs, progress=False
            )
            out["sweep_seconds"] = time.perf_counter() - start
            assert summary.ran == runs and summary.failed == 0
    else:  # subset archive: remapped tables, same loop
        tables = _remapped_tables(store)
        start = time.perf_counter()
        queries = Parallel(n_jobs=jobs)(delayed(_loop)(tables, c) for c in chunks)
        out["search_loop_seconds"] = time.perf_counter() - start
        out["mean_queries"] = float(np.mean([q for chunk in queries for q in chunk]))
    return out


def _remapped_tables(store: Store) -> FitnessTables:
    tables = FitnessTables.from_store(store, PROTOCOL, TASK)
    index = remap(store)
    fitness, cost = tables.fitness[:, index], tables.cost[:, index]
    fitness.flags.writeable = cost.flags.writeable = False
    return FitnessTables(**{**tables.__dict__, "fitness": fitness, "cost": cost})


def _loop(tables: FitnessTables, specs: list[runner.RunSpec]) -> list[int]:
    from harness.oracle import run_search

    out = []
    for spec in specs:
        method_rng, oracle_rng = spec.streams()
        outcome = run_search(make_method("rea"), tables.oracle(oracle_rng, spec.budget), method_rng)
        out.append(outcome.queries)
    return out


def time_api(archive: Path, store: Store, runs: int) -> dict[str, Any]:
    """Seconds for ``runs`` REA searches through the official API, with a parity check."""
    import nats_bench

    start = time.perf_counter()
    api = nats_bench.create(str(archive), "tss", fast_mode=True, verbose=False)
    setup = time.perf_counter() - start
    budget = get_protocol(PROTOCOL).budgets[TASK]
    tables = FitnessTables.from_store(store, PROTOCOL, TASK)
    index = remap(store)
    space = get_space("tss")
    queries, matched = [], 0
    start = time.perf_counter()
    for seed in range(runs):
        method = make_method("rea")
        method.setup(space, np.random.default_rng(np.random.SeedSequence([seed, 0x5EA])))
        api.reset_time()
        spent, n = 0.0, 0
        while spent < budget:  # the query that crosses the budget is answered, as ours
            arch = method.ask()
            valid, _latency, cost, spent = api.simulate_train_eval(int(index[arch]), TASK, hp="12")
            ours = np.isclose(tables.fitness[:, index[arch]], valid, atol=1e-4) & np.isclose(
                tables.cost[:, index[arch]], cost, rtol=1e-5
            )
            matched += bool(ours.any())
            method.tell(arch, float(valid))
            n += 1
        queries.append(n)
    wall = time.perf_counter() - start
    return {"setup_seconds": setup, "timed_runs": runs, "timed_seconds": wall,
            "seconds_per_run": wall / runs, "mean_queries": float(np.mean(queries)),
            "answers_matching_store": matched / sum(queries)}  # fmt: skip


def machine() -> dict[str, Any]:
    info = results.machine_info()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        models = [ln.split(":", 1)[1].strip() for ln in cpuinfo.read_text().splitlines()
                  if ln.startswith("model name")]  # fmt: skip
        info["cpu_model"] = models[0] if models else None
    info["load_average_1m"] = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    info["system"] = platform.system()
    return info


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workdir", type=Path, default=ROOT / ".work" / "bench_rea")
    parser.add_argument("--indices", type=int, help="generate only this many architectures")
    parser.add_argument("--runs", type=int, default=1000, help="our searches")
    parser.add_argument("--api-runs", type=int, default=20, help="API searches timed")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0, help="seed of the synthetic archive")
    parser.add_argument(
        "--out", type=Path, default=ROOT / "results" / "benchmarks" / "rea_speed.json"
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    archive, store = prepare(args.workdir, args.indices, args.seed, args.jobs)
    n_files = len(arch_files(archive))
    full = n_files == get_space("tss").num_archs and store.n_present == store.n_archs
    load_before = machine()["load_average_1m"]
    ours = time_ours(store, args.runs, args.jobs)
    api = time_api(archive, store, args.api_runs)
    ours_seconds = ours.get("sweep_seconds", ours["search_loop_seconds"])
    api_1000 = api["seconds_per_run"] * args.runs
    report = {
        "benchmark": "REA searches, tss cifar10, nats-tss budget: harness vs nats_bench API",
        "created": results.now(), "git": results.git_commit(),
        "packages": results.package_versions(),
        "machine": {**machine(), "load_average_1m_before": load_before},
        "archive": {"synthetic": True, "files": n_files, "full_size": full, "seed": args.seed},
        "runs": args.runs, "jobs": args.jobs, "ours": ours, "api": api,
        "api_seconds_for_runs": api_1000, "api_seconds_extrapolated": True,
        "speedup_definition": "API seconds for `runs` searches (one process, extrapolated "
        "from `api.timed_runs`) / our whole sweep with `jobs` workers (plan, search, write, "
        "consolidate)",
        "speedup": api_1000 / ours_seconds,
        "speedup_search_loop": api_1000 / ours["search_loop_seconds"],
        "targets": {"speedup_at_least_100x": api_1000 / ours_seconds >= 100,
                    "runs_under_30s_on_2_cores": ours_seconds < 30 and args.jobs <= 2},
    }  # fmt: skip
    out = args.out if full else args.out.with_name(args.out.stem + "_subset.json")
    results.atomic_write_text(out, json.dumps(report, indent=1) + "\n")
    print(json.dumps({k: report[k] for k in ("ours", "api", "speedup", "targets")}, indent=1))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
