"""Image datasets, the benchmark's data splits, and augmentation on tensors."""

from harness.data.augment import (
    CROP_PADDING,
    NORMALIZATION,
    DeviceLoader,
    Normalization,
    augment,
    normalization_for,
    normalize,
    random_crop,
    random_flip,
    torch_generator,
)
from harness.data.datasets import (
    ImageDataset,
    read_cifar,
    read_image_folder,
    read_imagenet16,
    synthetic_dataset,
)
from harness.data.splits import (
    SPLIT_SPECS,
    Split,
    SplitSpec,
    load_official_split,
    official_or_seeded_split,
    read_split_config,
    seeded_split,
)

__all__ = [
    "CROP_PADDING",
    "NORMALIZATION",
    "SPLIT_SPECS",
    "DeviceLoader",
    "ImageDataset",
    "Normalization",
    "Split",
    "SplitSpec",
    "augment",
    "load_official_split",
    "normalization_for",
    "normalize",
    "official_or_seeded_split",
    "random_crop",
    "random_flip",
    "read_cifar",
    "read_image_folder",
    "read_imagenet16",
    "read_split_config",
    "seeded_split",
    "synthetic_dataset",
    "torch_generator",
]
