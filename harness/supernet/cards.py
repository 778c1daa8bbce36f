"""The supernet protocol cards: the published settings (NAS-Bench-201, NATS-Bench, DARTS-PT,
DrNAS, GAEA), reduced CPU protocols and smoke-test cards, looked up by name or ``name@version``.

A card's version goes up whenever a knob changes what its runs compute (run keys carry
``name@version``); :class:`~harness.supernet.card.SupernetCard` defines the knobs.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from types import MappingProxyType

from harness.bench import names
from harness.errors import lookup_versioned
from harness.supernet.card import SupernetCard

logger = logging.getLogger(__name__)

__all__ = ["SUPERNET_CARDS", "SupernetCard", "card_names", "get_card"]

SUPERNET_CARDS: Mapping[str, SupernetCard] = MappingProxyType(
    {
        # Version 4 of the published cards follows their code where version 3 did not: the
        # cosine steps once per epoch; NB201's DARTS-V2 takes the architecture step first;
        # NATS's head BN takes the cell flags and its top-K scores each candidate on its own
        # batch in eval mode; DARTS-PT scores candidates on shuffled, augmented batches.
        "nb201-darts": SupernetCard(
            name="nb201-darts",
            version=4,
            description="NAS-Bench-201 paper DARTS search: 50 epochs on the CIFAR-10 25k/25k "
            "split, clip 5, BN running statistics, cosine per epoch, DARTS-V2 alpha step "
            "first; reported on all three tasks",
            epochs=50,
            lr_schedule="epoch",
            grad_clip=5.0,
            track_running_stats=True,
            transfer=True,
            method_settings={"darts_v2": {"weights_first": False}},
        ),
        "nb201-gdas": SupernetCard(
            name="nb201-gdas",
            version=1,
            description="NAS-Bench-201 paper GDAS search: nb201-darts with 250 epochs "
            "(GDAS.config); reported on all three tasks",
            epochs=250,
            lr_schedule="epoch",
            grad_clip=5.0,
            track_running_stats=True,
            transfer=True,
        ),
        "nats-ws": SupernetCard(
            name="nats-ws",
            version=4,
            description="NATS-Bench weight-sharing search: 100 epochs, no clipping, BN batch "
            "statistics in the cells and the head, cosine per epoch; top-K on one batch per "
            "candidate in eval mode; searched and reported per task",
            epochs=100,
            lr_schedule="epoch",
            grad_clip=None,
            track_running_stats=False,
            head_like_cells=True,
            search_tasks=names.TASKS,
            topk_valid_batches=1,
            topk_batches="per_candidate",
            topk_train_mode=False,
        ),
        # darts-pt@5 and drnas-nb201@2: the two halves of the task's training set on official
        # images (DARTS code, train_portion 0.5), not AutoDL's search split.
        "darts-pt": SupernetCard(
            name="darts-pt",
            version=5,
            description="DARTS-PT NB201 supernet: 100 epochs, wd 3e-4, clip 5, alpha step "
            "first, BN running statistics, cosine per epoch, the two halves of the training "
            "set; perturbation selection with 5 tuning epochs per edge at a constant lr "
            "0.0025, each candidate scored on a shuffled, augmented pass over the validation "
            "split",
            search_split="train_halves",
            epochs=100,
            lr_schedule="epoch",
            weight_decay=3e-4,
            nesterov=False,
            grad_clip=5.0,
            step_order="arch_first",
            track_running_stats=True,
            perturbation_batches="loader",
        ),
        "drnas-nb201": SupernetCard(
            name="drnas-nb201",
            version=2,
            description="DrNAS NB201 search: 100 epochs, wd 3e-4, no Nesterov, clip 5, alpha "
            "step first, BN running statistics, a 50/50 split of the training set, Adam wd "
            "1e-3, cosine per epoch; searched and reported per task",
            epochs=100,
            lr_schedule="epoch",
            weight_decay=3e-4,
            nesterov=False,
            grad_clip=5.0,
            step_order="arch_first",
            track_running_stats=True,
            search_split="train_halves",
            search_tasks=names.TASKS,
        ),
        "gaea-nb201": SupernetCard(
            name="gaea-nb201",
            version=1,
            description="GAEA NB201 reference settings: C=24, 25 epochs of a 50-epoch cosine "
            "(per epoch), wd 3e-4, no Nesterov, clip 5, single-level ERM on the whole training "
            "set (weights and theta; selection on the test images); searched per task",
            epochs=25,
            schedule_epochs=50,
            lr_schedule="epoch",
            weight_decay=3e-4,
            nesterov=False,
            grad_clip=5.0,
            C=24,
            train_on="all",
            search_tasks=names.TASKS,
        ),
        "cpu-cifar10": SupernetCard(
            name="cpu-cifar10",
            version=2,
            description="Reduced protocol for a CPU (not a published setting): C=8, N=1, "
            "5 epochs on 3,200 / 3,200 CIFAR-10 JPEGs, clip 5, BN running statistics, alpha "
            "step first; perturbation with 1 tuning epoch per edge on 2 validation batches",
            epochs=5,
            grad_clip=5.0,
            step_order="arch_first",
            C=8,
            N=1,
            track_running_stats=True,
            weight_images=3_200,
            arch_images=3_200,
            perturbation_epochs=1,
            perturbation_valid_batches=2,
            rank_sample=50,
            rank_valid_batches=1,
            topk_valid_batches=1,
        ),
        "tiny-cpu": SupernetCard(
            name="tiny-cpu",
            version=4,
            description="CPU smoke test: C=4, N=1, 8x8 synthetic images (or 48 + 48 official "
            "images of any task), 2 epochs of 3 steps",
            search_tasks=names.TASKS,
            epochs=2,
            batch_size=8,
            lr=0.05,
            max_steps_per_epoch=3,
            C=4,
            N=1,
            data="synthetic",
            weight_images=48,
            arch_images=48,
            image_size=8,
            synthetic_classes=4,
            eval_batch_size=16,
            perturbation_epochs=1,
            perturbation_valid_batches=2,
            topk=6,
            topk_valid_batches=2,
            rank_sample=12,
            rank_bins=4,
            rank_valid_batches=2,
        ),
        "nats-ws-sss": SupernetCard(
            name="nats-ws-sss",
            version=1,
            description="NATS-Bench size-space weight sharing (TAS, FBNet-V2, TuNAS): supernet "
            "at width 64, masks at module outputs, BN batch statistics in the cells; 100 "
            "epochs, no clipping, cosine per epoch, Adam 3e-4 with wd 1e-3 (TuNAS 0); searched "
            "and reported per task at hp 90",
            space="sss",
            epochs=100,
            grad_clip=None,
            track_running_stats=False,
            search_tasks=names.TASKS,
            report_hp="90",
            lr_schedule="epoch",
            method_settings={"tunas": {"arch_weight_decay": 0.0}},
        ),
        "cpu-cifar10-sss": SupernetCard(
            name="cpu-cifar10-sss",
            version=1,
            description="Reduced size-space protocol for a CPU (not a published setting): the "
            "NATS-Bench sss supernet and optimisers, 10 epochs on 1,280 / 1,280 CIFAR-10 "
            "JPEGs; DNAL's last 3 epochs are its architecture stage; perturbation with 1 "
            "tuning epoch per layer on 2 validation batches",
            space="sss",
            epochs=10,
            grad_clip=None,
            track_running_stats=False,
            weight_images=1_280,
            arch_images=1_280,
            report_hp="90",
            perturbation_epochs=1,
            perturbation_valid_batches=2,
            rank_sample=50,
            rank_valid_batches=1,
            topk_valid_batches=1,
            method_settings={
                "tunas": {"arch_weight_decay": 0.0},
                "dnal": {"arch_epochs": 3},
            },
        ),
        "tiny-cpu-sss": SupernetCard(
            name="tiny-cpu-sss",
            version=1,
            description="CPU smoke test of the size space: 8x8 synthetic images, 2 epochs of 3 "
            "steps (DNAL: 1 weight and 1 architecture epoch)",
            space="sss",
            epochs=2,
            batch_size=8,
            lr=0.05,
            max_steps_per_epoch=3,
            grad_clip=None,
            data="synthetic",
            weight_images=48,
            arch_images=48,
            image_size=8,
            synthetic_classes=4,
            eval_batch_size=16,
            report_hp="90",
            perturbation_epochs=1,
            perturbation_valid_batches=2,
            topk=6,
            topk_valid_batches=2,
            rank_sample=12,
            rank_bins=4,
            rank_valid_batches=2,
            method_settings={
                "tunas": {"arch_weight_decay": 0.0},
                "dnal": {"arch_epochs": 1},
            },
        ),
    }
)


def card_names() -> tuple[str, ...]:
    return tuple(SUPERNET_CARDS)


def get_card(name: str) -> SupernetCard:
    """The card called ``name`` or keyed ``name@version``."""
    return lookup_versioned(SUPERNET_CARDS, name, "supernet card")
