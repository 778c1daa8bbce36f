"""Seeded synthetic NATS-Bench archives in the exact official file format.

Files are bz2-compressed protocol-4 pickles with the keys, key order, python/numpy types,
seeds, evaluation-set gaps and float precision patterns of the genuine archives, in the
fast-mode directory layout or as the single-file archive; ``nats_bench`` reads both. Only the
metrics are invented: accuracy curves rise to a plateau set by the architecture (many
``nor_conv_3x3`` on input-output paths is best; a cell with no such path stays at chance),
losses follow the accuracies, per-epoch times are constant per run and grow with FLOPs.
Parameter and FLOP counts are computed in closed form and equal the genuine values.

A file depends only on ``(space, index, entropy)``, ``entropy`` being one draw from the
caller's generator: the same seed gives byte-identical files whatever ``n_jobs`` or subset.
"""

from __future__ import annotations

import bz2
import logging
import math
import os
import pickle
import shutil
import tempfile
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

import numpy as np
from joblib import Parallel, delayed
from tqdm import tqdm

from harness.errors import ConfigError, unknown
from harness.paths import OFFICIAL_ARCHIVE_NAMES
from harness.spaces import sss, tss

logger = logging.getLogger(__name__)

SPACES: Final = ("tss", "sss")
LAYOUTS: Final = ("dir", "file")
CORRUPTIONS: Final = ("truncate", "garbage", "wrong_type")
HPS: Final = {"tss": ("12", "200"), "sss": ("01", "12", "90")}
DATASETS: Final = ("cifar10-valid", "cifar10", "cifar100", "ImageNet16-120")
SSS_GENOTYPE: Final = (  # the fixed cell of every size-space network
    "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|"
    "+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|"
)
FILE_LAYOUT_MAX_ARCHS: Final = 1000  # the single file is built in memory (a few MB per record)

_NUM_ARCHS: Final = {"tss": tss.NUM_ARCHS, "sss": sss.NUM_ARCHS}
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
# numpy >= 2 pickles scalars under numpy._core; the genuine files name numpy.core.
_NUMPY_MODULE: Final = (b"\x8c\x16numpy._core.multiarray", b"\x8c\x15numpy.core.multiarray")
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


def _legacy_numpy_names(raw: bytes) -> bytes:
    """Name numpy's scalar constructor as the genuine files do, keeping frame lengths valid."""
    old, new = _NUMPY_MODULE
    parts, pos = [raw[:2]], 2  # PROTO 4, then FRAME opcodes; no opcode spans two frames
    while pos < len(raw) and raw[pos] == 0x95:
        size = int.from_bytes(raw[pos + 1 : pos + 9], "little")
        body = raw[pos + 9 : pos + 9 + size].replace(old, new)
        parts += [b"\x95", len(body).to_bytes(8, "little"), body]
        pos += 9 + size
    parts.append(raw[pos:].replace(old, new))
    return b"".join(parts)


def encode(obj: object) -> bytes:
    """Bytes of an archive file: protocol-4 pickle, bz2 level 9 (as ``nats_bench`` saves)."""
    return bz2.compress(_legacy_numpy_names(pickle.dumps(obj, protocol=4)), 9)


def _write_chunk(folder: str, space: str, entropy: int, indices: list[int], unpadded: bool) -> int:
    for i in indices:
        name = f"{i}.pickle.pbz2" if unpadded else f"{i:06d}.pickle.pbz2"
        Path(folder, name).write_bytes(encode(arch_record(space, i, entropy)))
    return len(indices)


def _records(space: str, entropy: int, indices: list[int]) -> dict[int, bytes]:
    # Pickled here, unpickled by the caller: the objects shared inside the final single file
    # (and so its bytes) are then the same whichever process made them.
    return {i: pickle.dumps(arch_record(space, i, entropy), protocol=4) for i in indices}


def _check(space: str, layout: str, indices: Sequence[int] | None) -> list[int]:
    if space not in SPACES:
        raise ConfigError(unknown("search space", space, SPACES))
    if layout not in LAYOUTS:
        raise ConfigError(unknown("archive layout", layout, LAYOUTS))
    total = _NUM_ARCHS[space]
    chosen = list(range(total)) if indices is None else [int(i) for i in indices]
    bad = [i for i in chosen if not 0 <= i < total]
    if bad or len(set(chosen)) != len(chosen):
        raise ConfigError(
            f"indices must be distinct integers in 0..{total - 1} for {space}; "
            f"got {len(chosen)} indices, out of range: {bad[:5]}"
        )
    if layout == "file" and len(chosen) > FILE_LAYOUT_MAX_ARCHS:
        raise ConfigError(
            f"the single-file layout is built in memory: at most {FILE_LAYOUT_MAX_ARCHS} "
            f"architectures, got {len(chosen)}; use layout='dir' for more"
        )
    return chosen


