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

All randomness comes from one ``numpy.random.SeedSequence`` per run, spawned into streams for
the data (loader order and augmentation), the supernet's initial weights, the method, and each
selection rule that draws (perturbation: the row order; top-K: its sample), so that asking for
one more rule never changes what another rule chooses. The weight/architecture split of the
CIFAR-10 images and the synthetic images are fixed (drawn from constants), so runs differ only
in what the seed should change.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
import logging
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from harness.data import (
    CROP_PADDING,
    DeviceLoader,
    Normalization,
    normalization_for,
    read_image_folder,
    seeded_split,
    synthetic_dataset,
    torch_generator,
)
from harness.errors import ConfigError, unknown
from harness.registry import get_method
from harness.spaces import get_space
from harness.supernet.cards import SupernetCard, get_card
from harness.supernet.checkpoint import state_out
from harness.supernet.compiled import dense_forward
from harness.supernet.quality import (
    GroundTruth,
    arch_quality,
    epoch_trajectory,
    ground_truth,
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

if TYPE_CHECKING:
    from harness.bench.store import Store

logger = logging.getLogger(__name__)

__all__ = [
    "SELECTIONS",
    "CellResult",
    "ProgressLog",
    "Runtime",
    "SearchData",
    "TruthSet",
    "build_supernet",
    "make_search_data",
    "run_cell",
]

SELECTIONS: tuple[str, ...] = ("magnitude", "perturbation", "topk")
#: Fixed entropies: the CIFAR-10 weight/arch split, the synthetic images, the rank sample.
SPLIT_ENTROPY, SYNTHETIC_ENTROPY, SAMPLE_ENTROPY = 20_240_811, 20_240_812, 20_240_813
_SYNTHETIC_NORM = Normalization((0.5, 0.5, 0.5), (0.25, 0.25, 0.25))


def _canonical(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"))


# --------------------------------------------------------------------------- ground truth
@dataclass(frozen=True)
class TruthSet:
    """Ground truth per eval task, with the digest and synthetic flag of where it came from.
    ``missing``: why there is no ground truth (then every truth holds costs only)."""

    truths: Mapping[str, GroundTruth]
    checksum: str
    synthetic: bool
    missing: str | None = None

    @staticmethod
    def from_store(store: Store, tasks: Sequence[str], hp: str) -> TruthSet:
        truths = {t: ground_truth(store, t, hp) for t in tasks}
        return TruthSet(truths, store.checksum, store.synthetic)

    @staticmethod
    def from_truths(truths: Mapping[str, GroundTruth], synthetic: bool = True) -> TruthSet:
        """From arrays; the checksum is a digest of the test and valid accuracies."""
        digest = hashlib.sha256()
        for task in sorted(truths):
            digest.update(task.encode())
            digest.update(np.ascontiguousarray(truths[task].test).tobytes())
            digest.update(np.ascontiguousarray(truths[task].valid).tobytes())
        return TruthSet(dict(truths), "arrays:" + digest.hexdigest()[:16], synthetic)

    @staticmethod
    def without_truth(space: str, tasks: Sequence[str], hp: str, reason: str) -> TruthSet:
        """No accuracies known (``reason`` says why); each task keeps the closed-form costs."""
        truths = {t: GroundTruth.missing_truth(space, t, hp, reason) for t in tasks}
        return TruthSet(truths, f"none:{space}", False, reason)

    def get(self, task: str) -> GroundTruth:
        if task not in self.truths:
            raise ConfigError(unknown("ground-truth task", task, self.truths))
        return self.truths[task]


# --------------------------------------------------------------------------- data
@dataclass
class SearchData:
    """Loaders of one search: ``train`` (weight batches), ``arch`` (architecture batches; both
    shuffled and augmented) and ``eval`` (the architecture part in a fixed order, no
    augmentation, for selection and rank correlation); ``record`` describes the data."""

    train: DeviceLoader
    arch: DeviceLoader
    eval: DeviceLoader
    num_classes: int
    checksum: str
    record: dict[str, Any]


@dataclass(frozen=True)
class Runtime:
    """Where and how a cell runs: ``device``, bf16 autocast, channels-last supernet and
    batches, a ``torch.compile`` mode for the dense forwards of search and perturbation
    fine-tuning (:data:`~harness.supernet.compiled.COMPILE_MODES`; None: eager), search steps
    captured as CUDA graphs (``cuda_graph``), the CIFAR-10 JPEG archive (``images``), a decode
    cache and a directory for checkpoints, the saved supernet and a progress log (``workdir``,
    ``<run key>.progress.log``: a timestamped line per epoch, edge decision and stage; None:
    nothing written). None of these changes a run's key."""

    device: str = "cpu"
    bf16: bool = False
    channels_last: bool = False
    compile: str | None = None
    cuda_graph: bool = False
    images: str | None = None
    cache_dir: str | None = None
    workdir: str | None = None


def _file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()[:16]


def _images(card: SupernetCard, runtime: Runtime) -> tuple[Any, Any, str, Normalization, int]:
    """(weight part, arch part, checksum, normalisation, crop padding) of the card's images."""
    n_w, n_a = card.weight_images, card.arch_images
    if card.data == "synthetic":
        gen = np.random.default_rng(SYNTHETIC_ENTROPY)
        size, classes = card.image_size, card.synthetic_classes
        data = synthetic_dataset(gen, n_w + n_a, classes, size)
        checksum = f"synthetic:{classes}x{size}:{n_w}+{n_a}"
        return (
            data.subset(np.arange(n_w)),
            data.subset(np.arange(n_w, n_w + n_a)),
            checksum,
            (_SYNTHETIC_NORM),
            1,
        )
    if runtime.images is None:
        raise ConfigError(f"card {card.key} needs the CIFAR-10 JPEG archive (Runtime.images)")
    source = Path(runtime.images)
    data = read_image_folder(source, "train", runtime.cache_dir)
    split = seeded_split(
        "cifar10-jpeg-search", len(data), {"train": n_w, "valid": n_a},
        np.random.default_rng(SPLIT_ENTROPY),
    )  # fmt: skip
    checksum = f"{_file_digest(source)}:{SPLIT_ENTROPY}:{n_w}+{n_a}"
    weights, arch = data.subset(split["train"]), data.subset(split["valid"])
    return weights, arch, checksum, normalization_for("cifar10"), CROP_PADDING["cifar10"]


def make_search_data(
    card: SupernetCard, task: str, rng: np.random.Generator, runtime: Runtime
) -> SearchData:
    """The loaders of a search on ``task`` under ``card``; ``rng`` seeds their order and
    augmentation (two independent torch generators)."""
    split = card.data_split(task)
    weights, arch, checksum, norm, padding = _images(card, runtime)

    def loader(part: Any, train: bool) -> DeviceLoader:
        return DeviceLoader(
            part.images, part.labels, norm=norm, device=runtime.device, padding=padding,
            channels_last=runtime.channels_last, train=train, shuffle=train,
            batch_size=card.batch_size if train else card.eval_batch_size,
            generator=torch_generator(rng) if train else None,
        )  # fmt: skip

    train, arch_loader, evaluation = loader(weights, True), loader(arch, True), loader(arch, False)
    record = {**split, "checksum": checksum, "normalization": dataclasses.asdict(norm)}
    return SearchData(train, arch_loader, evaluation, weights.num_classes, checksum, record)


def build_supernet(
    card: SupernetCard, num_classes: int, generator: torch.Generator
) -> torch.nn.Module:
    """The card's supernet (its space's) with PyTorch's default initialisation drawn from
    ``generator`` (built on the meta device first, so the global generator is never touched)."""
    with torch.device("meta"):
        net = card.supernet_class()(**card.supernet_kwargs(num_classes))
    net = net.to_empty(device="cpu")
    reset = getattr(net, "reset_constants", None)
    if reset is not None:
        reset()  # constant buffers (the size space's masks) are not state: to_empty left garbage
    with torch.no_grad():
        for module in net.modules():
            if isinstance(module, torch.nn.Conv2d | torch.nn.Linear):
                torch.nn.init.kaiming_uniform_(module.weight, a=math.sqrt(5), generator=generator)
                if module.bias is not None:
                    fan_in = module.weight[0].numel()
                    bound = 1 / math.sqrt(fan_in)
                    torch.nn.init.uniform_(module.bias, -bound, bound, generator=generator)
            elif isinstance(module, torch.nn.BatchNorm2d):
                module.reset_parameters()  # ones / zeros and fresh running statistics
    return net


# --------------------------------------------------------------------------- one cell
class ProgressLog:
    """Timestamped lines appended to ``path`` (each line flushed at once), to follow a long
    cell from outside: ``tail -f``. ``path`` None: the lines are dropped."""

    def __init__(self, path: Path | None) -> None:
        self.path = path

    def __call__(self, line: str) -> None:
        if self.path is None:
            return
        stamp = time.strftime("%Y-%m-%d %H:%M:%S")
        with self.path.open("a", encoding="utf-8") as handle:
            handle.write(f"{stamp} {line}\n")


@dataclass
class CellResult:
    """Rows (one per selection rule and eval task), the per-epoch trajectory rows, and the
    search and selection outcomes behind them."""

    rows: list[dict[str, Any]]
    trajectory: list[dict[str, Any]]
    search: SearchResult | None
    selections: dict[str, SelectionResult] = field(default_factory=dict)


#: The spawned streams of a cell, in spawn order (adding one at the end keeps the others).
STREAMS: tuple[str, ...] = ("data", "init", "method", "perturbation", "topk")


def _streams(key_parts: list[Any], seed: int) -> dict[str, np.random.Generator]:
    digest = hashlib.sha256(_canonical(key_parts).encode()).digest()
    entropy = [seed, *(int.from_bytes(digest[i : i + 4], "little") for i in range(0, 16, 4))]
    children = np.random.SeedSequence(entropy).spawn(len(STREAMS))
    return {name: np.random.default_rng(s) for name, s in zip(STREAMS, children, strict=True)}


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
            out[name] = select_perturbation(
                tuned, result.arch_weights, data.eval, config, rngs["perturbation"], data.train,
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
    config = _canonical(dataclasses.asdict(instance.config))
    eval_tasks = card.eval_tasks(task)
    key_parts = [method, config, card.space, task, card.key, seed]
    key = hashlib.sha256(_canonical([*key_parts, truth.checksum]).encode()).hexdigest()[:16]
    rngs = _streams(key_parts, seed)
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
        "data_checksum": truth.checksum, "truth_note": truth.missing,
        "image_checksum": data.checksum,
        "epochs": result.ledger.epochs, "forward_passes": result.ledger.forward_passes,
        "backward_passes": result.ledger.backward_passes, "kendall_tau": tau,
        "spearman_rho": rho, "card": _canonical(card.to_dict()),
        "search_config": _canonical(dataclasses.asdict(search_config)),
        "data": _canonical(data.record),
    }  # fmt: skip
    rows, trajectory = [], []
    for eval_task in eval_tasks:
        gt = truth.get(eval_task)
        for name, sel in chosen.items():
            rows.append(
                {**base, **arch_quality(gt, sel.arch_index).to_dict(), "eval_dataset": eval_task,
                 "selection": name, "selection_config": _canonical(sel.config),
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
