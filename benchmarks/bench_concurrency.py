"""Throughput of K supernet searches at once on one device: K processes, each a short search.

Each of the K worker processes runs :func:`harness.supernet.search.run_supernet_search` as
``harness supernet run`` does (same card, data pipeline, supernet and loop; ``--cuda-graph``
replays captured steps) for ``--epochs`` epochs of ``--steps`` steps. Epoch 0 is the warm-up
(CUDA context, data on the device, the eager steps and the graph capture); the workers then
wait at a barrier, start together, and the later epochs are timed. A step is one weight and one
architecture step. Reported per K: the aggregate search steps per second over the timed window
(first start to last end), per search, the speed-up over K = 1 and the efficiency (speed-up
/ K), the worst setup time and the GPU memory each search held.

    python benchmarks/bench_concurrency.py --device cuda --cuda-graph --jobs 1,3,9 \\
        --images PATH/cifar10_jpg.tar.gz --cache DIR
    python benchmarks/bench_concurrency.py --device cpu --card tiny-cpu --jobs 1,2 --steps 3

``--cells per-op`` runs the supernet's per-op cells instead of the fused ones (an A/B of the
fused cells on one machine). Results are appended per setting (device name, card, method,
cells, CUDA graph, steps, K) to ``results/benchmarks/search_concurrency.json`` after each K,
so a run cut short keeps what it measured.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "results" / "benchmarks" / "search_concurrency.json"
logger = logging.getLogger("bench_concurrency")
#: Keys of a measurement's setting: a new result replaces an old one of the same setting.
SAME = ("device_name", "card", "method", "cells", "cuda_graph", "steps_per_epoch", "jobs")
#: Efficiency (speed-up / K) at the largest K from which K processes are said to scale, and
#: the speed-up under which they are said not to (between the two: partly).
SCALES, NO_GAIN = 0.7, 1.3
ADVICE = (
    "K processes share one GPU by time-slicing (no MPS): their kernels do not overlap, so "
    "searches bound by many small kernels gain little. What would scale: several searches in "
    "one process, each replaying its CUDA graph on its own stream (one context, kernels of "
    "different graphs can overlap), or K searches batched into one forward (the K supernets' "
    "weights stacked: grouped convolutions, or torch.func.functional_call under vmap), which "
    "turns K x thousands of small kernels into thousands of K-times larger ones."
)


def _device_name(device: str) -> str:
    import torch

    if device.startswith("cuda"):
        return torch.cuda.get_device_name()
    return platform.processor() or platform.machine()


# --------------------------------------------------------------------------- worker
def _wait_for(path: Path, timeout: float) -> None:
    began = time.monotonic()
    while not path.exists():
        if time.monotonic() - began > timeout:
            raise TimeoutError(f"no {path.name} after {timeout:.0f} s")
        time.sleep(0.005)


def run_worker(args: argparse.Namespace) -> dict[str, Any]:
    """One search: warm-up epoch, barrier, timed epochs; returns its timings."""
    began = time.perf_counter()
    import numpy as np
    import torch

    from harness.data import torch_generator
    from harness.oneshot.setup import Runtime, build_supernet, make_search_data
    from harness.registry import make_method
    from harness.supernet.cards import get_card
    from harness.supernet.search import run_supernet_search

    torch.set_num_threads(args.threads)
    card = get_card(args.card)
    runtime = Runtime(device=args.device, cuda_graph=args.cuda_graph,
                      images=None if args.images is None else str(args.images),
                      cache_dir=None if args.cache is None else str(args.cache))  # fmt: skip
    rng = np.random.default_rng(args.seed + args.rank)
    data = make_search_data(card, card.search_tasks[0], rng, runtime)
    net = build_supernet(card, data.num_classes, torch_generator(rng))
    set_fused: Any = net.set_fused  # either space's supernet (nn.Module hides the type)
    set_fused(args.cells == "fused")
    config = card.search_config(args.device, cuda_graph=args.cuda_graph)
    # as many epochs as asked, also beyond the card's (only the cosine schedule sees it)
    config = dataclasses.replace(config, epochs=args.epochs, max_steps_per_epoch=args.steps)
    steps = min(len(data.train), args.steps)
    marks: list[float] = []
    ready: list[float] = []

    def after_epoch(line: str) -> None:
        marks.append(time.time())  # wall clock: comparable across the processes
        if len(marks) == 1:
            ready.append(time.perf_counter() - began)
            (args.barrier / f"ready-{args.rank}").touch()
            _wait_for(args.barrier / "go", args.barrier_timeout)
            marks[0] = time.time()

    result = run_supernet_search(
        make_method(args.method), net, data.train, data.arch, config, rng,
        stop_after_epoch=args.epochs - 1, progress=after_epoch,
    )  # fmt: skip
    cuda = args.device.startswith("cuda")
    return {
        "rank": args.rank,
        "setup_s": ready[0],  # imports, data, supernet and the warm-up epoch
        "warmup_epoch_s": result.history[0].seconds,
        "timed_epoch_s": [r.seconds for r in result.history[1:]],
        "start": marks[0],
        "end": marks[-1],
        "steps": steps * (len(marks) - 1),
        "gpu_peak_mib": torch.cuda.max_memory_allocated() / 2**20 if cuda else None,
    }


# --------------------------------------------------------------------------- parent
def _worker_command(args: argparse.Namespace, rank: int, barrier: Path) -> list[str]:
    command = [sys.executable, str(Path(__file__).resolve()), "--worker", "--rank", str(rank),
               "--barrier", str(barrier), "--device", args.device, "--card", args.card,
               "--method", args.method, "--cells", args.cells, "--steps", str(args.steps),
               "--epochs", str(args.epochs), "--seed", str(args.seed),
               "--barrier-timeout", str(args.barrier_timeout)]  # fmt: skip
    if args.cuda_graph:
        command.append("--cuda-graph")
    for flag, value in (("--images", args.images), ("--cache", args.cache)):
        if value is not None:
            command += [flag, str(value)]
    return command


def _launch(args: argparse.Namespace, k: int, barrier: Path, logs: Path) -> list[dict]:
    """Start ``k`` workers, release them together once all are warm, gather their results."""
    threads = max(1, (os.cpu_count() or 1) // k) if args.threads is None else args.threads
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "PYTHONUNBUFFERED": "1"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    procs = []
    for rank in range(k):
        log = (logs / f"concurrency-k{k}-{args.cells}-{rank}.log").open("w")
        command = [*_worker_command(args, rank, barrier), "--threads", str(threads),
                   "--result", str(barrier / f"result-{rank}.json")]  # fmt: skip
        procs.append(subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env))
    began = time.monotonic()
    while sum((barrier / f"ready-{r}").exists() for r in range(k)) < k:
        dead = [r for r, p in enumerate(procs) if p.poll() not in (None, 0)]
        if dead or time.monotonic() - began > args.barrier_timeout:
            for p in procs:
                p.kill()
            raise RuntimeError(f"K={k}: workers {dead or 'all'} did not get ready (see logs)")
        time.sleep(0.01)
    (barrier / "go").touch()
    for rank, proc in enumerate(procs):
        if proc.wait() != 0:
            raise RuntimeError(f"K={k}: worker {rank} exited with {proc.returncode}")
    return [json.loads((barrier / f"result-{r}.json").read_text()) for r in range(k)]


def _summarise(args: argparse.Namespace, k: int, workers: list[dict], wall: float) -> dict:
    window = max(w["end"] for w in workers) - min(w["start"] for w in workers)
    total = sum(w["steps"] for w in workers)
    per = [w["steps"] / (w["end"] - w["start"]) for w in workers]
    return {
        "device": args.device, "device_name": _device_name(args.device), "card": args.card,
        "method": args.method, "cells": args.cells, "cuda_graph": args.cuda_graph,
        "steps_per_epoch": args.steps, "timed_epochs": args.epochs - 1, "jobs": k,
        "aggregate_steps_per_s": total / window,
        "per_search_steps_per_s": statistics.mean(per),
        "per_search_epoch_s_at_391_steps": 391 / statistics.mean(per),
        "timed_window_s": window, "wall_s": wall,
        "setup_s_max": max(w["setup_s"] for w in workers),
        "gpu_peak_mib_max": max((w["gpu_peak_mib"] or 0.0) for w in workers) or None,
        "workers": workers,
    }  # fmt: skip


def _with_speedups(runs: list[dict]) -> list[dict]:
    """Speed-up over K = 1 (same setting) and efficiency, where a K = 1 run is on file."""
    base = {tuple(r[k] for k in SAME[:-1]): r for r in runs if r["jobs"] == 1}
    for run in runs:
        one = base.get(tuple(run[k] for k in SAME[:-1]))
        run["speedup_vs_k1"] = (
            None if one is None else run["aggregate_steps_per_s"] / one["aggregate_steps_per_s"]
        )
        run["efficiency"] = None if one is None else run["speedup_vs_k1"] / run["jobs"]
    return runs


def _record(out: Path, result: dict) -> list[dict]:
    previous = json.loads(out.read_text()) if out.is_file() else {"runs": []}
    runs = [r for r in previous["runs"] if any(r.get(k) != result[k] for k in SAME)]
    runs = _with_speedups([*runs, result])
    note = _scaling_note(runs, result)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"runs": runs, "note": note}, indent=2) + "\n")
    return runs


def _scaling_note(runs: list[dict], latest: dict) -> str | None:
    same = [r for r in runs if all(r[k] == latest[k] for k in SAME[:-1])]
    top = max(same, key=lambda r: r["jobs"])
    if top["jobs"] == 1 or top["efficiency"] is None:
        return None
    if top["efficiency"] >= SCALES:
        verdict = "scale"
    else:
        verdict = "do not scale" if top["speedup_vs_k1"] < NO_GAIN else "scale only partly"
    note = (f"{top['jobs']} processes {verdict}: x{top['speedup_vs_k1']:.2f} over one "
            f"(efficiency {top['efficiency']:.2f}).")  # fmt: skip
    return note if verdict == "scale" else f"{note} {ADVICE}"


def run_parent(args: argparse.Namespace) -> None:
    import torch

    torch.set_num_threads(1)
    logs = args.log_dir or Path(tempfile.mkdtemp(prefix="concurrency-logs-"))
    logs.mkdir(parents=True, exist_ok=True)
    if args.images is not None and args.cache is not None:  # decode once, not K times at once
        from harness.data import read_image_folder

        read_image_folder(args.images, "train", args.cache)
    for k in args.jobs:
        began = time.perf_counter()
        with tempfile.TemporaryDirectory(prefix=f"barrier-k{k}-") as barrier:
            workers = _launch(args, k, Path(barrier), logs)
        result = _summarise(args, k, workers, time.perf_counter() - began)
        result.update(torch=torch.__version__, when=time.strftime("%Y-%m-%d"))
        runs = _record(args.out, result)
        mine = next(r for r in runs if all(r[key] == result[key] for key in SAME))
        speedup = "" if mine["speedup_vs_k1"] is None else f", x{mine['speedup_vs_k1']:.2f} "
        print(
            f"K={k} {args.cells} cells on {result['device_name']}: "
            f"{result['aggregate_steps_per_s']:.1f} steps/s together, "
            f"{result['per_search_steps_per_s']:.1f} per search{speedup}"
            f"(setup {result['setup_s_max']:.0f} s, wall {result['wall_s']:.0f} s)",
            flush=True,
        )
    note = json.loads(args.out.read_text()).get("note")
    if note:
        print(f"note: {note}")
    print(f"-> {args.out}")


def _jobs(text: str) -> list[int]:
    values = [int(v) for v in text.split(",") if v.strip()]
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"expected K values >= 1 like 1,3,9; got {text!r}")
    return values


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--card", default="nb201-darts")
    parser.add_argument("--method", default="darts_v1", help="a capturable one with --cuda-graph")
    parser.add_argument("--cells", choices=("fused", "per-op"), default="fused")
    parser.add_argument("--cuda-graph", action="store_true")
    parser.add_argument("--jobs", type=_jobs, default=[1, 3, 9], help="K values, e.g. 1,3,9")
    parser.add_argument("--steps", type=int, default=30, help="steps per epoch")
    parser.add_argument("--epochs", type=int, default=3, help="epochs; the first is warm-up")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--images", type=Path, help="cifar10_jpg.tar.gz (cards on CIFAR-10)")
    parser.add_argument("--cache", type=Path, help="decoded-image cache directory")
    parser.add_argument("--threads", type=int, help="torch threads per worker (default: cores/K)")
    parser.add_argument("--barrier-timeout", type=float, default=300.0)
    parser.add_argument("--log-dir", type=Path, help="worker logs (default: a temporary dir)")
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--rank", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--barrier", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--result", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if args.epochs < 2 or args.steps < 1:
        parser.error("--epochs must be >= 2 (one warm-up epoch) and --steps >= 1")
    if args.worker:
        args.threads = args.threads or 1
        args.result.write_text(json.dumps(run_worker(args)))
    else:
        run_parent(args)


if __name__ == "__main__":
    main()
