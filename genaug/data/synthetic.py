"""Generated images, deterministic by index, and their export as an ImageFolder tree."""

from __future__ import annotations

import os
from pathlib import Path

import torch
from PIL import Image
from torch import Tensor

from genaug.models.base import Generator


def latents_for_indices(indices: Tensor, seed: int, latent_dim: int) -> Tensor:
    """One latent (latent_dim,) per sample index, from a generator seeded by (seed, index).

    Sample ``i`` is the same image however the indices are batched, sharded or ordered.
    """
    rows = [
        torch.randn(latent_dim, generator=torch.Generator().manual_seed(seed * 1_000_003 + int(i)))
        for i in indices.tolist()
    ]
    return torch.stack(rows) if rows else torch.empty(0, latent_dim)


def labels_for_indices(indices: Tensor, num_classes: int) -> Tensor | None:
    """Balanced classes by index (index i has class i % num_classes), None when unconditional."""
    return indices.long() % num_classes if num_classes else None


@torch.no_grad()
def sample_indices(model: Generator, indices: Tensor, seed: int) -> tuple[Tensor, Tensor | None]:
    """Images (B, C, H, W) in [0, 1] on the CPU and their labels for the given sample indices."""
    z = latents_for_indices(indices, seed, model.latent_dim).to(model.device)
    labels = labels_for_indices(indices, model.num_classes)
    images = model.decode(z, None if labels is None else labels.to(model.device))
    return images.float().cpu(), labels


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
            image_to_pil(images[j]).save(tmp, format="PNG")
            os.replace(tmp, final)
    return out
