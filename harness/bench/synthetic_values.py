"""The value model behind the synthetic NATS-Bench archives of :mod:`harness.bench.synthetic`.

Only the metrics are invented: accuracy curves rise to a plateau set by the architecture (many
``nor_conv_3x3`` on input-output paths is best; a cell with no such path stays at chance),
losses follow the accuracies, per-epoch times are constant per run and grow with FLOPs.
Parameter and FLOP counts are computed in closed form and equal the genuine values.
:func:`arch_record` assembles one archive file's content (the genuine keys, key order, python
and numpy types, seeds and float precision patterns) from ``(space, index, entropy)`` alone.
"""

from __future__ import annotations

import logging
import math
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any, Final

import numpy as np

from harness.spaces import sss, tss

logger = logging.getLogger(__name__)

HPS: Final = {"tss": ("12", "200"), "sss": ("01", "12", "90")}
DATASETS: Final = ("cifar10-valid", "cifar10", "cifar100", "ImageNet16-120")
SSS_GENOTYPE: Final = (  # the fixed cell of every size-space network
    "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|"
    "+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|"
)

_CLASSES: Final = {"cifar10-valid": 10, "cifar10": 10, "cifar100": 100, "ImageNet16-120": 120}
_TRAIN_N: Final = {"cifar10-valid": 25000, "cifar10": 50000, "cifar100": 50000,
                   "ImageNet16-120": 151700}  # fmt: skip
_EVAL_N: Final = {  # evaluation-set sizes, in the order the genuine eval_times list them
    "cifar10-valid": {"x-valid": 25000, "ori-test": 10000},
    "cifar10": {"ori-test": 10000},
    "cifar100": {"x-valid": 5000, "x-test": 5000, "ori-test": 10000},
    "ImageNet16-120": {"x-valid": 3000, "x-test": 3000, "ori-test": 6000},
}
_EPOCHS: Final = {"01": 1, "12": 12, "90": 90, "200": 200}
_LONG_HP: Final = {"tss": "200", "sss": "90"}
# Accuracy model, per dataset in DATASETS order: best plateau (%), exponent on the quality,
# share of the long-schedule gain a schedule reaches, loss exponents, long-schedule train gap.
_BEST: Final = (91.7, 94.4, 73.5, 47.3)
_Q_EXP: Final = (1.0, 1.0, 2.3, 5.2)
_LEVEL: Final = {"01": (0.3, 0.42, 0.14, 0.26), "12": (0.85, 0.87, 0.65, 0.65),
                 "90": (1.0,) * 4, "200": (1.0,) * 4}  # fmt: skip
_LOSS_EXP: Final = {"train": (0.93, 0.93, 1.05, 1.5), "eval": (0.8, 0.8, 1.04, 1.53)}
_GAP: Final = (0.02, 0.04, 0.08, 0.85)
# Accuracies that are not exact count ratios (float32 batch averages) deviate from one by a
# multiple (-8..8) of a small step, as in the genuine files; the step per (dataset, set):
_ACC_STEP: Final = {
    ("cifar10-valid", "train"): 1e-5 / 8192, ("cifar10-valid", "x-valid"): 1e-5 / 8192,
    ("cifar100", "x-valid"): 1e-5 / 1024, ("cifar100", "x-test"): 1e-5 / 1024,
    ("ImageNet16-120", "train"): 1e-5 / 32768, ("ImageNet16-120", "ori-test"): 1e-5 / 4096,
    ("ImageNet16-120", "x-valid"): 1e-5 / 512, ("ImageNet16-120", "x-test"): 1e-5 / 512,
}  # fmt: skip
_OP: Final = {name: i for i, name in enumerate(tss.OPS)}


def _cell_costs(edges: Sequence[tuple[int, int]], cin: int, cout: int, area: int) -> list[int]:
    """[params, FLOPs] of one cell from its (op id, source node) edges."""
    params = flops = 0
    for op, src in edges:
        ci = cin if src == 0 else cout
        if op == _OP["nor_conv_3x3"]:
            params, flops = params + 9 * ci * cout + 2 * cout, flops + 9 * ci * cout * area
        elif op == _OP["nor_conv_1x1"] or (op != _OP["none"] and ci != cout):
            params, flops = params + ci * cout + 2 * cout, flops + ci * cout * area
    return [params, flops]


