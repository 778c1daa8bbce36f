"""One first-order DARTS search step of the harness beside the reference implementation's.

For each topology-space supernet size ``C x N`` (10 classes, batch 64, 32x32 random images,
the ``nb201-darts`` card: cell BNs non-affine with running statistics, gradient clip 5, SGD
lr 0.025 with Nesterov momentum 0.9 and weight decay 5e-4, Adam 3e-4 (0.5, 0.999) wd 1e-3):

* ours: the step as the harness's loop runs it: the per-step cosine learning rate written into
  the SGD groups, then ``Darts.step`` (``StepContext.weight_step``: forward under the detached
  softmax weights, backward, clip, SGD; then the architecture step: forward under
  softmax(alpha), gradient with respect to alpha only, Adam);
* reference: xautodl's DARTS-V1 search model (``TinyNetworkDarts``, NAS-Bench-201's DARTS
  search network) stepped as the reference's search scripts step it (NATS-Bench's
  ``search-cell.py`` for darts-v1): learning rate into the groups, zero_grad, forward,
  backward (alpha's gradient too), SGD on the weights; zero_grad, forward, backward (every
  weight's gradient too), Adam on alpha; plus, for the same work as ours, the card's clip
  after the first backward, over ``network.parameters()`` (so alpha's gradient is in the norm).

Both start from the same weights and alpha (ours copied into the reference by name; their
first losses are recorded as a check that the two steps compute the same thing), take the same
two batches, run on the same torch thread count, and are timed in alternation after warm-up
steps (one step of each per repeat, the order flipped every repeat), so that a load change on a
shared machine hits both alike. Per size: median milliseconds per step of each (wall clock,
and the process's CPU time, which a busy machine inflates less), the ratio ours / reference,
the speed-up reference / ours, and the ATen ops one step dispatches. Written
atomically to ``results/benchmarks/reference_step.json`` with the machine and code provenance.

    python benchmarks/bench_reference.py                          # 4x1, 8x1 and 16x5; sss
    python benchmarks/bench_reference.py --sizes 4x1 --repeats 50 --spaces tss
    python benchmarks/bench_reference.py --quick                  # dry run: prints, writes nothing

The size space (``--spaces sss``) compares one TAS, FBNet-V2 and TuNAS step at the published
size with the reference's (``bench_reference_sss.py``). The reference
(``pip install --no-deps xautodl==1.0.0``) is imported only here and in tests.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import math
import os
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode

from harness.oneshot.setup import build_supernet
from harness.provenance import git_commit, machine_info, now, package_versions
from harness.results import atomic_write_text
from harness.supernet.cards import SupernetCard, get_card
from harness.supernet.search import Batch, SearchLedger, StepContext
from harness.supernet.tss import EDGES, OP_NAMES, TssSuperNet
from methods.darts import Darts, DartsConfig

logger = logging.getLogger("bench_reference")
ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "results" / "benchmarks" / "reference_step.json"
BATCH, CLASSES, SIDE = 64, 10, 32
CARD = "nb201-darts"
STEPS_PER_EPOCH = math.ceil(25_000 / BATCH)  # the cosine's period within an epoch
#: (C, N) -> timed steps by default: fewer at the published size (seconds per step on a CPU)
DEFAULT_REPEATS = {(4, 1): 30, (8, 1): 20, (16, 5): 5}
Step = Callable[[], torch.Tensor]


# --------------------------------------------------------------------------- the two steps
def _batches(gen: torch.Generator) -> tuple[Batch, Batch]:
    """A weight batch and an architecture batch: (64, 3, 32, 32) float images, (64,) labels."""
    pairs = []
    for _ in range(2):
        x = torch.randn(BATCH, 3, SIDE, SIDE, generator=gen)
        pairs.append((x, torch.randint(0, CLASSES, (BATCH,), generator=gen)))
    return pairs[0], pairs[1]


def ours_step(
    card: SupernetCard, net: TssSuperNet, alpha: torch.Tensor, batches: tuple[Batch, Batch]
) -> Step:
    """The harness's step (the body of its loop for one batch pair); returns the weight loss."""
    method = Darts(DartsConfig(order=1, **card.method_overrides(DartsConfig)))
    config = dataclasses.replace(card.search_config("cpu"), epochs=1)
    opt = torch.optim.SGD(
        net.parameters(), lr=config.lr, momentum=config.momentum,
        weight_decay=config.weight_decay, nesterov=config.nesterov,
    )  # fmt: skip
    arch_state = {"alpha": alpha.detach().clone().requires_grad_(True)}
    ctx = StepContext(
        method=method, supernet=net, weight_optimizer=opt, arch_state=arch_state,
        method_state=method.init_method_state(arch_state, net),
        generator=torch.Generator().manual_seed(1), config=config, ledger=SearchLedger(),
    )  # fmt: skip
    train, arch = batches

    def step() -> torch.Tensor:
        ctx.step = (ctx.step + 1) % STEPS_PER_EPOCH
        ctx.lr = config.lr_at(0, ctx.step, STEPS_PER_EPOCH)
        for group in opt.param_groups:
            group["lr"] = ctx.lr
        return torch.as_tensor(method.step(ctx, train, arch))

    return step


