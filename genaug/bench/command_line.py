"""The command line of ``genaug bench``: a flag for every :class:`BenchConfig` field that declares
one (:mod:`genaug.bench.plan.flags`), and the few flags that are no setting of a grid: the config
file, overrides for every generator, ``--episodes``, the report and the publication.
"""

from __future__ import annotations

import argparse
import dataclasses
from typing import Any

from genaug.bench.plan.config import BenchConfig
from genaug.bench.plan.files import build_bench_config, episodes_as_seeds
from genaug.bench.plan.flags import Flag, positive_int
from genaug.bench.report.publish import check_name
from genaug.errors import GenaugError

__all__ = [
    "add_bench_arguments",
    "bench_config_from_arguments",
    "check_publishing",
    "flag_settings",
]

# --generative-KEY: a value of every generator the conditions name (build_bench_config).
_GENERATIVE = ("mode", "p", "strength")


def add_bench_arguments(parser: argparse.ArgumentParser) -> None:
    """Declare the flags of ``genaug bench`` on ``parser`` (every one defaults to None: a
    setting a flag does not name keeps the config file's value, or the default)."""
    parser.add_argument("--config", help="YAML or JSON file of bench settings (flags override)")
    for field in dataclasses.fields(BenchConfig):
        declared = field.metadata.get("flag")
        if isinstance(declared, Flag):
            declared.add_to(parser, field.name)
    parser.add_argument("--episodes", type=positive_int, help="episodic: N runs episodes 0..N-1")
    parser.add_argument("--generator-steps", type=positive_int, help="for every generator")
    parser.add_argument(
        "--generative-mode", help="auto, perturb, resample, interpolate, neighbour or vary"
    )
    parser.add_argument("--generative-p", type=float, help="share of generated images per batch")
    parser.add_argument("--generative-strength", type=float, help="the mode's magnitude, [0, 1]")
    parser.add_argument(
        "--report-only", action="store_true", help="write the report of --out, run nothing"
    )
    publish = parser.add_argument_group("publishing (after the grid, or with --report-only)")
    publish.add_argument(
        "--publish",
        metavar="NAME",
        help="copy the report to RESULTS/NAME.md, .json, _runs.jsonl, _*.png",
    )
    publish.add_argument(
        "--results",
        default="benchmarks/results",
        help="where --publish writes (default: %(default)s)",
    )
    publish.add_argument("--note", help="a sentence on how the published grid ran (machine, load)")
    publish.add_argument(
        "--merge-from",
        help="with --report-only: comma-separated bench folders of the same settings (parts of "
        "the grid run as separate processes) whose runs and generators join --out first",
    )


def flag_settings(args: argparse.Namespace) -> dict[str, Any]:
    """The :class:`BenchConfig` settings the flags in ``args`` name, parsed."""
    settings: dict[str, Any] = {}
    for field in dataclasses.fields(BenchConfig):
        declared = field.metadata.get("flag")
        value = getattr(args, field.name, None)
        if isinstance(declared, Flag) and value is not None:
            settings[field.name] = declared.parse(value) if declared.parse else value
    return settings


def bench_config_from_arguments(args: argparse.Namespace) -> BenchConfig:
    """The bench's settings: ``--config``'s file, overridden by the flags."""
    settings = flag_settings(args)
    if args.episodes is not None:
        if "seeds" in settings:
            raise GenaugError("--episodes and --seeds name the same axis; pass one of them.")
        settings["seeds"] = episodes_as_seeds(args.episodes)
    generative = {key: getattr(args, f"generative_{key}") for key in _GENERATIVE}
    return build_bench_config(
        args.config, generator_steps=args.generator_steps, generative=generative, **settings
    )


def check_publishing(args: argparse.Namespace) -> None:
    """Refuse publishing flags that cannot work, before anything runs (one sentence)."""
    if args.merge_from and not args.report_only:
        raise GenaugError(
            "--merge-from joins the runs of finished bench folders; pass it with --report-only."
        )
    if args.publish is not None:
        check_name(args.publish)
    elif args.note:
        raise GenaugError("--note describes a publication; pass it with --publish NAME.")
