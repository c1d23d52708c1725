"""Data layer: in-memory image datasets, few-shot splits and episodes, class groups (base and
new classes), Omniglot, and image tensor conversions."""

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
from genaug.data.episodes import Episode, episode_data, iter_episodes, sample_episode
from genaug.data.groups import (
    check_disjoint_classes,
    class_groups,
    load_omniglot,
    select_classes,
    select_groups,
    split_classes,
)
from genaug.data.omniglot import list_omniglot_alphabets
from genaug.data.splits import FewShotSplit, few_shot_split, train_test_split

__all__ = [
    "Episode",
    "FewShotSplit",
    "ImageDataset",
    "SkippedFileWarning",
    "batch_indices",
    "check_disjoint_classes",
    "class_groups",
    "convert_channels",
    "episode_data",
    "few_shot_split",
    "iter_episodes",
    "list_dataset_specs",
    "list_omniglot_alphabets",
    "load_dataset",
    "load_omniglot",
    "resize_images",
    "sample_episode",
    "select_classes",
    "select_groups",
    "split_classes",
    "to_float_images",
    "to_uint8_images",
    "train_test_split",
]
