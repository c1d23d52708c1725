"""Generative augmentation in a torchvision ``ImageFolder`` pipeline (transforms v2): per
sample in the ``transform=`` slot, then batched in the DataLoader workers.

    python examples/torchvision_imagefolder.py            # trains a small VAE on the digits first
    python examples/torchvision_imagefolder.py --checkpoint runs/digits-vae

The generative transform is one more step of a ``v2.Compose`` in ``ImageFolder``'s
``transform=`` slot. That slot hands the transform the image alone, so the conditional generator
conditions on the class it infers for the image (its class head); the dataset's label is not
touched. (To condition on the dataset's labels instead, pass the whole ``(image, label)`` sample
with ``JointTransformDataset(ImageFolder(root), pipeline)``.) Built from a checkpoint path, the
transform is safe in DataLoader workers (fork or spawn): each worker loads a CPU copy once and
draws its own random stream.

The generator costs much less per image on a batch: ``GenerativeCollate`` as the loader's
``collate_fn`` collates each batch, then augments it in one call in the worker that made it,
each image with the draw the per-sample transform would give it, conditioned on the batch's
labels. timm's ``Mixup`` comes after it, on the training device.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import torch
from torch.utils.data import DataLoader
from torchvision.datasets import ImageFolder
from torchvision.transforms import v2

from genaug import GenerativeCollate, TorchvisionGenerativeAugment
from genaug.data import load_dataset
from genaug.train import TrainConfig, train
from genaug.transforms.export import image_to_pil


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


def write_image_folder(root: Path, image_size: int, per_class: int) -> Path:
    """Stand-in for your data: some digits as PNGs in ``root/<class>/<n>.png``."""
    digits = load_dataset("digits", image_size=image_size)
    for label, name in enumerate(digits.class_names):
        (root / name).mkdir(parents=True, exist_ok=True)
        members = torch.nonzero(digits.targets == label).flatten()[:per_class]
        for k, index in enumerate(members.tolist()):
            image_to_pil(digits.images[index].float() / 255).save(root / name / f"{k}.png")
    return root


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", help="a trained generator (default: train one first)")
    parser.add_argument("--out", help="working folder (default: a temporary one)")
    parser.add_argument("--tiny", action="store_true", help="tiny settings for a quick check")
    args = parser.parse_args(argv)
    work = Path(args.out or tempfile.mkdtemp(prefix="genaug-example-"))
    checkpoint = args.checkpoint or train_generator(work / "run", args.tiny)
    image_size = 16 if args.tiny else 32
    root = write_image_folder(work / "digits", image_size, per_class=4 if args.tiny else 50)

    generative = TorchvisionGenerativeAugment(checkpoint, p=0.5, strength=0.8, seed=0)
    pipeline = v2.Compose(
        [
            v2.PILToTensor(),  # (C, H, W) uint8
            v2.Grayscale(),  # the digits are gray; the transform would convert RGB anyway
            v2.Resize(image_size),
            v2.RandomAffine(degrees=10, translate=(0.1, 0.1)),
            generative,  # any size and channel count in; the same out
            v2.ToDtype(torch.float32, scale=True),
        ]
    )
    data = ImageFolder(str(root), transform=pipeline)  # the image-only slot
    loader = DataLoader(data, batch_size=16, shuffle=True, num_workers=2)
    seen, shapes = 0, set()
    for images, labels in loader:  # (B, 1, S, S) float32 in [0, 1], (B,)
        seen += len(labels)  # ... your training step on (images, labels) goes here
        shapes.add(tuple(images.shape[1:]))
    print(f"augmented {seen} images from {root} in 2 workers; image shapes {sorted(shapes)}")

    # Batched in the workers: the per-sample transforms stay in transform=, the generator runs
    # once per batch after collation (uint8 in, uint8 out), then timm's Mixup on the device.
    from timm.data import Mixup

    per_sample = v2.Compose([v2.PILToTensor(), v2.Grayscale(), v2.Resize(image_size)])
    collate = GenerativeCollate(checkpoint, p=0.5, strength=0.8, seed=0)
    data = ImageFolder(str(root), transform=per_sample)
    loader = DataLoader(data, batch_size=16, shuffle=True, num_workers=2, collate_fn=collate)
    mixup = Mixup(mixup_alpha=0.2, num_classes=len(data.classes))
    seen = 0
    for images, labels in loader:  # (16, 1, S, S) uint8, augmented in the workers
        images, soft = mixup(images.float() / 255, labels)  # .to(device) first on a GPU
        seen += len(labels)
    print(f"augmented {seen} images batched in the workers, then timm's Mixup")


if __name__ == "__main__":
    main()
