"""The DAGAN's networks: the U-Net generator ``G(x, z)`` and the pair discriminator.

See :mod:`genaug.models.dagan` for the family (training, ``vary``) and why these shapes.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from genaug.models.base import num_resolution_steps, stage_widths
from genaug.models.gan import downsampling_stack, maybe_spectral_norm

UPSAMPLING = ("transposed", "resize")


class UNetGenerator(nn.Module):
    """Images (B, C, S, S) in [0, 1] + noise (B, latent_dim) -> pixel logits (B, C, S, S).

    ``skip_drop`` removes that many of the highest-resolution skip connections (their decoder
    level then sees only the upsampled features and the noise); ``upsample`` is "transposed"
    (4x4 transposed convolutions, nearest-upsampled noise planes) or "resize" (nearest 2x
    upsampling + 3x3 convolution, bilinear noise planes: no checkerboard or 4 px block texture).
    """

    def __init__(
        self,
        channels: int,
        image_size: int,
        width: int,
        latent_dim: int,
        noise_channels: int,
        skip_drop: int = 0,
        upsample: str = "transposed",
    ) -> None:
        super().__init__()
        widths = stage_widths(width, num_resolution_steps(image_size))  # S/2 ... 4 px
        self.noise_channels = noise_channels
        self.noise_mode = "nearest" if upsample == "transposed" else "bilinear"
        # Decoder levels 1 .. L-1 (8 px ... S/2 px) take skips unless among the top skip_drop.
        levels = len(widths) - 1
        self.use_skip = [level <= levels - skip_drop for level in range(1, levels + 1)]
        self.down = nn.ModuleList()
        in_channels = channels
        for i, out_channels in enumerate(widths):
            layers: list[nn.Module] = [nn.Conv2d(in_channels, out_channels, 4, 2, 1, bias=i == 0)]
            if i:  # DCGAN: no BatchNorm on the first layer
                layers.append(nn.BatchNorm2d(out_channels))
            self.down.append(nn.Sequential(*layers, nn.LeakyReLU(0.2, inplace=True)))
            in_channels = out_channels
        # One noise projection per level where noise joins: the 4x4 bottleneck, then each level.
        self.noise = nn.ModuleList(
            nn.Linear(latent_dim, noise_channels * 16, bias=False) for _ in widths
        )
        self.middle = nn.Sequential(
            nn.Conv2d(widths[-1] + noise_channels, widths[-1], 3, 1, 1, bias=False),
            nn.BatchNorm2d(widths[-1]),
            nn.ReLU(inplace=True),
        )
        self.up = nn.ModuleList()
        in_channels = widths[-1]
        for out_channels, skip in zip(reversed(widths[:-1]), self.use_skip):  # 8 ... S/2 px
            self.up.append(
                nn.Sequential(
                    _upsample(in_channels, out_channels, upsample, bias=False),
                    nn.BatchNorm2d(out_channels),
                    nn.ReLU(inplace=True),
                )
            )
            in_channels = (2 if skip else 1) * out_channels + noise_channels  # (+ skip) + noise
        self.to_image = _upsample(in_channels, channels, upsample, bias=True)

    def noise_planes(self, level: int, z: Tensor, size: int) -> Tensor:
        """Noise (B, latent_dim) -> planes (B, noise_channels, size, size) for one level."""
        planes = self.noise[level](z).view(z.shape[0], self.noise_channels, 4, 4)
        if size == 4:
            return planes
        if self.noise_mode == "nearest":
            return F.interpolate(planes, size=(size, size), mode="nearest")
        return F.interpolate(planes, size=(size, size), mode="bilinear", align_corners=False)

    def forward(self, images: Tensor, z: Tensor) -> Tensor:
        h = images * 2 - 1  # centre the inputs
        skips = []
        for block in self.down:
            h = block(h)
            skips.append(h)  # (B, w_k, S / 2^(k+1), S / 2^(k+1))
        h = self.middle(torch.cat([skips.pop(), self.noise_planes(0, z, 4)], dim=1))  # (B, F, 4, 4)
        for level, block in enumerate(self.up, start=1):
            h = block(h)  # (B, w, 2H, 2W)
            skip = skips.pop()
            kept = [skip] if self.use_skip[level - 1] else []
            h = torch.cat([h, *kept, self.noise_planes(level, z, h.shape[-1])], dim=1)
        return self.to_image(h)  # (B, C, S, S) logits


def _upsample(in_channels: int, out_channels: int, mode: str, bias: bool) -> nn.Module:
    """A 2x upsampling convolution: transposed 4x4, or nearest resize + 3x3 convolution."""
    if mode == "transposed":
        return nn.ConvTranspose2d(in_channels, out_channels, 4, 2, 1, bias=bias)
    return nn.Sequential(
        nn.Upsample(scale_factor=2, mode="nearest"),
        nn.Conv2d(in_channels, out_channels, 3, 1, 1, bias=bias),
    )


class PairDiscriminator(nn.Module):
    """Pairs of images (B, C, S, S) x 2 in [0, 1] -> logits (B,): "two members of one class"."""

    def __init__(self, channels: int, image_size: int, width: int, spectral_norm: bool) -> None:
        super().__init__()
        widths = stage_widths(width, num_resolution_steps(image_size))
        self.features = downsampling_stack(2 * channels, widths, spectral_norm=spectral_norm)
        self.head = maybe_spectral_norm(nn.Linear(widths[-1] * 16, 1), spectral_norm)

    def forward(self, anchors: Tensor, others: Tensor) -> Tensor:
        pairs = torch.cat([anchors, others], dim=1) * 2 - 1  # (B, 2C, S, S)
        return self.head(self.features(pairs).flatten(1)).squeeze(1)
