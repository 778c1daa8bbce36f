"""Store vs the official ``nats_bench`` API, side by side on a full-size synthetic tss archive.

Measures (numbers to ``results/benchmarks/store_tss.json``):

a. import time and peak memory (whole process tree) of our importer, against the floor set by
   bz2 decompression alone and against extracting the same values through the API (fast mode);
b. single-query latency: ``Store.metric`` / ``Store.cost`` / the oracle charge against
   ``get_more_info`` / ``get_cost_info`` / ``simulate_train_eval``;
c. one metric over all architectures;
d. store size on disk and open time.

The API traversal is far too slow to run over all 15,625 architectures (hours), so it runs on
a seeded subset and is extrapolated linearly; the JSON says so.

    python benchmarks/bench_store.py --workdir .work/bench
"""

from __future__ import annotations

import argparse
import bz2
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from joblib import Parallel, delayed

sys.path.insert(0, str(Path(__file__).resolve().parent))
from procmem import run_measured

from harness.bench.official import arch_files
from harness.bench.store import Store
from harness.oracle import FitnessTables

ROOT = Path(__file__).resolve().parents[1]


def _decompress(paths: list[Path]) -> int:
    total = 0
    for path in paths:
        total += len(bz2.decompress(path.read_bytes()))
    return total


def decompression_floor(files: list[Path], n_jobs: int) -> dict[str, float]:
    """Seconds to read and bz2-decompress every file, with ``n_jobs`` processes."""
    chunks = [files[i : i + 256] for i in range(0, len(files), 256)]
    start = time.perf_counter()
    sizes = Parallel(n_jobs=n_jobs)(delayed(_decompress)(c) for c in chunks)
    wall = time.perf_counter() - start
    return {
        "wall_s": wall,
        "ms_per_file_per_core": 1000 * wall * n_jobs / len(files),
        "raw_bytes": float(sum(sizes)),
    }


IMPORT_SNIPPET = """
import sys, time
from pathlib import Path
from harness.bench.official import import_official
t = time.perf_counter()
src, dest, jobs = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3])
import_official(src, dest, n_jobs=jobs, progress=False, overwrite=True, synthetic=True)
print(time.perf_counter() - t)
"""

API_SNIPPET = """
import json, sys, time
import numpy as np
import nats_bench
mode, archive, k, seed = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
t = time.perf_counter()
api = nats_bench.create(archive, "tss", fast_mode=True, verbose=False)
idx = np.random.default_rng(seed).choice(len(api), size=k, replace=False)
values = 0
for i in idx:
    i = int(i)
    for hp in ("12", "200"):
        meta = api.query_meta_info_by_index(i, hp=hp)
        for ds in meta.get_dataset_names():
            seeds = meta.get_dataset_seeds(ds)
            epochs = range(meta.get_total_epoch(ds)) if mode == "all" else [None]
            for s in [*seeds, False]:
                for e in epochs:
                    values += len(api.get_more_info(i, ds, iepoch=e, hp=hp, is_random=s))
            values += len(api.get_cost_info(i, ds, hp=hp))
print(json.dumps({"seconds": time.perf_counter() - t, "values": values}))
"""


def api_traversal(archive: Path, k: int, mode: str) -> dict[str, Any]:
    """Extract every value (mode 'all') or every final value ('final') of k archs via the API."""
    res = run_measured([sys.executable, "-c", API_SNIPPET, mode, str(archive), str(k), "0"])
    out = json.loads(str(res["stdout"]))
    per_arch = out["seconds"] / k
    return {
        "archs_measured": k,
        "seconds_measured": out["seconds"],
        "values_read": out["values"],
        "seconds_per_arch": per_arch,
        "extrapolated_full_seconds": per_arch * 15625,
        "peak_rss_bytes_measured": res["peak_rss_bytes"],
        "extrapolated": True,
    }


def _median_us(fn: Any, args_list: list[Any], reps: int = 3) -> float:
    times = []
    for _ in range(reps):
        for args in args_list:
            t = time.perf_counter_ns()
            fn(*args)
            times.append((time.perf_counter_ns() - t) / 1000)
    return statistics.median(times)


def single_queries(archive: Path, store_path: Path, n: int = 200) -> dict[str, Any]:
    import nats_bench

    store = Store(store_path)
    api = nats_bench.create(str(archive), "tss", fast_mode=True, verbose=False)
    rng = np.random.default_rng(1)
    idx = [int(i) for i in rng.choice(15625, size=n, replace=False)]
    for i in idx:  # warm the API's cache: its cost after first touch is what we compare
        api.get_more_info(i, "cifar10-valid", hp="200", is_random=777)
    seeds = [int(s) for s in rng.choice([777, 888], size=n)]
    cases = {
        "get_more_info": (
            lambda i, s: api.get_more_info(i, "cifar10-valid", hp="200", is_random=s),
            lambda i, s: store.metric(i, "cifar10-valid", "x-valid", "200", "accuracy", s),
        ),
        "simulate_train_eval": (
            lambda i, s: api.simulate_train_eval(i, "cifar10", hp="12"),
            lambda i, s: (
                store.metric(i, "cifar10-valid", "x-valid", "12", "accuracy", 777)
                + store.schedule_time(i, "cifar10-valid", "12", 777)
            ),
        ),
        "get_cost_info": (
            lambda i, s: api.get_cost_info(i, "cifar100", hp="200"),
            lambda i, s: store.cost(i, "cifar100", "200"),
        ),
    }
    # What a search actually calls instead of simulate_train_eval: the harness oracle, whose
    # fitness and charge arrays are read from the store once per (protocol, task).
    tables = FitnessTables.from_store(store, "nats-tss", "cifar10")
    oracle = tables.oracle(np.random.default_rng(2), budget=1e15)
    cases["simulate_train_eval (oracle)"] = (
        cases["simulate_train_eval"][0],
        lambda i, s: oracle.query(i),
    )
    out: dict[str, Any] = {}
    args = list(zip(idx, seeds, strict=True))
    for name, (theirs, ours) in cases.items():
        api_us = _median_us(theirs, args)
        store_us = _median_us(ours, args)
        out[name] = {"api_us": api_us, "store_us": store_us, "speedup": api_us / store_us}
    return out


