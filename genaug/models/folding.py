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

_CACHE = "_genaug_folded"  # a plain attribute (a tuple): never a submodule, never saved


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


def _sources(stack: nn.Sequential, start: int) -> tuple:
    """What the folded steps are made of, as (identity, version, storage) of every tensor."""
    layers = list(stack)[start:]
    key: list = [start]
    for conv, norm in zip(layers, layers[1:]):
        if _foldable(conv, norm):
            for t in (conv.weight, conv.bias, norm.weight, norm.bias, norm.running_mean):
                key += [None] if t is None else [id(t), t._version, t.data_ptr()]
            var = norm.running_var
            key += [id(var), var._version, var.data_ptr(), norm.eps]
    return tuple(key)


def _folded_steps(stack: nn.Sequential, start: int) -> tuple[Callable[[Tensor], Tensor], ...]:
    """The stack's layers from ``start`` on, each conv -> BatchNorm pair as one call (cached)."""
    key = _sources(stack, start)
    cached = stack.__dict__.get(_CACHE)
    if cached is not None and cached[0] == key:
        return cached[1]
    layers, steps, i = list(stack)[start:], [], 0
    while i < len(layers):
        if i + 1 < len(layers) and _foldable(layers[i], layers[i + 1]):
            steps.append(_fold(layers[i], layers[i + 1]))
            i += 2
        else:
            steps.append(layers[i])
            i += 1
    stack.__dict__[_CACHE] = (key, tuple(steps))
    return tuple(steps)


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