def _reference_key(key: str) -> str:
    """Our state-dict key -> TinyNetworkDarts's: ``cells.i.edges.e.k.rest`` becomes
    ``cells.i.edges.{dst<-src}.{k}.rest`` (its op list is ours, in our order)."""
    parts = key.split(".")
    if parts[0] == "cells" and len(parts) > 4 and parts[2] == "edges":
        src, dst = EDGES[int(parts[3])]
        parts[3] = f"{dst}<-{src}"
    return ".".join(parts)


def reference_step(
    card: SupernetCard, net: TssSuperNet, alpha: torch.Tensor, batches: tuple[Batch, Batch]
) -> Step:
    """xautodl's DARTS-V1 search model holding ``net``'s weights and ``alpha``, and its step as
    the reference's search scripts run it; returns the weight loss."""
    from xautodl.models.cell_searchs.search_model_darts import TinyNetworkDarts

    ref = TinyNetworkDarts(
        net.C, net.N, 4, CLASSES, list(OP_NAMES), card.affine, card.track_running_stats
    )
    ours = net.state_dict()
    state = {_reference_key(k): v.detach().clone() for k, v in ours.items()}
    state["arch_parameters"] = alpha.detach().clone()
    ref.load_state_dict(state, strict=True)  # every key of both, shapes checked
    ref.train()
    config = card.search_config("cpu")
    w_opt = torch.optim.SGD(
        ref.get_weights(), lr=config.lr, momentum=config.momentum,
        weight_decay=config.weight_decay, nesterov=config.nesterov,
    )  # fmt: skip
    a_opt = torch.optim.Adam(
        ref.get_alphas(), lr=card.arch_lr, betas=(card.arch_beta1, card.arch_beta2),
        weight_decay=card.arch_weight_decay,
    )  # fmt: skip
    (x, y), (xa, ya) = batches
    index = 0

    def step() -> torch.Tensor:
        nonlocal index
        index = (index + 1) % STEPS_PER_EPOCH
        for group in w_opt.param_groups:  # the reference's scheduler.update, per step
            group["lr"] = config.lr_at(0, index, STEPS_PER_EPOCH)
        ref.zero_grad()
        loss = nn.functional.cross_entropy(ref(x)[1], y)
        loss.backward()
        if config.grad_clip is not None:
            nn.utils.clip_grad_norm_(ref.parameters(), config.grad_clip)
        w_opt.step()
        ref.zero_grad()
        nn.functional.cross_entropy(ref(xa)[1], ya).backward()
        a_opt.step()
        return loss.detach()

    return step


# --------------------------------------------------------------------------- measuring
class _OpCounter(TorchDispatchMode):
    """Counts the non-view ATen ops dispatched (forward, backward and optimiser)."""

    def __init__(self) -> None:
        super().__init__()
        self.count = 0

    def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        self.count += not func.is_view
        return func(*args, **(kwargs or {}))


