"""Throughput of generative augmentation against classic augmentation, measured side by side.

    python benchmarks/throughput.py                     # CPU, 2 threads, eager
    python benchmarks/throughput.py --compile           # also torch.compile (slow to start)
    python benchmarks/throughput.py --device cuda --batch 1024

Two measurements, each taken in one run on one machine, candidates interleaved repetition by
repetition (so a busy machine slows them alike), reported as ratios:

1. Images per second of the batched generative transform (every mode, 32 and 64 px, p=1 so
   every image is generated) against torchvision's TrivialAugmentWide and RandAugment and an
   Albumentations classic pipeline on the same uint8 RGB images. The classic transforms run
   per image, as in a Dataset (one random draw per image); torchvision's batched call, which
   applies one draw to the whole batch, is listed for reference.
2. A timm resnet18 training step (32 px, batch 128, float32) with and without GenerativeMix
   (p=0.5) in front of it: the overhead of generative augmentation on the training device.
3. Images per second of the Kornia adapter (KorniaGenerativeAugment) beside Kornia's own
   RandomAffine and ColorJitter, on float images on the device (32 and 64 px, p=1), alone and
   inside AugmentationSequential. ``--parts kornia`` runs this one alone.
4. Images per second of mode ``vary`` (image-conditioned: a DAGAN, one U-Net pass per image and
   L passes for a chain of L variations; a pair-conditional VAE, one variation; at 32 px the
   ``diffusion`` family's SDEdit at strength 0.5 with 1, 5 and 10 DDIM steps per edit, and
   drawing its variations from an offline cache made once, as ``SyntheticDataset(...,
   exemplars=shots).to_image_dataset()`` gives) against TrivialAugmentWide and RandAugment per
   image, as in 1. ``--parts vary`` runs this one alone (``--batch 64 --repeats 3`` keeps the
   diffusion rows to minutes on a CPU).

The generators are untrained (the same size and cost as trained ones). Targets (CPU, 2 threads):
generative >= 1.0x TrivialAugment img/s at 32 px; training step overhead <= 10%.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from timing import cpu_has_fast_bfloat16, interleaved, machine_record

from genaug import GenerativeAugment, GenerativeMix, create_generator
from genaug.data import ImageDataset
from genaug.device import autocast_for, memory_format_for
from genaug.transforms import NeighbourWalk

MODES = ("perturb", "resample", "interpolate", "neighbour")
BANK_SIZE = 1257  # mode neighbour walks through a bank this size (the digits pool)


def classic_candidates(images: torch.Tensor) -> dict[str, Callable[[], object]]:
    """Classic augmentation of the same uint8 (B, 3, S, S) images, per image and batched."""
    import albumentations as A
    from torchvision.transforms import v2

    trivial, rand = v2.TrivialAugmentWide(), v2.RandAugment()
    size = images.shape[-1]
    album = A.Compose(
        [
            A.HorizontalFlip(p=0.5),
            A.Affine(rotate=(-15, 15), translate_percent=(-0.1, 0.1), scale=(0.9, 1.1), p=0.8),
            A.RandomBrightnessContrast(p=0.8),
            A.CoarseDropout(
                num_holes_range=(1, 1),
                hole_height_range=(size // 4, size // 4),
                hole_width_range=(size // 4, size // 4),
                p=0.5,
            ),
        ],
        seed=0,
    )
    cpu_images = images.cpu()
    hwc = [np.ascontiguousarray(image.permute(1, 2, 0).numpy()) for image in cpu_images]
    return {
        "TrivialAugmentWide (per image)": lambda: [trivial(image) for image in cpu_images],
        "RandAugment (per image)": lambda: [rand(image) for image in cpu_images],
        "Albumentations classic (per image)": lambda: [album(image=image) for image in hwc],
        "TrivialAugmentWide (batched, 1 draw)": lambda: trivial(images),
    }


def transform_throughput(args: argparse.Namespace, device: torch.device) -> list[dict]:
    rows = []
    precisions = ["float32"]
    if device.type == "cuda" or cpu_has_fast_bfloat16():
        precisions.append("bfloat16")
    for size in (32, 64):
        images = torch.randint(0, 256, (args.batch, 3, size, size), dtype=torch.uint8)
        images = images.to(device)
        labels = (torch.arange(args.batch) % 10).to(device)
        candidates = classic_candidates(images)
        for mode in MODES:
            model = create_generator(args.family, image_size=size, channels=3, num_classes=10)
            walk = {}
            if mode == "neighbour":  # a labelled bank (the generator is conditional), 6 hops
                bank = torch.randint(0, 256, (BANK_SIZE, 3, size, size), dtype=torch.uint8)
                targets = torch.arange(BANK_SIZE) % 10
                labelled = ImageDataset(bank, targets, [str(c) for c in range(10)])
                walk = {"neighbours": NeighbourWalk(labelled, hops=6)}
            for precision in precisions:
                for compiled in (False, True) if args.compile else (False,):
                    augment = GenerativeAugment(
                        model,
                        mode=mode,
                        p=1.0,
                        seed=0,
                        precision=precision,
                        compile=compiled,
                        **walk,
                    ).to(device)
                    name = f"generative {mode} ({precision}{', compiled' if compiled else ''})"
                    candidates[name] = lambda a=augment, x=images, y=labels: a(x, y)
        seconds = interleaved(candidates, args.repeats, device)
        reference = seconds["TrivialAugmentWide (per image)"]
        for name, value in seconds.items():
            rows.append(
                {
                    "size": size,
                    "transform": name,
                    "images_per_s": args.batch / value,
                    "vs_trivialaugment": reference / value,
                }
            )
    return rows


def training_overhead(args: argparse.Namespace, device: torch.device) -> list[dict]:
    import timm

    torch.manual_seed(0)
    batch, size = 128, 32
    model = timm.create_model("resnet18", pretrained=False, num_classes=10)
    model = model.to(device, memory_format=torch.channels_last).train()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    images = torch.rand(batch, 3, size, size, device=device)
    labels = torch.randint(0, 10, (batch,), device=device)
    generator = create_generator(args.family, image_size=size, channels=3, num_classes=10)
    settings = {"eager float32": ("float32", False)}
    if device.type == "cuda" or cpu_has_fast_bfloat16():
        settings["eager bfloat16"] = ("bfloat16", False)
        if args.compile:
            settings["compiled bfloat16"] = ("bfloat16", True)
    mixes = {
        name: GenerativeMix(generator, p=0.5, seed=0, precision=prec, compile=comp).to(device)
        for name, (prec, comp) in settings.items()
    }

    def step(mix: GenerativeMix | None) -> None:
        x, y = (images, labels) if mix is None else mix(images, labels)
        loss = torch.nn.functional.cross_entropy(
            model(x.contiguous(memory_format=torch.channels_last)), y
        )
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    candidates: dict[str, Callable[[], object]] = {"without": lambda: step(None)}
    for name, mix in mixes.items():
        candidates[f"with GenerativeMix ({name})"] = lambda m=mix: step(m)
    seconds = interleaved(candidates, args.repeats, device)
    base = seconds["without"]
    return [
        {"step": name, "seconds": value, "overhead": value / base - 1}
        for name, value in seconds.items()
    ]


def kornia_candidates(
    args: argparse.Namespace, device: torch.device, size: int
) -> dict[str, Callable[[], object]]:
    """Kornia's own RandomAffine / ColorJitter and the Kornia adapter, on the same batch.

    Every candidate gets the same float (B, 3, S, S) images in [0, 1] on the device (channels_last
    on CUDA, as a training batch there), p=1 (every image transformed, with its own draw); Kornia's
    own run under bf16 autocast on CUDA, the adapter at each precision. The generator is the
    untrained conditional one of part 1, given the labels at the call.
    """
    import kornia.augmentation as K

    from genaug.transforms.kornia import KorniaGenerativeAugment

    torch.manual_seed(0)
    images = torch.rand(args.batch, 3, size, size, device=device)
    images = images.contiguous(memory_format=memory_format_for(device))
    labels = (torch.arange(args.batch) % 10).to(device)
    autocast = autocast_for(device)
    affine = K.RandomAffine(degrees=15, translate=(0.1, 0.1), scale=(0.9, 1.1), p=1.0)
    jitter = K.ColorJitter(0.2, 0.2, 0.2, 0.05, p=1.0)

    def own(transform: torch.nn.Module) -> Callable[[], object]:
        def call() -> object:
            with autocast():
                return transform(images)

        return call

    def generative(aug: KorniaGenerativeAugment, pipeline: torch.nn.Module) -> Callable[[], object]:
        def call() -> object:
            with aug.use_labels(labels):
                return pipeline(images)

        return call

    candidates: dict[str, Callable[[], object]] = {
        "kornia RandomAffine": own(affine),
        "kornia ColorJitter": own(jitter),
        "kornia AugmentationSequential(RandomAffine, ColorJitter)": own(
            K.AugmentationSequential(affine, jitter).to(device)
        ),
    }
    model = create_generator(args.family, image_size=size, channels=3, num_classes=10)
    precisions = ["float32"]
    if device.type == "cuda" or cpu_has_fast_bfloat16():
        precisions.append("bfloat16")
    for precision in precisions:
        aug = KorniaGenerativeAugment(model, p=1.0, precision=precision).to(device)
        sequence = K.AugmentationSequential(affine, aug, jitter).to(device)
        candidates[f"KorniaGenerativeAugment perturb ({precision})"] = generative(aug, aug)
        name = f"AugmentationSequential(RandomAffine, generative ({precision}), ColorJitter)"
        candidates[name] = generative(aug, sequence)
    core = GenerativeAugment(model, p=1.0, seed=0).to(device)
    candidates["GenerativeAugment perturb (float32, the core, for reference)"] = lambda: core(
        images, labels
    )
    return candidates


def kornia_throughput(args: argparse.Namespace, device: torch.device) -> list[dict]:
    """Images/s of the Kornia adapter beside Kornia's own RandomAffine and ColorJitter."""
    rows = []
    for size in (32, 64):
        seconds = interleaved(kornia_candidates(args, device, size), args.repeats, device)
        reference = seconds["kornia ColorJitter"]
        for name, value in seconds.items():
            rows.append(
                {
                    "size": size,
                    "transform": name,
                    "images_per_s": args.batch / value,
                    "vs_colorjitter": reference / value,
                }
            )
    return rows


