"""Image datasets (official formats under a data root), the benchmark's data splits (shipped in
the package), the images of a search or training run under the benchmark's protocols, and
augmentation on tensors."""

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
from harness.data.parts import (
    SEARCH_SOURCES,
    TRAIN_SOURCES,
    SearchParts,
    TrainingParts,
    search_parts,
    training_parts,
)
from harness.data.root import (
    DATA_ROOT_ENV,
    OFFICIAL_FILES,
    DataRoot,
    check_official,
    data_root,
    read_official,
)
from harness.data.shipped import shipped_split
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
    "DATA_ROOT_ENV",
    "NORMALIZATION",
    "OFFICIAL_FILES",
    "SEARCH_SOURCES",
    "SPLIT_SPECS",
    "TRAIN_SOURCES",
    "DataRoot",
    "DeviceLoader",
    "ImageDataset",
    "Normalization",
    "SearchParts",
    "Split",
    "SplitSpec",
    "TrainingParts",
    "augment",
    "check_official",
    "data_root",
    "load_official_split",
    "normalization_for",
    "normalize",
    "official_or_seeded_split",
    "random_crop",
    "random_flip",
    "read_cifar",
    "read_image_folder",
    "read_imagenet16",
    "read_official",
    "read_split_config",
    "search_parts",
    "seeded_split",
    "shipped_split",
    "synthetic_dataset",
    "torch_generator",
    "training_parts",
]
