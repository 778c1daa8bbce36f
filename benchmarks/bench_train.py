"""Epoch time of the training stage (``harness train``) on this machine.

Runs the real training loop (:func:`harness.train.train_network`, recipe 01E: one epoch,
batch 256) of each network on a fixed-seed subset of ``--images`` CIFAR-10 JPEG training
images, evaluating on the whole 10,000-image test set, and projects the time of a full epoch
on 50,000 images as ``train seconds x 50,000 / images + eval seconds`` (and of the 12E recipe
as 12 such epochs). Networks: one tss cell (``--tss``, default index 9930, the best CIFAR-10
cell) and the size-space networks of ``--sss`` (default: the three genuine sample
architectures, the largest first: the issue's "one sss network" plus what the parity decision
needs). Results go to ``results/benchmarks/train_epoch.json``.

    OMP_NUM_THREADS=1 python benchmarks/bench_train.py --threads 1
"""

from __future__ import annotations

import argparse
import bz2
import json
import logging
import os
import pickle
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from harness.data import training_parts
from harness.paths import shared_data_dir
from harness.provenance import git_commit, machine_info, now, package_versions
from harness.train import TrainConfig, run_dir_name, train_network

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "results" / "benchmarks" / "train_epoch.json"
PARITY = ROOT / "results" / "benchmarks" / "train_parity.json"
FULL_TRAIN, RECIPE_12E = 50_000, 12


