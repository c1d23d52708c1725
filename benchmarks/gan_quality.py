"""Issue 3 acceptance: do the default GAN and C-GAN draw recognisable digits, and how fast?

Three measurements on digits at 32 px (training part of the fixed 70/30 split):

1. ``quality``: train each of ``--models`` (default vae, gan, cgan) with its default budget;
   report wall time, the share of 1,000 class-conditional samples the reference classifier (a
   small CNN trained on the same real training images) labels as their conditioning class, and a
   quick Frechet distance between samples and real test images in that classifier's feature space.
2. ``few-shot``: the GAN on 50 training images (5 per class): DiffAugment "auto" (translation,
   cutout), the full policy (color,translation,cutout) and off. Besides FD it reports a quick
   copying check: the mean pixel distance from each sample to its nearest training image,
   divided by the same for real test images (about 1 = as novel as fresh real data; well below
   1 = the generator copies its training images).
3. ``recon``: the C-GAN encoder's mean reconstruction error |G(E(x)) - x| on real test images vs
   the error of decoding random latents of the same class, |G(z) - x|.

    python benchmarks/gan_quality.py --out runs/bench-gan [--parts quality,few-shot,recon]
        [--models vae gan cgan gan:diff_augment=off] [--threads 1]

Prints one JSON report and writes it to ``<out>/report.json``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
from scipy import linalg

from genaug.data import ImageDataset, few_shot_split, load_dataset, train_test_split
from genaug.eval.reference import (
    ReferenceClassifier,
    accuracy,
    conditional_accuracy,
    train_reference_classifier,
)
from genaug.models import Generator
from genaug.train import TrainConfig, train


@torch.no_grad()
def frechet_distance(classifier: ReferenceClassifier, a: torch.Tensor, b: torch.Tensor) -> float:
    """Frechet distance between two image sets (N, C, H, W) in the classifier's feature space."""
    feats = [classifier.features(x).double().numpy() for x in (a, b)]
    mu = [f.mean(0) for f in feats]
    cov = [np.cov(f, rowvar=False) for f in feats]
    root = linalg.sqrtm(cov[0] @ cov[1])
    return float(((mu[0] - mu[1]) ** 2).sum() + np.trace(cov[0] + cov[1] - 2 * root.real))


@torch.no_grad()
def class_samples(model: Generator, labels: torch.Tensor, seed: int = 1) -> torch.Tensor:
    rng = torch.Generator(device=model.device).manual_seed(seed)
    return model.sample(len(labels), labels=labels.to(model.device), generator=rng).cpu()


def nearest_neighbour_ratio(
    samples: torch.Tensor, train: torch.Tensor, test: torch.Tensor
) -> float:
    """Mean distance sample -> nearest training image over the same for real test images."""

    def mean_nearest(a: torch.Tensor) -> float:
        return float(torch.cdist(a.flatten(1), train.flatten(1)).min(dim=1).values.mean())

    return mean_nearest(samples) / mean_nearest(test)


def parse_model_spec(spec: str) -> tuple[str, dict]:
    """``"gan:diff_augment=off,loss=hinge"`` -> ``("gan", {"diff_augment": "off", ...})``."""
    name, _, rest = spec.partition(":")
    pairs = (item.split("=", 1) for item in rest.split(",") if item)
    return name, {key: _value(value) for key, value in pairs}


def _value(text: str):
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def train_and_judge(
    name: str,
    data: ImageDataset,
    test: ImageDataset,
    judge: ReferenceClassifier,
    out: Path,
    args: argparse.Namespace,
    **model_args,
) -> dict:
    """Train ``name`` on ``data``; return time, conditional accuracy and FD to ``test``."""
    started = time.perf_counter()
    result = train(
        TrainConfig(
            model=name,
            out=str(out),
            steps=args.steps,
            device=args.device,
            seed=args.seed,
            overwrite=True,
            progress=False,
            model_args=model_args,
        ),
        dataset=data,
    )
    seconds = time.perf_counter() - started
    model = result.model.cpu()
    samples = class_samples(model, test.targets)
    copying = nearest_neighbour_ratio(samples, data.float_images(), test.float_images())
    return {
        "model": name,
        "model_args": model_args,
        "train_images": len(data),
        "steps": result.steps,
        "train_seconds": round(seconds, 1),
        "conditional_accuracy_1000": round(conditional_accuracy(model, judge, n=1000), 4),
        "frechet_distance_to_test": round(frechet_distance(judge, samples, test.float_images()), 2),
        "nearest_train_distance_ratio": round(copying, 3),
        "last_losses": {k: round(v, 4) for k, v in result.losses.items()},
    }


@torch.no_grad()
def reconstruction_errors(run: Path, test: ImageDataset) -> dict:
    """Mean |G(E(x)) - x| vs mean |G(z) - x| (same class, random z) on real test images."""
    from genaug import load_generator

    model = load_generator(run)
    x, y = test.float_images(), test.targets
    recon = model.decode(model.encode(x, y).mean, y)
    rng = torch.Generator().manual_seed(0)
    random = model.decode(torch.randn(len(x), model.latent_dim, generator=rng), y)
    return {
        "test_images": len(x),
        "mean_abs_error_encode_decode": round(float((recon - x).abs().mean()), 4),
        "mean_abs_error_random_latent": round(float((random - x).abs().mean()), 4),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="runs/bench-gan")
    parser.add_argument(
        "--models",
        nargs="+",
        default=["vae", "gan", "cgan"],
        help="generator names, optionally with arguments: gan:diff_augment=off,loss=hinge",
    )
    parser.add_argument("--parts", default="quality,few-shot,recon")
    parser.add_argument("--steps", type=int, default=None, help="default: each family's budget")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    parts = set(args.parts.split(","))
    out = Path(args.out)

    digits = load_dataset("digits", image_size=32)
    train_part, test_part = train_test_split(digits, test_fraction=0.3, test_seed=0)
    judge = train_reference_classifier(train_part, device="cpu")
    report: dict = {
        "torch_threads": torch.get_num_threads(),
        "judge_real_test_accuracy": round(accuracy(judge, test_part), 4),
        "judge_frechet_train_vs_test": round(
            frechet_distance(judge, train_part.float_images(), test_part.float_images()), 2
        ),
    }
    if "quality" in parts:
        report["quality"] = []
        for spec in args.models:
            name, model_args = parse_model_spec(spec)
            folder = out / spec.replace(":", "-").replace("=", "-").replace(",", "-")
            row = train_and_judge(name, train_part, test_part, judge, folder, args, **model_args)
            report["quality"].append(row)
            print(json.dumps(row), flush=True)
    if "few-shot" in parts:
        # 5 labelled images per class from the same training part (the test part is shared).
        few = few_shot_split(digits, shots_per_class=5, seed=args.seed, test_fraction=0.3)
        report["few_shot_50"] = []
        for policy in ("auto", "color,translation,cutout", "off"):
            folder = out / f"few-{policy.replace(',', '-')}"
            row = train_and_judge(
                "gan", few.labeled, test_part, judge, folder, args, diff_augment=policy
            )
            report["few_shot_50"].append(row)
            print(json.dumps(row), flush=True)
    if "recon" in parts:
        run = out / "cgan"
        if not (run / "checkpoints").is_dir():
            train_and_judge("cgan", train_part, test_part, judge, run, args)
        report["cgan_reconstruction"] = reconstruction_errors(run, test_part)
    print(json.dumps(report, indent=2))
    out.mkdir(parents=True, exist_ok=True)
    (out / "report.json").write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
