"""Generator quality on digits (32 px): every family at its default budget, every metric.

For each family in ``--families``: train it with its default budget on the training part of
scikit-learn's digits (the benchmark's split: ``train_test_split(test_fraction=0.3,
test_seed=0)``), or load it from ``--from-runs DIR/<family>`` when that run exists; then ``evaluate_generator`` it
against the same data (one reference classifier, trained once on the training part and cached,
judges them all). Writes ``<out>.md`` and ``<out>.json`` with the command at the top.

    python benchmarks/generator_metrics.py --families vae,gan,cgan --device auto
    python benchmarks/generator_metrics.py --families vae,gan --from-runs runs/bench-metrics

Families that this genaug does not know are skipped with a message.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import sys
import time
from pathlib import Path

import torch

from genaug import __version__, list_generators
from genaug.data import load_dataset, train_test_split
from genaug.device import resolve_device
from genaug.eval import evaluate_generator
from genaug.io import atomic_write_json, atomic_write_text
from genaug.models.checkpoint import resolve_checkpoint_dir
from genaug.train import TrainConfig, train

COLUMNS = [
    ("family", "family"),
    ("steps", "train steps"),
    ("train_seconds", "train wall s"),
    ("conditional_accuracy", "cond. acc."),
    ("frechet_distance", "FD (ref. feats)"),
    ("precision", "precision"),
    ("recall", "recall"),
    ("cas", "CAS"),
    ("cas_ratio", "CAS / real"),
    ("memorisation_share", "memorised"),
    ("nearest_distance_ratio", "NN dist / typ."),
    ("eval_seconds", "eval wall s"),
]


def _trained_seconds(run_dir: Path) -> tuple[float | None, int | None]:
    """Wall time and steps of a finished run, from its stats.jsonl (last line)."""
    stats = run_dir / "stats.jsonl"
    if not stats.is_file():
        return None, None
    lines = [line for line in stats.read_text().splitlines() if line.strip()]
    if not lines:
        return None, None
    last = json.loads(lines[-1])
    return last.get("time"), last.get("step")


def _is_finished(run_dir: Path) -> bool:
    """Whether ``run_dir`` is a training run that reached the steps it was asked for."""
    config = run_dir / "run_config.json"
    if not config.is_file() or not (run_dir / "checkpoints" / "latest").is_file():
        return False
    return _trained_seconds(run_dir)[1] == json.loads(config.read_text()).get("steps")


def _cell(value, digits: int = 3) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def _markdown(command: str, rows: list[dict], real: dict, context: dict) -> str:
    head = "| " + " | ".join(title for _, title in COLUMNS) + " |"
    rule = "|" + "|".join("---" for _ in COLUMNS) + "|"
    body = []
    for row in rows:
        cells = []
        for key, _ in COLUMNS:
            digits = 1 if key.endswith("seconds") else (2 if key == "frechet_distance" else 3)
            cells.append(_cell(row.get(key), digits))
        body.append("| " + " | ".join(cells) + " |")
    real_row = {
        "family": "*real test part*",
        "conditional_accuracy": real["conditional_accuracy_real"],
        "frechet_distance": real["frechet_distance_real"],
        "precision": real["precision_real"],
        "recall": real["recall_real"],
        "cas": real["cas_real"],
        "cas_ratio": 1.0,
        "memorisation_share": real["memorisation_share_real"],
        "nearest_distance_ratio": real.get("nearest_distance_ratio_real"),
    }
    cells = [
        _cell(real_row[key], 2 if key == "frechet_distance" else 3) if key in real_row else ""
        for key, _ in COLUMNS
    ]
    body.append("| " + " | ".join(cells) + " |")
    notes = [
        f"Command: `{command}`",
        "",
        f"Machine: {context['device_name']}; torch {context['torch']}; genaug {__version__}; "
        f"{context['date']}; 1-min load average {context['load_average'][0]} at the start, "
        f"{context['load_average'][1]} at the end on {context['cpu_count']} cores (a load above "
        "the core count means a shared machine: wall times are then inflated and noisy).",
        "Runs: "
        + "; ".join(f"{row['family']} {row['source']}" for row in rows)
        + (
            f"; skipped (unknown here): {', '.join(context['skipped'])}"
            if context["skipped"]
            else ""
        )
        + ".",
        f"Data: digits at 32 px, {real['data']['train_count']} training / "
        f"{real['data']['test_count']} held-out test images (test_fraction 0.3, test_seed 0). "
        f"Each generator was trained on the training part only; {real['n_samples']} samples "
        f"per generator (seed {real['seed']}), class-balanced.",
        f"Judge: the reference CNN, {real['reference_classifier']['steps']} steps on the "
        f"training part, test accuracy {real['reference_classifier']['test_accuracy']:.3f}; FD "
        "and precision/recall (k=3) use its 128-d features (no Inception weights).",
        "",
        "Columns: cond. acc. = share of samples the judge labels as their conditioning class; "
        "FD = Frechet distance to the training part's features; precision/recall = k-NN "
        "manifold estimate (Kynkaanniemi et al. 2019) against an equal-size subset of the "
        "training part; CAS = test accuracy of the judge's recipe trained on the samples only, "
        "CAS / real = that over the same recipe trained on the real training part; memorised = "
        f"share of samples whose nearest training image (pixel L2) is closer than "
        f"{real['relative_threshold']} x the median nearest-neighbour distance between "
        f"training images ({real['memorisation_threshold']:.3f}); NN dist / typ. = the "
        "samples' median distance to their nearest training image over that median (about 1 "
        "for fresh real images, towards 0 for copies).",
        "The *real test part* row scores the held-out real images the same way: what fresh "
        "real images get (its FD and precision/recall at the test-set size, so they are a "
        "floor for the order of magnitude, not an exact target).",
    ]
    return "\n".join(
        ["# Generator quality on digits (32 px)", "", *notes, "", head, rule, *body, ""]
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--families", default="vae,gan,cgan", help="comma-separated names")
    parser.add_argument(
        "--from-runs", help="folder of finished runs (DIR/<family>) to load; others are trained"
    )
    parser.add_argument("--runs", default="runs/bench-metrics", help="where new runs are trained")
    parser.add_argument("--n", type=int, default=1000, help="samples per generator")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--classifier-steps", type=int, default=600)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--threads", type=int, help="CPU threads for torch (default: torch's)")
    parser.add_argument("--out", default="benchmarks/results/generator_quality")
    args = parser.parse_args()
    command = "python " + " ".join(shlex.quote(a) for a in sys.argv)
    if args.threads:
        torch.set_num_threads(args.threads)  # on a busy CPU, 1 thread avoids OpenMP thrashing
    device = resolve_device(args.device)

    digits = load_dataset("digits", image_size=32)
    train_part, _ = train_test_split(digits, test_fraction=0.3, test_seed=0)
    known = set(list_generators())
    runs = Path(args.runs)
    rows: list[dict] = []
    results: dict[str, dict] = {}
    skipped: list[str] = []
    load_start = os.getloadavg()[0]
    last = None
    for family in [f.strip() for f in args.families.split(",") if f.strip()]:
        if family not in known:
            print(f"skipping {family!r}: this genaug has no such generator ({', '.join(known)})")
            skipped.append(family)
            continue
        finished = Path(args.from_runs) / family if args.from_runs else None
        if finished is not None and _is_finished(finished):
            run_dir = finished
            checkpoint = resolve_checkpoint_dir(run_dir)
            seconds, steps = _trained_seconds(run_dir)
            source = f"loaded from {run_dir} (train time from its stats.jsonl)"
            print(f"{family}: loaded {checkpoint}")
        else:
            run_dir = runs / family
            print(f"{family}: training with its default budget into {run_dir} ...", flush=True)
            started = time.perf_counter()
            result = train(
                TrainConfig(
                    model=family,
                    data="digits",
                    image_size=32,
                    out=str(run_dir),
                    device=args.device,
                    seed=args.seed,
                    overwrite=True,
                    progress=False,
                ),
                dataset=train_part,
            )
            seconds, steps, checkpoint = (
                time.perf_counter() - started,
                result.steps,
                result.checkpoint,
            )
            source = f"trained into {run_dir}"
        print(f"{family}: evaluating ...", flush=True)
        started = time.perf_counter()
        metrics = evaluate_generator(
            checkpoint,
            digits,
            n_samples=args.n,
            seed=args.seed,
            device=device,
            out_dir=run_dir / "eval",
            plot=True,
            cache_dir=runs / "reference",
            classifier_steps=args.classifier_steps,
        )
        eval_seconds = time.perf_counter() - started
        row = {
            "family": family,
            "steps": steps,
            "train_seconds": seconds,
            "eval_seconds": eval_seconds,
            "source": source,
            **{key: metrics.get(key) for key, _ in COLUMNS if key in metrics},
        }
        rows.append(row)
        results[family] = {**metrics, "train_seconds": seconds, "train_steps": steps}
        last = metrics
        print(json.dumps(row), flush=True)

    if last is None:
        print("no family was evaluated", file=sys.stderr)
        return 1
    context = {
        "device_name": torch.cuda.get_device_name(device)
        if device.type == "cuda"
        else f"CPU ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)",
        "torch": torch.__version__,
        "date": time.strftime("%Y-%m-%d"),
        "cpu_count": os.cpu_count(),
        "load_average": [round(load_start, 1), round(os.getloadavg()[0], 1)],
        "skipped": skipped,
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_json(
        out.with_suffix(".json"),
        {"command": command, "context": context, "rows": rows, "results": results},
    )
    table = _markdown(command, rows, last, context)
    atomic_write_text(out.with_suffix(".md"), table)
    print(table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