def _time_one(space: str, arch: str, images: Path, cache: Path, n: int) -> dict[str, Any]:
    parts = training_parts("cifar10", "jpeg", images=images, cache_dir=cache, train_images=n)
    config = TrainConfig(arch, space, "01E", "cifar10", "jpeg", seed=0, train_images=n)
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        record = train_network(config, parts, Path(tmp) / "run").record
    metrics = record["metrics"]
    train_s, eval_s = metrics["train_times"]["0"], metrics["eval_times"]["ori-test@0"]
    epoch_s = train_s * FULL_TRAIN / n + eval_s
    return {
        "space": space, "arch": config.arch, "index": config.arch_index,
        "params_mb": record["network"]["params_mb"], "flop_m": record["network"]["flop_m"],
        "train_images_timed": n, "train_batches_timed": -(-n // 256), "train_s": train_s,
        "eval_images": 10_000, "eval_s": eval_s, "epoch_s_projected": epoch_s,
        "recipe_12E_s_projected": RECIPE_12E * epoch_s,
        "loadavg_before": list(load_before), "loadavg_after": list(os.getloadavg()),
    }  # fmt: skip


def _benchmark_values(shared: Path, index: int) -> dict[str, Any]:
    """The benchmark's hp-12 ``cifar10`` run of sss architecture ``index`` (genuine sample
    file): ori-test top-1 after the last epoch per seed, and the train time it records."""
    path = (
        shared / "nats-official-samples" / "NATS-sss-v1_0-50262-simple" / f"{index:06d}.pickle.pbz2"
    )
    with bz2.open(path) as handle:
        state = pickle.load(handle)["12"]
    runs = {s: r for (d, s), r in state["all_results"].items() if d == "cifar10"}
    test = {str(s): float(r["eval_acc1es"]["ori-test@11"]) for s, r in sorted(runs.items())}
    train = {str(s): float(r["train_acc1es"][11]) for s, r in sorted(runs.items())}
    seconds = float(sum(next(iter(runs.values()))["train_times"].values()))
    return {
        "file": path.name, "ori_test_by_seed": test, "train_by_seed": train,
        "ori_test_range": [min(test.values()), max(test.values())],
        "ori_test_mean": float(np.mean(list(test.values()))), "train_seconds_12E": seconds,
    }  # fmt: skip


def _pixel_stats(parts: Any) -> dict[str, Any]:
    """Channel mean / std of the JPEG training images (in [0, 1]) beside the CIFAR-10
    normalisation constants the benchmark uses (computed on the original arrays)."""
    images = parts.train.images  # (N, 3, H, W) uint8
    count = images.numel() // 3
    total = torch.zeros(3, dtype=torch.int64)
    squares = torch.zeros(3, dtype=torch.int64)
    for chunk in images.split(2_000):  # exact integer sums, a chunk at a time
        x = chunk.to(torch.int64)
        total += x.sum(dim=(0, 2, 3))
        squares += (x * x).sum(dim=(0, 2, 3))
    mean = total.double() / count / 255
    std = ((squares.double() / count / 255**2 - mean**2) * count / (count - 1)).sqrt()
    ref = parts.normalization

    def grey(ours: torch.Tensor, theirs: tuple[float, ...]) -> list[float]:
        return [255 * (a - b) for a, b in zip(ours.tolist(), theirs, strict=True)]

    return {
        "jpeg_mean": mean.tolist(), "cifar10_mean": list(ref.mean),
        "jpeg_std": std.tolist(), "cifar10_std": list(ref.std),
        "mean_shift_grey_levels": grey(mean, ref.mean), "std_shift_grey_levels": grey(std, ref.std),
    }  # fmt: skip


def _parity(args: argparse.Namespace) -> None:
    """Train each of ``--archs`` with 12E on the JPEG copy (``cifar10``: 50k train, eval on the
    10k test) one after another; write the numbers beside the benchmark's after each."""
    shared = shared_data_dir()
    if shared is None:
        raise SystemExit("no shared data found")
    parts = training_parts("cifar10", "jpeg", images=args.images, cache_dir=args.cache)
    epoch_bench = json.loads(OUT.read_text()) if OUT.is_file() else {"runs": []}
    projected = {r["arch"]: r["recipe_12E_s_projected"] for r in epoch_bench["runs"]}
    out: dict[str, Any] = {
        "what": "12E training of the genuine sss sample architectures on CIFAR-10 (cifar10: all "
        "50,000 training images, ori-test = the 10,000 test images) from the JPEG copy, beside "
        "the benchmark's hp-12 values (3 seeds, original CIFAR-10 arrays)",
        "created": now(), "threads": args.threads, "seed": args.seed, "runs": [],
        "not_run": [
            {"arch": a, "projected_12E_s": projected.get(a), "why": args.why}
            for a in args.not_run.split(",") if a
        ],
        "jpeg_pixels": _pixel_stats(parts),
        "git": git_commit(), "packages": package_versions(), "machine": machine_info(),
    }  # fmt: skip
    for arch in args.archs.split(","):
        config = TrainConfig(arch, "sss", "12E", "cifar10", "jpeg", seed=args.seed)
        run = ROOT / ".work" / "parity" / run_dir_name(config)
        record = train_network(config, parts, run).record
        bench = _benchmark_values(shared, config.arch_index)
        ours = record["final"]["ori-test"]
        low, high = bench["ori_test_range"]
        curve = record["metrics"]["eval_acc1es"]
        out["runs"].append({
            "arch": config.arch, "index": config.arch_index, "ori_test": ours,
            "train": record["final"]["train"], "benchmark": bench,
            "within_benchmark_seed_range": bool(low <= ours <= high),
            "shift_from_benchmark_mean": ours - bench["ori_test_mean"],
            "ori_test_by_epoch": [curve[f"ori-test@{e}"] for e in range(12)],
            "train_s": record["seconds"]["train"], "eval_s": record["seconds"]["eval"],
            "status": record["status"], "data_checksum": record["data"]["checksum"],
        })  # fmt: skip
        out["wall_finished"] = now()
        PARITY.write_text(json.dumps(out, indent=1) + "\n")
        logging.info("%s", json.dumps(out["runs"][-1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    shared = shared_data_dir()
    default_images = shared / "cifar10-jpg" / "cifar10_jpg.tar.gz" if shared else None
    parser.add_argument("mode", nargs="?", default="epoch", choices=("epoch", "parity"))
    parser.add_argument("--images", type=Path, default=default_images)
    parser.add_argument("--cache", type=Path, default=ROOT / ".work" / "jpeg-cache")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--n", type=int, default=5_120, help="training images timed (x 256)")
    parser.add_argument("--tss", default="9930")
    parser.add_argument("--sss", default="8:8:40:32:40,8:8:8:16:32,8:8:8:8:8")
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--archs", default="8:8:8:8:8,8:8:8:16:32", help="parity: trained")
    parser.add_argument("--not-run", default="8:8:40:32:40", help="parity: left out")
    parser.add_argument("--why", default="", help="parity: why --not-run were left out")
    parser.add_argument("--seed", type=int, default=0, help="parity: run seed")
    args = parser.parse_args()
    if args.images is None:
        parser.error("no shared data found; pass --images")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    torch.set_num_threads(args.threads)
    if args.mode == "parity":
        _parity(args)
        return
    _epochs(args)


def _epochs(args: argparse.Namespace) -> None:
    nets = [("tss", int(args.tss) if args.tss.isdigit() else args.tss)]
    nets += [("sss", a) for a in args.sss.split(",") if a]
    began, runs = time.perf_counter(), []
    for space, arch in nets:
        timed = _time_one(space, arch, args.images, args.cache, args.n)
        runs.append({"threads": args.threads, **timed})
        logging.info("%s", json.dumps(runs[-1]))
    out = {
        "what": "epoch time of harness train (batch 256, 50k train images projected from the "
        "timed subset, eval on the 10k test set)",
        "created": now(), "wall_s": time.perf_counter() - began, "runs": runs,
        "git": git_commit(), "packages": package_versions(), "machine": machine_info(),
        "note": "2-core CPU shared with other jobs (see loadavg); JPEG copy of CIFAR-10",
    }  # fmt: skip
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=1) + "\n")
    print(json.dumps([{k: r[k] for k in ("arch", "epoch_s_projected")} for r in runs], indent=1))


if __name__ == "__main__":
    main()
