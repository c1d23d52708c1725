"""The class of an image, for a conditional generator that is handed the image alone.

``ImageFolder(transform=...)``, a bare tensor, ``A.Compose`` without a label key: many pipelines
give a transform no label. A conditional generator then conditions on the class it infers. Two
ways are offered, both measured on the digits test split (``benchmarks/experiments/
infer_labels.py``):

- ``"head"`` (the default): a small class head reads the encoder's features of the image
  encoded *without* a label (zero label planes) and is trained with the generator, on features
  detached from it, so the generator's own weights and updates do not change. One encoder pass.
- ``"reconstruction"``: the class whose encode -> decode round trip reconstructs the image best
  (for a VAE, the highest ELBO). Needs no head, but one encoder and one decoder pass per class.

Families without an encoder (the GAN) cannot infer classes; :func:`inference_problem` says so.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from genaug.errors import GenaugError
from genaug.models.folding import run_stack

METHODS = ("head", "reconstruction")
#: Hidden width of the class head's MLP.
HEAD_HIDDEN = 128


class ClassHead(nn.Module):
    """Encoder features (B, F) -> class logits (B, K): a one-hidden-layer MLP.

    Its initialisation leaves the global RNG as it found it, so a generator with a head trains
    on the same noise, and to the same weights, as the same generator without one.
    """

    def __init__(self, in_features: int, num_classes: int, hidden: int = HEAD_HIDDEN) -> None:
        super().__init__()
        with torch.random.fork_rng(devices=[]):
            self.net = nn.Sequential(
                nn.Linear(in_features, hidden),
                nn.ReLU(inplace=True),
                nn.Linear(hidden, num_classes),
            )

    def forward(self, features: Tensor) -> Tensor:
        return self.net(features.float())  # (B, K) logits; float under autocast too


def one_hot(labels: Tensor | None, num_classes: int, dtype: torch.dtype) -> Tensor | None:
    """Labels (B,) -> one-hot (B, num_classes), or None for an unconditional model."""
    if labels is None or num_classes == 0:
        return None
    return F.one_hot(labels.long(), num_classes).to(dtype)


def label_maps(labels: Tensor | None, num_classes: int, like: Tensor) -> Tensor | None:
    """Labels (B,) -> one-hot planes (B, num_classes, H, W) shaped like the images ``like``."""
    onehot = one_hot(labels, num_classes, like.dtype)
    if onehot is None:
        return None
    b, _, h, w = like.shape
    return onehot[:, :, None, None].expand(b, num_classes, h, w)


def label_free_input(images: Tensor, num_classes: int) -> Tensor:
    """Images (B, C, S, S) in [0, 1] -> the encoder's input without a label: centred images and
    all-zero label planes (B, C + K, S, S), the encoder's "no class" input."""
    x = images * 2 - 1
    b, _, h, w = x.shape
    return torch.cat([x, x.new_zeros(b, num_classes, h, w)], dim=1)


def _plain_conv(layer: nn.Module) -> bool:
    """A first layer whose input channels can be convolved apart: a plain zero-padded conv."""
    return type(layer) is nn.Conv2d and layer.padding_mode == "zeros" and layer.groups == 1


def _image_conv(first: nn.Conv2d, x: Tensor) -> Tensor:
    """``first`` on the image channels (B, C, S, S) alone: its weights' first C input channels."""
    weight = first.weight[:, : x.shape[1]]  # (out, C, k, k)
    return F.conv2d(x, weight, first.bias, first.stride, first.padding, first.dilation)


def _remembered_image_conv(first: nn.Conv2d, x: Tensor) -> Tensor | None:
    """What :func:`_image_conv` gave the label-free pass on the same single image, else None.

    An image given alone is encoded twice: without a label (the class head) and then with the
    class the head found; both passes start with the same convolution of the same image
    channels. The label-free pass of one image in inference keeps its result on the layer (with
    the image and the weights' version), and the conditional pass takes it when the image is
    the same: one first convolution per image instead of two. Copies are kept and handed out,
    as the layers after the first may work in place.
    """
    kept = getattr(first, "_genaug_last_image", None)
    if kept is None or kept[0] != _image_key(first, x) or not torch.equal(kept[1], x):
        return None
    return kept[2].clone()


def _image_key(first: nn.Conv2d, x: Tensor) -> tuple | None:
    """What must match for a kept first convolution to be reused: None where none is kept
    (a batch, gradients, autocast: the per-sample path alone gains from it)."""
    if x.shape[0] != 1 or torch.is_grad_enabled() or torch.is_autocast_enabled(x.device.type):
        return None
    weight = first.weight
    return (weight._version, weight.data_ptr(), x.dtype, x.device, tuple(x.shape))


def class_plane_table(
    first: nn.Conv2d,
    channels: int,
    num_classes: int,
    size: int,
    memory_format: torch.memory_format = torch.contiguous_format,
) -> Tensor:
    """What each class's one-hot label planes add to ``first``'s output: (K, out, H', W').

    The label planes are constant, so their share of the first convolution is one map per class
    (zero padding makes it vary near the border). Computed once per weight version, size, dtype
    and device, and kept on the layer: an encoder in inference then convolves the C image
    channels alone and adds the class's map, instead of convolving C + K channels.
    """
    weight = first.weight
    key = (weight._version, weight.data_ptr(), size, weight.dtype, weight.device, memory_format)
    cached = getattr(first, "_genaug_class_planes", None)
    if cached is not None and cached[0] == key:
        return cached[1]
    planes = torch.eye(num_classes, dtype=weight.dtype, device=weight.device)
    planes = planes[:, :, None, None].expand(num_classes, num_classes, size, size)
    with torch.no_grad():
        table = F.conv2d(
            planes, weight[:, channels:], None, first.stride, first.padding, first.dilation
        )
    table = table.contiguous(memory_format=memory_format)  # rows gathered in the output's
    first._genaug_class_planes = (key, table)  # not a buffer: never saved, rebuilt on change
    return table


