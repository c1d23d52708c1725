"""Class groups: split a dataset's classes into base and new classes, by group.

Transfer augmentation trains a generator on *base* classes and applies it to *new* classes it has
never seen, so the two class sets must not overlap. A class group is what the classes are split
by: Omniglot's alphabet, or the top folder of a ``groupfolder:ROOT`` tree
(``ROOT/<group>/<class>/<image>``). Users with two separate folders load them as
``imagefolder:BASE`` and ``imagefolder:NEW`` and check them with :func:`check_disjoint_classes`.

The group of every class is stored in ``description["class_groups"]`` (one entry per class), so
it survives ``subset`` and is recorded in checkpoints; class names read ``"<group>/<class>"``.
:func:`load_omniglot` loads Omniglot, whose alphabets are its groups.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor

from genaug.data.datasets import ImageDataset, load_dataset
from genaug.data.groupfolder import match_groups
from genaug.errors import GenaugError

__all__ = [
    "check_disjoint_classes",
    "class_groups",
    "load_omniglot",
    "select_classes",
    "select_groups",
    "split_classes",
]


def _check_dataset(dataset: object, what: str) -> ImageDataset:
    if not isinstance(dataset, ImageDataset):
        raise GenaugError(
            f"{what} expects an ImageDataset, got {type(dataset).__name__}; "
            "load one with genaug.data.load_dataset."
        )
    return dataset


def class_groups(dataset: ImageDataset) -> list[str]:
    """The group of every class of ``dataset`` (Omniglot: its alphabet), one per class name.

    Read from ``description["class_groups"]``, else from class names of the form
    ``"<group>/<class>"``.

    Raises:
        GenaugError: when the dataset records no groups and its class names carry none.
    """
    _check_dataset(dataset, "class_groups")
    stored = dataset.description.get("class_groups")
    if isinstance(stored, list) and len(stored) == dataset.num_classes:
        return [str(g) for g in stored]
    if dataset.class_names and all("/" in n for n in dataset.class_names):
        return [n.split("/", 1)[0] for n in dataset.class_names]
    raise GenaugError(
        f"dataset {dataset.description.get('spec')!r} has no class groups; load one tree as "
        "groupfolder:ROOT (ROOT/<group>/<class>/<image>) or omniglot:PATH, or load base and "
        "new classes as two imagefolder:PATH datasets."
    )


def select_classes(
    dataset: ImageDataset,
    classes: Sequence[int],
    indices: Sequence[int] | np.ndarray | Tensor | None = None,
    **description: Any,
) -> ImageDataset:
    """The images of ``classes`` (dataset class ids), relabelled ``0..len(classes)-1`` in that
    order, with their class names and groups.

    Args:
        dataset: a labelled dataset.
        classes: the class ids to keep; label ``i`` of the result is ``classes[i]``.
        indices: dataset positions to keep (all of them must be of those classes); None keeps
            every image of those classes, in dataset order.
        description: extra entries for the result's description.
    """
    _check_dataset(dataset, "select_classes")
    ids = [int(c) for c in classes]
    if len(set(ids)) != len(ids) or any(not 0 <= c < dataset.num_classes for c in ids):
        raise GenaugError(
            f"classes must be distinct ids in [0, {dataset.num_classes - 1}], got {ids}; "
            "pass each class once."
        )
    lookup = torch.full((dataset.num_classes + 1,), -1, dtype=torch.int64)  # class id -> new id
    lookup[torch.as_tensor(ids, dtype=torch.int64)] = torch.arange(len(ids))
    if indices is None:
        idx = torch.nonzero(lookup[dataset.targets] >= 0).reshape(-1)  # (M,) positions
    else:
        idx = torch.as_tensor(np.asarray(indices), dtype=torch.int64).reshape(-1)
    new_targets = lookup[dataset.targets[idx]]  # (M,); -1 (hidden label) maps to lookup[-1]
    if bool((new_targets < 0).any()):
        raise GenaugError(
            "select_classes was given positions of images outside the selected classes "
            "(or with hidden labels); pass only positions of labelled images of those classes."
        )
    desc = dict(dataset.description)
    stored = desc.get("class_groups")
    if isinstance(stored, list) and len(stored) == dataset.num_classes:
        desc["class_groups"] = [stored[c] for c in ids]
    desc.update(description)
    names = [dataset.class_names[c] for c in ids]
    return ImageDataset(dataset.images[idx], new_targets, names, desc)


def select_groups(dataset: ImageDataset, groups: Sequence[str]) -> ImageDataset:
    """The classes of ``dataset`` whose group is one of ``groups`` (see :func:`match_groups`)."""
    per_class = class_groups(dataset)
    chosen = set(match_groups(groups, per_class))
    keep = [c for c, g in enumerate(per_class) if g in chosen]
    return select_classes(dataset, keep, groups=sorted(chosen))


def split_classes(
    dataset: ImageDataset,
    new_groups: Sequence[str],
    base_groups: Sequence[str] | None = None,
) -> tuple[ImageDataset, ImageDataset]:
    """Split ``dataset`` by class group into ``(base, new)``, each relabelled from 0.

    Args:
        dataset: a dataset with class groups (``omniglot:``, ``groupfolder:``; see
            :func:`class_groups`).
        new_groups: the groups whose classes are new (never seen by the generator).
        base_groups: the groups whose classes are base; None takes every other group.

    Raises:
        GenaugError: for an unknown group, an empty side, or a group on both sides.
    """
    per_class = class_groups(dataset)
    new = match_groups(new_groups, per_class)
    base = [g for g in dict.fromkeys(per_class) if g not in new]
    if base_groups is not None:
        base = match_groups(base_groups, per_class)
        both = [g for g in base if g in new]
        if both:
            raise GenaugError(
                f"base and new classes overlap: group(s) {', '.join(both)} are on both sides; "
                "name each group in only one of base_groups and new_groups."
            )
    if not base or not new:
        raise GenaugError(
            f"split_classes needs at least one base and one new group, got base {base} and new "
            f"{new}; leave base_groups=None to take every group not named as new."
        )
    parts = []
    for role, chosen in (("base", set(base)), ("new", set(new))):
        keep = [c for c, g in enumerate(per_class) if g in chosen]
        parts.append(select_classes(dataset, keep, classes_role=role, groups=sorted(chosen)))
    return parts[0], parts[1]


def check_disjoint_classes(
    base: ImageDataset | Sequence[str], new: ImageDataset | Sequence[str]
) -> None:
    """Refuse base and new class sets that share a class name (e.g. two ImageFolders, or a
    generator's training classes and the classes it is evaluated on).

    Raises:
        GenaugError: naming the shared classes.
    """
    names = [b.class_names if isinstance(b, ImageDataset) else list(b) for b in (base, new)]
    shared = sorted(set(map(str, names[0])) & set(map(str, names[1])))
    if shared:
        more = f" and {len(shared) - 5} more" if len(shared) > 5 else ""
        raise GenaugError(
            f"base and new classes overlap: {len(shared)} class(es) are on both sides "
            f"({', '.join(shared[:5])}{more}); take the new classes from other groups or folders."
        )


def load_omniglot(
    path: str | os.PathLike[str],
    image_size: int = 32,
    channels: int | None = None,
    alphabets: Sequence[str] | None = None,
) -> ImageDataset:
    """Load Omniglot as an :class:`ImageDataset` of ``image_size`` images, ink = 1.

    The same as ``load_dataset("omniglot:PATH[@A,B]", image_size, channels)``.

    Args:
        path: an Omniglot zip, a folder of Omniglot zips (Greek and Latin, in both minimal sets,
            are kept once), or an extracted Omniglot folder.
        image_size: output height and width (the 105 px drawings are resized, antialiased).
        channels: None or 1 for gray, 3 to repeat the gray channel.
        alphabets: the alphabets to keep (e.g. ``["Sanskrit", "Tagalog"]``); None keeps all.

    Raises:
        GenaugError: a missing path, a zip not in Omniglot's layout, or an unknown alphabet.
    """
    spec = f"omniglot:{os.fspath(path)}"
    if alphabets is not None:
        if isinstance(alphabets, str) or not alphabets:
            raise GenaugError(
                f"alphabets must be a non-empty list of names, got {alphabets!r}; "
                "pass e.g. alphabets=['Greek'] or None for all."
            )
        spec += "@" + ",".join(str(a) for a in alphabets)
    return load_dataset(spec, image_size=image_size, channels=channels)
