"""Readers for classes that come in groups: the ``PATH[@GROUP,...]`` spec form, group-name
matching, and the ``groupfolder:ROOT`` tree (``ROOT/<group>/<class>/<image>``).

``groupfolder:ROOT`` is one tree holding base and new classes side by side, one top folder per
group (e.g. ``ROOT/last_year/<class>/...`` and ``ROOT/new/<class>/...``); classes are named
``"<group>/<class>"`` and split by group with :func:`genaug.data.split_classes`. Users with two
separate ImageFolders load them as ``imagefolder:BASE`` and ``imagefolder:NEW`` instead.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch import Tensor

from genaug.data.convert import pil_to_square_array
from genaug.errors import GenaugError

__all__ = ["match_groups", "parse_group_spec", "read_group_folder"]


def match_groups(wanted: Sequence[str], known: Sequence[str], what: str = "group") -> list[str]:
    """Resolve user-written group names against ``known`` ones (exact, then case-insensitive,
    then a unique case-insensitive prefix), keeping the order of ``known``.

    Raises:
        GenaugError: for a name that matches no known group, or several.
    """
    known = list(dict.fromkeys(known))
    found: list[str] = []
    for name in wanted:
        name = str(name).strip()
        hits = [k for k in known if k == name] or [k for k in known if k.lower() == name.lower()]
        if not hits and name:
            hits = [k for k in known if k.lower().startswith(name.lower())]
        if len(hits) != 1:
            why = "matches several" if hits else "is not one"
            raise GenaugError(
                f"{what} {name!r} {why} of the known {what}s; use one of "
                f"{', '.join(hits or known)}."
            )
        found.append(hits[0])
    return [k for k in known if k in set(found)]


def parse_group_spec(spec: str) -> tuple[str, list[str] | None]:
    """Split ``NAME:PATH[@GROUP,GROUP...]`` into the path and the group names (None: all).

    An ``@`` that is part of an existing path is kept in the path.
    """
    name, _, arg = spec.strip().partition(":")
    path, groups = arg.strip(), None
    if "@" in path and not os.path.exists(os.path.expanduser(path)):
        path, _, tail = path.rpartition("@")
        groups = [g.strip() for g in tail.split(",") if g.strip()]
        if not groups:
            raise GenaugError(
                f"no group named after '@' in {spec.strip()!r}; write PATH@NAME[,NAME...] or "
                "drop the '@'."
            )
    if not path.strip():
        what = "ZIP_OR_DIR" if name.strip().lower() == "omniglot" else "ROOT"
        raise GenaugError(
            f"dataset spec {spec.strip()!r} is missing its path; write it as {name}:{what}."
        )
    return path.strip(), groups


def _read(path: str, size: int) -> np.ndarray | str:
    """One image file as a square array, or why it could not be read."""
    try:
        with Image.open(path) as img:
            return pil_to_square_array(img, size)
    except Exception as exc:  # any decoder failure is reported with the file's name
        return f"{type(exc).__name__}: {exc}"


def read_group_folder(
    root: str, groups: Sequence[str] | None, size: int
) -> tuple[Tensor, Tensor, list[str], dict[str, Any]]:
    """Read ``ROOT/<group>/<class>/**/<image>`` as classes named ``"<group>/<class>"``, only
    the ``groups`` named (see :func:`match_groups`) unless None.

    Returns ``(images (N, C, size, size) uint8, targets (N,), class names, description extras)``
    as ``load_dataset``'s readers do; images keep their polarity.
    """
    from torchvision.datasets.folder import IMG_EXTENSIONS

    root = os.path.expanduser(root)
    fix = "point groupfolder:ROOT at a folder laid out as ROOT/<group>/<class>/<image>"
    if not os.path.isdir(root):
        raise GenaugError(f"group folder {root} is not an existing folder; {fix}.")

    def subdirs(path: str) -> list[str]:
        return sorted(e.name for e in os.scandir(path) if e.is_dir() and e.name[:1] != ".")

    known = subdirs(root)
    chosen = known if groups is None else match_groups(groups, known)
    names, per_class, files, labels = [], [], [], []
    for group in chosen:
        for cls in subdirs(os.path.join(root, group)):
            names.append(f"{group}/{cls}")
            per_class.append(group)
            for dirpath, dirnames, filenames in os.walk(os.path.join(root, group, cls)):
                dirnames[:] = sorted(d for d in dirnames if d[:1] != ".")
                for fname in sorted(filenames):
                    if fname.lower().endswith(IMG_EXTENSIONS) and fname[:1] != ".":
                        files.append(os.path.join(dirpath, fname))
                        labels.append(len(names) - 1)
    if not files:
        raise GenaugError(f"group folder {root} holds no images two levels down; {fix}.")
    with ThreadPoolExecutor(max_workers=min(4, os.cpu_count() or 1)) as pool:
        arrays = list(pool.map(lambda p: _read(p, size), files))
    bad = [(f, a) for f, a in zip(files, arrays, strict=True) if isinstance(a, str)]
    if bad:
        raise GenaugError(
            f"{bad[0][0]} could not be read as an image ({bad[0][1]}); remove or replace it."
        )
    counts = np.bincount(np.asarray(labels), minlength=len(names))
    if (counts == 0).any():
        empty = names[int(np.flatnonzero(counts == 0)[0])]
        raise GenaugError(
            f"class folder {empty} under {root} has no images; add some or remove it."
        )
    chans = 3 if any(a.ndim == 3 for a in arrays) else 1
    out = np.empty((len(arrays), chans, size, size), dtype=np.uint8)  # (N, C, S, S)
    for i, arr in enumerate(arrays):
        out[i] = arr.transpose(2, 0, 1) if arr.ndim == 3 else arr[None]  # gray broadcasts to RGB
    extra = {"source": "groupfolder", "root": os.path.abspath(root), "class_groups": per_class}
    return torch.from_numpy(out), torch.as_tensor(labels, dtype=torch.int64), names, extra
