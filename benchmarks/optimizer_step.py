"""The bench classifier's training step with AdamW as ``foreach`` (the default) and ``fused``.

    python benchmarks/optimizer_step.py --out optimizer-step-cpu.json   # CPU, one thread

A timm ``resnet10t`` (the bench's classifier, 4.9M parameters) at 32 px, batch 32, one thread
(as in a ``genaug bench --workers`` process): the whole step (forward, backward, AdamW) and the
AdamW update alone, for each kernel, interleaved repetition by repetition. Both kernels do the
same arithmetic; ``fused`` makes one pass over the parameters instead of one per operation, so
its weights equal ``foreach``'s only up to float rounding (``BenchConfig.fused_adamw``; the
demo uses it, published grids keep ``foreach`` and reproduce).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import timm
import torch
from timing import interleaved, machine_record
from torch.nn import functional as F

KERNELS = {"foreach": {"foreach": True}, "fused": {"fused": True}}


def make_step(kernel: dict[str, bool], size: int, batch: int, channels: int):
    """A (whole step, AdamW update alone) pair of callables for one AdamW kernel."""
    torch.manual_seed(0)
    model = timm.create_model("resnet10t", pretrained=False, num_classes=10, in_chans=channels)
    optimizer = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=0.05, **kernel)
    images = torch.randn(batch, channels, size, size)
    labels = torch.randint(0, 10, (batch,))

    def step() -> None:
        loss = F.cross_entropy(model(images), labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    step()  # every parameter has a gradient and AdamW state from here on
    return step, optimizer.step


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=32, help="image size in px (default 32)")
    parser.add_argument("--batch", type=int, default=32, help="batch size (default 32)")
    parser.add_argument("--channels", type=int, default=1, help="image channels (default 1)")
    parser.add_argument("--repeats", type=int, default=15, help="timed calls per candidate")
    parser.add_argument("--threads", type=int, default=1, help="CPU threads (default 1)")
    parser.add_argument("--out", help="also write the results as JSON here")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    record = {"args": vars(args), **machine_record(args.threads, torch.device("cpu"))}
    candidates = {}
    for name, kernel in KERNELS.items():
        step, update = make_step(kernel, args.size, args.batch, args.channels)
        candidates[f"step, {name}"] = step
        candidates[f"AdamW update, {name}"] = update
    seconds = interleaved(candidates, args.repeats, torch.device("cpu"))
    record["ms"] = {name: 1000 * value for name, value in seconds.items()}
    record["step_ratio_fused_vs_foreach"] = seconds["step, fused"] / seconds["step, foreach"]
    for name, value in seconds.items():
        print(f"{name:<24} {1000 * value:8.1f} ms")
    print(f"step with fused AdamW: {record['step_ratio_fused_vs_foreach']:.2f}x foreach's time")
    if args.out:
        Path(args.out).write_text(json.dumps(record, indent=2) + "\n")


if __name__ == "__main__":
    main()
