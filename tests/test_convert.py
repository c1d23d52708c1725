"""Tests for genaug.data.convert: channel, size and dtype conversions."""

from __future__ import annotations

import pytest
import torch

from genaug.data.convert import (
    convert_channels,
    resize_images,
    to_float_images,
    to_uint8_images,
)
from genaug.errors import GenaugError


def _batch(n: int = 2, c: int = 3, h: int = 8, w: int = 8) -> torch.Tensor:
    return torch.rand(n, c, h, w, generator=torch.Generator().manual_seed(0))  # (N, C, H, W)


def test_gray_to_rgb_repeats_channel() -> None:
    gray = _batch(c=1)
    rgb = convert_channels(gray, 3)
    assert rgb.shape == (2, 3, 8, 8)
    for ch in range(3):
        assert torch.equal(rgb[:, ch], gray[:, 0])


def test_rgb_to_gray_uses_luma_weights() -> None:
    rgb = torch.zeros(1, 3, 2, 2)
    rgb[:, 0] = 1.0  # pure red
    assert torch.allclose(convert_channels(rgb, 1), torch.full((1, 1, 2, 2), 0.299))
    rgb = _batch()
    expected = 0.299 * rgb[:, 0] + 0.587 * rgb[:, 1] + 0.114 * rgb[:, 2]
    assert torch.allclose(convert_channels(rgb, 1)[:, 0], expected, atol=1e-6)
    white = torch.ones(1, 3, 4, 4)
    assert torch.allclose(convert_channels(white, 1), torch.ones(1, 1, 4, 4))


def test_gray_rgb_round_trip_is_identity() -> None:
    gray = _batch(c=1)
    assert torch.allclose(convert_channels(convert_channels(gray, 3), 1), gray, atol=1e-6)


def test_same_channels_returns_input() -> None:
    x = _batch()
    assert convert_channels(x, 3) is x


def test_uint8_channels_keep_dtype() -> None:
    x = torch.full((1, 3, 2, 2), 200, dtype=torch.uint8)
    out = convert_channels(x, 1)
    assert out.dtype == torch.uint8
    assert int(out.max()) == 200


@pytest.mark.parametrize(("have", "want"), [(4, 3), (4, 1), (2, 3), (3, 2), (1, 4)])
def test_unsupported_channel_counts_refused(have: int, want: int) -> None:
    with pytest.raises(GenaugError, match=f"{have} channels to {want} channels"):
        convert_channels(_batch(c=have), want)


def test_non_batch_refused() -> None:
    with pytest.raises(GenaugError, match=r"\(N, C, H, W\)"):
        convert_channels(torch.rand(3, 8, 8), 1)
    with pytest.raises(GenaugError, match="unsqueeze"):
        resize_images(torch.rand(3, 8, 8), 4)


def test_resize_shapes_and_range() -> None:
    x = _batch(h=8, w=8)
    assert resize_images(x, 32).shape == (2, 3, 32, 32)
    assert resize_images(x, 4).shape == (2, 3, 4, 4)
    assert resize_images(x, (6, 10)).shape == (2, 3, 6, 10)
    for size in (4, 5, 32):
        out = resize_images(x, size)
        assert out.dtype == torch.float32
        assert float(out.min()) >= 0.0 and float(out.max()) <= 1.0


def test_resize_same_size_is_noop() -> None:
    x = _batch()
    assert resize_images(x, 8) is x
    assert resize_images(x, (8, 8)) is x


def test_resize_constant_image_stays_constant() -> None:
    x = torch.full((1, 1, 9, 7), 0.25)
    assert torch.allclose(resize_images(x, 3), torch.full((1, 1, 3, 3), 0.25), atol=1e-6)
    assert torch.allclose(resize_images(x, 20), torch.full((1, 1, 20, 20), 0.25), atol=1e-6)


def test_resize_uint8_in_uint8_out() -> None:
    x = torch.full((2, 1, 8, 8), 128, dtype=torch.uint8)
    out = resize_images(x, 16)
    assert out.dtype == torch.uint8
    assert torch.equal(out, torch.full((2, 1, 16, 16), 128, dtype=torch.uint8))


def test_resize_bad_size_refused() -> None:
    with pytest.raises(GenaugError, match="image size"):
        resize_images(_batch(), 0)
    with pytest.raises(GenaugError, match="image size"):
        resize_images(_batch(), (4, 4, 4))  # type: ignore[arg-type]


def test_inputs_not_modified_in_place() -> None:
    x = _batch()
    before = x.clone()
    convert_channels(x, 1)
    resize_images(x, 16)
    resize_images(x, 4)
    to_uint8_images(x)
    to_float_images(x)
    assert torch.equal(x, before)
    gray = _batch(c=1)
    gray_before = gray.clone()
    out = convert_channels(gray, 3)
    out.add_(1.0)
    assert torch.equal(gray, gray_before)
    u8 = torch.randint(0, 256, (2, 3, 4, 4), dtype=torch.uint8)
    u8_before = u8.clone()
    f = to_float_images(u8)
    f.mul_(0)
    assert torch.equal(u8, u8_before)


def test_uint8_round_trip() -> None:
    u8 = torch.arange(256, dtype=torch.uint8).view(1, 1, 16, 16)
    f = to_float_images(u8)
    assert f.dtype == torch.float32
    assert float(f.min()) == 0.0 and float(f.max()) == 1.0
    assert torch.equal(to_uint8_images(f), u8)


def test_to_uint8_rounds_and_clamps() -> None:
    x = torch.tensor([-0.5, 0.0, 0.5 / 255, 0.6 / 255, 1.0, 2.0])
    assert to_uint8_images(x).tolist() == [0, 0, 0, 1, 255, 255]


def test_float_inputs_cast_to_float32() -> None:
    x = torch.rand(2, 2, dtype=torch.float64)
    out = to_float_images(x)
    assert out.dtype == torch.float32
    assert torch.allclose(out.double(), x, atol=1e-6)


def test_bad_dtypes_refused() -> None:
    with pytest.raises(GenaugError, match="int32"):
        to_float_images(torch.zeros(2, dtype=torch.int32))
    with pytest.raises(GenaugError, match="to_float_images"):
        to_uint8_images(torch.zeros(2, dtype=torch.int64))
