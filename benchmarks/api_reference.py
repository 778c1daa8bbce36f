"""Reference timings of the official ``nats_bench`` API on a fast-mode archive directory.

The numbers a side-by-side benchmark compares our store against: a traversal that extracts
what a user needs from every architecture (final-epoch metrics of every seed plus the costs,
per index, hp and dataset), single-query latencies, peak memory, and the floor set by bz2
decompression alone. Every function returns a plain dict of numbers and prints nothing.

Run ``python benchmarks/api_reference.py ARCHIVE_DIR --space tss --out results.json`` to
measure everything, each part in a fresh process so that peak memory is its own.
"""

from __future__ import annotations

import argparse
import bz2
import json
import os
import pickle
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import nats_bench
import numpy as np
from joblib import Parallel, delayed

from harness.bench.synthetic import DATASETS, HPS

TIME_LIMIT_S = 600.0  # a traversal longer than this is measured on a prefix and extrapolated


def archive_files(archive_dir: Path) -> dict[int, Path]:
    """Per-architecture files of a fast-mode archive (padded or unpadded names), by index."""
    files = {}
    for path in Path(archive_dir).glob("*.pickle.pbz2"):
        stem = path.name.split(".")[0]
        if stem.isdigit():
            files[int(stem)] = path
    return dict(sorted(files.items()))


def _api(archive_dir: Path, space: str) -> Any:
    return nats_bench.create(str(archive_dir), space, fast_mode=True, verbose=False)


def _numbers(info: dict[str, Any]) -> list[float]:
    return [v for v in info.values() if isinstance(v, int | float) and not isinstance(v, bool)]


def traverse_final_metrics(
    archive_dir: Path,
    space: str,
    indices: Sequence[int] | None = None,
    time_limit_s: float = TIME_LIMIT_S,
    evict: bool = True,
) -> dict[str, Any]:
    """Time extracting every final-epoch metric and cost through the official API.

    For each index, hp and dataset: ``get_cost_info`` and ``get_more_info(is_random=seed)``
    for every seed. Stops after ``time_limit_s`` and extrapolates linearly to all indices
    (``extrapolated`` says so). ``evict`` drops each architecture from the API's cache once
    read, as a full traversal must to fit in memory (the API otherwise keeps them all).
    Times in seconds: wall clock, and this process's CPU time (robust on a busy machine).
    """
    start = time.perf_counter()
    api = _api(archive_dir, space)
    create_s = time.perf_counter() - start
    chosen = list(archive_files(archive_dir)) if indices is None else list(indices)
    n_values, checksum, done = 0, 0.0, 0
    start, cpu = time.perf_counter(), time.process_time()
    for index in chosen:
        for hp in HPS[space]:
            for dataset in DATASETS:
                values = _numbers(api.get_cost_info(index, dataset, hp=hp))
                for seed in api.arch2infos_dict[index][hp].get_dataset_seeds(dataset):
                    values += _numbers(api.get_more_info(index, dataset, hp=hp, is_random=seed))
                n_values += len(values)
                checksum += float(sum(values))
        if evict:
            api.arch2infos_dict.pop(index, None)
            api.evaluated_indexes.discard(index)
        done += 1
        if time.perf_counter() - start > time_limit_s:
            break
    measured, cpu = time.perf_counter() - start, time.process_time() - cpu
    per_index, per_index_cpu = measured / max(done, 1), cpu / max(done, 1)
    return {
        "create_s": create_s,
        "n_indices": len(chosen),
        "n_measured": done,
        "measured_s": measured,
        "per_index_ms": per_index * 1e3,
        "full_traversal_s": create_s + per_index * len(chosen),
        "measured_cpu_s": cpu,
        "per_index_cpu_ms": per_index_cpu * 1e3,
        "full_traversal_cpu_s": per_index_cpu * len(chosen),
        "extrapolated": done < len(chosen),
        "n_values": n_values,
        "values_per_s": n_values / measured if measured > 0 else 0.0,
        "checksum": checksum,
    }


def _median_us(call: Callable[[], Any], args: list[tuple[Any, ...]]) -> dict[str, float]:
    times = []
    for a in args:
        t = time.perf_counter_ns()
        call(*a)
        times.append((time.perf_counter_ns() - t) / 1e3)
    return {"median": statistics.median(times), "p90": float(np.percentile(times, 90))}


