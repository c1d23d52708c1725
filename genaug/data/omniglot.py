"""Omniglot, read straight from its zips (or an extracted copy): characters are classes,
alphabets are their class groups. Load it with ``load_dataset("omniglot:PATH[@ALPHABET,...]")``
or :func:`genaug.data.load_omniglot`; this module is the reader behind both.

Layout: ``<top>/<Alphabet>/<character>/<id>_<drawer>.png`` (105x105 binary PNGs, black strokes
on white), as in ``images_background_small1.zip``; an extracted folder may drop ``<top>``.
A folder holding several Omniglot zips reads all of them; a character found in two of them
(Greek and Latin are in both "minimal" sets, byte for byte) is kept once, from the first zip in
name order. Classes are named ``"<Alphabet>/<character>"`` and sorted, whatever the zip order.

Polarity: strokes are stored **bright on dark (ink = 1, background = 0)**, inverted from the
files, as MNIST is. The strokes cover about a tenth of the image, so this makes the signal the
sparse non-zero part: zero padding of convolutions and the zero fill of classic affine / rotate /
RandAugment transforms then add background, not ink, and generators model a mostly-zero image.
"""

from __future__ import annotations

import contextlib
import io
import os
import zipfile
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch import Tensor

from genaug.data.convert import pil_to_square_array
from genaug.data.groupfolder import match_groups
from genaug.errors import GenaugError

__all__ = ["NATIVE_SIZE", "list_omniglot_alphabets", "read_omniglot"]

NATIVE_SIZE = 105  # Omniglot's drawings are 105x105 pixels
_LAYOUT = (
    "<top>/<Alphabet>/<character>/<id>_<drawer>.png entries, as in images_background_small1.zip"
)
_Index = dict[tuple[str, str], list[str]]  # (alphabet, character) -> member names, sorted


def _ignored(name: str) -> bool:
    """Archive debris that is not part of any layout (macOS forks, hidden files)."""
    parts = name.split("/")
    return parts[0] == "__MACOSX" or any(p.startswith(".") for p in parts if p)


def _index(names: Sequence[str], where: str) -> _Index:
    """Group the file names of one source by (alphabet, character), checking the layout."""
    files = [n for n in names if not n.endswith("/") and not _ignored(n)]
    others = [n for n in files if not n.lower().endswith(".png")]
    pngs = [n for n in files if n.lower().endswith(".png")]
    depths = [len(n.split("/")) for n in pngs]
    depth = max(set(depths), key=depths.count) if depths else 0
    bad = others or [n for n, d in zip(pngs, depths) if d != depth or d not in (3, 4)]
    if not pngs or bad:
        found = f"found {bad[0]!r}" if bad else "found no .png file"
        raise GenaugError(
            f"{where} is not in Omniglot's layout: expected {_LAYOUT} (or an extracted folder "
            f"of <Alphabet>/<character>/*.png), {found}; point omniglot: at an Omniglot zip."
        )
    index: _Index = {}
    for name in sorted(pngs):
        alphabet, character = name.split("/")[-3:-1]
        index.setdefault((alphabet, character), []).append(name)
    return index


def _sources(
    path: str, stack: contextlib.ExitStack
) -> list[tuple[str, _Index, Callable[[str], bytes]]]:
    """Every source under ``path`` as (where, index, read bytes of a member); zips opened here
    are closed by ``stack``."""
    path = os.path.expanduser(str(path))
    fix = "pass an Omniglot zip, a folder of such zips, or an extracted Omniglot folder"
    if not os.path.exists(path):
        raise GenaugError(f"Omniglot source {path} does not exist; {fix}.")
    if os.path.isdir(path):
        zips = sorted(e.path for e in os.scandir(path) if e.name.lower().endswith(".zip"))
        if not zips:
            names = []
            for dirpath, dirnames, filenames in os.walk(path):
                dirnames[:] = sorted(dirnames)
                rel = os.path.relpath(dirpath, path).replace(os.sep, "/")
                names += [f if rel == "." else f"{rel}/{f}" for f in filenames]

            def read_file(name: str, root: str = path) -> bytes:
                with open(os.path.join(root, *name.split("/")), "rb") as fh:
                    return fh.read()

            return [(path, _index(names, f"folder {path}"), read_file)]
    else:
        zips = [path]
    out = []
    for zpath in zips:
        try:
            archive = stack.enter_context(zipfile.ZipFile(zpath))
        except (zipfile.BadZipFile, OSError) as exc:
            raise GenaugError(f"{zpath} cannot be opened as a zip ({exc}); {fix}.") from None
        out.append((zpath, _index(archive.namelist(), f"zip {zpath}"), archive.read))
    return out


