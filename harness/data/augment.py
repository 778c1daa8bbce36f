"""Batched augmentation on tensors and a loader that keeps the whole dataset on the device.

The benchmark's training augmentation is a random crop after zero padding (4 pixels for CIFAR,
2 for ImageNet16-120) and a random horizontal flip, then per-channel normalisation. Here all of
it runs on whole uint8 batches on the device; randomness comes only from a ``torch.Generator``
passed in, drawn on that generator's device and moved, so a CPU generator gives the same crops
and flips whichever device holds the data.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from harness.errors import ConfigError, unknown

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Normalization:
    """Per-channel mean and standard deviation, in [0, 1] units (pixel / 255)."""

    mean: tuple[float, float, float]
    std: tuple[float, float, float]


def _over255(values: Sequence[float]) -> tuple[float, float, float]:
    a, b, c = (v / 255 for v in values)
    return (a, b, c)


#: The benchmark's normalisation constants per dataset.
NORMALIZATION: dict[str, Normalization] = {
    "cifar10": Normalization(_over255((125.3, 123.0, 113.9)), _over255((63.0, 62.1, 66.7))),
    "cifar100": Normalization(_over255((129.3, 124.1, 112.4)), _over255((68.2, 65.4, 70.4))),
    "ImageNet16-120": Normalization(
        _over255((122.68, 116.66, 104.01)), _over255((63.22, 61.26, 65.09))
    ),
}
#: The benchmark's crop padding per dataset.
CROP_PADDING: dict[str, int] = {"cifar10": 4, "cifar100": 4, "ImageNet16-120": 2}


def normalization_for(dataset: str) -> Normalization:
    """Constants of ``dataset`` (``'cifar10'``, ``'cifar100'``, ``'ImageNet16-120'``)."""
    if dataset not in NORMALIZATION:
        raise ConfigError(unknown("dataset for normalisation", dataset, NORMALIZATION))
    return NORMALIZATION[dataset]


def torch_generator(
    rng: np.random.Generator, device: str | torch.device = "cpu"
) -> torch.Generator:
    """A ``torch.Generator`` on ``device`` seeded from ``rng`` (one draw from it)."""
    generator = torch.Generator(device=device)
    generator.manual_seed(int(rng.integers(0, 2**63 - 1)))
    return generator


def random_crop(x: torch.Tensor, padding: int, generator: torch.Generator) -> torch.Tensor:
    """Zero-pad by ``padding`` and crop back to the input size at a random offset per image.

    Args:
        x: (B, C, H, W), any dtype, any device.
        padding: pixels of zero padding on each side; 0 returns ``x``.
        generator: draws 2B offsets in ``0 .. 2*padding`` on its own device.

    Returns:
        (B, C, H, W) on ``x``'s device.
    """
    if padding <= 0:
        return x
    b, _, h, w = x.shape
    padded = torch.nn.functional.pad(x, (padding, padding, padding, padding))  # (B, C, H+2p, W+2p)
    offsets = torch.randint(
        0, 2 * padding + 1, (2, b), generator=generator, device=generator.device
    )
    offsets = offsets.to(x.device)  # (2, B)
    rows = offsets[0, :, None] + torch.arange(h, device=x.device)  # (B, H)
    cols = offsets[1, :, None] + torch.arange(w, device=x.device)  # (B, W)
    batch = torch.arange(b, device=x.device)[:, None, None]  # (B, 1, 1)
    crops = padded.permute(0, 2, 3, 1)[batch, rows[:, :, None], cols[:, None, :]]  # (B, H, W, C)
    return crops.permute(0, 3, 1, 2)  # (B, C, H, W)


def random_flip(x: torch.Tensor, generator: torch.Generator, p: float = 0.5) -> torch.Tensor:
    """Mirror each image left-right with probability ``p``; x (B, C, H, W) -> same shape."""
    draws = torch.rand(x.shape[0], generator=generator, device=generator.device)
    flip = (draws < p).to(x.device)[:, None, None, None]  # (B, 1, 1, 1)
    return torch.where(flip, x.flip(3), x)


def normalize(
    x: torch.Tensor, norm: Normalization, dtype: torch.dtype = torch.float32
) -> torch.Tensor:
    """uint8 (B, C, H, W) -> ``(x / 255 - mean) / std`` as ``dtype``, same shape and device."""
    pairs = list(zip(norm.mean, norm.std, strict=True))
    scale = torch.tensor([1 / (255 * s) for _, s in pairs], device=x.device, dtype=dtype)  # (C,)
    shift = torch.tensor([-m / s for m, s in pairs], device=x.device, dtype=dtype)  # (C,)
    return x.to(dtype) * scale[:, None, None] + shift[:, None, None]


def augment(
    x: torch.Tensor, padding: int, generator: torch.Generator, norm: Normalization
) -> torch.Tensor:
    """Training augmentation: crop, flip, normalise; uint8 (B, 3, H, W) -> float32 same shape."""
    return normalize(random_flip(random_crop(x, padding, generator), generator), norm)


class DeviceLoader:
    """Mini-batches from a dataset held whole on one device.

    Each iteration is one epoch over a fresh permutation drawn from ``generator`` (or in order
    when ``shuffle`` is False). Batches are augmented (if ``train``) and normalised on the device.

    Args:
        images: (N, 3, H, W) uint8; labels: (N,) int64. Copied to ``device`` once.
        batch_size: images per batch; the last, smaller batch is kept unless ``drop_last``.
        norm: normalisation constants; padding: crop padding when ``train``.
        generator: source of permutations and augmentation (needed if shuffling or training).
        train: apply crop and flip. shuffle: permute each epoch.
        channels_last: return batches in ``torch.channels_last`` memory format.
        dtype: float type of the returned images.
    """

    def __init__(
        self,
        images: torch.Tensor,
        labels: torch.Tensor,
        *,
        batch_size: int,
        norm: Normalization,
        device: str | torch.device = "cpu",
        generator: torch.Generator | None = None,
        train: bool = True,
        shuffle: bool = True,
        padding: int = 4,
        drop_last: bool = False,
        channels_last: bool = False,
        dtype: torch.dtype = torch.float32,
    ) -> None:
        if images.dtype != torch.uint8 or images.ndim != 4 or labels.shape != images.shape[:1]:
            raise ConfigError("images must be (N, 3, H, W) uint8 and labels (N,)")
        if batch_size < 1:
            raise ConfigError(f"batch_size must be >= 1; got {batch_size}")
        if generator is None and (train or shuffle):
            raise ConfigError("a torch.Generator is needed to shuffle or augment")
        self.images = images.to(device)  # (N, 3, H, W) uint8
        self.labels = labels.to(device=device, dtype=torch.int64)  # (N,)
        self.batch_size, self.norm, self.padding = batch_size, norm, padding
        self.generator, self.train, self.shuffle = generator, train, shuffle
        self.drop_last, self.channels_last, self.dtype = drop_last, channels_last, dtype

    def __len__(self) -> int:
        n = int(self.images.shape[0])
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        n, device = int(self.images.shape[0]), self.images.device
        if self.shuffle:
            assert self.generator is not None
            order = torch.randperm(n, generator=self.generator, device=self.generator.device)
            order = order.to(device)  # (N,)
        else:
            order = torch.arange(n, device=device)
        for batch in range(len(self)):
            index = order[batch * self.batch_size : (batch + 1) * self.batch_size]  # (B,)
            x = self.images[index]  # (B, 3, H, W) uint8
            if self.train:
                assert self.generator is not None
                x = random_flip(random_crop(x, self.padding, self.generator), self.generator)
            x = normalize(x, self.norm, self.dtype)  # (B, 3, H, W) float
            if self.channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            yield x, self.labels[index]
