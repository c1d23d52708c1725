"""Enlarge a small labelled dataset with generated images (``SyntheticDataset``).

    python examples/synthetic_dataset.py                  # trains a small VAE on the digits first
    python examples/synthetic_dataset.py --checkpoint runs/digits-vae

``SyntheticDataset`` gives the same image for the same (seed, index), so an experiment repeats;
it goes into a ``ConcatDataset`` beside the real images, or into ``MixedDataset`` when you want a
fixed synthetic share. (``genaug sample --checkpoint CKPT --n 1000 --out DIR/`` writes the same
kind of images as an ImageFolder tree instead.)
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import timm
import torch
from torch.utils.data import ConcatDataset, DataLoader

from genaug import MixedDataset, SyntheticDataset
from genaug.data import few_shot_split, load_dataset
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
    image_size, shots, per_class, steps = (16, 2, 4, 3) if args.tiny else (32, 10, 100, 200)

    digits = load_dataset("digits", image_size=image_size)
    split = few_shot_split(digits, shots_per_class=shots, seed=0)  # a small labelled set
    synthetic = SyntheticDataset(
        checkpoint, n_per_class=per_class, seed=0, image_size=image_size, channels=1
    )
    enlarged = ConcatDataset([split.labeled, synthetic])
    half_synthetic = MixedDataset(split.labeled, synthetic, ratio=0.5)
    print(
        f"real {len(split.labeled)}, synthetic {len(synthetic)}, together {len(enlarged)}; "
        f"a 50% mix holds {len(half_synthetic)}"
    )

    model = timm.create_model("resnet18", pretrained=False, num_classes=10, in_chans=1)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    loader = DataLoader(enlarged, batch_size=32, shuffle=True)  # a whole batch per generator call
    step = 0
    while step < steps:
        for images, labels in loader:
            loss = torch.nn.functional.cross_entropy(model(images), labels)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            step += 1
            if step == steps:
                break
    model.eval()
    with torch.no_grad():
        test = split.test
        accuracy = (model(test.float_images()).argmax(1) == test.targets).float().mean().item()
    print(f"trained {steps} steps on real + synthetic digits; test accuracy {accuracy:.3f}")


if __name__ == "__main__":
    main()
