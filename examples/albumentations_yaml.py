"""An Albumentations pipeline with a generative step, saved to YAML and loaded back.

    pip install genaug[albumentations]
    python examples/albumentations_yaml.py                # trains a small VAE on the digits first
    python examples/albumentations_yaml.py --checkpoint runs/digits-vae

The generative transform reads the class from the ``label`` keyword of the call and serialises
as the checkpoint *path*, so the YAML file stays a few lines long and holds no weights.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import albumentations as A
import numpy as np

from genaug import AlbumentationsGenerativeAugment
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

    pipeline = A.Compose(
        [
            A.Affine(rotate=(-10, 10), translate_percent=(-0.1, 0.1), p=0.5),
            A.OneOf(
                [
                    AlbumentationsGenerativeAugment(checkpoint, strength=0.8, label_key="label"),
                    A.RandomBrightnessContrast(),
                ],
                p=0.8,
            ),
        ],
        seed=0,
    )
    yaml_path = work / "pipeline.yaml"
    A.save(pipeline, str(yaml_path), data_format="yaml")
    print(yaml_path.read_text())
    loaded = A.load(str(yaml_path), data_format="yaml")

    digits = load_dataset("digits", image_size=16 if args.tiny else 32)
    count = 16 if args.tiny else 256
    images = digits.images[:count].permute(0, 2, 3, 1).numpy()  # (N, H, W, 1) uint8, HWC
    pipeline.set_random_seed(0)
    loaded.set_random_seed(0)
    for image, label in zip(images, digits.targets[:count].tolist()):
        out = pipeline(image=image, label=label)
        again = loaded(image=image, label=label)
        assert np.array_equal(out["image"], again["image"]) and out["label"] == label
    print(f"the YAML pipeline reproduced the original on {count} digits, image by image")


if __name__ == "__main__":
    main()
