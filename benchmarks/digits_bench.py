"""The published digits benchmark: run (or resume) it and copy its report to benchmarks/results/.

    python benchmarks/digits_bench.py                       # the full grid of benchmarks/digits.yaml
    python benchmarks/digits_bench.py --shots 1 --generator-data pool \
        --conditions none,flipcrop,affine,trivialaugment,randaugment,vae,...   # a part of it

The run folder (default runs/digits-bench, with the cached generators) is resumable: run the
same command again, or a larger part of the grid, and finished runs are kept. The published
files say exactly which part of the full grid ran. ``--publish-only`` rewrites the report from
the finished runs without training anything. ``--config FILE --name NAME`` publishes another
grid as ``benchmarks/results/NAME.*``. Under ``torchrun`` the ranks share the grid by seed (on a
CPU, 2 one-thread processes do more than one 2-thread process):

    torchrun --nproc-per-node 2 benchmarks/digits_bench.py --config benchmarks/digits_guided.yaml \
        --name digits-guided --out runs/digits-guided
"""

from __future__ import annotations

import argparse
import json
import shlex
import shutil
import sys
from pathlib import Path

from genaug import distributed
from genaug.bench.config import CONFIG_NAME, GENERATORS_DIR, RUNS_NAME
from genaug.bench.run import (
    BenchConfig,
    build_bench_config,
    parse_int_list,
    parse_seeds,
    read_runs,
    report_bench,
    run_bench,
)
from genaug.io import atomic_write_text

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default=str(HERE / "digits.yaml"), help="the full grid")
    parser.add_argument(
        "--name", default="digits", help="publish as results/NAME.md, .json, _*.png"
    )
    parser.add_argument("--out", default="runs/digits-bench")
    parser.add_argument("--shots", help="a part of the grid's shot counts, e.g. 1,2")
    parser.add_argument("--seeds", help="never fewer for published numbers (default: all 10)")
    parser.add_argument("--conditions", help="a part of the grid's conditions")
    parser.add_argument("--generator-data", help="pool and/or labeled")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--publish-only", action="store_true", help="report, train nothing")
    parser.add_argument(
        "--merge-from",
        help="with --publish-only: comma-separated bench folders of the same settings (parts of "
        "the grid run as separate processes) whose runs and generators join --out first",
    )
    parser.add_argument("--no-progress", action="store_true")
    parser.add_argument("--note", help="a sentence on how this publication ran (machine, load)")
    args = parser.parse_args(argv)
    command = "python benchmarks/digits_bench.py " + " ".join(
        shlex.quote(a) for a in (argv if argv is not None else sys.argv[1:])
    )

    config_path = Path(args.config)
    full = build_bench_config(config_path).validate()
    if args.publish_only:
        if args.merge_from:
            parts = [Path(p) for p in args.merge_from.split(",") if p]
            merge_benches(Path(args.out), parts, config_path)
        result = report_bench(args.out, command=command)
    else:
        config = build_bench_config(
            config_path,
            out=args.out,
            shots=parse_int_list(args.shots) if args.shots else None,
            seeds=parse_seeds(args.seeds) if args.seeds else None,
            conditions=args.conditions,
            generator_data=args.generator_data.split(",") if args.generator_data else None,
            device=args.device,
            resume=True,
            progress=not args.no_progress,
        )
        try:
            result = run_bench(config, command=command)
            if not distributed.is_main():  # rank 0 publishes
                return
        finally:
            distributed.shutdown()
    ran = result.summary["config"]
    counts = {k: result.summary.get(k, 0) for k in ("runs_found", "runs_expected")}
    scope = _scope(full.to_dict(), {**ran, **counts}, _relative(config_path))
    if args.note:
        scope += f"\n**How it ran.** {args.note}\n"
    RESULTS.mkdir(parents=True, exist_ok=True)
    markdown = Path(result.files["summary_md"]).read_text()
    # The report's opening verdict (with vs without a generator) stays first; the scope follows.
    head, marker, rest = markdown.partition("\nCommand:")
    name = args.name
    atomic_write_text(RESULTS / f"{name}.md", f"{head.rstrip()}\n\n{scope}{marker}{rest}")
    shutil.copyfile(result.files["summary_json"], RESULTS / f"{name}.json")
    # Every run (per seed), so the publication can be re-analysed without rerunning it.
    shutil.copyfile(Path(args.out) / RUNS_NAME, RESULTS / f"{name}_runs.jsonl")
    for key in ("accuracy_png", "gain_png", "augmented_png"):
        if key in result.files:
            shutil.copyfile(result.files[key], RESULTS / f"{name}_{key.removesuffix('_png')}.png")
    print(f"{scope}\nwrote {RESULTS / f'{name}.md'} (+ {name}.json, {name}_runs.jsonl, _*.png)")