def diffusion_candidates(images: torch.Tensor, device: torch.device) -> dict[str, Callable]:
    """The diffusion family's ``vary`` (SDEdit at strength 0.5, 1/5/10 DDIM steps per edit,
    float32) on the batch, and drawing the same count of variations from an offline cache
    (uint8 images made once; the draw is an index gather, as a classifier's batch)."""
    candidates: dict[str, Callable[[], object]] = {}
    for steps in (1, 5, 10):
        # An edit of strength s takes ceil(s * sample_steps) steps: 0.5 x 2n -> n.
        model = create_generator("diffusion", image_size=32, channels=3, sample_steps=2 * steps)
        augment = GenerativeAugment(model, mode="vary", p=1.0, strength=0.5, seed=0).to(device)
        candidates[f"generative vary, diffusion, {steps} DDIM steps (float32)"] = (
            lambda a=augment, x=images: a(x)
        )
    cache = torch.randint(0, 256, (8 * len(images), *images.shape[1:]), dtype=torch.uint8)
    cache = cache.to(device)
    generator = torch.Generator(device).manual_seed(0)

    def draw() -> torch.Tensor:
        index = torch.randint(0, len(cache), (len(images),), generator=generator, device=device)
        return cache[index]

    candidates["diffusion variations drawn from an offline cache"] = draw
    return candidates


