"""A plain timm training loop with ``GenerativeMix`` after the DataLoader (and timm's Mixup).

    python examples/timm_training.py                      # trains a small VAE on the digits first
    python examples/timm_training.py --checkpoint runs/digits-vae

``GenerativeMix`` takes the whole ``(images, labels)`` batch on the training device, like timm's
``mixup_fn``: one batched generator call per step, no per-image work in the workers. It keeps
the labels; put it before Mixup, whose soft labels then stay as Mixup made them.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import timm
import torch
from timm.data import Mixup
from timm.loss import SoftTargetCrossEntropy
from torch.utils.data import DataLoader

from genaug import GenerativeMix
from genaug.data import load_dataset
from genaug.train import TrainConfig, train


def train_generator(out: Path, tiny: bool) -> Path:
    """Train a conditional VAE on scikit-learn's bundled digits; returns its checkpoint folder."""
    steps = 10 if tiny else 1500
    config = TrainConfig(
        model="test_vae" if tiny else "vae",
        data="digits",
        out=str(out),
        image_size=16 if tiny else 32,
        steps=steps,
        checkpoint_every=steps,
        log_every=max(1, steps // 10),
        device="auto",
        progress=not tiny,
    )
    return train(config).checkpoint


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", help="a trained generator (default: train one first)")
    parser.add_argument("--out", help="working folder (default: a temporary one)")
    parser.add_argument("--tiny", action="store_true", help="tiny settings for a quick check")
    args = parser.parse_args(argv)
    work = Path(args.out or tempfile.mkdtemp(prefix="genaug-example-"))
    checkpoint = args.checkpoint or train_generator(work / "run", args.tiny)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    image_size, steps, batch_size = (16, 3, 32) if args.tiny else (32, 300, 128)

    digits = load_dataset("digits", image_size=image_size)  # (image, label): float (1, S, S)
    loader = DataLoader(digits, batch_size=batch_size, shuffle=True, drop_last=True)
    model = timm.create_model("resnet18", pretrained=False, num_classes=10, in_chans=1)
    model = model.to(device, memory_format=torch.channels_last)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    generative = GenerativeMix(checkpoint, p=0.5, strength=0.8, seed=0).to(device)
    mixup_fn = Mixup(mixup_alpha=0.2, cutmix_alpha=0.0, label_smoothing=0.1, num_classes=10)
    criterion = SoftTargetCrossEntropy()

    step = 0
    model.train()
    while step < steps:
        for images, labels in loader:
            images, labels = images.to(device), labels.to(device)
            images, labels = generative(images, labels)  # per-image, batched, on the device
            images, labels = mixup_fn(images, labels)  # soft labels (B, 10)
            loss = criterion(model(images.contiguous(memory_format=torch.channels_last)), labels)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            step += 1
            if step == steps:
                break
    print(
        f"trained resnet18 for {steps} steps with GenerativeMix + Mixup; last loss {loss.item():.3f}"
    )


if __name__ == "__main__":
    main()
