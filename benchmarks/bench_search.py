"""Wall time of the harness's own supernet search on the CIFAR-10 JPEG 25k/25k split.

Runs :func:`harness.supernet.search.run_supernet_search` exactly as ``harness supernet run``
does (same data pipeline, supernet, card and loop) for the first ``--epochs`` epochs of the
``nb201-darts`` card (50-epoch cosine schedule, batch 64, 391 steps per epoch), and records:
data preparation (decoding, moving to the device), the first epoch (it holds compilation when
``--compile`` is given), the mean of the later epochs, and the projected full search
``first + (card epochs - 1) x later mean`` (scaled to whole epochs when ``--max-steps`` cut
them short). With ``--epochs`` equal to the card's and whole epochs, the search is complete and
the total is measured, not projected.

    python benchmarks/bench_search.py --device cuda --bf16 --channels-last --compile default \\
        --epochs 3 --images PATH/cifar10_jpg.tar.gz

Results are appended per setting to ``results/benchmarks/darts_search.json``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import platform
import statistics
import time
from pathlib import Path

import numpy as np
import torch

from harness.data import torch_generator
from harness.oneshot.setup import Runtime, build_supernet, make_search_data
from harness.registry import make_method
from harness.supernet.cards import get_card
from harness.supernet.compiled import COMPILE_MODES
from harness.supernet.search import run_supernet_search

logger = logging.getLogger("bench_search")
ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "results" / "benchmarks" / "darts_search.json"


def project(epoch_s: list[float], steps_run: int, full_steps: int, epochs: int) -> float:
    """Seconds of an ``epochs``-epoch search of ``full_steps`` steps per epoch, from epochs of
    ``steps_run`` steps: the first epoch (compilation, capture) plus the later mean."""
    scale = full_steps / steps_run
    later = statistics.mean(epoch_s[1:]) if len(epoch_s) > 1 else epoch_s[0]
    return scale * (epoch_s[0] + (epochs - 1) * later)


def measure(args: argparse.Namespace) -> dict:
    card = get_card(args.card)
    runtime = Runtime(
        device=args.device,
        bf16=args.bf16,
        channels_last=args.channels_last,
        compile=args.compile,
        cuda_graph=args.cuda_graph,
        images=str(args.images),
        cache_dir=str(args.cache),
    )
    rng = np.random.default_rng(args.seed)
    began = time.perf_counter()
    data = make_search_data(card, "cifar10", rng, runtime)
    net = build_supernet(card, data.num_classes, torch_generator(rng))
    net.set_fused(args.cells == "fused")  # type: ignore[operator]
    if args.channels_last:
        net = net.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
    prepare = time.perf_counter() - began
    epochs = min(args.epochs, card.epochs)
    config = card.search_config(args.device, args.bf16, args.compile, args.cuda_graph)
    if args.max_steps:
        config = dataclasses.replace(config, max_steps_per_epoch=args.max_steps)
    result = run_supernet_search(
        make_method(args.method), net, data.train, data.arch, config, rng,
        stop_after_epoch=epochs - 1,
    )  # fmt: skip
    seconds = [r.seconds for r in result.history]
    later = statistics.mean(seconds[1:]) if len(seconds) > 1 else seconds[0]
    full_steps = len(data.train)
    steps = min(full_steps, args.max_steps or full_steps)
    complete = epochs == card.epochs and steps == full_steps
    total = sum(seconds) if complete else project(seconds, steps, full_steps, card.epochs)
    return {
        "method": args.method,
        "card": card.key,
        "device": args.device,
        "device_name": torch.cuda.get_device_name()
        if args.device.startswith("cuda")
        else platform.processor() or platform.machine(),
        "bf16": args.bf16,
        "channels_last": args.channels_last,
        "compile": args.compile,
        "cuda_graph": args.cuda_graph,
        "cells": args.cells,
        "steps_per_epoch": steps,
        "full_steps_per_epoch": full_steps,
        "epochs_run": epochs,
        "prepare_s": prepare,
        "epoch_s": seconds,
        "first_epoch_s": seconds[0],
        "later_epoch_mean_s": later,
        "search_s": total,
        "search_measured": complete,
        "paper_search_s": 10_890,
        "final_arch": result.arch,
        "final_loss": result.history[-1].train_loss,
        "ledger": {
            "forward_passes": result.ledger.forward_passes,
            "backward_passes": result.ledger.backward_passes,
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--method", default="darts_v1")
    parser.add_argument("--card", default="nb201-darts")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--bf16", action="store_true")
    parser.add_argument("--channels-last", action="store_true")
    parser.add_argument("--compile", choices=COMPILE_MODES)
    parser.add_argument("--cuda-graph", action="store_true")
    parser.add_argument(
        "--cells",
        choices=("fused", "per-op"),
        default="fused",
        help="dense cells batched per source node, or one call per op",
    )
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--max-steps", type=int, help="cap on steps per epoch (quick checks)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--images", type=Path, required=True, help="cifar10_jpg.tar.gz")
    parser.add_argument("--cache", type=Path, default=Path("/tmp/harness-images"))
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    result = measure(args)
    result.update(torch=torch.__version__, when=time.strftime("%Y-%m-%d"))
    previous = json.loads(args.out.read_text()) if args.out.is_file() else {"runs": []}
    same = ("method", "device_name", "bf16", "channels_last", "compile", "cuda_graph", "cells",
            "epochs_run", "steps_per_epoch")  # fmt: skip
    runs = [r for r in previous["runs"] if any(r.get(k) != result[k] for k in same)]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"runs": [*runs, result]}, indent=2) + "\n")
    kind = "measured" if result["search_measured"] else "projected"
    print(
        f"{args.method} {args.device} bf16={args.bf16} channels_last={args.channels_last} "
        f"compile={args.compile} cuda_graph={args.cuda_graph}: prepare {result['prepare_s']:.0f} "
        f"s, first epoch {result['first_epoch_s']:.1f} s, "
        f"later {result['later_epoch_mean_s']:.2f} s/epoch; "
        f"full search {kind} {result['search_s']:.0f} s (paper 10,890 s) -> {args.out}"
    )


if __name__ == "__main__":
    main()