def _relative(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(HERE.parent))
    except ValueError:
        return str(path)


def merge_benches(out: Path, parts: list[Path], config_path: Path) -> None:
    """Add the finished runs and generators of ``parts`` to the bench in ``out``.

    Every part must hold a bench of the same settings (only the grid's axes may differ); the
    axes of ``out`` become the union, in the order of the full grid.
    """
    saved = json.loads((out / CONFIG_NAME).read_text())
    mine = BenchConfig.from_dict(saved)
    done = read_runs(out / RUNS_NAME)
    for part in parts:
        other = json.loads((part / CONFIG_NAME).read_text())
        changed = mine.differences(other)
        if changed:
            raise SystemExit(f"{part} holds a bench with other settings ({', '.join(changed)}).")
        for key in ("shots", "conditions", "generator_data"):
            saved[key] = saved[key] + [v for v in other[key] if v not in saved[key]]
        saved["generators"] = {**(other.get("generators") or {}), **(saved.get("generators") or {})}
        new = [r for k, r in read_runs(part / RUNS_NAME).items() if k not in done]
        with open(out / RUNS_NAME, "a") as f:
            f.writelines(json.dumps(r) + "\n" for r in new)
        done.update({r["key"]: r for r in new})
        for folder in (part / GENERATORS_DIR).glob("*"):
            if not (out / GENERATORS_DIR / folder.name).exists():
                shutil.copytree(folder, out / GENERATORS_DIR / folder.name)
        print(f"merged {len(new)} runs from {part}")
    full = build_bench_config(config_path).to_dict()
    saved["shots"] = sorted(saved["shots"])
    order = {c: i for i, c in enumerate(full["conditions"])}
    saved["conditions"] = sorted(saved["conditions"], key=lambda c: order.get(c, len(order)))
    atomic_write_text(out / CONFIG_NAME, json.dumps(saved, indent=2) + "\n")


def _scope(full: dict, ran: dict, config_name: str) -> str:
    """A paragraph naming the part of the full grid this publication covers."""
    unit = "episodes" if full.get("ways") else "seeds"
    lines = [
        f"**Scope.** The full published grid is `{config_name}`: "
        f"shots {full['shots']}, {len(full['seeds'])} {unit}, generator data "
        f"{full['generator_data']}, {len(full['conditions'])} conditions.",
    ]
    missing = {
        "shot counts": [s for s in full["shots"] if s not in ran["shots"]],
        unit: [s for s in full["seeds"] if s not in ran["seeds"]],
        "generator data": [g for g in full["generator_data"] if g not in ran["generator_data"]],
        "conditions": [c for c in full["conditions"] if c not in ran["conditions"]],
    }
    if any(missing.values()):
        lines.append(
            "This publication ran only a part of it, for lack of compute (2 shared CPU cores): "
            f"shots {ran['shots']}, {unit} {ran['seeds']}, generator data "
            f"{ran['generator_data']}, conditions {', '.join(ran['conditions'])}."
        )
        for what, items in missing.items():
            if items:
                lines.append(f"Not run: {what} {', '.join(map(str, items))}.")
    elif ran.get("runs_found", 0) < ran.get("runs_expected", 0):
        lines.append(
            "This publication covers every axis of it but not every cell: the lines 'Not run at "
            "this shot count' below name the cells left out."
        )
    else:
        lines.append("This publication ran all of it.")
    return " ".join(lines) + "\n"


if __name__ == "__main__":
    main()
