"""Paired gain of every condition of an exploration bench folder over RandAugment, per shot count.

Reads every runs*.jsonl of the folder (a finished bench, or one still running under torchrun)
and prints a markdown table: seeds, mean accuracy, paired mean gain over ``randaugment`` on the
seeds both have [95% t-interval], the paired t-test p-value, and each seed's gain.

    python benchmarks/experiments/paired_table.py runs/exp10
    python benchmarks/experiments/paired_table.py FOLDER_OR_RUNS_FILE BASELINE_CONDITION

A runs file (such as ``benchmarks/results/digits-guided_runs.jsonl``) works as well as a folder;
a second argument makes another condition the baseline (paired differences against it). Several
folders, comma-separated, pair benches run on the same seeds and test images (checked): the
conditions of the second and later ones are named ``FOLDER/condition``.

    python benchmarks/experiments/paired_table.py runs/a,runs/b base:randaugment
"""

import json
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np
from scipy import stats

BASELINE = sys.argv[2] if len(sys.argv) > 2 else "randaugment"

folders = [Path(f) for f in (sys.argv[1] if len(sys.argv) > 1 else "runs/exp10").split(",")]
accuracy: dict[tuple[int, str, str], dict[int, float]] = defaultdict(dict)
tests: dict[tuple[int, int], str] = {}  # (shots, seed) -> the test set's fingerprint
for i, folder in enumerate(folders):
    files = [folder] if folder.is_file() else sorted(folder.glob("runs*.jsonl"))
    for path in files:
        for line in path.read_text().splitlines():
            run = json.loads(line)
            label = folder.parent.name if folder.is_file() else folder.name
            name = run["condition"] if i == 0 else f"{label}/{run['condition']}"
            seen = tests.setdefault((run["shots"], run["seed"]), run.get("test_fingerprint"))
            if seen != run.get("test_fingerprint"):
                raise SystemExit(f"{path}: seed {run['seed']} was tested on other images")
            # Checkpoints apart by their folder (two checkpoint sources are not one cell).
            spec = run.get("source_spec") or run["source"] or "-"
            source = Path(spec.partition(":")[2]).name if spec.startswith("checkpoint:") else spec
            accuracy[(run["shots"], source, name)][run["seed"]] = 100 * run["accuracy"]

print(
    f"| shots | condition | generator data | seeds | accuracy % | gain vs {BASELINE}, pp [95% CI] "
    "| p (t) | per seed |"
)
print("| --- | --- | --- | --- | --- | --- | --- | --- |")
for (shots, source, condition), by_seed in sorted(accuracy.items()):
    base = next((v for (n, _, c), v in accuracy.items() if n == shots and c == BASELINE), {})
    seeds = sorted(set(by_seed) & set(base))
    mean = np.mean(list(by_seed.values()))
    gain = interval = p = per_seed = ""
    if condition != BASELINE and len(seeds) >= 2:
        d = np.array([by_seed[s] - base[s] for s in seeds])
        half = stats.t.ppf(0.975, len(d) - 1) * d.std(ddof=1) / np.sqrt(len(d))
        gain = f"{d.mean():+.1f} [{d.mean() - half:+.1f}, {d.mean() + half:+.1f}]"
        p = f"{stats.ttest_1samp(d, 0.0).pvalue:.3f}" if d.std() > 0 else "-"
        per_seed = " ".join(f"{x:+.1f}" for x in d)
    print(
        f"| {shots} | `{condition}` | {source} | {len(by_seed)} | {mean:.1f} | {gain} | {p} "
        f"| {per_seed} |"
    )
