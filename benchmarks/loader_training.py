"""End to end: an ImageFolder loader feeding a timm training step, with generative augmentation
in each of its three places, against TrivialAugment alone.

    python benchmarks/loader_training.py --out loader-training-cpu.json        # CPU, 32 and 64 px
    python benchmarks/loader_training.py --device cuda --out loader-training-cuda.json

The digits (scikit-learn's 1,797) written as PNGs into an ``ImageFolder`` tree at each size,
``DataLoader(num_workers=2, batch_size=64)`` (fork; one torch thread per worker) with
``v2.PILToTensor()`` and ``v2.TrivialAugmentWide()`` per sample, feeding a timm ``resnet10t``
training step (SGD, cross-entropy) in the main process. Conditions:

- ``trivialaugment``: TrivialAugment alone (the reference);
- ``per sample``: + ``TorchvisionGenerativeAugment`` in the ``transform=`` slot (it infers
  each image's class);
- ``batched in the workers``: + ``GenerativeCollate`` as the ``collate_fn``;
- ``GenerativeMix after the loader``: + ``GenerativeMix`` on the batch, in the main process
  (on the device with ``--device cuda``);
- on the CPU also the step in channels_last and in bfloat16 autocast, and the generator in
  bfloat16 (``precision="bfloat16"``) in the workers and after the loader.

The generator is a default conditional ``vae`` (untrained: a trained one costs the same), mode
``perturb`` at ``--p`` (default 1: every image generated). Each condition runs in turns with
the others, ``--repeats`` times: a few untimed steps (the loader reaches its steady state),
then ``--steps`` timed ones. Reported per condition: images/s delivered to the step (the
timed steps' images over their wall time), the step rate and its ratio to TrivialAugment
alone's, the median step time (forward, backward, optimiser; GenerativeMix included where it
runs) and the median wait for a batch. On CUDA the step runs in bfloat16 autocast and
channels_last, GenerativeMix on the device in bfloat16.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from timing import machine_record, sync
from torch import Tensor
from torch.utils.data import DataLoader

from genaug import GenerativeCollate, GenerativeMix, create_generator, save_generator
from genaug.data import load_dataset
from genaug.transforms.export import image_to_pil
from genaug.transforms.torchvision import TorchvisionGenerativeAugment


@dataclass
class Condition:
    """One way of feeding the step: its loader, and what the step does with each batch."""

    name: str
    loader: str  # which loader (several conditions share the TrivialAugment one)
    mix: GenerativeMix | None = None  # after the loader, before the step
    channels_last: bool = False
    bfloat16: bool = False


def write_digits_folder(root: Path, size: int) -> Path:
    """The digits as PNGs in ``root/<class>/<n>.png`` at ``size`` px (gray; the ImageFolder
    loader opens them as RGB)."""
    digits = load_dataset("digits", image_size=size)
    for name in digits.class_names:
        (root / name).mkdir(parents=True, exist_ok=True)
    for index, (image, label) in enumerate(zip(digits.images, digits.targets)):
        folder = root / digits.class_names[int(label)]
        image_to_pil(image.float() / 255).save(folder / f"{index:04d}.png")
    return root


def make_loaders(root: Path, checkpoint: str, args: argparse.Namespace) -> dict[str, DataLoader]:
    """The loaders the conditions read from (persistent workers, fork)."""
    from torchvision.datasets import ImageFolder
    from torchvision.transforms import v2

    settings = {"mode": "perturb", "p": args.p, "seed": 0}
    per_sample = TorchvisionGenerativeAugment(checkpoint, **settings)
    classic = v2.Compose([v2.PILToTensor(), v2.TrivialAugmentWide()])
    generative = v2.Compose([v2.PILToTensor(), per_sample, v2.TrivialAugmentWide()])

    def loader(transform: Any, collate_fn: Callable | None = None) -> DataLoader:
        return DataLoader(
            ImageFolder(str(root), transform=transform),
            batch_size=args.batch,
            shuffle=True,
            drop_last=True,
            num_workers=args.workers,
            persistent_workers=True,
            collate_fn=collate_fn,
            pin_memory=args.device == "cuda",
            multiprocessing_context="fork",
            generator=torch.Generator().manual_seed(0),
        )

    loaders = {
        "trivialaugment": loader(classic),
        "per sample": loader(generative),
        "batched": loader(classic, GenerativeCollate(checkpoint, **settings)),
    }
    if args.device == "cpu":
        bf16 = GenerativeCollate(checkpoint, precision="bfloat16", **settings)
        loaders["batched bfloat16"] = loader(classic, bf16)
    return loaders


def make_conditions(checkpoint: str, args: argparse.Namespace) -> list[Condition]:
    device = torch.device(args.device)
    settings = {"mode": "perturb", "p": args.p, "seed": 0}
    mix = GenerativeMix(checkpoint, **settings).to(device)  # bfloat16 on CUDA (auto)
    gpu = device.type == "cuda"
    conditions = [
        Condition("trivialaugment", "trivialaugment", channels_last=gpu, bfloat16=gpu),
        Condition("+ generative per sample", "per sample", channels_last=gpu, bfloat16=gpu),
        Condition(
            "+ generative batched in the workers", "batched", channels_last=gpu, bfloat16=gpu
        ),
        Condition("+ GenerativeMix after the loader", "trivialaugment", mix, gpu, gpu),
    ]
    if not gpu:  # CPU precision and memory layout, measured beside the rest
        mix16 = GenerativeMix(checkpoint, precision="bfloat16", **settings)
        conditions += [
            Condition("trivialaugment, step channels_last", "trivialaugment", channels_last=True),
            Condition("trivialaugment, step bfloat16", "trivialaugment", bfloat16=True),
            Condition(
                "trivialaugment, step bfloat16 + channels_last",
                "trivialaugment",
                channels_last=True,
                bfloat16=True,
            ),
            Condition("+ generative batched in the workers, bfloat16", "batched bfloat16"),
            Condition("+ GenerativeMix after the loader, bfloat16", "trivialaugment", mix16),
        ]
    return conditions


def endless(loader: DataLoader) -> Iterator[tuple[Tensor, Tensor]]:
    while True:
        yield from loader


class Trainer:
    """A timm ``resnet10t`` and its SGD step; one copy of the weights for every condition (the
    weights do not change the cost of a step)."""

    def __init__(self, device: torch.device) -> None:
        import timm

        torch.manual_seed(0)
        self.device = device
        self.model = timm.create_model("resnet10t", pretrained=False, num_classes=10).to(device)
        self.optimizer = torch.optim.SGD(self.model.parameters(), lr=0.01, momentum=0.9)
        self.mean = torch.tensor([0.485, 0.456, 0.406], device=device).view(1, 3, 1, 1)
        self.std = torch.tensor([0.229, 0.224, 0.225], device=device).view(1, 3, 1, 1)

    def use_layout(self, condition: Condition) -> None:
        """The weights in the condition's memory layout (once per turn, not per step)."""
        layout = torch.channels_last if condition.channels_last else torch.contiguous_format
        self.model.to(memory_format=layout)

    def step(self, condition: Condition, images: Tensor, labels: Tensor) -> None:
        images = images.to(self.device, non_blocking=True)
        labels = labels.to(self.device, non_blocking=True)
        if condition.mix is not None:
            images, labels = condition.mix(images, labels)
        x = (images.float() / 255 - self.mean) / self.std
        if condition.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        dtype = torch.bfloat16 if condition.bfloat16 else torch.float32
        with torch.autocast(self.device.type, dtype=dtype, enabled=condition.bfloat16):
            loss = torch.nn.functional.cross_entropy(self.model(x), labels)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        sync(self.device)


