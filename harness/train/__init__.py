"""Training discrete networks from scratch with the benchmark's recipes.

:mod:`~harness.train.recipe` holds the recipes (01E, 12E, 90E, 200E), :mod:`~harness.train.loop`
the resumable training run that records what the benchmark records per epoch.
"""

from harness.train.loop import TrainConfig, TrainResult, build_network, run_dir_name, train_network
from harness.train.recipe import RECIPES, Recipe, get_recipe, recipe_from_config

__all__ = [
    "RECIPES",
    "Recipe",
    "TrainConfig",
    "TrainResult",
    "build_network",
    "get_recipe",
    "recipe_from_config",
    "run_dir_name",
    "train_network",
]
