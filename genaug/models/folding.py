"""Inference through a layer stack with each BatchNorm folded into the convolution before it.

In eval mode a ``BatchNorm2d`` is a per-channel affine map, so a convolution followed by one is a
single convolution with scaled weights and a bias. An augmenting generator runs in inference on
every image; at batch 1 on a CPU the BatchNorms are a few percent of a call that is mostly
fixed costs per layer (``benchmarks/augment_places.py``, docs/performance.md). The folded
weights are computed once per weight version and device and kept on the stack; training, and
anything with gradients, runs the stack as it is, so trained weights never depend on this.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import torch
from torch import Tensor, nn
from torch.nn import functional as F

_CACHE = "_genaug_folded"  # a plain attribute (a dict): never a submodule, never saved


def run_stack(stack: nn.Sequential, x: Tensor, start: int = 0) -> Tensor:
    """``stack[start:](x)``; in inference (no gradients, eval mode), with BatchNorms folded.

    The result equals the plain stack's up to float rounding.
    """
    if torch.is_grad_enabled() or stack.training:
        return stack[start:](x) if start else stack(x)
    for step in _folded_steps(stack, start):
        x = step(x)
    return x


def _foldable(conv: nn.Module, norm: nn.Module) -> bool:
    """A plain convolution (zero padding, one group) followed by a BatchNorm with statistics."""
    plain = type(conv) in (nn.Conv2d, nn.ConvTranspose2d) and conv.groups == 1
    plain = plain and conv.padding_mode == "zeros"
    return plain and type(norm) is nn.BatchNorm2d and norm.running_var is not None


def _pairs(layers: tuple[nn.Module, ...]) -> list[tuple[nn.Module, nn.Module]]:
    """The foldable conv -> BatchNorm pairs of ``layers``, in order, none overlapping."""
    pairs, i = [], 0
    while i + 1 < len(layers):
        if _foldable(layers[i], layers[i + 1]):
            pairs.append((layers[i], layers[i + 1]))
            i += 2
        else:
            i += 1
    return pairs


def _versions(pairs: list[tuple[nn.Module, nn.Module]]) -> tuple:
    """What the folded weights were made of: each tensor's identity, version and storage.

    Read from the modules' own dicts (``nn.Module.__getattr__`` costs more than the check is
    worth on a call of one image), so a tensor replaced, changed in place or moved is seen.
    """
    key: list = []
    for conv, norm in pairs:
        params, stats = norm._parameters, norm._buffers
        tensors = (conv._parameters["weight"], conv._parameters.get("bias"), params.get("weight"))
        tensors += (params.get("bias"), stats["running_mean"], stats["running_var"])
        for t in tensors:
            key += (None,) if t is None else (id(t), t._version, t.data_ptr())
        key.append(norm.eps)
    return tuple(key)


def _folded_steps(stack: nn.Sequential, start: int) -> tuple[Callable[[Tensor], Tensor], ...]:
    """The stack's layers from ``start`` on, each conv -> BatchNorm pair as one call (cached
    per start, rebuilt when the layers or any tensor folded change)."""
    layers = tuple(stack._modules.values())[start:]
    cache = stack.__dict__.setdefault(_CACHE, {})  # start -> (layers, pairs, versions, steps)
    kept = cache.get(start)
    if kept is not None and kept[0] == layers and kept[2] == _versions(kept[1]):
        return kept[3]
    pairs = _pairs(layers)
    folded = {id(conv): _fold(conv, norm) for conv, norm in pairs}
    skipped = {id(norm) for _, norm in pairs}
    steps = tuple(folded.get(id(layer), layer) for layer in layers if id(layer) not in skipped)
    cache[start] = (layers, pairs, _versions(pairs), steps)
    return steps


@torch.no_grad()
def _fold(conv: nn.Conv2d | nn.ConvTranspose2d, norm: nn.BatchNorm2d) -> Callable:
    """``norm(conv(x))`` in eval mode as one convolution: weights scaled per output channel."""
    dtype = conv.weight.dtype
    work = torch.promote_types(dtype, torch.float32)  # float32 at least, float64 kept
    scale = torch.rsqrt(norm.running_var.to(work) + norm.eps)  # (out,)
    if norm.weight is not None:
        scale = scale * norm.weight.to(work)
    shift = -norm.running_mean.to(work) * scale
    if norm.bias is not None:
        shift = shift + norm.bias.to(work)
    if conv.bias is not None:
        shift = shift + conv.bias.to(work) * scale
    if type(conv) is nn.Conv2d:  # weight (out, in, k, k)
        weight = (conv.weight.to(work) * scale[:, None, None, None]).to(dtype)
        return partial(_conv, weight, shift.to(dtype), conv.stride, conv.padding, conv.dilation)
    weight = (conv.weight.to(work) * scale[None, :, None, None]).to(dtype)  # (in, out, k, k)
    return partial(
        _conv_transpose,
        weight,
        shift.to(dtype),
        (conv.stride, conv.padding, conv.output_padding, 1, conv.dilation),
    )


def _conv(weight: Tensor, bias: Tensor, stride, padding, dilation, x: Tensor) -> Tensor:
    return F.conv2d(x, weight, bias, stride, padding, dilation)


def _conv_transpose(weight: Tensor, bias: Tensor, settings: tuple, x: Tensor) -> Tensor:
    stride, padding, output_padding, groups, dilation = settings
    return F.conv_transpose2d(x, weight, bias, stride, padding, output_padding, groups, dilation)
