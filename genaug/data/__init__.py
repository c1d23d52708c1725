"""Data layer: in-memory image datasets, few-shot splits and image tensor conversions."""

from __future__ import annotations

from genaug.data.batches import batch_indices
from genaug.data.convert import (
    convert_channels,
    resize_images,
    to_float_images,
    to_uint8_images,
)
from genaug.data.datasets import (
    ImageDataset,
    SkippedFileWarning,
    list_dataset_specs,
    load_dataset,
)
from genaug.data.splits import FewShotSplit, few_shot_split, train_test_split

__all__ = [
    "FewShotSplit",
    "ImageDataset",
    "SkippedFileWarning",
    "batch_indices",
    "convert_channels",
    "few_shot_split",
    "list_dataset_specs",
    "load_dataset",
    "resize_images",
    "to_float_images",
    "to_uint8_images",
    "train_test_split",
]
