"""One supernet experiment cell, end to end: search, save, select, score.

``(method, config overrides, card, task, seed)`` -> data and supernet -> the harness-owned
search (:func:`~harness.supernet.search.run_supernet_search`) -> the trained supernet and the
method's final weights saved -> every requested selection rule applied to that same supernet
(magnitude, perturbation, top-K) -> one row per (selection rule, eval task) with the columns of
the black-box run table plus ``selection``, ``epochs``, ``forward_passes``,
``backward_passes``, ``kendall_tau`` and ``spearman_rho`` (the search's cost and rank
correlation), ``selection_seconds``, ``selection_forward_passes`` and
``selection_backward_passes`` (the selection's own cost), ``supernet_acc`` (the trained
supernet's one-hot accuracy of the chosen architecture), the chosen architecture's cost
(``params_mb``, ``flop_m``, ``latency_ms``) and regret at no more FLOPs (``regret_at_flops``),
and ``truth_note`` (why the accuracies are missing, when no store covers the space); and a
per-epoch trajectory of the argmax architecture's true accuracy.

With a work directory both long stages resume after a kill: the search from its epoch
checkpoint (``<run key>.search.pt``), the perturbation selection from its checkpoint after the
last edge decision (``<run key>.select.pt``).

All randomness comes from two ``numpy.random.SeedSequence`` of the run: one over (space, task,
card, seed) alone, spawned into the data stream (loader order and augmentation) and the
supernet's initial weights, so that every method and config of one seed trains on the same
batches from the same start (their results pair); and one over the whole cell, spawned into
the method's stream and one per selection rule that draws (perturbation: the row order;
top-K: its sample), so that asking for one more rule never changes what another chooses.
The weight/architecture split of the CIFAR-10 images and the synthetic images are fixed (drawn
from constants), so runs differ only in what the seed should change.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import logging
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from harness.data import torch_generator
from harness.errors import ConfigError, unknown
from harness.oneshot.setup import (
    ProgressLog,
    Runtime,
    SearchData,
    TruthSet,
    build_supernet,
    canonical,
    check_train_on,
    make_search_data,
)
from harness.registry import get_method
from harness.spaces import get_space
from harness.supernet.cards import SupernetCard, get_card
from harness.supernet.checkpoint import state_out
from harness.supernet.compiled import dense_forward
from harness.supernet.quality import (
    GroundTruth,
    arch_quality,
    epoch_trajectory,
    rank_correlation,
    stratified_sample,
    supernet_accuracies,
)
from harness.supernet.search import Batch, SearchResult, SupernetMethod, run_supernet_search
from harness.supernet.selection import (
    ArchTuning,
    SelectionResult,
    select_magnitude,
    select_perturbation,
    select_topk,
)

logger = logging.getLogger(__name__)

__all__ = ["SELECTIONS", "SHARED_STREAMS", "STREAMS", "CellResult", "run_cell"]

SELECTIONS: tuple[str, ...] = ("magnitude", "perturbation", "topk")
#: Fixed entropy of the rank-correlation sample.
SAMPLE_ENTROPY = 20_240_813


# --------------------------------------------------------------------------- one cell
@dataclass
class CellResult:
    """Rows (one per selection rule and eval task), the per-epoch trajectory rows, and the
    search and selection outcomes behind them."""

    rows: list[dict[str, Any]]
    trajectory: list[dict[str, Any]]
    search: SearchResult | None
    selections: dict[str, SelectionResult] = field(default_factory=dict)


#: The spawned streams of a cell, in spawn order (adding one at the end keeps the others):
#: those every method of a seed shares, and the cell's own.
SHARED_STREAMS: tuple[str, ...] = ("data", "init")
STREAMS: tuple[str, ...] = ("method", "perturbation", "topk")


def _spawn(parts: list[Any], seed: int, names: tuple[str, ...]) -> dict[str, np.random.Generator]:
    digest = hashlib.sha256(canonical(parts).encode()).digest()
    entropy = [seed, *(int.from_bytes(digest[i : i + 4], "little") for i in range(0, 16, 4))]
    children = np.random.SeedSequence(entropy).spawn(len(names))
    return {name: np.random.default_rng(s) for name, s in zip(names, children, strict=True)}


def _streams(key_parts: list[Any], shared_parts: list[Any], seed: int
             ) -> dict[str, np.random.Generator]:  # fmt: skip
    return {**_spawn(shared_parts, seed, SHARED_STREAMS), **_spawn(key_parts, seed, STREAMS)}


def _select(
    names_: Sequence[str], net: torch.nn.Module, result: SearchResult, method: SupernetMethod,
    data: SearchData, card: SupernetCard, rngs: Mapping[str, np.random.Generator],
    runtime: Runtime, progress: ProgressLog, checkpoint: Path | None,
) -> tuple[dict[str, SelectionResult], dict[str, float]]:  # fmt: skip
    """Apply the selection rules to the trained ``net`` (perturbation last, on copies of the
    supernet and the method's state, which its tuning changes; resumable from
    ``checkpoint``); each rule that draws has its own stream in ``rngs``. Perturbation's
    seconds add up its resumed parts."""
    out: dict[str, SelectionResult] = {}
    seconds: dict[str, float] = {}
    space = get_space(card.space)
    for name in sorted(names_, key=lambda n: n == "perturbation"):
        began = time.perf_counter()
        if name == "magnitude":
            out[name] = select_magnitude(result.arch_weights, space)
        elif name == "topk":
            out[name] = select_topk(
                net, data.eval, card.topk_config(), rngs["topk"], result.arch_weights
            )
        else:
            steps = min(len(data.train), card.max_steps_per_epoch or len(data.train))
            config = card.perturbation_config(steps)
            tuned, arch_state, method_state = copy.deepcopy(
                (net, result.arch_state, result.method_state)
            )  # one deepcopy: the method's optimisers keep pointing at the copied tensors
            forward = None if runtime.compile is None else dense_forward(tuned, runtime.compile)
            arch = data.train if method.arch_split == "train" else data.arch
            tuning = ArchTuning(
                method, arch_state, method_state, arch, torch_generator(rngs["perturbation"]),
                runtime.compile,
                runtime.bf16, runtime.cuda_graph,
            )  # fmt: skip
            valid = data.arch if config.fresh_batches else data.eval  # augmented, shuffled
            out[name] = select_perturbation(
                tuned, result.arch_weights, valid, config, rngs["perturbation"], data.train,
                forward, tuning, progress, checkpoint,
            )  # fmt: skip
        seconds[name] = out[name].details.get("seconds", time.perf_counter() - began)
        line = f"selection {name} -> {out[name].arch} in {seconds[name]:.1f} s"
        logger.info(line)
        progress(line)
    return out, seconds


def _rank_batches(data: SearchData, card: SupernetCard) -> list[Batch]:
    """The validation batches every supernet-estimated accuracy of a cell is measured on."""
    return [b for _, b in zip(range(card.rank_valid_batches), data.eval, strict=False)]


def _correlation(
    net: torch.nn.Module, data: SearchData, card: SupernetCard, truth: GroundTruth,
    sample: np.ndarray | None,
) -> tuple[float | None, float | None]:  # fmt: skip
    if truth.missing is not None:
        return None, None
    if sample is None:
        gen = np.random.default_rng(SAMPLE_ENTROPY)
        sample = stratified_sample(truth.test, card.rank_sample, card.rank_bins, gen)
    estimated = supernet_accuracies(net, [int(a) for a in sample], _rank_batches(data, card))
    tau, rho = rank_correlation(estimated, truth.test[sample])
    return (None if math.isnan(tau) else tau), (None if math.isnan(rho) else rho)


def run_cell(
    method: str,
    card: str | SupernetCard,
    task: str,
    seed: int,
    truth: TruthSet,
    *,
    overrides: Mapping[str, Any] | None = None,
    selections: Sequence[str] = ("magnitude", "perturbation"),
    runtime: Runtime | None = None,
    rank_sample: np.ndarray | None = None,
) -> CellResult:
    """Run one experiment cell (see module docstring).

    Args:
        method: a registered supernet method; ``overrides`` change its config after the card's
            settings (architecture Adam, step order) are applied.
        card: a :class:`SupernetCard` or its name; ``task``: one of its search tasks.
        truth: ground truth of every eval task of the card for ``task``.
        selections: rules from :data:`SELECTIONS`, all applied to the same trained supernet.
        rank_sample: architecture indices for the rank correlation (default: a stratified
            sample of the card's size drawn from a fixed generator on the searched task).
    """
    started = time.perf_counter()
    card = get_card(card) if isinstance(card, str) else card
    runtime = runtime or Runtime()
    bad = [s for s in selections if s not in SELECTIONS]
    if bad or not selections:
        raise ConfigError(unknown("selection rule", bad[0] if bad else "", SELECTIONS))
    cls = get_method(method, "supernet")
    values = {**card.method_overrides(cls.Config, method), **dict(overrides or {})}
    allowed = [f.name for f in dataclasses.fields(cls.Config)]
    for key in values:
        if key not in allowed:
            raise ConfigError(unknown(f"hyperparameter of {method}", key, allowed))
    instance = cls(cls.Config(**values))
    check_train_on(card, instance)
    config = canonical(dataclasses.asdict(instance.config))
    eval_tasks = card.eval_tasks(task)
    key_parts = [method, config, card.space, task, card.key, seed]
    key = hashlib.sha256(canonical([*key_parts, truth.checksum]).encode()).hexdigest()[:16]
    rngs = _streams(key_parts, ["shared", card.space, task, card.key], seed)
    data = make_search_data(card, task, rngs["data"], runtime)
    net = build_supernet(card, data.num_classes, torch_generator(rngs["init"]))
    if runtime.channels_last:
        net = net.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
    workdir = Path(runtime.workdir) if runtime.workdir is not None else None
    if workdir is not None:
        workdir.mkdir(parents=True, exist_ok=True)
    progress = ProgressLog(None if workdir is None else workdir / f"{key}.progress.log")
    progress(
        f"cell {key}: {method} on {task}, seed {seed}, card {card.key}, device "
        f"{runtime.device}; {len(data.train)} weight and {len(data.arch)} architecture batches"
    )
    search_config = card.search_config(
        runtime.device, runtime.bf16, runtime.compile, runtime.cuda_graph
    )
    result = run_supernet_search(
        instance, net, data.train, data.arch, search_config, rngs["method"],
        checkpoint=None if workdir is None else workdir / f"{key}.search.pt", progress=progress,
    )  # fmt: skip
    progress(f"search done: {result.ledger.epochs} epochs, {result.ledger.device_seconds:.1f} s")
    if workdir is not None:
        torch.save(
            {"supernet": net.state_dict(), "arch_weights": result.arch_weights,
             "arch_state": state_out(result.arch_state), "card": card.to_dict(),
             "method": method, "config": config},
            workdir / f"{key}.supernet.pt",
        )  # fmt: skip
    began = time.perf_counter()
    tau, rho = _correlation(net, data, card, truth.get(task), rank_sample)
    progress(f"rank correlation: tau {tau}, rho {rho} in {time.perf_counter() - began:.1f} s")
    chosen, seconds = _select(
        selections, net, result, instance, data, card, rngs, runtime, progress,
        None if workdir is None else workdir / f"{key}.select.pt",
    )  # fmt: skip
    estimated = supernet_accuracies(
        net, [sel.arch_index for sel in chosen.values()], _rank_batches(data, card)
    )  # the trained supernet's one-hot accuracy of each chosen architecture
    wall = time.perf_counter() - started
    base = {
        "run_key": key, "method": method, "config": config, "space": card.space, "dataset": task,
        "protocol": card.key, "seed": seed, "sim_seconds": None, "queries": None,
        "distinct_archs": None, "wall_seconds": wall,
        "device_seconds": result.ledger.device_seconds, "status": "ok", "error": None,
        "synthetic": truth.synthetic or card.data == "synthetic",
        "data_checksum": truth.checksum, "truth_note": truth.missing, "paired_streams": True,
        "image_checksum": data.checksum,
        "epochs": result.ledger.epochs, "forward_passes": result.ledger.forward_passes,
        "backward_passes": result.ledger.backward_passes, "kendall_tau": tau,
        "spearman_rho": rho, "card": canonical(card.to_dict()),
        "search_config": canonical(dataclasses.asdict(search_config)),
        "data": canonical(data.record),
    }  # fmt: skip
    rows, trajectory = [], []
    for eval_task in eval_tasks:
        gt = truth.get(eval_task)
        for name, sel in chosen.items():
            rows.append(
                {**base, **arch_quality(gt, sel.arch_index).to_dict(), "eval_dataset": eval_task,
                 "selection": name, "selection_config": canonical(sel.config),
                 "supernet_acc": float(estimated[list(chosen).index(name)]),
                 "selection_seconds": seconds[name],
                 "selection_forward_passes": sel.details["forward_passes"],
                 "selection_backward_passes": sel.details["backward_passes"]}
            )  # fmt: skip
        for point in epoch_trajectory(gt, result.history):
            trajectory.append({"run_key": key, "eval_dataset": eval_task, **point})
    logger.info("cell %s (%s, %s, seed %d) done in %.1f s", key, method, task, seed, wall)
    progress(f"cell done in {wall:.1f} s")
    return CellResult(rows, trajectory, result, chosen)