def network_costs(space: str, index: int, classes: int) -> tuple[float, float]:
    """(params in MB, FLOPs in M) of architecture ``index`` with a ``classes``-way classifier.

    Closed form of the official networks: stem, three stages of cells joined by stride-2
    residual blocks, BN-ReLU head and linear classifier, counted as the archives count them.
    """
    genotype = tss.all_strings()[index] if space == "tss" else SSS_GENOTYPE
    edges = [(op, src) for op, (src, _) in zip(tss.str_to_ops(genotype), tss.EDGES, strict=True)]
    widths: tuple[int, ...] = (16, 32, 32, 64, 64)
    cells = (5, 0, 5, 0, 5)
    if space == "sss":
        widths, cells = tuple(int(w) for w in sss.all_widths()[index]), (1, 0, 1, 0, 1)
    side = 16 if classes == 120 else 32  # ImageNet16-120 images are 16x16
    params, flops = 29 * widths[0], 27 * widths[0] * side * side
    prev = widths[0]
    for layer, width in enumerate(widths):
        area = (side >> ((layer + 1) // 2)) ** 2
        for k in range(cells[layer]):
            p, f = _cell_costs(edges, prev if k == 0 else width, width, area)
            params, flops = params + p, flops + f
        if not cells[layer]:  # residual block: two 3x3 ReLU-conv-BN and a 1x1 shortcut
            params += 9 * prev * width + 9 * width * width + 4 * width + prev * width
            flops += (9 * prev * width + 9 * width * width + prev * width) * area
        prev = width
    params += 2 * prev + prev * classes + classes
    flops += prev * classes + classes
    return params / 1e6, flops / 1e6


def quality(space: str, index: int) -> float:
    """Noise-free architecture quality in [0, 1]; 0 for a cell with no input-output path."""
    if space == "sss":
        widths = sss.all_widths()[index].astype(float)
        u = float(np.dot([0.15, 0.15, 0.2, 0.25, 0.25], np.log2(widths / 8) / 3))
        return 0.8 + 0.2 * u**0.7
    ops = tss.all_ops()[index].tolist()
    live = [op != _OP["none"] for op in ops]
    reach, coreach = {0}, {3}
    for e, (src, dst) in enumerate(tss.EDGES):
        if live[e] and src in reach:
            reach.add(dst)
    for e, (src, dst) in reversed(list(enumerate(tss.EDGES))):
        if live[e] and dst in coreach:
            coreach.add(src)
    useful = [
        ops[e] for e, (s, d) in enumerate(tss.EDGES) if live[e] and s in reach and d in coreach
    ]
    if not useful:
        return 0.0
    weight = {_OP["nor_conv_3x3"]: 1.0, _OP["nor_conv_1x1"]: 0.55, _OP["avg_pool_3x3"]: 0.2}
    score = sum(weight.get(op, 0.15) for op in useful) + 0.4 * (ops[3] == _OP["skip_connect"])
    return 1.0 - 0.122 * math.exp(-2.6 * min(1.0, score / 5.4))  # 0.88 .. 0.99


def _describe(space: str, index: int, rng: np.random.Generator) -> dict[str, Any]:
    """Quantities shared by all runs of one architecture: quality, costs, times, latency."""
    q = quality(space, index)
    q = float(np.clip(q + rng.normal(0, 0.01), 0, 1)) if q > 0 else 0.0
    costs = {ds: network_costs(space, index, _CLASSES[ds]) for ds in DATASETS}
    flops = costs["cifar10"][1]
    base = 4.0 + 0.08 * flops if space == "tss" else 1.5 + 0.25 * flops
    train_s = base * rng.lognormal(0, 0.12)  # one epoch over 25,000 images
    eval_s = train_s * rng.uniform(0.12, 0.2)  # one pass over 10,000 images
    jitter = 0.0 if space == "tss" else 0.04  # sss times were measured per dataset and set
    times: dict[tuple[str, str], float] = {}
    for ds in DATASETS:
        times[ds, "train"] = train_s * _TRAIN_N[ds] / 25000 * rng.lognormal(0, jitter)
        for name, n in _EVAL_N[ds].items():
            times[ds, name] = eval_s * n / 10000 * rng.lognormal(0, jitter)
    if space == "sss":  # wall-clock differences carry the resolution of time.time()
        times = {k: round(v * 2**22) / 2**22 for k, v in times.items()}
    lat = (0.0085 + 0.00002 * flops + 0.005 * q) * rng.lognormal(0, 0.06, size=3)
    gap = [g + (1 - g) * math.exp(-4 * costs[ds][0]) for ds, g in zip(DATASETS, _GAP, strict=True)]
    strings = tss.all_strings() if space == "tss" else sss.all_strings()
    return {
        "space": space, "index": index, "arch_str": strings[index], "q": q, "costs": costs,
        "times": times, "latency": dict(zip(DATASETS, lat[[0, 0, 1, 2]].tolist(), strict=True)),
        "gap": gap, "has_999": bool(rng.random() < 0.5),
    }  # fmt: skip


def _progress(epochs: int) -> np.ndarray:
    """Shape (epochs,): share of the final gain reached after each epoch (ends at 1).

    A first-epochs jump, a slower climb over the first ~third of the schedule and the late
    gain of the cosine learning-rate decay.
    """
    e = np.arange(1, epochs + 1, dtype=float)
    t = e / epochs
    h = 0.35 * (1 - np.exp(-e / 1.5)) + 0.4 * (1 - np.exp(-e / (0.15 * epochs))) + 0.25 * t**2
    return h / h[-1]


def _error(
    rng: np.random.Generator, chance: float, final: float, sd: np.ndarray, speed: float = 1.0
) -> np.ndarray:
    """Per-epoch error rate from 1 - chance to 1 - final, with relative noise ``sd``.

    ``speed < 1`` reaches the final value sooner (training fits faster than it generalises).
    """
    h = _progress(len(sd)) ** speed
    err = (1 - chance) - ((1 - chance) - (1 - final)) * h
    return np.clip(err * np.exp(rng.normal(0, sd)), 5e-4, 0.9995)


def _percent(rng: np.random.Generator, k: np.ndarray, n: int, key: tuple[str, str]) -> list[float]:
    """Correct counts ``k`` out of ``n`` as stored: percent, with the genuine float pattern."""
    acc = k * 100.0 / n
    step = _ACC_STEP.get(key, 0.0)
    return (acc + rng.integers(-8, 9, acc.shape) * step if step else acc).tolist()


def _count(rng: np.random.Generator, err: np.ndarray, n: int) -> np.ndarray:
    """Correct predictions out of ``n`` at error rate ``err``."""
    return n - rng.binomial(n, err)


def _loss_sum(
    rng: np.random.Generator, err: np.ndarray, j: int, n: int, kind: str, sd: Any
) -> np.ndarray:
    """Summed cross-entropy over ``n`` images, falling from n*log(classes) as ``err`` falls.

    Sums sit on the grid of float32 batch losses (divide by ``n`` for the stored mean).
    """
    classes = _CLASSES[DATASETS[j]]
    ratio = err / (1 - 1 / classes)
    loss = ratio ** _LOSS_EXP[kind][j] * math.log(classes) * rng.lognormal(0, sd, err.shape)
    step = np.exp2(np.floor(np.log2(loss)) - 21)
    return np.round(loss * n / step) * step


def _eval_plan(ds: str, sparse: bool) -> tuple[list[str], list[tuple[str, bool]]]:
    """Eval names and the (set, every epoch?) entries of eval_acc1es and eval_losses."""
    sets = list(_EVAL_N[ds])
    if not sparse:
        return sets, [(s, True) for s in sets]
    if ds == "cifar10-valid":  # 200-epoch tss runs keep only the final epoch of some sets
        return sets, [("x-valid", True), ("ori-test", False)]
    if ds == "cifar10":
        return sets, [("ori-test", True)]
    return ["ori-test", "x-valid", "x-test"], [("ori-test", True), ("x-valid", False),
                                                ("x-test", False)]  # fmt: skip


def _curves(rng: np.random.Generator, arch: dict[str, Any], ds: str, hp: str) -> dict[str, Any]:
    """Per-epoch metrics of one run: train acc/acc5/loss and per eval set acc/loss lists."""
    j, epochs, chance = DATASETS.index(ds), _EPOCHS[hp], 1 / _CLASSES[ds]
    long_hp = hp == _LONG_HP[arch["space"]]
    gain = (_BEST[j] / 100 - chance) * arch["q"] ** _Q_EXP[j] * _LEVEL[hp][j]
    final = chance + gain + rng.normal(0, 0.004)
    gap = arch["gap"][j] if long_hp else rng.uniform(0.97, 1.03)
    lr = 0.5 * (1 + np.cos(np.pi * np.arange(1, epochs + 1) / epochs))  # cosine schedule
    err_eval = _error(rng, chance, final, 0.15 * lr + 0.01)
    err_train = _error(rng, chance, 1 - (1 - final) * gap, 0.01 * lr + 0.005, speed=0.7)
    n_train = _TRAIN_N[ds]
    out: dict[str, Any] = {"train": _percent(rng, _count(rng, err_train, n_train), n_train,
                                             (ds, "train"))}  # fmt: skip
    out["train5"] = None
    if arch["space"] == "sss" or not long_hp:
        m = math.log(1 - 5 * chance) / math.log(1 - chance)  # top-5 is 5x chance at chance
        out["train5"] = _percent(rng, _count(rng, err_train**m, n_train), n_train, (ds, "train"))
    out["train_loss"] = (_loss_sum(rng, err_train, j, n_train, "train", 0.01) / n_train).tolist()
    counts: dict[str, np.ndarray] = {}
    sums: dict[str, np.ndarray] = {}
    for name, n in _EVAL_N[ds].items():
        if name == "ori-test" and "x-test" in counts:  # the whole test set = its two halves
            counts[name] = counts["x-valid"] + counts["x-test"]
            sums[name] = sums["x-valid"] + sums["x-test"]
        else:
            counts[name] = _count(rng, err_eval, n)
            sums[name] = _loss_sum(rng, err_eval, j, n, "eval", 0.1 * lr + 0.03)
    out["acc"] = {s: _percent(rng, counts[s], n, (ds, s)) for s, n in _EVAL_N[ds].items()}
    out["loss"] = {s: (sums[s] / n).tolist() for s, n in _EVAL_N[ds].items()}
    return out


def _run(rng: np.random.Generator, arch: dict[str, Any], ds: str, hp: str, seed: int) -> dict:
    """One training run, as the genuine ResultsCount state dict (same key order and types)."""
    space, epochs, classes = arch["space"], _EPOCHS[hp], _CLASSES[ds]
    c = _curves(rng, arch, ds, hp)
    names, plan = _eval_plan(ds, sparse=space == "tss" and hp == _LONG_HP[space])
    shared = {s: [f"{s}@{e}" for e in range(epochs)] for s in _EVAL_N[ds]}

    def key(s: str, e: int) -> str:  # tss files hold a separate key string per dict
        return shared[s][e] if space == "sss" else f"{s}@{e}"

    acc: dict[str, float] = {}
    loss: dict[str, float] = {}
    times: dict[str, float] = {}
    for s, every in plan:
        for e in range(epochs) if every else [epochs - 1]:
            acc[key(s, e)] = c["acc"][s][e]
        for e in range(epochs) if every else [epochs - 1]:
            loss[key(s, e)] = c["loss"][s][e]
    for s in _EVAL_N[ds]:
        times.update((key(s, e), arch["times"][ds, s]) for e in range(epochs))
    params, flop = arch["costs"][ds]
    if space == "tss":
        config = {"channel": 16, "num_cells": 5, "arch_str": arch["arch_str"], "class_num": classes}
    else:
        config = {"name": "infer.shape.tiny", "channels": arch["arch_str"]}
        config.update(arch_str=arch["arch_str"], genotype=SSS_GENOTYPE, class_num=classes)
    train_s = arch["times"][ds, "train"]
    return {
        "name": ds, "train_acc1es": dict(enumerate(c["train"])),
        "train_acc5es": None if c["train5"] is None else dict(enumerate(c["train5"])),
        "train_losses": dict(enumerate(c["train_loss"])),
        "train_times": OrderedDict((e, train_s) for e in range(epochs)),
        "arch_config": config, "params": np.float64(params), "flop": flop, "seed": f"{seed:04d}",
        "epochs": epochs, "latency": [np.float64(arch["latency"][ds])], "eval_names": names,
        "eval_acc1es": acc, "eval_times": times, "eval_losses": loss, "net_state_dict": None,
    }  # fmt: skip


def _seed_plan(space: str, hp: str, has_999: bool) -> list[tuple[str, int]]:
    """(dataset, seed) runs in the genuine all_results order."""
    if space == "tss" and hp == "12":
        return [("cifar10-valid", 777)] + [(ds, 111) for ds in DATASETS]
    if space == "tss":
        seeds = [999, 777, 888] if has_999 else [777, 888]
    else:
        seeds = [777, 888, 999] if hp == "12" else [777]
    return [(ds, s) for s in seeds for ds in DATASETS]


def arch_record(space: str, index: int, entropy: int) -> OrderedDict[str, dict[str, Any]]:
    """The content of one archive file: ``OrderedDict{hp: ArchResults state dict}``.

    Depends only on its arguments; ``entropy`` is the archive's root seed.
    """
    rng = np.random.default_rng(np.random.SeedSequence(entropy, spawn_key=(index,)))
    arch = _describe(space, index, rng)
    record: OrderedDict[str, dict[str, Any]] = OrderedDict()
    for hp in HPS[space]:
        runs = _seed_plan(space, hp, arch["has_999"])
        record[hp] = {
            "arch_index": index,
            "arch_str": arch["arch_str"],
            "all_results": {(ds, s): _run(rng, arch, ds, hp, s) for ds, s in runs},
            "dataset_seed": {ds: sorted(s for d, s in runs if d == ds) for ds in DATASETS},
            "clear_net_done": True,
        }
    return record