def query_latencies(
    archive_dir: Path,
    space: str,
    rng: np.random.Generator,
    indices: Sequence[int] | None = None,
    repeats: int = 2000,
    max_archs: int = 100,
) -> dict[str, float]:
    """Median and p90 microseconds of single official queries on random arguments.

    Uses the first ``max_archs`` of ``indices`` (default: the archive's files); the API
    caches every architecture it reads, so all of them would not fit in memory.
    ``cold_load``: the first query of an architecture (reads its file). The others are warm,
    as a user sees them after the first touch: ``get_more_info`` with a seed,
    ``simulate_train_eval`` and ``get_cost_info``.
    """
    api = _api(archive_dir, space)
    chosen = (list(archive_files(archive_dir)) if indices is None else list(indices))[:max_archs]
    hps, sim_sets = HPS[space], ("cifar10", "cifar100", "ImageNet16-120")
    cold = _median_us(api.get_cost_info, [(i, "cifar10", hps[-1]) for i in chosen])
    picks = [
        (chosen[rng.integers(len(chosen))], DATASETS[rng.integers(4)], hps[rng.integers(len(hps))])
        for _ in range(repeats)
    ]
    with_seed = []
    for index, dataset, hp in picks:
        seeds = api.arch2infos_dict[index][hp].get_dataset_seeds(dataset)
        with_seed.append((index, dataset, None, hp, seeds[rng.integers(len(seeds))]))
    sims = [(i, sim_sets[rng.integers(3)], None, hp) for i, _, hp in picks]
    result = {"n_archs": float(len(chosen)), "repeats": float(repeats)}
    result["cold_load_us"], result["cold_load_p90_us"] = cold["median"], cold["p90"]
    for name, call, args in (
        ("get_more_info", api.get_more_info, with_seed),
        ("simulate_train_eval", api.simulate_train_eval, sims),
        ("get_cost_info", api.get_cost_info, picks),
    ):
        stats = _median_us(call, args)
        result[f"{name}_us"], result[f"{name}_p90_us"] = stats["median"], stats["p90"]
    return result


def _own_peak_mb() -> float:
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def peak_rss() -> dict[str, float]:
    """Peak resident memory (MB) of this process and of its largest finished child."""
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return {"self_peak_rss_mb": _own_peak_mb(), "children_peak_rss_mb": children}


def _decompress_files(paths: list[Path]) -> tuple[int, float]:
    """Raw bytes of the decompressed files and this worker's peak memory (MB)."""
    return sum(len(bz2.decompress(p.read_bytes())) for p in paths), _own_peak_mb()


def bz2_floor(archive_dir: Path, n_files: int | None = None, n_jobs: int = 2) -> dict[str, float]:
    """Seconds to bz2-decompress ``n_files`` archive files: the floor of any importer.

    One process on bytes already in memory, then (and with unpickling) for reference, and
    ``n_jobs`` joblib processes that read and decompress (pool started before timing).
    """
    paths = list(archive_files(archive_dir).values())[:n_files]
    blobs = [p.read_bytes() for p in paths]
    start, cpu = time.perf_counter(), time.process_time()
    raw = [bz2.decompress(b) for b in blobs]
    one, cpu = time.perf_counter() - start, time.process_time() - cpu
    start = time.perf_counter()
    for r in raw:
        pickle.loads(r)
    unpickle = time.perf_counter() - start
    chunks = [paths[k::n_jobs] for k in range(n_jobs)]
    with Parallel(n_jobs=n_jobs) as parallel:
        parallel(delayed(_decompress_files)(c[:1]) for c in chunks)  # start the workers
        start = time.perf_counter()
        done = parallel(delayed(_decompress_files)(c) for c in chunks)
        many = time.perf_counter() - start
    return {
        "n_files": float(len(paths)),
        "compressed_mb": sum(map(len, blobs)) / 2**20,
        "raw_mb": sum(n for n, _ in done) / 2**20,
        "decompress_1proc_s": one,
        "decompress_1proc_cpu_s": cpu,
        "decompress_per_file_ms": one / max(len(paths), 1) * 1e3,
        "unpickle_1proc_s": unpickle,
        f"decompress_{n_jobs}proc_s": many,
        "workers_peak_rss_mb": max(peak for _, peak in done),
    }


def isolated(name: str, **kwargs: Any) -> dict[str, Any]:
    """Run one measurement of this module in a fresh interpreter; adds its peak memory."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "result.json"
        cmd = [sys.executable, str(Path(__file__).resolve()), "--call", name]
        cmd += ["--kwargs", json.dumps(kwargs), "--out", str(out)]
        env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
        subprocess.run(cmd, check=True, env=env)
        return json.loads(out.read_text())


def _call(name: str, kwargs: dict[str, Any]) -> dict[str, Any]:
    if "seed" in kwargs:
        kwargs["rng"] = np.random.default_rng(kwargs.pop("seed"))
    funcs = {f.__name__: f for f in (traverse_final_metrics, query_latencies, bz2_floor)}
    result = funcs[name](**kwargs)
    return {**result, **peak_rss()}


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("archive_dir", nargs="?", type=Path)
    parser.add_argument("--space", choices=("tss", "sss"), default="tss")
    parser.add_argument("--out", type=Path, required=True, help="JSON file to write")
    parser.add_argument("--call", help=argparse.SUPPRESS)
    parser.add_argument("--kwargs", default="{}", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.call:
        result = _call(args.call, json.loads(args.kwargs))
    else:
        where = {"archive_dir": str(args.archive_dir), "space": args.space}
        result = {
            "traversal": isolated("traverse_final_metrics", **where),
            "latency": isolated("query_latencies", **where, seed=0),
            "bz2_floor": isolated("bz2_floor", archive_dir=where["archive_dir"]),
        }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2, sort_keys=True))


if __name__ == "__main__":
    main()
