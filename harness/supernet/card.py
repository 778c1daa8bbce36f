"""The protocol card of a supernet experiment: the settings a comparison holds fixed.

A :class:`SupernetCard` fixes the space, the search loop (epochs, batch, SGD schedule,
clipping), the architecture optimiser (the DARTS family's Adam, and per-method settings), the
supernet (tss: C, N; sss: the mask scope; BatchNorm flags), the
data (which images, how they are split into weight and architecture batches, which tasks are
searched and which the result is reported on) and the selection stage (perturbation tuning,
top-K sampling, the rank-correlation sample). It turns into the pieces the harness needs
(:meth:`~SupernetCard.search_config`, :meth:`~SupernetCard.supernet_kwargs`,
:meth:`~SupernetCard.method_overrides`, :meth:`~SupernetCard.data_split`, selection configs),
and :meth:`~SupernetCard.to_dict` goes into every run record. Sources: the NAS-Bench-201 and
NATS-Bench search scripts and DARTS-PT's NB201 scripts (see the project's method notes).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from torch import nn

from harness.bench import names
from harness.errors import ConfigError, reject_unknown_fields, unknown
from harness.supernet.method import SearchConfig
from harness.supernet.selection import PerturbationConfig, TopKConfig

logger = logging.getLogger(__name__)

__all__ = ["SupernetCard"]

#: ``official``: the benchmark's images under the data root (:mod:`harness.data.root`);
#: ``cifar10-jpeg``: the CIFAR-10 JPEG copy; ``synthetic``: a few generated images.
DATA_SOURCES: tuple[str, ...] = ("cifar10-jpeg", "official", "synthetic")
#: How official images split into weight and architecture batches (harness.data.parts).
SEARCH_SPLITS: tuple[str, ...] = ("benchmark", "train_halves")
#: Part sizes of the published cards: with official images these mean "the benchmark's own
#: parts, whole" (CIFAR-100: 50k weight images and the 5k x-valid half for the architecture).
PUBLISHED_PARTS = (25_000, 25_000)
STEP_ORDERS: tuple[str, ...] = ("weights_first", "arch_first")
SPACES: tuple[str, ...] = ("tss", "sss")
MASK_SCOPES: tuple[str, ...] = ("module", "layer")
LR_SCHEDULES: tuple[str, ...] = ("batch", "epoch")
TRAIN_ON: tuple[str, ...] = ("split", "all")
PERTURBATION_BATCHES: tuple[str, ...] = ("fixed", "loader")
TOPK_BATCHES: tuple[str, ...] = ("shared", "per_candidate")
#: Knobs added after the first cards, left out of :meth:`SupernetCard.to_dict` while they hold
#: these defaults, so that the run keys of cards made before them do not change.
_LATER_DEFAULTS: Mapping[str, Any] = MappingProxyType(
    {"space": "tss", "mask_scope": "module", "method_settings": {}, "lr_schedule": "batch",
     "head_like_cells": False, "train_on": "split", "perturbation_batches": "fixed",
     "topk_batches": "shared", "topk_train_mode": True, "search_split": "benchmark"}
)  # fmt: skip


@dataclass(frozen=True)
class SupernetCard:
    """One supernet search protocol (see module docstring). Learning rates are per step of
    SGD / Adam; epochs are passes over the weight split; ``image_size`` is in pixels.

    ``search_tasks``: tasks a search may run on; ``transfer``: report the architecture on
    every task (searched on CIFAR-10, NB201 style) instead of only the searched one.
    ``weight_images`` / ``arch_images``: sizes of the weight and architecture parts of the
    training images (CIFAR-10 JPEG) or, for synthetic data, of each synthetic part; with
    official images the published 25,000 / 25,000 take the benchmark's parts whole and other
    sizes a fixed-seed subset of each (:meth:`official_sizes`). ``search_split``: how official
    images split (``benchmark``: AutoDL's search loaders; ``train_halves``: the two halves of
    the task's own training set, as the DARTS code does).
    ``perturbation_epochs``: tuning epochs after each edge decision (DARTS-PT ``proj_intv``;
    as there, the phase before the last decision is one epoch shorter);
    ``perturbation_tune_arch``: the tuning runs the method's own steps, so its architecture
    weights keep training on the undecided edges (DARTS-PT's darts-proj), else the supernet
    weights alone are tuned.
    ``rank_*``: the fixed stratified architecture sample for Kendall / Spearman and the number
    of validation batches each of its architectures is scored on.
    ``space``: ``tss`` (C and N apply) or ``sss`` (the benchmark's 5 layers of 8..64 channels;
    ``mask_scope``: ``module`` masks each module's output as NATS-Bench does, ``layer`` also
    every activation inside it, so that one-hot masks compute the sliced sub-network).
    ``method_settings``: config values per method name, applied after the shared Adam settings
    (e.g. TuNAS without architecture weight decay).
    ``lr_schedule``: the cosine updated every ``batch`` or once per ``epoch`` (the AutoDL and
    DARTS-PT code). ``head_like_cells``: the tss head BatchNorm takes the cells' flags (NATS-
    Bench's search model) instead of being affine with running statistics (NAS-Bench-201's).
    ``train_on``: ``split`` trains the weights on the weight part of the training images;
    ``all`` on all of them (single-level methods only; selection and rank correlation then
    use the test images).
    ``perturbation_batches``: ``fixed`` scores every candidate on the same un-augmented
    batches of ``eval_batch_size``; ``loader`` on fresh shuffled, augmented batches of the
    search batch size (DARTS-PT). ``topk_batches``: ``shared`` batches for every candidate, or
    the next batches of the loader ``per_candidate`` (NATS-Bench's ``get_best_arch``);
    ``topk_train_mode``: batch statistics (True) or eval mode.
    """

    name: str
    version: int
    description: str
    # search loop
    epochs: int
    space: str = "tss"
    batch_size: int = 64
    lr: float = 0.025
    lr_min: float = 0.001
    lr_schedule: str = "batch"
    momentum: float = 0.9
    weight_decay: float = 5e-4
    nesterov: bool = True
    grad_clip: float | None = 5.0
    schedule_epochs: int | None = None
    max_steps_per_epoch: int | None = None
    step_order: str = "weights_first"
    # architecture optimiser (DARTS-family Adam; ignored by methods without those fields)
    arch_lr: float = 3e-4
    arch_beta1: float = 0.5
    arch_beta2: float = 0.999
    arch_weight_decay: float = 1e-3
    # supernet
    C: int = 16
    N: int = 5
    mask_scope: str = "module"
    affine: bool = False
    track_running_stats: bool = False
    head_like_cells: bool = False
    # data
    data: str = "cifar10-jpeg"
    search_tasks: tuple[str, ...] = ("cifar10",)
    transfer: bool = False
    weight_images: int = 25_000
    arch_images: int = 25_000
    train_on: str = "split"
    search_split: str = "benchmark"
    image_size: int = 32
    synthetic_classes: int = 10
    eval_batch_size: int = 512
    report_hp: str = "200"
    # selection
    perturbation_epochs: int = 5
    perturbation_lr: float = 0.0025
    perturbation_weight_decay: float = 3e-4
    perturbation_valid_batches: int | None = None
    perturbation_tune_arch: bool = True
    perturbation_batches: str = "fixed"
    topk: int = 100
    topk_valid_batches: int = 10
    topk_batches: str = "shared"
    topk_train_mode: bool = True
    rank_sample: int = 100
    rank_bins: int = 10
    rank_valid_batches: int = 10
    method_settings: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.space not in SPACES:
            raise ConfigError(unknown("card space", self.space, SPACES))
        choices = {
            "mask_scope": MASK_SCOPES,
            "lr_schedule": LR_SCHEDULES,
            "train_on": TRAIN_ON,
            "perturbation_batches": PERTURBATION_BATCHES,
            "topk_batches": TOPK_BATCHES,
            "search_split": SEARCH_SPLITS,
        }
        for knob, allowed in choices.items():
            if getattr(self, knob) not in allowed:
                raise ConfigError(unknown(knob.replace("_", " "), getattr(self, knob), allowed))
        if self.data not in DATA_SOURCES:
            raise ConfigError(unknown("card data source", self.data, DATA_SOURCES))
        if self.step_order not in STEP_ORDERS:
            raise ConfigError(unknown("step order", self.step_order, STEP_ORDERS))
        for task in self.search_tasks:
            names.check_task(task)
        names.hp_key(self.space, self.report_hp)
        positive = ("epochs", "batch_size", "C", "N", "weight_images", "arch_images", "topk")
        bad = [f for f in positive if getattr(self, f) < 1]
        if bad or self.image_size % 4:
            raise ConfigError(
                f"card {self.name!r}: {bad or 'image_size'} must be >= 1 (image_size divisible "
                f"by 4, got {self.image_size})"
            )
        object.__setattr__(self, "search_tasks", tuple(self.search_tasks))
        self.search_config()  # validates the loop settings

    @property
    def key(self) -> str:
        """``name@version`` (the run record's ``protocol``)."""
        return f"{self.name}@{self.version}"

    def eval_tasks(self, task: str) -> tuple[str, ...]:
        """Tasks the architecture searched on ``task`` is reported on."""
        self.check_task(task)
        return names.TASKS if self.transfer else (task,)

    def check_task(self, task: str) -> str:
        if task not in self.search_tasks:
            raise ConfigError(f"card {self.key} " + unknown("search task", task, self.search_tasks))
        return task

    def search_config(
        self,
        device: str = "cpu",
        bf16: bool = False,
        compile: str | None = None,
        cuda_graph: bool = False,
    ) -> SearchConfig:
        """The loop's :class:`SearchConfig` on ``device`` (and its speed settings)."""
        return SearchConfig(
            epochs=self.epochs,
            lr=self.lr,
            lr_min=self.lr_min,
            momentum=self.momentum,
            weight_decay=self.weight_decay,
            nesterov=self.nesterov,
            grad_clip=self.grad_clip,
            schedule_epochs=self.schedule_epochs,
            max_steps_per_epoch=self.max_steps_per_epoch,
            bf16=bf16,
            device=device,
            compile=compile,
            cuda_graph=cuda_graph,
            lr_per_epoch=self.lr_schedule == "epoch",
        )

    def supernet_class(self) -> type[nn.Module]:
        """The supernet of the card's space: :class:`~harness.supernet.tss.TssSuperNet` or
        :class:`~harness.supernet.sss.SssSuperNet`."""
        if self.space == "sss":
            from harness.supernet.sss import SssSuperNet

            return SssSuperNet
        from harness.supernet.tss import TssSuperNet

        return TssSuperNet

    def supernet_kwargs(self, num_classes: int) -> dict[str, Any]:
        """Keyword arguments of :meth:`supernet_class`."""
        flags: dict[str, Any] = dict(
            affine=self.affine, track_running_stats=self.track_running_stats
        )
        if self.space == "sss":
            return dict(num_classes=num_classes, mask_scope=self.mask_scope, **flags)
        if self.head_like_cells:
            flags["head_like_cells"] = True
        return dict(num_classes=num_classes, C=self.C, N=self.N, **flags)

    def method_overrides(self, config_type: type[Any], method: str | None = None) -> dict[str, Any]:
        """Config values this card sets for a method whose Config is ``config_type``: the
        architecture Adam and the step order, then ``method_settings[method]``, for the fields
        the method has."""
        values = dict(
            arch_lr=self.arch_lr,
            arch_beta1=self.arch_beta1,
            arch_beta2=self.arch_beta2,
            arch_weight_decay=self.arch_weight_decay,
            weights_first=self.step_order == "weights_first",
        )
        values.update(self.method_settings.get(method or "", {}))
        fields = {f.name for f in dataclasses.fields(config_type)}
        return {k: v for k, v in values.items() if k in fields}

    def official_sizes(self) -> tuple[int, int] | None:
        """Part sizes asked of official images: None (the benchmark's parts, whole) for the
        published 25,000 / 25,000, else (weight, arch) fixed-seed subsets."""
        sizes = (self.weight_images, self.arch_images)
        return None if sizes == PUBLISHED_PARTS else sizes

    def parts_split(self) -> str:
        """The split :func:`harness.data.search_parts` is asked for."""
        return "all_train" if self.train_on == "all" else self.search_split

    def data_split(self, task: str) -> dict[str, Any]:
        """Where the weight and architecture batches of a search on ``task`` come from."""
        self.check_task(task)
        if self.data == "synthetic":
            return {
                "images": "synthetic",
                "weights": f"{self.weight_images} synthetic images",
                "arch": f"{self.arch_images} other synthetic images",
                "classes": self.synthetic_classes,
                "image_size": self.image_size,
            }
        if self.data == "official":
            return self._official_split(task)
        if task != "cifar10":
            raise ConfigError(
                f"card {self.key}: the CIFAR-10 JPEG copy holds CIFAR-10 only, not {task!r}; "
                "search other tasks on the official images (--data official)"
            )
        if self.train_on == "all":
            return {
                "images": "cifar10-jpeg train and test (60,000 JPEG re-encodings)",
                "weights": "all 50,000 training images (architecture batches too: single level)",
                "eval": "the 10,000 test images (selection and rank correlation)",
                "image_size": self.image_size,
            }
        return {
            "images": "cifar10-jpeg train (50,000 JPEG re-encodings)",
            "weights": f"{self.weight_images} images of a fixed seeded split",
            "arch": f"the other {self.arch_images} images of that split",
            "split": "seeded (the official cifar-split.txt indices do not apply to the JPEGs)",
            "image_size": self.image_size,
        }

    def _official_split(self, task: str) -> dict[str, Any]:
        sizes = self.official_sizes()
        subset = "" if sizes is None else " (a fixed-seed subset of {} images)"
        split = self.parts_split()
        if split == "all_train":
            parts = {
                "weights": "all training images (architecture batches too: single level)",
                "eval": "the test set (selection and rank correlation)",
            }
        elif split == "train_halves":
            parts = {
                "weights": "the first half of the training set" + subset,
                "arch": "its second half" + subset,
            }
        elif task == "cifar10":
            parts = {
                "weights": "the 25k train half of cifar-split.txt" + subset,
                "arch": "its 25k valid half" + subset,
            }
        else:
            held_out = "test" if task == "cifar100" else "val"
            parts = {
                "weights": "all training images" + subset,
                "arch": f"the x-valid half of the {held_out} set" + subset,
            }
        if sizes is not None and "arch" in parts:
            parts = {"weights": parts["weights"].format(sizes[0]),
                     "arch": parts["arch"].format(sizes[1])}  # fmt: skip
        return {"images": f"official {task}", "split": split, **parts}

    def perturbation_config(self, steps_per_epoch: int) -> PerturbationConfig:
        """DARTS-PT selection: tuning of ``perturbation_epochs`` epochs of ``steps_per_epoch``
        steps after each edge decision (one epoch fewer before the last), at a constant
        ``perturbation_lr`` (the method's own steps when ``perturbation_tune_arch``)."""
        return PerturbationConfig(
            criterion="acc",
            valid_batches=self.perturbation_valid_batches,
            fine_tune_steps=self.perturbation_epochs * steps_per_epoch,
            last_tune_steps=max(self.perturbation_epochs - 1, 0) * steps_per_epoch,
            fine_tune_lr=self.perturbation_lr,
            momentum=self.momentum,
            weight_decay=self.perturbation_weight_decay,
            grad_clip=self.grad_clip,
            tune_arch=self.perturbation_tune_arch,
            fresh_batches=self.perturbation_batches == "loader",
        )

    def topk_config(self) -> TopKConfig:
        return TopKConfig(
            k=self.topk,
            valid_batches=self.topk_valid_batches,
            train_mode=self.topk_train_mode,
            per_candidate=self.topk_batches == "per_candidate",
        )

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict of every knob; :meth:`from_dict` inverts it."""
        out = dataclasses.asdict(self)
        out["search_tasks"] = list(self.search_tasks)
        out["method_settings"] = {k: dict(v) for k, v in self.method_settings.items()}
        for name, default in _LATER_DEFAULTS.items():
            if out[name] == default:
                del out[name]
        return out

    @staticmethod
    def from_dict(data: Mapping[str, Any]) -> SupernetCard:
        reject_unknown_fields(SupernetCard, data, "supernet card")
        return SupernetCard(**{**data, "search_tasks": tuple(data.get("search_tasks", ()))})