def _decode(data: bytes, where: str) -> np.ndarray:
    """One drawing as ``(105, 105)`` uint8 ink (255 = stroke, 0 = paper)."""
    try:
        with Image.open(io.BytesIO(data)) as img:
            gray = img.convert("L")
            arr = np.asarray(gray, dtype=np.uint8)  # (H, W), 0 = stroke in the files
            if arr.shape != (NATIVE_SIZE, NATIVE_SIZE):
                arr = pil_to_square_array(gray, NATIVE_SIZE)
    except Exception as exc:  # any decoder failure names the entry
        raise GenaugError(
            f"{where} is not a readable PNG ({type(exc).__name__}: {exc}); replace the file."
        ) from None
    return 255 - arr


def list_omniglot_alphabets(path: str | os.PathLike[str]) -> list[str]:
    """The alphabets found under ``path`` (a zip, a folder of zips, or an extracted folder)."""
    with contextlib.ExitStack() as stack:
        return sorted({a for _, index, _ in _sources(str(path), stack) for a, _ in index})


def read_omniglot(
    path: str | os.PathLike[str], alphabets: Sequence[str] | None = None
) -> tuple[Tensor, Tensor, list[str], dict[str, Any]]:
    """Read Omniglot at its native size; ``load_dataset``'s reader for ``omniglot:PATH``.

    Returns ``(images (N, 1, 105, 105) uint8 with ink = 255, targets (N,), class names,
    description extras)``. ``alphabets`` selects alphabets (case-insensitive, unique prefixes
    allowed); None reads all.
    """
    with contextlib.ExitStack() as stack:
        return _read(_sources(str(path), stack), alphabets)


def _read(
    sources: list[tuple[str, _Index, Callable[[str], bytes]]], alphabets: Sequence[str] | None
) -> tuple[Tensor, Tensor, list[str], dict[str, Any]]:
    merged: dict[tuple[str, str], tuple[str, list[str], Callable[[str], bytes]]] = {}
    duplicates = 0
    for where, index, read in sources:
        for key, members in index.items():
            if key in merged:  # same character in an earlier source: keep that one
                duplicates += 1
            else:
                merged[key] = (where, members, read)
    known = sorted({a for a, _ in merged})
    chosen = known if alphabets is None else match_groups(alphabets, known, "alphabet")
    keys = sorted(k for k in merged if k[0] in set(chosen))
    total = sum(len(merged[k][1]) for k in keys)
    images = np.empty((total, 1, NATIVE_SIZE, NATIVE_SIZE), dtype=np.uint8)  # (N, 1, 105, 105)
    targets = np.empty(total, dtype=np.int64)
    i = 0
    for label, key in enumerate(keys):
        where, members, read = merged[key]
        for name in members:
            images[i, 0] = _decode(read(name), f"{name} in {where}")
            targets[i] = label
            i += 1
    extra = {
        "source": "omniglot",
        "files": [os.path.abspath(w) for w, _, _ in sources],
        "alphabets": chosen,
        "class_groups": [a for a, _ in keys],
        "duplicate_classes_skipped": duplicates,
        "polarity": "ink=1 (white strokes on black)",
        "train": None,
    }
    names = [f"{a}/{c}" for a, c in keys]
    return torch.from_numpy(images), torch.from_numpy(targets), names, extra