def vary_throughput(args: argparse.Namespace, device: torch.device) -> list[dict]:
    """Images/s of mode ``vary`` (a ``dagan``, chains of 1-3; a ``pairvae``) against the
    classic transforms."""
    rows = []
    for size in (32, 64):
        images = torch.randint(0, 256, (args.batch, 3, size, size), dtype=torch.uint8)
        images = images.to(device)
        classic = classic_candidates(images)
        candidates = {k: v for k, v in classic.items() if "per image" in k and "Album" not in k}
        # dagan: float32 chains of 1-3; bfloat16 (where the device runs it natively) for one
        # variation. pairvae (the pair-conditional VAE): one float32 variation.
        runs = [("dagan", "float32", 1), ("dagan", "float32", 2), ("dagan", "float32", 3)]
        if device.type == "cuda" or cpu_has_fast_bfloat16():
            runs.append(("dagan", "bfloat16", 1))
        runs.append(("pairvae", "float32", 1))
        models = {f: create_generator(f, image_size=size, channels=3) for f in ("dagan", "pairvae")}
        for family, precision, chain in runs:
            augment = GenerativeAugment(
                models[family], mode="vary", p=1.0, seed=0, precision=precision
            ).to(device)

            def call(a: GenerativeAugment = augment, x: torch.Tensor = images, n: int = chain):
                return a(x, params=a.make_params(x, chain=n))  # draws and applies, as forward

            candidates[f"generative vary, {family}, chain {chain} ({precision})"] = call
        if size == 32:
            candidates.update(diffusion_candidates(images, device))
        seconds = interleaved(candidates, args.repeats, device)
        reference = seconds["TrivialAugmentWide (per image)"]
        for name, value in seconds.items():
            rows.append(
                {
                    "size": size,
                    "transform": name,
                    "images_per_s": args.batch / value,
                    "vs_trivialaugment": reference / value,
                }
            )
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", help="cpu (default) or cuda")
    parser.add_argument("--threads", type=int, default=2, help="CPU threads (default 2)")
    parser.add_argument("--batch", type=int, default=256, help="images per transform call")
    parser.add_argument("--repeats", type=int, default=7, help="timed calls per candidate")
    parser.add_argument("--family", default="vae", help="generator (default vae: every mode)")
    parser.add_argument("--compile", action="store_true", help="also measure torch.compile")
    parser.add_argument("--out", help="also write the results as JSON here")
    parser.add_argument(
        "--parts",
        default="transforms,training,kornia,vary",
        help="comma-separated parts to run: transforms, training, kornia, vary (default all)",
    )
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    machine = machine_record(args.threads, device)
    parts = {part.strip() for part in args.parts.split(",") if part.strip()}
    unknown = parts - {"transforms", "training", "kornia", "vary"}
    if unknown:
        parser.error(
            f"unknown --parts {', '.join(sorted(unknown))}; use transforms, training, kornia, vary"
        )
    record: dict[str, object] = {"args": vars(args), **machine}
    if "transforms" in parts:
        transforms = record["transforms"] = transform_throughput(args, device)
        print(f"\n{'size':>4}  {'transform':<52} {'img/s':>10}  {'x TrivialAugment':>16}")
        for row in transforms:
            print(
                f"{row['size']:>4}  {row['transform']:<52} {row['images_per_s']:>10.0f}  "
                f"{row['vs_trivialaugment']:>15.2f}x"
            )
    if "training" in parts:
        steps = record["training_step"] = training_overhead(args, device)
        print(f"\n{'resnet18 training step, 32 px, batch 128':<52} {'s/step':>10}  {'overhead':>9}")
        for row in steps:
            print(f"{row['step']:<52} {row['seconds']:>10.4f}  {row['overhead']:>+8.1%}")
    if "kornia" in parts:
        import kornia

        record["kornia_version"] = kornia.__version__
        rows = record["kornia"] = kornia_throughput(args, device)
        print(f"\n{'size':>4}  {'Kornia batch transform':<76} {'img/s':>10}  {'x ColorJitter':>13}")
        for row in rows:
            print(
                f"{row['size']:>4}  {row['transform']:<76} {row['images_per_s']:>10.0f}  "
                f"{row['vs_colorjitter']:>12.2f}x"
            )
    if "vary" in parts:
        rows = record["vary"] = vary_throughput(args, device)
        header = (
            f"{'size':>4}  {'transform (mode vary)':<52} {'img/s':>10}  {'x TrivialAugment':>16}"
        )
        print("\n" + header)
        for row in rows:
            print(
                f"{row['size']:>4}  {row['transform']:<52} {row['images_per_s']:>10.0f}  "
                f"{row['vs_trivialaugment']:>15.2f}x"
            )
    if args.out:
        Path(args.out).write_text(json.dumps(record, indent=2) + "\n")


if __name__ == "__main__":
    main()
