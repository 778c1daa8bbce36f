"""The training recipes: equal to the official config files, and AutoDL's per-epoch cosine."""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path
from types import ModuleType

import pytest
import torch

from harness.errors import ConfigError
from harness.train.recipe import RECIPES, Recipe, get_recipe, recipe_from_config


@pytest.mark.parametrize("name", ["01E", "12E", "90E", "200E"])
def test_shipped_recipes_equal_the_official_configs(shared_data: Path, name: str) -> None:
    official = recipe_from_config(shared_data / "nats-splits" / "hyper-opts" / f"{name}.config")
    assert official == get_recipe(name)
    assert (official.lr, official.momentum, official.weight_decay) == (0.1, 0.9, 5e-4)
    assert official.nesterov and official.batch_size == 256 and official.eta_min == 0.0


def test_the_cosine_depends_on_the_epoch_only_and_ends_above_zero() -> None:
    recipe = get_recipe("12E")
    assert recipe.lr_at(0) == pytest.approx(0.1)
    assert recipe.lr_at(6) == pytest.approx(0.05)
    assert recipe.lr_at(11) == pytest.approx(0.05 * (1 + math.cos(math.pi * 11 / 12)))
    assert 0 < recipe.lr_at(11) < 0.002 and recipe.lr_at(12) == 0.0
    assert get_recipe("01E").lr_at(0) == pytest.approx(0.1)  # one epoch at the full rate


def _autodl_optimizers(xautodl: object) -> ModuleType:
    """xautodl's ``procedures/optimizers.py`` on its own (its package imports torchvision)."""
    path = Path(str(xautodl.__file__)).parent / "procedures" / "optimizers.py"  # type: ignore[attr-defined]
    spec = importlib.util.spec_from_file_location("autodl_optimizers", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_cosine_equals_autodl_scheduler(xautodl: object) -> None:
    CosineAnnealingLR = _autodl_optimizers(xautodl).CosineAnnealingLR

    recipe = get_recipe("12E")
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=recipe.lr)
    scheduler = CosineAnnealingLR(optimizer, recipe.warmup, recipe.epochs, recipe.epochs, 0.0)
    for epoch in range(recipe.epochs):
        for fraction in (0.0, 0.5, 0.99):  # evaluate_for_seed updates per iteration as well
            scheduler.update(epoch, fraction)
            assert optimizer.param_groups[0]["lr"] == pytest.approx(recipe.lr_at(epoch), abs=1e-15)


def test_unknown_and_unsupported_recipes_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="did you mean '12E'"):
        get_recipe("12e")
    with pytest.raises(ConfigError, match="warm-up"):
        Recipe("x", 5, warmup=1)
    with pytest.raises(ConfigError, match="cosine SGD"):
        Recipe("x", 5, scheduler="multistep")
    (tmp_path / "bad.config").write_text('{"epochs": ["int", "3"]}')
    with pytest.raises(ConfigError, match="recipe keys missing"):
        recipe_from_config(tmp_path / "bad.config")
    assert set(RECIPES) == {"01E", "12E", "90E", "200E"}
