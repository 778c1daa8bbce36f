"""Supernet training throughput at the NAS-Bench-201 size, and the projected DARTS-V1 search time.

Times the harness's own steps on the tss supernet (C=16, N=5, 10 classes, batch 64, 32x32):

* a *weight step*: forward under the detached softmax weights, backward, gradient clip, SGD
  (``StepContext.weight_step``);
* an *architecture step* of first-order DARTS (``Darts.arch_step``: forward under
  softmax(alpha), gradient with respect to alpha, Adam).

Each is warmed up, then timed over ``--steps`` steps (device synchronised), with the cells
evaluated per op and fused per source node (``--cells``; both by default, in the same run), and
the ATen ops each step dispatches are counted (about one GPU kernel each). The projected time of
a full NAS-Bench-201 DARTS-V1 search is 50 epochs x ceil(25,000 / 64) = 391 steps of one weight
and one architecture step each. Results are appended per setting (device, dtype, memory format)
to ``results/benchmarks/supernet_throughput.json``.

    python benchmarks/bench_supernet.py --threads 2                   # CPU
    python benchmarks/bench_supernet.py --device cuda --bf16 --channels-last --compile default

With ``--compile`` the warm-up steps include compilation; their time is reported apart
(``warmup_s``) and the timed steps start after it.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import platform
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from harness.oneshot.setup import build_supernet
from harness.registry import make_method
from harness.supernet.cards import get_card
from harness.supernet.compiled import COMPILE_MODES
from harness.supernet.search import SearchConfig, SearchLedger, StepContext

logger = logging.getLogger("bench_supernet")
ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "results" / "benchmarks" / "supernet_throughput.json"
BATCH, CLASSES, SIZE = 64, 10, 32
SEARCH_EPOCHS, SEARCH_IMAGES = 50, 25_000


def _context(
    device: str, bf16: bool, channels_last: bool, compile: str | None, fused: bool
) -> tuple[StepContext, Any]:
    card = get_card("nb201-darts")
    gen = torch.Generator().manual_seed(0)
    net = build_supernet(card, CLASSES, gen).to(device).train()
    net.set_fused(fused)
    if channels_last:
        net = net.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
    config = SearchConfig(
        epochs=1, grad_clip=card.grad_clip, bf16=bf16, device=device, compile=compile
    )
    method = make_method("darts_v1")
    alpha = (1e-3 * torch.randn(6, 5, generator=gen)).to(device).requires_grad_(True)
    arch_state = {"alpha": alpha}
    opt = torch.optim.SGD(net.parameters(), lr=0.025, momentum=0.9, weight_decay=5e-4,
                          nesterov=True)  # fmt: skip
    ctx = StepContext(method, net, opt, arch_state, method.init_method_state(arch_state, net),
                      torch.Generator(device=device).manual_seed(1), config, SearchLedger(),
                      lr=0.025)  # fmt: skip
    x = torch.randn(BATCH, 3, SIZE, SIZE, generator=gen).to(device)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, CLASSES, (BATCH,), generator=gen).to(device)
    return ctx, (x, y)


def _time(step: Callable[[], Any], device: str, warmup: int, steps: int) -> tuple[float, float]:
    """(seconds per step, mean over ``steps`` after ``warmup``; seconds of the warm-up)."""
    began = time.perf_counter()
    for _ in range(warmup):
        step()
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    warm = time.perf_counter() - began
    began = time.perf_counter()
    for _ in range(steps):
        step()
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    return (time.perf_counter() - began) / steps, warm


class _OpCounter(TorchDispatchMode):
    """Counts the non-view ATen ops dispatched (forward and backward): on a GPU each is about
    one kernel launch, which bounds a step at this network size."""

    def __init__(self) -> None:
        super().__init__()
        self.count = 0

    def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        self.count += not func.is_view
        return func(*args, **(kwargs or {}))


def _ops(step: Callable[[], Any]) -> int:
    with _OpCounter() as counter:
        step()
    return counter.count


def measure(
    device: str, bf16: bool, channels_last: bool, compile: str | None, fused: bool, warmup: int,
    steps: int,
) -> dict:  # fmt: skip
    ctx, batch = _context(device, bf16, channels_last, compile, fused)
    method = ctx.method
    weight, warm_w = _time(lambda: ctx.weight_step(batch), device, warmup, steps)
    arch, warm_a = _time(lambda: method.arch_step(ctx, batch, batch), device, warmup, steps)
    ops = {
        "weight_step": _ops(lambda: ctx.weight_step(batch)),
        "arch_step": _ops(lambda: method.arch_step(ctx, batch, batch)),
    }
    steps_per_epoch = math.ceil(SEARCH_IMAGES / BATCH)
    projected = SEARCH_EPOCHS * steps_per_epoch * (weight + arch)
    return {
        "device": device,
        "device_name": torch.cuda.get_device_name()
        if device.startswith("cuda")
        else platform.processor() or platform.machine(),
        "threads": torch.get_num_threads(),
        "bf16": bf16,
        "channels_last": channels_last,
        "compile": compile,
        "cells": "fused" if fused else "per-op",
        "batch": BATCH,
        "supernet": {"C": 16, "N": 5, "classes": CLASSES, "image": SIZE},
        "warmup_steps": warmup,
        "timed_steps": steps,
        "warmup_s": warm_w + warm_a,
        "weight_step_s": weight,
        "arch_step_s": arch,
        "dispatched_ops": ops,
        "weight_images_per_s": BATCH / weight,
        "arch_images_per_s": BATCH / arch,
        "darts_v1_search_projection": {
            "epochs": SEARCH_EPOCHS,
            "steps_per_epoch": steps_per_epoch,
            "seconds": projected,
            "hours": projected / 3600,
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--bf16", action="store_true")
    parser.add_argument("--channels-last", action="store_true")
    parser.add_argument("--compile", choices=COMPILE_MODES, help="torch.compile mode")
    parser.add_argument("--cells", choices=("both", "per-op", "fused"), default="both")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    torch.set_num_threads(args.threads)
    fused = {"both": (False, True), "per-op": (False,), "fused": (True,)}[args.cells]
    results = []
    for cells in fused:
        result = measure(
            args.device, args.bf16, args.channels_last, args.compile, cells, args.warmup,
            args.steps,
        )  # fmt: skip
        result.update(torch=torch.__version__, numpy=np.__version__, when=time.strftime("%Y-%m-%d"))
        results.append(result)
        proj = result["darts_v1_search_projection"]
        w, a = result["weight_step_s"], result["arch_step_s"]
        print(
            f"{args.device} bf16={args.bf16} channels_last={args.channels_last} "
            f"compile={args.compile} cells={result['cells']}: warm-up {result['warmup_s']:.0f} s, "
            f"weight step {w * 1e3:.1f} ms ({BATCH / w:.0f} img/s), "
            f"arch step {a * 1e3:.1f} ms ({BATCH / a:.0f} img/s); "
            f"ops dispatched {result['dispatched_ops']}; "
            f"projected 50-epoch 25k/25k DARTS-V1 search: {proj['hours']:.1f} h"
        )
    previous = json.loads(args.out.read_text()) if args.out.is_file() else {"runs": []}
    for run in previous["runs"]:
        run.setdefault("cells", "per-op")  # measured before cells could be fused
    same = ("device", "bf16", "channels_last", "compile", "device_name", "cells")
    keys = {tuple(n[k] for k in same) for n in results}
    runs = [r for r in previous["runs"] if tuple(r.get(k) for k in same) not in keys]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"runs": [*runs, *results]}, indent=2) + "\n")
    print(f"-> {args.out}")


if __name__ == "__main__":
    main()