def _fill(tmp: Path, space: str, entropy: int, chosen: list[int], layout: str, n_jobs: int,
          progress: bool, unpadded: bool) -> dict[int, bytes]:  # fmt: skip
    """Generate every record in parallel chunks: files in ``tmp`` ("dir") or returned ("file")."""
    workers = (os.cpu_count() or 1) if n_jobs < 0 else max(1, n_jobs)
    size = max(1, min(64, len(chosen) // (workers * 16)))
    chunks = [chosen[k : k + size] for k in range(0, len(chosen), size)]
    if layout == "dir":
        jobs = (delayed(_write_chunk)(str(tmp), space, entropy, c, unpadded) for c in chunks)
    else:
        jobs = (delayed(_records)(space, entropy, c) for c in chunks)
    records: dict[int, bytes] = {}
    with tqdm(total=len(chosen), disable=not progress, unit="arch", desc=space) as bar:
        for done in Parallel(n_jobs=n_jobs, return_as="generator_unordered")(jobs):
            if isinstance(done, dict):
                records.update(done)
            bar.update(len(done) if isinstance(done, dict) else done)
    return records


def write_synthetic_archive(
    out: Path,
    space: str,
    rng: np.random.Generator,
    indices: Sequence[int] | None = None,
    layout: str = "dir",
    n_jobs: int = 1,
    progress: bool = False,
    unpadded_names: bool = False,
) -> Path:
    """Write a synthetic archive under ``out`` and return its path.

    ``layout="dir"``: ``out/NATS-{space}-...-simple/`` with ``meta.pickle.pbz2`` (every
    architecture string) and one file per index, ``NNNNNN.pickle.pbz2`` (``N.pickle.pbz2``
    when ``unpadded_names``). ``layout="file"``: the single non-fast-mode archive
    ``out/NATS-{space}-....pickle.pbz2`` holding ``meta_archs``, ``arch2infos`` (index -> hp ->
    state), ``evaluated_indexes`` and ``total_archs``. ``indices=None`` is the whole space.
    The archive appears atomically (built in a temporary sibling, then renamed); on any
    failure nothing is left behind. Uses one draw of ``rng``; ``n_jobs`` as in joblib.
    """
    chosen = _check(space, layout, indices)
    out = Path(out)
    target = out / OFFICIAL_ARCHIVE_NAMES[space][0 if layout == "dir" else 1]
    if target.exists():
        raise ConfigError(f"{target} already exists; remove it or choose another directory")
    entropy = int(rng.integers(0, 2**63))
    created = [p for p in (out, *out.parents) if not p.exists()]  # deepest first
    out.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=out))
    try:
        tmp.chmod(0o755)  # mkdtemp makes it private; the archive is an ordinary directory
        strings = list(tss.all_strings() if space == "tss" else sss.all_strings())
        records = _fill(tmp, space, entropy, chosen, layout, n_jobs, progress, unpadded_names)
        if layout == "dir":
            meta = {"meta_archs": strings, "total_archs": len(strings), "arch2infos": None,
                    "evaluated_indexes": set()}  # fmt: skip
            (tmp / "meta.pickle.pbz2").write_bytes(encode(meta))
            os.replace(tmp, target)
        else:
            infos = {i: pickle.loads(records[i]) for i in chosen}
            whole = {"meta_archs": strings, "arch2infos": infos,
                     "evaluated_indexes": set(chosen), "total_archs": len(strings)}  # fmt: skip
            (tmp / target.name).write_bytes(encode(whole))
            os.replace(tmp / target.name, target)
            tmp.rmdir()
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        for path in created:  # directories this call made, if still empty
            try:
                path.rmdir()
            except OSError:
                break
        raise
    logger.info("wrote synthetic %s archive %s (%d architectures)", space, target, len(chosen))
    return target


def corrupt_file(path: Path, mode: str) -> Path:
    """Damage an archive file in place, for tests of importers; returns ``path``.

    ``truncate``: keep the first half of the bytes (a cut bz2 stream). ``garbage``: same
    length of bytes that are not bz2. ``wrong_type``: a valid bz2 pickle of a list.
    """
    if mode not in CORRUPTIONS:
        raise ConfigError(unknown("corruption mode", mode, CORRUPTIONS))
    path = Path(path)
    data = path.read_bytes()
    if mode == "truncate":
        damaged = data[: len(data) // 2]
    elif mode == "garbage":
        pattern = b"\x00not a bz2 archive\xff"
        damaged = (pattern * (len(data) // len(pattern) + 1))[: max(len(data), len(pattern))]
    else:
        damaged = encode(["not", "an", "archive", "record"])
    path.write_bytes(damaged)
    return path
