"""Image tensor conversions: dtype, channel count and size.

This module is the one place where genaug converts image batches, so datasets, transforms and
generators all agree on the conventions: batches are ``(N, C, H, W)`` tensors, float images live
in ``[0, 1]``, and no function modifies its input in place.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageOps
from torch import Tensor

from genaug.errors import GenaugError

__all__ = [
    "convert_channels",
    "pil_to_square_array",
    "resize_images",
    "to_float_images",
    "to_uint8_images",
]

# ITU-R BT.601 luma weights for (R, G, B).
_LUMA_WEIGHTS = (0.299, 0.587, 0.114)
# PIL modes treated as gray; every other mode (RGB, RGBA, P, CMYK, YCbCr, ...) counts as colour.
_GRAY_MODES = frozenset({"1", "L", "LA", "La", "I", "I;16", "I;16L", "I;16B", "I;16N", "F"})


def _check_batch(images: Tensor, what: str) -> None:
    if not isinstance(images, Tensor):
        raise GenaugError(
            f"{what} expects a torch.Tensor of images, got {type(images).__name__}; "
            "convert it with torch.as_tensor first."
        )
    if images.ndim != 4:
        raise GenaugError(
            f"{what} expects a batch of images shaped (N, C, H, W), got shape "
            f"{tuple(images.shape)}; add a batch dimension with images.unsqueeze(0)."
        )


def to_float_images(x: Tensor) -> Tensor:
    """Return images as float32 in ``[0, 1]``.

    ``uint8`` input is divided by 255; floating input is only cast to float32 (it is assumed to
    already lie in ``[0, 1]``). Works on any shape. The input is never modified.
    """
    if not isinstance(x, Tensor):
        raise GenaugError(
            f"to_float_images expects a torch.Tensor, got {type(x).__name__}; "
            "convert it with torch.as_tensor first."
        )
    if x.dtype == torch.uint8:
        return x.to(torch.float32).div_(255.0)
    if x.is_floating_point():
        return x.to(torch.float32)
    raise GenaugError(
        f"images must be uint8 (0..255) or floating point (0..1), got dtype {x.dtype}; "
        "cast them to one of those first."
    )


def to_uint8_images(x: Tensor) -> Tensor:
    """Return float images in ``[0, 1]`` as ``uint8`` (values clamped, then rounded).

    ``uint8`` input is returned unchanged. Works on any shape. The input is never modified.
    """
    if not isinstance(x, Tensor):
        raise GenaugError(
            f"to_uint8_images expects a torch.Tensor, got {type(x).__name__}; "
            "convert it with torch.as_tensor first."
        )
    if x.dtype == torch.uint8:
        return x
    if not x.is_floating_point():
        raise GenaugError(
            f"to_uint8_images expects float images in [0, 1], got dtype {x.dtype}; "
            "convert them with to_float_images first."
        )
    return x.clamp(0.0, 1.0).mul(255.0).round_().to(torch.uint8)


def convert_channels(images: Tensor, channels: int) -> Tensor:
    """Convert a batch ``(N, C, H, W)`` between 1 (gray) and 3 (RGB) channels.

    1 -> 3 repeats the gray channel; 3 -> 1 uses the ITU-R 601 luma weights
    (0.299, 0.587, 0.114). When the batch already has ``channels`` channels it is returned as is.
    The dtype is preserved (``uint8`` luma is rounded); the input is never modified.
    """
    _check_batch(images, "convert_channels")
    have = images.shape[1]
    if have == channels:
        return images
    if have == 1 and channels == 3:
        return images.repeat(1, 3, 1, 1)  # (N, 3, H, W)
    if have == 3 and channels == 1:
        weights = torch.tensor(_LUMA_WEIGHTS, dtype=torch.float32, device=images.device)
        work = images.float() if images.dtype == torch.uint8 else images
        gray = (work * weights.to(work.dtype).view(1, 3, 1, 1)).sum(dim=1, keepdim=True)
        if images.dtype == torch.uint8:
            return gray.round_().clamp_(0, 255).to(torch.uint8)  # (N, 1, H, W)
        return gray  # (N, 1, H, W)
    raise GenaugError(
        f"cannot convert images with {have} channels to {channels} channels; "
        "only 1 (gray) <-> 3 (RGB) is supported, so drop alpha or extra channels first."
    )


def _size_pair(size: int | tuple[int, int]) -> tuple[int, int]:
    if isinstance(size, int) and not isinstance(size, bool):
        pair = (size, size)
    elif (
        isinstance(size, (tuple, list))
        and len(size) == 2
        and all(isinstance(s, int) and not isinstance(s, bool) for s in size)
    ):
        pair = (int(size[0]), int(size[1]))
    else:
        raise GenaugError(
            f"image size must be an int or a (height, width) pair of ints, got {size!r}; "
            "pass for example 32 or (32, 32)."
        )
    if min(pair) < 1:
        raise GenaugError(f"image size must be positive, got {size!r}; pass for example 32.")
    return pair


def resize_images(images: Tensor, size: int | tuple[int, int]) -> Tensor:
    """Resize a batch ``(N, C, H, W)`` to ``size`` (an int for square, or ``(H, W)``).

    Bilinear interpolation, antialiased when downsampling; float output is clamped to ``[0, 1]``.
    ``uint8`` input gives ``uint8`` output. Returns the input itself when it already has that
    size; never modifies the input in place.
    """
    _check_batch(images, "resize_images")
    height, width = _size_pair(size)
    in_h, in_w = images.shape[-2:]
    if (in_h, in_w) == (height, width):
        return images
    is_uint8 = images.dtype == torch.uint8
    work = to_float_images(images)  # (N, C, H, W) float32
    downsampling = height < in_h or width < in_w
    if work.shape[0] == 0:
        out = work.new_zeros((0, work.shape[1], height, width))
    else:
        out = F.interpolate(
            work, size=(height, width), mode="bilinear", align_corners=False, antialias=downsampling
        )  # (N, C, height, width)
    out = out.clamp_(0.0, 1.0)
    if is_uint8:
        return to_uint8_images(out)
    if images.is_floating_point() and images.dtype != torch.float32:
        return out.to(images.dtype)
    return out


def pil_to_square_array(image: Image.Image, size: int) -> np.ndarray:
    """Convert a PIL image of any mode to a square ``uint8`` array.

    Gray modes (``1``, ``L``, ``LA``, ``I;16``, ``I``, ``F``) give ``(size, size)``, every other
    mode gives ``(size, size, 3)`` RGB. Transparent pixels are composited onto white, 16-bit and
    float gray is rescaled to 0..255, EXIF orientation is applied, the shorter side is resized to
    ``size`` (bilinear, antialiased) and the centre is cropped square.
    """
    if image.format == "JPEG":
        image.draft(None, (size, size))  # let libjpeg decode big photos at a reduced scale
    image = ImageOps.exif_transpose(image)
    mode = image.mode
    gray = mode in _GRAY_MODES
    if mode in ("I", "F") or mode.startswith("I;16"):
        arr = np.asarray(image, dtype=np.float64)  # (h, w)
        if mode == "F" and arr.size and arr.max() <= 1.0:
            arr = arr * 255.0
        elif arr.size and arr.max() > 255.0:
            arr = arr / 257.0  # 16-bit range -> 8-bit range
        image = Image.fromarray(np.clip(np.rint(arr), 0, 255).astype(np.uint8))
    elif mode in ("RGBA", "RGBa", "LA", "La", "PA") or "transparency" in image.info:
        rgba = image.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        image = Image.alpha_composite(white, rgba).convert("L" if gray else "RGB")
    else:
        image = image.convert("L" if gray else "RGB")
    width, height = image.size
    scale = size / min(width, height)
    new_w, new_h = max(size, round(width * scale)), max(size, round(height * scale))
    if (new_w, new_h) != (width, height):
        image = image.resize((new_w, new_h), Image.Resampling.BILINEAR, reducing_gap=3.0)
    left, top = (new_w - size) // 2, (new_h - size) // 2
    image = image.crop((left, top, left + size, top + size))
    return np.asarray(image, dtype=np.uint8)  # (size, size) or (size, size, 3)