def conditioned_features(
    stack: nn.Sequential, x: Tensor, labels: Tensor | None, num_classes: int
) -> Tensor:
    """``stack(cat([x, label planes]))`` for centred images ``x`` (B, C, S, S) and labels (B,).

    In inference (no gradients, the stack in eval mode, a plain first convolution) the label
    planes are not convolved: the first layer runs on the C image channels and adds the class's
    precomputed map (:func:`class_plane_table`, in the layout of the convolution's output). The
    same numbers up to float rounding, at a fraction of the first layer's cost (C + K input
    channels become C). Training convolves the concatenated input as always, so trained
    weights do not change.
    """
    if labels is None or num_classes == 0:
        return run_stack(stack, x)
    first = stack[0]
    if torch.is_grad_enabled() or stack.training or not _plain_conv(first):
        return run_stack(stack, torch.cat([x, label_maps(labels, num_classes, x)], dim=1))
    h = _remembered_image_conv(first, x)
    if h is None:
        h = _image_conv(first, x)  # (B, out, H', W')
    last = h.is_contiguous(memory_format=torch.channels_last) and not h.is_contiguous()
    layout = torch.channels_last if last else torch.contiguous_format  # the sum keeps h's
    table = class_plane_table(first, x.shape[1], num_classes, x.shape[-1], layout)
    h = h + table[labels.to(table.device).long()].to(h.dtype)
    return run_stack(stack, h, start=1)  # the layers after the first


def label_free_features(stack: nn.Sequential, images: Tensor, num_classes: int) -> Tensor:
    """``stack(label_free_input(images, num_classes))``, without convolving the zero planes.

    The all-zero label planes add nothing to the first convolution, so a plain first
    ``nn.Conv2d`` runs on the image channels alone (its weights' first C input channels): the
    same numbers at a fraction of the first layer's cost (a stack whose first layer is
    anything else gets the full input). For one image in inference that convolution is kept
    for the conditional pass of the same image (:func:`_remembered_image_conv`).
    """
    first = stack[0]
    if not _plain_conv(first):
        return run_stack(stack, label_free_input(images, num_classes))
    x = images * 2 - 1  # centred images
    h = _image_conv(first, x)
    key = _image_key(first, x)
    if key is not None:  # one image: kept for the conditional pass that follows
        first._genaug_last_image = (key, x.clone(), h.clone())
    return run_stack(stack, h, start=1)


def frozen_features(encoder: nn.Module, features: Callable[[], Tensor]) -> Tensor:
    """Run ``features()`` with ``encoder`` in eval mode and without gradients, then restore it.

    The head learns from what the encoder gives at inference (BatchNorm on running statistics),
    and neither the encoder's weights nor its BatchNorm statistics see the label-free pass. An
    encoder in eval mode already (a transform's generator) is not switched back and forth.
    """
    was_training = encoder.training
    if was_training:
        encoder.eval()
    try:
        with torch.no_grad():
            return features().detach()
    finally:
        if was_training:
            encoder.train(True)


def head_loss(logits: Tensor, labels: Tensor) -> Tensor:
    """Cross-entropy of the head's logits (B, K) against the true labels (B,), a float scalar."""
    return F.cross_entropy(logits.float(), labels.long())


def inference_problem(model: nn.Module, method: str = "head") -> str | None:
    """One sentence saying why ``model`` cannot infer classes with ``method``; None when it can."""
    if method not in METHODS:
        raise GenaugError(
            f"Unknown label-inference method {method!r}; use one of {', '.join(METHODS)}."
        )
    family = getattr(model, "family", type(model).__name__)
    if not model.conditional:
        return None  # nothing to infer: an unconditional generator takes no class
    if not model.has_encoder:
        return (
            f"This conditional {family} generator has no encoder, so it cannot infer the class of "
            "an image given without a label; pass labels with the images, train a family with "
            "an encoder (vae or cgan), or train with --unlabeled."
        )
    if method == "head" and getattr(model, "class_head", None) is None:
        return (
            f"This conditional {family} generator has no class head (trained by an older genaug, "
            "or with class_head=False), so it cannot infer the class of an image given without a "
            "label; retrain it with this genaug, pass labels with the images, or train with "
            "--unlabeled."
        )
    return None


@torch.no_grad()
def reconstruction_labels(
    model: nn.Module, images: Tensor, cost: Callable[[Tensor, Any, Tensor], Tensor]
) -> Tensor:
    """The class whose round trip fits each image best: (B, C, S, S) -> (B,) long.

    For every class ``c``, ``cost(images, encoding, labels)`` (B,) is the family's cost of the
    images encoded with class ``c`` (an :class:`~genaug.models.base.Encoding`) and decoded from
    the posterior mean with class ``c``; the class of least cost wins.
    """
    b = images.shape[0]
    costs = images.new_empty(b, model.num_classes, dtype=torch.float32)
    for c in range(model.num_classes):
        labels = torch.full((b,), c, dtype=torch.long, device=images.device)
        encoding = model.encode(images, labels)
        costs[:, c] = cost(images, encoding, labels).float()
    return costs.argmin(dim=1)
