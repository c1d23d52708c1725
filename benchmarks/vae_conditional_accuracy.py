"""Issue 2 acceptance: does the default conditional VAE draw recognisable digits?

Trains `vae` with its default budget on the training part of digits (32 px), then a small CNN judge
on the same real images; reports wall time, the judge's real test accuracy, and the share of 1,000
class-conditional samples the judge labels as their conditioning class.

    python benchmarks/vae_conditional_accuracy.py --out runs/bench-vae [--device cpu]
"""

from __future__ import annotations

import argparse
import json
import time

import torch

from genaug.data import load_dataset, train_test_split
from genaug.eval.reference import accuracy, conditional_accuracy, train_reference_classifier
from genaug.train import TrainConfig, train


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="runs/bench-vae")
    parser.add_argument("--model", default="vae")
    parser.add_argument("--steps", type=int, default=None, help="default: the family's budget")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    digits = load_dataset("digits", image_size=32)
    train_part, test_part = train_test_split(digits, test_fraction=0.3, test_seed=0)
    started = time.perf_counter()
    result = train(
        TrainConfig(
            model=args.model,
            out=args.out,
            steps=args.steps,
            device=args.device,
            seed=args.seed,
            overwrite=True,
            progress=False,
        ),
        dataset=train_part,
    )
    seconds = time.perf_counter() - started
    judge = train_reference_classifier(train_part, device=args.device)
    report = {
        "model": args.model,
        "steps": result.steps,
        "train_seconds": round(seconds, 1),
        "torch_threads": torch.get_num_threads(),
        "judge_real_test_accuracy": round(accuracy(judge, test_part), 4),
        "conditional_accuracy_1000": round(conditional_accuracy(result.model, judge, n=1000), 4),
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