def _count_ops(step: Step) -> int:
    with _OpCounter() as counter:
        step()
    return counter.count


def _timed(step: Step) -> tuple[float, float]:
    """(wall seconds, CPU seconds of this process, all its threads) of one step."""
    wall, cpu = time.perf_counter(), time.process_time()
    step()
    return time.perf_counter() - wall, time.process_time() - cpu


def compare(steps: dict[str, Step], warmup: int, repeats: int) -> dict[str, dict[str, list[float]]]:
    """``{name: {"wall": seconds, "cpu": seconds}}`` per step of each step function, timed in
    alternation (order flipped each repeat) after ``warmup`` untimed steps of each. CPU time
    leaves out the time the process waited for a core (a shared machine), not the slowdown of
    sharing caches and memory bandwidth."""
    for _ in range(warmup):
        for step in steps.values():
            step()
    names = list(steps)
    seconds: dict[str, dict[str, list[float]]] = {n: {"wall": [], "cpu": []} for n in names}
    for r in range(repeats):
        for name in names if r % 2 == 0 else names[::-1]:
            wall, cpu = _timed(steps[name])
            seconds[name]["wall"].append(wall)
            seconds[name]["cpu"].append(cpu)
    return seconds


def _summary(seconds: dict[str, list[float]]) -> dict[str, Any]:
    """Median and minimum milliseconds (wall), median CPU milliseconds, and every wall time."""
    return {
        "median_ms": statistics.median(seconds["wall"]) * 1e3,
        "min_ms": min(seconds["wall"]) * 1e3,
        "cpu_median_ms": statistics.median(seconds["cpu"]) * 1e3,
        "wall_ms": [round(s * 1e3, 3) for s in seconds["wall"]],
    }


def measure_tss(C: int, N: int, warmup: int, repeats: int, seed: int = 0) -> dict[str, Any]:
    """One size of the topology space: both steps built, checked, timed and op-counted."""
    card = dataclasses.replace(get_card(CARD), C=C, N=N)
    gen = torch.Generator().manual_seed(seed)
    net = build_supernet(card, CLASSES, gen).train()  # seeded: no global RNG
    assert isinstance(net, TssSuperNet)
    alpha = 1e-3 * torch.randn(len(EDGES), len(OP_NAMES), generator=gen)
    batches = _batches(gen)
    steps = {
        "ours": ours_step(card, net, alpha, batches),
        # built before either step runs: the reference starts from the same weights
        "reference": reference_step(card, net, alpha, batches),
    }
    first = {name: float(step()) for name, step in steps.items()}  # same weights: same loss
    seconds = compare(steps, max(warmup - 1, 0), repeats)
    ours, ref = _summary(seconds["ours"]), _summary(seconds["reference"])
    return {
        "C": C,
        "N": N,
        "warmup_steps": max(warmup, 1),
        "repeats": repeats,
        "ours_median_ms": ours["median_ms"],
        "reference_median_ms": ref["median_ms"],
        "ratio_ours_over_reference": ours["median_ms"] / ref["median_ms"],
        "speedup": ref["median_ms"] / ours["median_ms"],
        "cpu_ratio_ours_over_reference": ours["cpu_median_ms"] / ref["cpu_median_ms"],
        "ours": ours,
        "reference": ref,
        "dispatched_ops": {name: _count_ops(step) for name, step in steps.items()},
        "first_weight_loss": first,
    }


# --------------------------------------------------------------------------- the record
def cpu_model() -> str | None:
    """The CPU's ``model name`` from /proc/cpuinfo (None where there is none)."""
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return None
    return next((ln.split(":", 1)[1].strip() for ln in lines if ln.startswith("model name")), None)


def _size(text: str) -> tuple[int, int]:
    try:
        c, n = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"a size is CxN, e.g. 16x5; got {text!r}") from None
    return c, n


