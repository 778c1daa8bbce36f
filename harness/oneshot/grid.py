"""What a supernet sweep runs: methods x tasks x seeds under one card, and on which images.

:func:`load_supernet_grid` validates names (supernet methods only, the card, its search tasks,
selection rules, the image source) and :func:`effective_card` applies the grid's image source
and step cap to the card, with a ``protocol`` label that says what changed (so a smoke run is
never mistaken for the published protocol). :func:`jpeg_archive` finds the shared CIFAR-10 JPEGs.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.bench.names import TASKS
from harness.errors import ConfigError, unknown
from harness.grid import canonical_json, parse_seeds, split_methods
from harness.oneshot.cell import SELECTIONS
from harness.paths import shared_data_dir
from harness.registry import method_kind, method_names
from harness.supernet.cards import SupernetCard, get_card

logger = logging.getLogger(__name__)

__all__ = [
    "DATA_MODES",
    "SYNTHETIC_IMAGES",
    "SupernetGrid",
    "effective_card",
    "jpeg_archive",
    "load_supernet_grid",
]

#: ``jpeg``: the CIFAR-10 JPEG copy (CIFAR-10 only); ``official``: the benchmark's own images
#: under the data root, on every task; ``synthetic``: a few generated images (smoke runs). A
#: task name (``cifar100``) is short for ``official`` images searched on that task.
DATA_MODES: tuple[str, ...] = ("jpeg", "official", "synthetic")
#: Images per part (weights / architecture) when a CIFAR-10 card runs on synthetic data.
SYNTHETIC_IMAGES = 256


@dataclass(frozen=True)
class SupernetGrid:
    """What to run: ``methods`` as (registered name, overrides JSON), one card by name, search
    tasks, seeds, selection rules, the image source (:data:`DATA_MODES`) and an optional cap
    on the steps per epoch (smoke runs)."""

    methods: tuple[tuple[str, str], ...]
    card: str
    tasks: tuple[str, ...]
    seeds: tuple[int, ...]
    selections: tuple[str, ...] = ("magnitude", "perturbation")
    data: str = "jpeg"
    max_steps: int | None = None

    def describe(self) -> dict[str, Any]:
        """A JSON-serialisable description (for the manifest)."""
        out = dataclasses.asdict(self)
        out["methods"] = [{"name": n, "overrides": json.loads(o)} for n, o in self.methods]
        return out


def _names(value: str | Sequence[Any] | None) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, str):
        return [v.strip() for v in value.split(",") if v.strip()]
    return list(value)


def _method_entry(entry: Any) -> tuple[str, str]:
    name, overrides = entry, {}
    if isinstance(entry, Mapping):
        if "name" not in entry:
            raise ConfigError(f"a method table needs a 'name', got {dict(entry)}")
        name, overrides = entry["name"], {k: v for k, v in entry.items() if k != "name"}
    try:
        kind = method_kind(str(name))
    except ConfigError:
        raise ConfigError(unknown("supernet method", name, method_names("supernet"))) from None
    if kind != "supernet":
        raise ConfigError(f"{name} is a black-box method: run it with `harness run`")
    return str(name), canonical_json(dict(overrides))


def load_supernet_grid(
    methods: str | Sequence[Any],
    card: str,
    seeds: str | int | Sequence[int],
    tasks: str | Sequence[str] | None = None,
    selections: str | Sequence[str] = ("magnitude", "perturbation"),
    data: str = "jpeg",
    max_steps: int | None = None,
) -> SupernetGrid:
    """A validated grid. Strings are comma-separated lists; a method may be a mapping
    ``{"name": ..., **overrides}`` or, in a string, ``name(key=value, ...)``; ``tasks``
    default to the card's search tasks."""
    listed = split_methods(methods) if isinstance(methods, str) else list(methods)
    entries = [_method_entry(m) for m in listed]
    if not entries:
        raise ConfigError(
            "no methods given; supernet methods: " + ", ".join(method_names("supernet"))
        )
    if len(set(entries)) < len(entries):
        raise ConfigError("a method is listed twice with the same hyperparameters")
    the_card = get_card(card)
    task_list = _names(tasks)
    if data in TASKS:  # --data cifar100: the official images of that task
        if task_list and set(task_list) != {data}:
            raise ConfigError(f"--data {data} searches {data}; the tasks say {task_list}")
        task_list, data = [data], "official"
    task_list = task_list or list(the_card.search_tasks)
    for task in task_list:
        the_card.check_task(task)
    rules = _names(selections)
    for rule in rules or [""]:
        if rule not in SELECTIONS:
            raise ConfigError(unknown("selection rule", rule, SELECTIONS))
    if data not in DATA_MODES:
        raise ConfigError(unknown("data source", data, (*DATA_MODES, *TASKS)))
    if max_steps is not None and (isinstance(max_steps, bool) or int(max_steps) < 1):
        raise ConfigError(f"max_steps must be an int >= 1, got {max_steps!r}")
    return SupernetGrid(
        tuple(entries), the_card.key, tuple(dict.fromkeys(task_list)), parse_seeds(seeds),
        tuple(dict.fromkeys(rules)), data, None if max_steps is None else int(max_steps),
    )  # fmt: skip


def effective_card(grid: SupernetGrid) -> tuple[SupernetCard, str]:
    """The card the cells run under (the grid's data source and step cap applied) and its
    label for the ``protocol`` column: the card key, plus ``[...]`` naming what changed."""
    card = get_card(grid.card)
    changes: dict[str, Any] = {}
    notes: list[str] = []
    if grid.data == "synthetic" and card.data != "synthetic":
        changes.update(data="synthetic", weight_images=min(card.weight_images, SYNTHETIC_IMAGES),
                       arch_images=min(card.arch_images, SYNTHETIC_IMAGES))  # fmt: skip
        notes.append("synthetic images")
    elif grid.data == "jpeg" and card.data != "cifar10-jpeg":
        changes.update(data="cifar10-jpeg", image_size=32)
        notes.append("CIFAR-10 JPEG")
    elif grid.data == "official" and card.data != "official":
        changes.update(data="official", image_size=32)
        notes.append("official images")
    if grid.max_steps is not None and grid.max_steps != card.max_steps_per_epoch:
        changes["max_steps_per_epoch"] = grid.max_steps
        notes.append(f"max-steps {grid.max_steps}")
    label = card.key + (f"[{', '.join(notes)}]" if notes else "")
    return (dataclasses.replace(card, **changes) if changes else card), label


def jpeg_archive() -> Path:
    """The shared CIFAR-10 JPEG archive; ConfigError saying where it was looked for."""
    root = shared_data_dir()
    where = "cifar10-jpg/cifar10_jpg.tar.gz in the shared data (HARNESS_SHARED_DATA)"
    path = None if root is None else root / "cifar10-jpg" / "cifar10_jpg.tar.gz"
    if path is None or not path.is_file():
        raise ConfigError(
            f"CIFAR-10 JPEG archive not found ({path or where}); use --data synthetic to smoke-test"
        )
    return path