def run_segment(
    trainer: Trainer, condition: Condition, batches: Iterator, args: argparse.Namespace
) -> dict[str, Any]:
    """``--warmup`` untimed steps, then ``--steps`` timed ones: wall time, step and wait times."""
    trainer.use_layout(condition)
    for _ in range(args.warmup):
        trainer.step(condition, *next(batches))
    steps, waits = [], []
    start = time.perf_counter()
    for _ in range(args.steps):
        before = time.perf_counter()
        images, labels = next(batches)
        fetched = time.perf_counter()
        trainer.step(condition, images, labels)
        waits.append(fetched - before)
        steps.append(time.perf_counter() - fetched)
    return {"wall": time.perf_counter() - start, "steps": steps, "waits": waits}


def measure_size(size: int, folder: Path, args: argparse.Namespace) -> list[dict[str, Any]]:
    """Every condition at ``size`` px, interleaved; one row per condition."""
    torch.manual_seed(0)
    model = create_generator("vae", image_size=size, channels=3, num_classes=10)
    checkpoint = str(save_generator(model, folder / f"vae-{size}"))
    root = write_digits_folder(folder / f"digits-{size}", size)
    loaders = make_loaders(root, checkpoint, args)
    conditions = make_conditions(checkpoint, args)
    trainer = Trainer(torch.device(args.device))
    batches = {name: endless(loader) for name, loader in loaders.items()}
    segments: dict[str, list[dict[str, Any]]] = {c.name: [] for c in conditions}
    for _ in range(args.repeats):
        for condition in conditions:
            segment = run_segment(trainer, condition, batches[condition.loader], args)
            segments[condition.name].append(segment)
    rows = []
    for condition in conditions:
        runs = segments[condition.name]
        rate = statistics.median(args.steps / run["wall"] for run in runs)  # steps per second
        rows.append(
            {
                "size": size,
                "condition": condition.name,
                "images_per_s": rate * args.batch,
                "steps_per_s": rate,
                "step_ms": 1000 * statistics.median(s for run in runs for s in run["steps"]),
                "wait_ms": 1000 * statistics.median(w for run in runs for w in run["waits"]),
            }
        )
    reference = rows[0]["steps_per_s"]
    for row in rows:
        row["vs_trivialaugment"] = row["steps_per_s"] / reference
    del batches, loaders  # the persistent workers end here
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", help="cpu (default) or cuda")
    parser.add_argument("--sizes", default="32,64", help="image sizes in px (default 32,64)")
    parser.add_argument("--batch", type=int, default=64, help="batch size (default 64)")
    parser.add_argument("--workers", type=int, default=2, help="DataLoader workers (default 2)")
    parser.add_argument("--threads", type=int, default=1, help="main-process torch threads")
    parser.add_argument("--p", type=float, default=1.0, help="share generated (default 1)")
    parser.add_argument("--steps", type=int, default=12, help="timed steps per turn")
    parser.add_argument("--warmup", type=int, default=6, help="untimed steps per turn")
    parser.add_argument("--repeats", type=int, default=5, help="turns per condition")
    parser.add_argument("--out", help="also write the results as JSON here")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    record: dict[str, Any] = {"args": vars(args), **machine_record(args.threads, args.device)}
    rows = record["rows"] = []
    with tempfile.TemporaryDirectory() as folder:
        for size in (int(s) for s in args.sizes.split(",")):
            rows += measure_size(size, Path(folder), args)
            print(
                f"\n{'condition, ' + str(size) + ' px':<50} {'img/s':>7} {'x Trivial':>9} "
                f"{'step ms':>8} {'wait ms':>8}"
            )
            for row in (r for r in rows if r["size"] == size):
                print(
                    f"{row['condition']:<50} {row['images_per_s']:>7.0f} "
                    f"{row['vs_trivialaugment']:>8.2f}x {row['step_ms']:>8.1f} "
                    f"{row['wait_ms']:>8.1f}"
                )
    if args.out:
        Path(args.out).write_text(json.dumps(record, indent=2) + "\n")


if __name__ == "__main__":
    main()