def record(results: dict[str, list[dict[str, Any]]], load: list[list[float]]) -> dict[str, Any]:
    """The JSON document: provenance, machine, settings and the per-space results."""
    card = get_card(CARD)
    return {
        "benchmark": "reference_step",
        "description": __doc__.split("\n")[0] if __doc__ else "",
        "when": now(),
        "git": git_commit(),
        "packages": package_versions(("nats-harness", "torch", "numpy", "xautodl")),
        "machine": {
            **machine_info("cpu"),
            "cpu_model": cpu_model(),
            "torch_threads": torch.get_num_threads(),
            "load_average_1_5_15min": {"before": load[0], "after": load[1]},
        },
        "settings": {
            "card": card.key,
            "method": "darts first order (weights, then alpha)",
            "reference": "xautodl 1.0.0 TinyNetworkDarts (DARTS-V1 search model)",
            "batch": BATCH,
            "image": SIDE,
            "classes": CLASSES,
            "affine": card.affine,
            "track_running_stats": card.track_running_stats,
            "grad_clip": card.grad_clip,
            "dtype": "float32",
            "device": "cpu",
            "timing": "median of alternating single steps after warm-up (wall; CPU time too)",
        },
        "spaces": results,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else "")
    parser.add_argument("--sizes", type=_size, nargs="+", help="CxN sizes (default 4x1 8x1 16x5)")
    parser.add_argument("--repeats", type=int, help="timed steps per size (default per size)")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--threads", type=int, help="torch threads (default torch's own)")
    parser.add_argument("--out", type=Path, help=f"JSON file (default {OUT.relative_to(ROOT)})")
    parser.add_argument("--spaces", nargs="+", choices=("tss", "sss"), default=["tss", "sss"])
    parser.add_argument("--methods", nargs="+", help="size-space methods (default all three)")
    parser.add_argument("--quick", action="store_true", help="dry run: 4x1, 2 steps, no file")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    sizes: list[tuple[int, int]] = args.sizes or ([(4, 1)] if args.quick else list(DEFAULT_REPEATS))
    warmup = 1 if args.quick else args.warmup
    load = [list(os.getloadavg())]
    rows = []
    for C, N in sizes if "tss" in args.spaces else []:
        repeats = 2 if args.quick else args.repeats or DEFAULT_REPEATS.get((C, N), 10)
        row = measure_tss(C, N, warmup, repeats)
        rows.append(row)
        print(
            f"tss C={C} N={N}: ours {row['ours_median_ms']:.1f} ms, reference "
            f"{row['reference_median_ms']:.1f} ms per step (ours/reference "
            f"{row['ratio_ours_over_reference']:.2f}; CPU time "
            f"{row['cpu_ratio_ours_over_reference']:.2f}; {repeats} steps, "
            f"{torch.get_num_threads()} threads); ops {row['dispatched_ops']}"
        )
    spaces: dict[str, list[dict[str, Any]]] = {"tss": rows} if rows else {}
    if "sss" in args.spaces:
        from bench_reference_sss import ALGORITHMS, measure_sss

        spaces["sss"] = []
        for name in args.methods or list(ALGORITHMS):
            repeats = 2 if args.quick else args.repeats or 10
            row = measure_sss(name, warmup, repeats)
            spaces["sss"].append(row)
            print(
                f"sss {name}: ours {row['ours_median_ms']:.1f} ms, reference "
                f"{row['reference_median_ms']:.1f} ms per step (ours/reference "
                f"{row['ratio_ours_over_reference']:.2f}; CPU time "
                f"{row['cpu_ratio_ours_over_reference']:.2f}; channels-last "
                f"{row['channels_last_median_ms']:.1f} ms, {row['channels_last_speedup']:.2f}x; "
                f"{repeats} steps)"
            )
    load.append(list(os.getloadavg()))
    document = record(spaces, load)
    out = args.out if args.out is not None or args.quick else OUT
    if out is None:
        print(json.dumps(document, indent=2))
        return
    atomic_write_text(out, json.dumps(document, indent=2) + "\n")
    print(f"-> {out}")


if __name__ == "__main__":
    main()
