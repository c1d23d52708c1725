"""``genaug demo``: the main job, measured, on scikit-learn's bundled digits.

A small ``genaug bench``: 1 and 5 labelled digits per class, one VAE trained on every training
image with the labels hidden (the unlabelled pool), and a timm ``resnet10t`` trained 300 steps
under four conditions - no augmentation, RandAugment, the VAE, RandAugment + the VAE - over 3
seeds, paired per seed. The pool is the same images for every seed (the whole training part,
labelled shots included, labels hidden; never a test image), so the demo trains its VAE once
and every seed uses it (``pool_per_seed=False``); the published benchmark trains one per seed.
The VAE augments in mode ``neighbour``: each labelled image walks to an unlabelled image six
nearest-neighbour hops away in the VAE's latent space, each hop staying among the pool images
that the labelled images' classes reach by label propagation (the guided walk), and the
classifier gets the VAE's variation of that pool image (half a posterior scale of latent
noise, all its real detail kept): the best generated condition of the published
10-seed results (benchmarks/results/digits-guided.md; chosen on exploration seeds, see
benchmarks/results/experiments.md). It prints the table and where the plots are. Running it
again in the same folder reuses finished runs.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from genaug.bench import BenchConfig, run_bench
from genaug.device import resolve_device
from genaug.errors import GenaugError

DEMO_CONDITIONS = ["none", "randaugment", "vae", "randaugment+vae"]
DEMO_GENERATOR_STEPS = 1500  # the VAE's budget, trained once (shared by the seeds)
#: How the demo's VAE augments: walk through the unlabelled pool, within the image's class,
#: all the way to a pool image, and output the VAE's variation of it; every training image.
DEMO_AUGMENTATION = {
    "mode": "neighbour",
    "p": 1.0,
    "strength": 1.0,
    "hops": 6,
    "guide": True,
    "walk": "whole",
    "detail": 1.0,
    "jitter": 0.5,
}


def demo_config(
    out: str = "runs/demo", steps: int | None = None, device: str = "auto"
) -> BenchConfig:
    """The demo's bench settings (``steps``: the VAE's training steps)."""
    return BenchConfig(
        data="digits",
        image_size=32,
        shots=[1, 5],
        seeds=[0, 1, 2],
        model="resnet10t",
        conditions=list(DEMO_CONDITIONS),
        generator_data=["pool"],
        generators={"vae": {"steps": steps or DEMO_GENERATOR_STEPS, **DEMO_AUGMENTATION}},
        pool_per_seed=False,  # one VAE for the 3 seeds: the pool does not depend on the seed
        fused_adamw=True,  # the same AdamW in one kernel: the CPU step about 30% cheaper
        workers=_cpu_workers(device),
        device=device,
        out=out,
        resume=True,
    )


def _cpu_workers(device: str) -> int:
    """On a CPU, one classifier process per core (up to 4): each uses one thread best."""
    if resolve_device(device).type != "cpu":
        return 1
    return max(
        1,
        min(
            4,
            len(os.sched_getaffinity(0))
            if hasattr(os, "sched_getaffinity")
            else (os.cpu_count() or 1),
        ),
    )


def run_demo(out: str = "runs/demo", steps: int | None = None, device: str = "auto") -> dict:
    """Run the demo bench in ``out`` and print its table; returns the summary dict."""
    config = demo_config(out, steps, device)
    command = f"genaug demo --out {out}" + (f" --steps {steps}" if steps else "")
    try:
        result = run_bench(config, command=command)
    except GenaugError as exc:
        if "different settings" not in str(exc):
            raise
        config.overwrite = True  # an earlier demo with other settings: replace it
        result = run_bench(config, command=command)
    summary: dict[str, Any] = result.summary
    print()
    print(_short_table(summary))
    files = result.files
    print(
        f"\nfull table: {files['summary_md']}\nplots: {files['accuracy_png']}, "
        f"{files['gain_png']}\nwhat the classifier saw: {files.get('augmented_png', '-')}\n"
        f"every run: {Path(result.out) / 'runs.jsonl'}"
    )
    print(
        "\nRead it with the published 10-seed results (docs/results.md, 'Digits: does "
        "augmentation help a few-shot classifier?'): on the "
        "digits the pool's gain comes from its real images: handing the classifier the real "
        "pool images this walk reaches does as well as the VAE's variations of them, and so "
        "does label propagation in raw pixels, with no generator at all."
    )
    return summary


def _short_table(summary: dict[str, Any]) -> str:
    """Accuracy per condition and shot count, with the paired gain over RandAugment."""
    config = summary["config"]
    lines = [
        f"timm {config['model']} on {config['data']}, {config['steps']} steps, "
        f"{len(config['seeds'])} seeds; one VAE trained on the pool (labels hidden), walking "
        "6 nearest-neighbour hops through it within the class (guided walk) to a pool image "
        "and outputting the VAE's variation of it. "
        "Test accuracy %, mean [95% t-interval, clipped to 0-100]; gain vs the best classic "
        "condition in pp.",
        "",
        f"{'shots':>5}  {'condition':<18} {'accuracy %':<22} {'gain vs best classic':<22} p (t)",
    ]
    for shots, entry in summary["shots"].items():
        for row in entry["conditions"]:
            if not row["n"]:
                continue
            acc = row["accuracy"]
            interval = (
                f"{100 * acc['mean']:.1f} [{100 * max(0.0, acc['low']):.1f}, "
                f"{100 * min(1.0, acc['high']):.1f}]"
                if acc["low"] is not None
                else f"{100 * acc['mean']:.1f}"
            )
            vs = row.get("vs_best_classic")
            gain = f"{100 * vs['mean_difference']:+.1f}" if vs else "(best classic)"
            p = f"{vs['p_t']:.3f}" if vs and vs["p_t"] is not None else ""
            lines.append(f"{shots:>5}  {row['condition']:<18} {interval:<22} {gain:<22} {p}")
    return "\n".join(lines)
