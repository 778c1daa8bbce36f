"""The benchmark's training recipes (AutoDL ``configs/nas-benchmark/hyper-opts/*.config``).

All four recipes are SGD with Nesterov momentum 0.9, learning rate 0.1, weight decay 5e-4 on
every parameter, batch 256, cross-entropy, no warm-up, and a cosine schedule to 0 over the
recipe's epochs. AutoDL's ``CosineAnnealingLR`` sets the rate once per epoch from the epoch
alone (``lr(e) = eta_min + (LR - eta_min) * (1 + cos(pi * e / epochs)) / 2``; its per-iteration
update only matters during warm-up), so the last epoch runs at a small positive rate, not 0.
The values are constants here (a test checks them against the official files), so a user
without the files has them.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.errors import ConfigError, unknown

__all__ = ["RECIPES", "Recipe", "get_recipe", "recipe_from_config"]


@dataclass(frozen=True)
class Recipe:
    """One training recipe. ``lr`` per step of SGD; ``epochs`` passes over the training set."""

    name: str
    epochs: int
    lr: float = 0.1
    eta_min: float = 0.0
    momentum: float = 0.9
    weight_decay: float = 5e-4
    nesterov: bool = True
    batch_size: int = 256
    warmup: int = 0
    scheduler: str = "cos"
    optim: str = "SGD"
    criterion: str = "Softmax"

    def __post_init__(self) -> None:
        if (self.scheduler, self.optim, self.criterion) != ("cos", "SGD", "Softmax"):
            raise ConfigError(
                f"recipe {self.name!r}: only cosine SGD with softmax cross-entropy is "
                f"implemented; got {self.scheduler}/{self.optim}/{self.criterion}"
            )
        if self.warmup != 0:
            raise ConfigError(
                f"recipe {self.name!r}: warm-up is not implemented (got {self.warmup})"
            )
        if self.epochs < 1 or self.batch_size < 1:
            raise ConfigError(f"recipe {self.name!r}: epochs and batch_size must be >= 1")

    def lr_at(self, epoch: int) -> float:
        """Learning rate of the 0-based ``epoch`` (constant within it)."""
        if epoch >= self.epochs:
            return self.eta_min
        return (
            self.eta_min
            + (self.lr - self.eta_min) * (1 + math.cos(math.pi * epoch / self.epochs)) / 2
        )

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


#: The benchmark's recipes by name (tss uses 12E and 200E; sss 01E, 12E and 90E).
RECIPES: dict[str, Recipe] = {
    name: Recipe(name, epochs)
    for name, epochs in (("01E", 1), ("12E", 12), ("90E", 90), ("200E", 200))
}


def get_recipe(name: str) -> Recipe:
    """The recipe ``name`` (``'01E'``, ``'12E'``, ``'90E'``, ``'200E'``)."""
    if name not in RECIPES:
        raise ConfigError(unknown("training recipe", name, RECIPES))
    return RECIPES[name]


#: Official config keys -> :class:`Recipe` fields.
_CONFIG_KEYS = {
    "epochs": "epochs", "LR": "lr", "eta_min": "eta_min", "momentum": "momentum",
    "decay": "weight_decay", "nesterov": "nesterov", "batch_size": "batch_size",
    "warmup": "warmup", "scheduler": "scheduler", "optim": "optim", "criterion": "criterion",
}  # fmt: skip


def recipe_from_config(path: str | Path) -> Recipe:
    """A recipe read from an official ``hyper-opts/<name>.config`` file (name = file stem)."""
    from harness.data.splits import read_split_config

    config = read_split_config(path)
    missing = sorted(set(_CONFIG_KEYS) - set(config))
    if missing:
        raise ConfigError(f"{path}: recipe keys missing: {missing}")
    values = {field: config[key] for key, field in _CONFIG_KEYS.items()}
    return Recipe(Path(path).stem, **values)