def all_arch_query(store_path: Path) -> dict[str, float]:
    store = Store(store_path)
    times = []
    for _ in range(50):
        store._cache.clear()  # measure the read, not the cache
        t = time.perf_counter_ns()
        store.metric_all("cifar100", "x-test", "200", "accuracy", "mean")
        times.append((time.perf_counter_ns() - t) / 1e6)
    times_seed = []
    for _ in range(50):
        store._cache.clear()
        t = time.perf_counter_ns()
        store.metric_all("cifar10-valid", "x-valid", "12", "accuracy", 777)
        times_seed.append((time.perf_counter_ns() - t) / 1e6)
    return {"mean_seed_ms": statistics.median(times), "one_seed_ms": statistics.median(times_seed)}


OPEN_SNIPPET = """
import sys, time, json
from harness.bench.store import Store
from harness.oracle import FitnessTables
t = time.perf_counter()
s = Store(sys.argv[1])
s.metric(0, "cifar10", "ori-test", "200", "accuracy", "mean")
print(json.dumps({"open_ms": (time.perf_counter() - t) * 1000}))
"""


def open_time(store_path: Path) -> dict[str, float]:
    runs = [
        json.loads(
            str(run_measured([sys.executable, "-c", OPEN_SNIPPET, str(store_path)])["stdout"])
        )["open_ms"]
        for _ in range(5)
    ]
    size = sum(f.stat().st_size for f in store_path.iterdir())
    return {"open_plus_first_query_ms": statistics.median(runs), "store_bytes": float(size)}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--workdir", type=Path, default=ROOT / ".work" / "bench")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument(
        "--api-archs", type=int, default=300, help="archs for the final-value API traversal"
    )
    parser.add_argument(
        "--api-archs-all", type=int, default=10, help="archs for the every-value API traversal"
    )
    parser.add_argument(
        "--queries-only",
        action="store_true",
        help="re-measure the single-query latencies into an existing result file",
    )
    parser.add_argument(
        "--out", type=Path, default=ROOT / "results" / "benchmarks" / "store_tss.json"
    )
    args = parser.parse_args()
    if args.queries_only:
        result = json.loads(args.out.read_text())
        archive = args.workdir / "NATS-tss-v1_0-3ffb9-simple"
        result["single_query"] = single_queries(archive, args.workdir / "store-tss")
        args.out.write_text(json.dumps(result, indent=1))
        print(json.dumps(result["single_query"], indent=1))
        return

    from harness.bench.synthetic import write_synthetic_archive

    args.workdir.mkdir(parents=True, exist_ok=True)
    archive = args.workdir / "NATS-tss-v1_0-3ffb9-simple"
    if not (archive.is_dir() and len(arch_files(archive)) == 15625):
        t = time.perf_counter()
        archive = write_synthetic_archive(
            args.workdir, "tss", np.random.default_rng(2026), n_jobs=args.jobs, progress=True
        )
        print(f"generated synthetic archive in {time.perf_counter() - t:.0f} s", file=sys.stderr)
    files = sorted(arch_files(archive).values())
    sizes = [f.stat().st_size for f in files]
    result: dict[str, Any] = {
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "archive": {
            "files": len(files),
            "mean_compressed_kb": statistics.mean(sizes) / 1024,
            "synthetic": True,
        },
    }
    print("measuring decompression floor", file=sys.stderr)
    result["floor_1proc"] = decompression_floor(files, 1)
    result["floor"] = decompression_floor(files, args.jobs)
    result["archive"]["mean_raw_kb"] = result["floor"]["raw_bytes"] / len(files) / 1024
    print("importing", file=sys.stderr)
    dest = args.workdir / "store-tss"
    imp = run_measured(
        [sys.executable, "-c", IMPORT_SNIPPET, str(archive), str(dest), str(args.jobs)]
    )
    result["import"] = {
        "wall_s": imp["wall_s"],
        "peak_rss_bytes": imp["peak_rss_bytes"],
        "over_floor": float(imp["wall_s"]) / result["floor"]["wall_s"],
    }
    print("API traversal", file=sys.stderr)
    result["api_final_values"] = api_traversal(archive, args.api_archs, "final")
    result["api_all_values"] = api_traversal(archive, args.api_archs_all, "all")
    for key in ("api_final_values", "api_all_values"):
        result[key]["import_speedup"] = result[key]["extrapolated_full_seconds"] / float(
            imp["wall_s"]
        )
    print("queries", file=sys.stderr)
    result["single_query"] = single_queries(archive, dest)
    result["all_arch_query"] = all_arch_query(dest)
    result["open"] = open_time(dest)
    result["created"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1))
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
