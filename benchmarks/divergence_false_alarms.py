"""Issue 22: do the divergence checks of ``genaug train`` stay quiet on healthy runs?

``genaug.train.health`` stops a run when a loss grows past ``LOSS_GROWTH_LIMIT`` times its value
at the first step, or when the samples of a fixed batch of seeds collapse to one image (spread
below ``SPREAD_FLOOR`` after a checkpoint reached ``SPREAD_VARIED``). This trains every
registered family (``test_*`` variants left out) on digits at its defaults (32 px, its own
steps, batch size and learning rate, a checkpoint every 500 steps) and reports per run whether an
alarm stopped it, and the margins: the largest loss growth seen at any log step (against the
limit) and, at each checkpoint, the sample spread (against the floor), with the ratio of the
lowest spread after the first varied checkpoint to the floor.

    python benchmarks/divergence_false_alarms.py [--families vae gan ...] [--seeds 0 1]
        [--steps N] [--out runs/divergence-false-alarms]

``--steps`` replaces the families' budgets (say so when quoting the result). Results go to
``benchmarks/results/divergence_false_alarms.json``, one entry per (family, seed), kept across
runs of the script (finished entries are not run again).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from genaug.errors import GenaugError
from genaug.io import atomic_write_json
from genaug.models import list_generators
from genaug.train import TrainConfig, TrainingDiverged, health, train

RESULT = Path(__file__).parent / "results" / "divergence_false_alarms.json"


class _Recorder:
    """Wraps the two checks to keep the margins they saw."""

    def __init__(self) -> None:
        self.growth = 0.0
        self.spreads: list[float] = []
        self._problem = health.HealthWatch.problem
        self._spread = health.sample_spread

    def __enter__(self) -> _Recorder:
        recorder = self

        def problem(watch: health.HealthWatch, losses: dict[str, float]) -> str | None:
            for name, value in losses.items():
                start = watch.reference.get(name)
                if start is not None:
                    growth = abs(value) / max(abs(start), 1.0)
                    recorder.growth = max(recorder.growth, growth)
            return recorder._problem(watch, losses)

        def spread(*args, **kwargs) -> float:
            value = recorder._spread(*args, **kwargs)
            recorder.spreads.append(value)
            return value

        health.HealthWatch.problem = problem
        health.sample_spread = spread
        return self

    def __exit__(self, *exc: object) -> None:
        health.HealthWatch.problem = self._problem
        health.sample_spread = self._spread


def run_one(family: str, seed: int, steps: int | None, out: Path) -> dict:
    config = TrainConfig(
        model=family,
        data="digits",
        out=str(out / f"{family}-seed{seed}"),
        steps=steps,
        seed=seed,
        device="cpu",
        progress=False,
        overwrite=True,
    )
    started = time.perf_counter()
    entry: dict = {"family": family, "seed": seed, "steps_asked": steps}
    with _Recorder() as recorder:
        try:
            result = train(config)
            entry.update(alarm=None, steps=result.steps)
        except TrainingDiverged as exc:
            entry.update(alarm=str(exc))
        except GenaugError as exc:  # a family this setting cannot train (needs an argument)
            entry.update(not_run=str(exc))
            return entry
    spreads = recorder.spreads
    varied = [i for i, s in enumerate(spreads) if s >= health.SPREAD_VARIED]
    after = spreads[varied[0] :] if varied else []
    entry.update(
        seconds=round(time.perf_counter() - started, 1),
        max_loss_growth=round(recorder.growth, 3),
        loss_growth_limit=health.LOSS_GROWTH_LIMIT,
        checkpoint_spreads=[round(s, 5) for s in spreads],
        lowest_spread_after_varied_over_floor=(
            round(min(after) / health.SPREAD_FLOOR, 2) if after else None
        ),
    )
    return entry


def _summary(runs: list[dict], previous: dict, command: str) -> dict:
    """Alarms over the runs that ran, the largest loss growth and the lowest spread ratio."""
    ran = [r for r in runs if "not_run" not in r]
    alarms = sum(r["alarm"] is not None for r in ran)
    ratios = [r["lowest_spread_after_varied_over_floor"] for r in ran]
    return {
        "runs": len(ran),
        "alarms": alarms,
        "false_alarm_rate": alarms / max(len(ran), 1),
        "largest_loss_growth": max((r["max_loss_growth"] for r in ran), default=None),
        "lowest_spread_over_floor": min((x for x in ratios if x is not None), default=None),
        "not_run": sorted({r["family"] for r in runs if "not_run" in r}),
        "commands": sorted({*previous.get("commands", []), command}),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--families", nargs="*", help="default: every registered non-test one")
    parser.add_argument("--seeds", nargs="*", type=int, default=[0])
    parser.add_argument("--steps", type=int, help="replace the families' own budgets")
    parser.add_argument("--out", default="runs/divergence-false-alarms")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    families = args.families or [f for f in list_generators() if not f.startswith("test_")]
    results = json.loads(RESULT.read_text()) if RESULT.is_file() else {"runs": []}
    done = {(r["family"], r["seed"], r["steps_asked"]) for r in results["runs"]}
    for family in families:
        for seed in args.seeds:
            if (family, seed, args.steps) in done:
                continue
            entry = run_one(family, seed, args.steps, Path(args.out))
            print(json.dumps(entry), flush=True)
            results["runs"].append(entry)
            command = "python benchmarks/divergence_false_alarms.py " + " ".join(
                f"--{k} {' '.join(map(str, v)) if isinstance(v, list) else v}"
                for k, v in vars(args).items()
                if v
            )
            results["summary"] = _summary(results["runs"], results.get("summary", {}), command)
            atomic_write_json(RESULT, results)


if __name__ == "__main__":
    main()
