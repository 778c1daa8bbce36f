"""Tiny CPU setups for tests and smoke runs of the supernet search: 8x8 synthetic images, the
topology-space supernet at C=4, N=1, the size-space supernet as the benchmark has it (width
64). Not for experiments."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import TYPE_CHECKING

import numpy as np
import torch

from harness.data.augment import DeviceLoader, Normalization, torch_generator
from harness.supernet.search import SearchConfig
from harness.supernet.tss import TssSuperNet

if TYPE_CHECKING:
    from torch import nn

NORM = Normalization((0.5, 0.5, 0.5), (0.25, 0.25, 0.25))


@contextlib.contextmanager
def one_torch_thread() -> Iterator[None]:
    """Run the block on one intra-op torch thread, then restore the previous count.

    Tiny networks run fastest that way (and do not oversubscribe CI cores).
    """
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def tiny_data(seed: int, n: int = 32, classes: int = 3) -> tuple[torch.Tensor, torch.Tensor]:
    """(n, 3, 8, 8) uint8 images whose mean brightness of one channel encodes the label."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, classes, n)
    images = rng.integers(0, 96, (n, 3, 8, 8))
    images[:, 0] += (labels * 70)[:, None, None]
    return torch.as_tensor(images, dtype=torch.uint8), torch.as_tensor(labels)


def tiny_loaders(seed: int, batch: int = 8) -> tuple[DeviceLoader, DeviceLoader]:
    """(train, valid) loaders over disjoint synthetic sets, generators seeded from ``seed``."""
    rng = np.random.default_rng(seed)
    loaders = []
    for part in (0, 1):
        x, y = tiny_data(1000 * seed + part)
        loaders.append(
            DeviceLoader(
                x, y, batch_size=batch, norm=NORM, generator=torch_generator(rng), padding=1
            )
        )
    return loaders[0], loaders[1]


def tiny_supernet(seed: int = 0, classes: int = 3, space: str = "tss") -> nn.Module:
    """A tss (C=4, N=1) or sss supernet with weights initialised from a seeded generator (no
    global RNG)."""
    net: nn.Module
    if space == "sss":
        from harness.supernet.sss import SssSuperNet

        net = SssSuperNet(num_classes=classes)
    else:
        net = TssSuperNet(num_classes=classes, C=4, N=1)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(0.3 * torch.randn(p.shape, generator=gen))
    return net


def tiny_config(**overrides: object) -> SearchConfig:
    """Two epochs of three steps at a large learning rate."""
    values: dict[str, object] = dict(epochs=2, max_steps_per_epoch=3, lr=0.05, grad_clip=5.0)
    values.update(overrides)
    return SearchConfig(**values)  # type: ignore[arg-type]
