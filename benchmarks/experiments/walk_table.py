"""Experiment 3 (benchmarks/results/experiments.md): the neighbour walk, 1 shot, seeds 100-103.

Reads the exploration bench folders runs/exp1 and runs/exp4-exp8 (made by the commands listed in
experiments.md) and prints the table: each variant's paired gain over RandAugment alone.

    python benchmarks/experiments/walk_table.py
"""

import json

import numpy as np
from scipy import stats


def load(folder):
    """1-shot accuracy by (condition, seed) from a bench folder's runs.jsonl."""
    out = {}
    with open(f"runs/{folder}/runs.jsonl") as lines:
        for line in lines:
            r = json.loads(line)
            if r["shots"] == 1:
                out[(r["condition"], r["seed"])] = r["accuracy"]
    return out


rows = [
    ("exp1", "randaugment+vae@p=1.0", "perturb, p 1 (exp. 1's best)"),
    ("exp1", "randaugment+vae@mode=neighbour", "neighbour, 1 hop, k 5, p 0.5, walk <= midpoint"),
    (
        "exp1",
        "randaugment+vae@mode=neighbour,p=1.0",
        "neighbour, 1 hop, k 5, p 1, walk <= midpoint",
    ),
    (
        "exp4",
        "randaugment+vae@k=20,mode=neighbour,p=1.0",
        "neighbour, 1 hop, k 20, p 1, walk <= midpoint",
    ),
    (
        "exp4",
        "randaugment+vae@k=50,mode=neighbour,p=1.0",
        "neighbour, 1 hop, k 50, p 1, walk <= midpoint",
    ),
    (
        "exp5",
        "randaugment+vae@mode=neighbour,p=1.0",
        "neighbour, 1 hop, k 5, p 1, walk up to the neighbour",
    ),
    (
        "exp6",
        "randaugment+vae@k=10,mode=neighbour,p=1.0",
        "neighbour, 1 hop, k 10, p 1, walk up to the neighbour",
    ),
    ("exp7", "randaugment+vae@hops=2,mode=neighbour,p=1.0", "neighbour, 2 hops"),
    ("exp8", "randaugment+vae@hops=3,mode=neighbour,p=1.0", "neighbour, 3 hops"),
    ("exp7", "randaugment+vae@hops=4,mode=neighbour,p=1.0", "neighbour, 4 hops"),
    ("exp8", "randaugment+vae@hops=6,mode=neighbour,p=1.0", "neighbour, 6 hops (chosen)"),
    ("exp7", "randaugment+vae@hops=10,mode=neighbour,p=1.0", "neighbour, 10 hops"),
    ("exp8", "randaugment+vae@hops=16,mode=neighbour,p=1.0", "neighbour, 16 hops"),
    (
        "exp1",
        "vae@mode=neighbour,p=1.0",
        "neighbour alone (no RandAugment), 1 hop, walk <= midpoint",
    ),
]
base = load("exp1")
ra = np.array([base[("randaugment", s)] for s in range(100, 104)])
print("randaugment", (100 * ra).round(1), round(100 * ra.mean(), 1))
print(
    "| variant | condition | seeds | accuracy % | gain vs RandAugment, pp [95% CI] | p (t) | error cut |"
)
print("|---|---|---|---|---|---|---|")
for folder, cond, label in rows:
    d = load(folder)
    seeds = [s for s in range(100, 104) if (cond, s) in d]
    a = np.array([d[(cond, s)] for s in seeds])
    b = np.array([base[("randaugment", s)] for s in seeds])
    diff = 100 * (a - b)
    m = diff.mean()
    se = diff.std(ddof=1) / np.sqrt(len(diff))
    h = stats.t.ppf(0.975, len(diff) - 1) * se
    p = stats.ttest_rel(a, b).pvalue
    cut = (a.mean() - b.mean()) / (1 - b.mean())
    print(
        f"| {label} | `{cond}` | {len(seeds)} | {100 * a.mean():.1f} | {m:+.1f} [{m - h:+.1f}, {m + h:+.1f}] | {p:.3f} | {100 * cut:.0f}% |"
    )
