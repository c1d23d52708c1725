"""Generated images written as an ImageFolder tree (``genaug sample --out DIR/``).

An export is complete or marked incomplete: ``DIR/INCOMPLETE.txt`` stands while it runs and is
removed once every sample is there, and no half-written PNG is left (each is written under a
temporary name and renamed). Running the same export again finishes the folder.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import torch
from PIL import Image
from torch import Tensor

from genaug.errors import GenaugError, notice
from genaug.io import atomic_write_text
from genaug.models.base import Generator
from genaug.models.sampling import labels_for_indices, sample_indices
from genaug.transforms.checks import check_makes_images

__all__ = ["INCOMPLETE", "export_image_folder", "export_synthetic_set", "image_to_pil"]


def image_to_pil(image: Tensor) -> Image.Image:
    """One image (C, H, W) in [0, 1] -> PIL (L for gray, RGB for colour)."""
    array = (image.clamp(0, 1) * 255).round().to(torch.uint8)
    if array.shape[0] == 1:
        return Image.fromarray(array[0].numpy(), mode="L")
    return Image.fromarray(array.permute(1, 2, 0).numpy(), mode="RGB")


def export_image_folder(
    model: Generator,
    out_dir: str | os.PathLike,
    n: int,
    seed: int = 0,
    batch_size: int = 256,
    indices: range | None = None,
) -> Path:
    """Write ``n`` samples as PNGs into an ImageFolder tree ``out_dir/<class>/<index>.png``.

    Sample ``i`` has class ``i % num_classes`` and is the same image for the same seed whatever
    ``batch_size`` or ``indices`` (a shard of ``range(n)``) is used. Unconditional generators write
    into ``out_dir/samples/``. Each PNG is written under a temporary name and renamed.
    """
    _check_samples_from_noise(model)
    out = Path(out_dir)
    names = list(model.class_names) if model.conditional else ["samples"]
    for name in names:
        (out / name).mkdir(parents=True, exist_ok=True)
    todo = indices if indices is not None else range(n)
    width = max(len(str(max(n - 1, 0))), 6)
    for start in range(0, len(todo), batch_size):
        chunk = torch.tensor(list(todo[start : start + batch_size]))
        images, labels = sample_indices(model, chunk, seed)
        for j, index in enumerate(chunk.tolist()):
            folder = out / (names[int(labels[j])] if labels is not None else names[0])
            final = folder / f"{index:0{width}d}.png"
            tmp = folder / f".{final.name}.tmp"
            try:
                image_to_pil(images[j]).save(tmp, format="PNG")
                os.replace(tmp, final)
            except BaseException:
                with contextlib.suppress(OSError):
                    tmp.unlink()  # a full disk leaves no half-written image behind
                raise
    return out


INCOMPLETE = "INCOMPLETE.txt"  # stands in an export folder until every sample is written


def export_synthetic_set(
    model: Generator, out_dir: str | os.PathLike, n: int, seed: int = 0, batch_size: int = 256
) -> Path:
    """:func:`export_image_folder` of ``n`` samples, shared among the ranks of a torchrun job.

    Rank ``r`` of ``w`` writes the sample indices ``r::w`` (each sample is deterministic by index,
    so the tree equals a one-process export); rank 0 then waits for every rank and checks that
    all ``n`` files are there. Without torchrun this is ``export_image_folder``. Until then
    ``out_dir/INCOMPLETE.txt`` marks the folder incomplete; running the export again finishes it.
    """
    from genaug import distributed

    _check_samples_from_noise(model)  # before the folder is marked
    marker = Path(out_dir) / INCOMPLETE
    if distributed.is_main():
        if marker.is_file():
            notice(f"{out_dir} was left incomplete by an earlier export; finishing it.")
        Path(out_dir).mkdir(parents=True, exist_ok=True)
        atomic_write_text(
            marker,
            f"genaug is writing {n} samples (seed {seed}) here, or stopped before it wrote them "
            "all; run the same export again to finish this folder.\n",
        )
    out = export_image_folder(
        model, out_dir, n, seed, batch_size, indices=distributed.shard_range(n)
    )
    distributed.barrier("waiting for the other ranks' samples")
    if distributed.is_main():
        names = list(model.class_names) if model.conditional else ["samples"]
        width = max(len(str(max(n - 1, 0))), 6)
        labels = labels_for_indices(torch.arange(n), model.num_classes)
        missing = [
            i
            for i in range(n)
            if not (
                out / names[int(labels[i]) if labels is not None else 0] / f"{i:0{width}d}.png"
            ).is_file()
        ]
        if missing:
            raise GenaugError(
                f"{len(missing)} of {n} samples are missing under {out} (first: index "
                f"{missing[0]}); run the export again."
            )
        marker.unlink()
    return out


def _check_samples_from_noise(model: Generator) -> None:
    check_makes_images(model)
    if model.image_conditioned:
        raise GenaugError(
            f"A {model.family} generator makes variations of given images, so it cannot draw "
            "samples from noise alone; vary real images instead: "
            "SyntheticDataset(generator, n_per_class, exemplars=dataset)."
        )
