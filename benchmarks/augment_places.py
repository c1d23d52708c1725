"""The three places of generative augmentation in a loader, per image, against TrivialAugment.

    python benchmarks/augment_places.py --out augment-places.json   # CPU, one thread, 32 px

One thread (as in a DataLoader worker), a default conditional ``vae`` (untrained: the same cost
as a trained one), ``perturb`` at p = 1 (every image generated), uint8 RGB images; candidates
interleaved repetition by repetition, reported as images/s and as a ratio to
``v2.TrivialAugmentWide`` applied per image:

- per sample, in ``ImageFolder``'s ``transform=`` slot: ``TorchvisionGenerativeAugment`` on a
  (C, H, W) image alone (it infers the class), and on an ``(image, label)`` sample;
- batched in the workers: ``GenerativeCollate`` on a list of ``(image, label)`` samples
  (collation, per-image draws and the batched call), with the labels and without;
- batched on the device after the loader: the core ``GenerativeAugment`` on the collated batch.

``--profile`` also splits one per-sample call into the generator passes it makes at batch 1
(class head, encoder, decoder: each timed alone, interleaved with the whole call) and the rest.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from collections.abc import Callable
from pathlib import Path

import torch
from timing import interleaved, machine_record
from torch import Tensor

from genaug import GenerativeAugment, GenerativeCollate, create_generator, save_generator
from genaug.transforms.torchvision import TorchvisionGenerativeAugment


def default_checkpoint(size: int, folder: Path) -> str:
    """A default conditional ``vae`` (RGB, 10 classes, class head), untrained, saved."""
    torch.manual_seed(0)
    model = create_generator("vae", image_size=size, channels=3, num_classes=10)
    return str(save_generator(model, folder / f"vae-{size}"))


def place_candidates(
    checkpoint: str, images: Tensor, labels: Tensor, precisions: list[str]
) -> dict[str, Callable[[], object]]:
    """Each place's call on the same images (a list of (C, H, W) uint8 and their labels)."""
    from torchvision.transforms import v2

    trivial = v2.TrivialAugmentWide()
    singles = list(images)
    samples = [(image, int(label)) for image, label in zip(singles, labels)]
    candidates: dict[str, Callable[[], object]] = {
        "TrivialAugmentWide (per image)": lambda: [trivial(image) for image in singles],
    }
    for precision in precisions:
        settings = {"p": 1.0, "seed": 0, "precision": precision}
        per_sample = TorchvisionGenerativeAugment(checkpoint, **settings)
        collate = GenerativeCollate(checkpoint, **settings)
        guessing = GenerativeCollate(checkpoint, use_labels=False, **settings)
        core = GenerativeAugment(checkpoint, **settings)
        candidates.update(
            {
                f"per sample, image alone ({precision})": (
                    lambda t=per_sample: [t(image) for image in singles]
                ),
                f"per sample, (image, label) ({precision})": (
                    lambda t=per_sample: [t(sample) for sample in samples]
                ),
                f"batched in the workers: GenerativeCollate ({precision})": (
                    lambda c=collate: c(samples)
                ),
                f"batched in the workers, classes inferred ({precision})": (
                    lambda c=guessing: c(samples)
                ),
                f"batched core: GenerativeAugment ({precision})": (
                    lambda a=core: a(images, labels)
                ),
            }
        )
    return candidates


def per_sample_profile(checkpoint: str, repeats: int) -> dict[str, float]:
    """Where one per-sample call (an image alone, p = 1) spends its time, in shares: the
    generator passes at batch 1, each timed alone (interleaved with the whole call)."""
    call = TorchvisionGenerativeAugment(checkpoint, p=1.0, seed=0)
    model = call.generator
    image = torch.randint(0, 256, (3, model.image_size, model.image_size), dtype=torch.uint8)
    work = (image[None].float() / 255).contiguous(memory_format=torch.channels_last)
    label, z = torch.tensor([3]), torch.randn(1, model.latent_dim)
    calls = 200

    def repeated(fn: Callable[[], object]) -> Callable[[], None]:
        def run() -> None:
            with torch.inference_mode():
                for _ in range(calls):
                    fn()

        return run

    seconds = interleaved(
        {
            "whole call": repeated(lambda: call(image)),
            "class head pass (label-free encoder + head)": repeated(
                lambda: model.class_logits(work)
            ),
            "encoder pass (with the class)": repeated(lambda: model.encode(work, label)),
            "decoder pass": repeated(lambda: model.decode(z, label)),
        },
        repeats,
        torch.device("cpu"),
    )
    whole = seconds.pop("whole call")
    shares = {name: value / whole for name, value in seconds.items()}
    shares["the rest (checks, conversions, draws, adapter)"] = 1.0 - sum(shares.values())
    return {"ms_per_call": 1000 * whole / calls, **shares}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=32, help="image size in px (default 32)")
    parser.add_argument("--batch", type=int, default=64, help="images per candidate call")
    parser.add_argument("--repeats", type=int, default=9, help="timed calls per candidate")
    parser.add_argument("--threads", type=int, default=1, help="CPU threads (default 1)")
    parser.add_argument("--bfloat16", action="store_true", help="also the bfloat16 generator")
    parser.add_argument("--profile", action="store_true", help="split a per-sample call")
    parser.add_argument("--out", help="also write the results as JSON here")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    record = {"args": vars(args), **machine_record(args.threads, torch.device("cpu"))}
    with tempfile.TemporaryDirectory() as folder:
        checkpoint = default_checkpoint(args.size, Path(folder))
        generator = torch.Generator().manual_seed(0)
        shape = (args.batch, 3, args.size, args.size)
        images = torch.randint(0, 256, shape, dtype=torch.uint8, generator=generator)
        labels = torch.arange(args.batch) % 10
        precisions = ["float32", "bfloat16"] if args.bfloat16 else ["float32"]
        candidates = place_candidates(checkpoint, images, labels, precisions)
        seconds = interleaved(candidates, args.repeats, torch.device("cpu"))
        reference = seconds["TrivialAugmentWide (per image)"]
        rows = record["places"] = [
            {
                "candidate": name,
                "images_per_s": args.batch / value,
                "vs_trivialaugment": reference / value,
            }
            for name, value in seconds.items()
        ]
        print(f"\n{'candidate, ' + str(args.size) + ' px':<60} {'img/s':>8}  {'x Trivial':>9}")
        for row in rows:
            print(
                f"{row['candidate']:<60} {row['images_per_s']:>8.0f}  "
                f"{row['vs_trivialaugment']:>8.3f}x"
            )
        if args.profile:
            profile = record["per_sample_profile"] = per_sample_profile(checkpoint, args.repeats)
            print(f"\nper-sample call, image alone: {profile['ms_per_call']:.2f} ms")
            for name, share in profile.items():
                if name != "ms_per_call":
                    print(f"  {share:6.1%}  {name}")
    if args.out:
        Path(args.out).write_text(json.dumps(record, indent=2) + "\n")


if __name__ == "__main__":
    main()
