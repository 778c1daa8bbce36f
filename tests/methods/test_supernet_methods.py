"""Every registered supernet method passes check_method; the one registry serves both kinds."""

from __future__ import annotations

import pickle
import subprocess
import sys
from dataclasses import dataclass
from typing import Any, ClassVar

import pytest
import torch

from harness.checks import check_method, check_supernet_method
from harness.errors import ConfigError
from harness.registry import get_method, make_method, method_kind, method_names
from harness.spaces import Space
from harness.supernet.search import Batch, StepContext, SupernetMethod

pytestmark = pytest.mark.usefixtures("one_torch_thread")


SUPERNET = (
    "darts_v1", "darts_v2", "dnal", "drnas", "fbnet_v2", "fixed_alpha", "gaea", "gdas", "rarts",
    "tas", "tunas",
)  # fmt: skip


def test_supernet_methods_are_registered_by_kind() -> None:
    assert method_names("supernet") == SUPERNET
    assert set(method_names("blackbox")) >= {"random_search", "rea", "reinforce", "alpha_nas"}
    assert set(method_names()) == set(method_names("blackbox")) | set(SUPERNET)
    assert method_kind("darts_v2") == "supernet" and method_kind("rea") == "blackbox"
    with pytest.raises(ConfigError, match="method kind"):
        method_names("oneshot")


@pytest.mark.parametrize("name", method_names("supernet"))
def test_registered_supernet_method_passes_check(name: str) -> None:
    cls = get_method(name)
    assert cls.name == name
    check_method(cls)


def test_darts_variants_differ_only_in_order_and_pickle() -> None:
    v1, v2 = get_method("darts_v1", "supernet"), get_method("darts_v2", "supernet")
    assert v1.Config().order == 1 and v2.Config().order == 2
    method = make_method("darts_v2", arch_lr=1e-3)
    assert method.config.order == 2 and method.config.arch_lr == 1e-3
    again = pickle.loads(pickle.dumps(method))
    assert type(again) is v2 and again.config == method.config


def test_unknown_names_suggest_over_all_kinds() -> None:
    with pytest.raises(ConfigError, match=r"did you mean 'darts_v1'.*random_search"):
        get_method("darts-v1")
    with pytest.raises(ConfigError, match="did you mean 'rea'"):
        method_kind("reaa")
    with pytest.raises(ConfigError, match="is a supernet method, not blackbox"):
        get_method("gdas", "blackbox")
    with pytest.raises(ConfigError, match="hyperparameter of gaea"):
        make_method("gaea", order=2)


def test_importing_methods_does_not_import_torch() -> None:
    code = (
        "import sys, methods\n"
        "from harness.registry import method_names, method_kind\n"
        "assert 'darts_v1' in method_names() and method_kind('gaea') == 'supernet'\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


# --------------------------------------------------------------------------- broken methods
@dataclass(frozen=True)
class _Cfg:
    scale: float = 1.0


class _Base(SupernetMethod):
    name: ClassVar[str] = "broken-base"
    Config: ClassVar[type] = _Cfg

    def init_arch_state(self, space: Space, generator: torch.Generator) -> dict:
        return {"alpha": torch.randn(space.shape, generator=generator).requires_grad_(True)}

    def edge_weights(
        self, state: dict[str, torch.Tensor], *, training: bool, generator: torch.Generator
    ) -> torch.Tensor:
        return torch.softmax(state["alpha"], dim=-1)

    def arch_step(self, ctx: StepContext, train_batch: Batch, arch_batch: Batch) -> None:
        alpha = ctx.arch_state["alpha"]
        grad = ctx.grad(
            ctx.loss(
                arch_batch,
                self.edge_weights(ctx.arch_state, training=True, generator=ctx.generator),
            ),
            [alpha],
        )
        with torch.no_grad():
            alpha -= 0.1 * grad[0]


class _GlobalRng(_Base):
    def init_arch_state(self, space: Space, generator: torch.Generator) -> dict:
        return {"alpha": torch.randn(space.shape).requires_grad_(True)}


class _Constant(_Base):
    def init_arch_state(self, space: Space, generator: torch.Generator) -> dict:
        return {"alpha": torch.zeros(space.shape).requires_grad_(True)}

    def arch_step(self, ctx: StepContext, train_batch: Batch, arch_batch: Batch) -> None:
        return None


class _BusyInit(_Base):
    def __init__(self, config: Any = None) -> None:
        super().__init__(config)
        self.cache: dict = {}


class _Crashes(_Base):
    def arch_step(self, ctx: StepContext, train_batch: Batch, arch_batch: Batch) -> None:
        raise RuntimeError("boom")


@pytest.mark.parametrize(
    ("cls", "match"),
    [
        (_GlobalRng, "global random state changed"),
        (_Constant, "different seed gave the same"),
        (_BusyInit, "only store the config"),
        (_Crashes, "raised RuntimeError: boom"),
    ],
)
def test_check_catches_broken_supernet_methods(cls: type, match: str) -> None:
    with pytest.raises(AssertionError, match=match):
        check_supernet_method(cls)


def test_check_passes_a_sound_method_and_rejects_tables() -> None:
    check_supernet_method(_Base, epochs=1, steps=1)
    with pytest.raises(ConfigError, match="pass no table"):
        check_method(_Base, object())
