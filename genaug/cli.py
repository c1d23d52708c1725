"""The ``genaug`` command line: thin over the library (parse -> config -> library call).

Bad input ends with one sentence on stderr and exit status 2, never a traceback; OS errors (a full
disk, a read-only folder) are bad input too. Notices (a damaged checkpoint skipped) are one
``genaug: notice:`` line each.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from genaug import distributed, lock
from genaug.bench.plan.flags import positive_int
from genaug.device import tune_cpu_allocator
from genaug.errors import GenaugError, notices_as_lines
from genaug.io import as_os_error, os_error_message

EXIT_BAD_INPUT = 2


def _add_device(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--device", default="auto", help="auto (CUDA if present), cpu or cuda (default: auto)"
    )


def _build_parser() -> argparse.ArgumentParser:
    from genaug.version import __version__

    parser = argparse.ArgumentParser(
        prog="genaug", description="Generative data augmentation for PyTorch vision pipelines."
    )
    parser.add_argument("--version", action="version", version=f"genaug {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    _add_train(commands.add_parser("train", help="train a generator on your images"))
    _add_sample(commands.add_parser("sample", help="draw images from a trained generator"))
    _add_evaluate(commands.add_parser("evaluate", help="measure a generator against real data"))
    info = commands.add_parser("info", help="check a checkpoint and print its config")
    info.add_argument("--checkpoint", required=True)
    commands.add_parser("list", help="list registered generators and dataset specs")
    _add_bench(
        commands.add_parser(
            "bench", help="measure what augmentation does for a timm classifier (a grid of seeds)"
        )
    )
    demo = commands.add_parser("demo", help="the main job on the bundled digits")
    demo.add_argument("--out", default="runs/demo", help="folder for the demo's outputs")
    demo.add_argument("--steps", type=positive_int, help="generator steps (default: family's)")
    _add_device(demo)
    return parser


def _add_train(train: argparse.ArgumentParser) -> None:
    train.add_argument("--model", default="vae", help="generator name (see `genaug list`)")
    train.add_argument(
        "--data", default="digits", help="digits | imagefolder:PATH | mnist:ROOT ..."
    )
    train.add_argument("--out", required=True, help="run folder to write")
    train.add_argument("--image-size", type=int, default=32, help="16, 32, 64 or 128 (default 32)")
    train.add_argument("--channels", type=int, choices=(1, 3), help="default: the data's own")
    train.add_argument("--steps", type=positive_int, help="default: the family's budget")
    train.add_argument("--batch-size", type=positive_int, help="default: the family's")
    train.add_argument("--lr", type=float, help="learning rate (default: the family's)")
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--unlabeled", action="store_true", help="ignore labels: unconditional")
    train.add_argument(
        "--augment",
        default="",
        help="augment the training images: translation, color and/or cutout (comma list)",
    )
    train.add_argument("--resume", action="store_true", help="continue the run in --out")
    train.add_argument(
        "--resume-from",
        type=positive_int,
        metavar="STEP",
        help="continue from the checkpoint of STEP (newer ones are set aside, not deleted)",
    )
    train.add_argument("--overwrite", action="store_true", help="replace the run in --out")
    train.add_argument("--checkpoint-every", type=positive_int, default=500)
    train.add_argument("--log-every", type=positive_int, default=50)
    train.add_argument("--latent-dim", type=positive_int, help="override the latent size")
    train.add_argument("--width", type=positive_int, help="override the base channel width")
    train.add_argument(
        "--model-arg",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a constructor argument of the family (repeatable), e.g. beta=3 or critic=PATH",
    )
    train.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    train.add_argument(
        "--sync-batchnorm",
        action="store_true",
        help="torchrun on CUDA: BatchNorm statistics over the global batch (SyncBatchNorm)",
    )
    _add_device(train)


def _add_sample(sample: argparse.ArgumentParser) -> None:
    sample.add_argument("--checkpoint", required=True, help="checkpoint or run folder")
    # --num-samples: torchrun's own parser takes "--n" for an abbreviation of its options.
    sample.add_argument(
        "--n", "--num-samples", dest="n", type=positive_int, default=64, help="number of images"
    )
    sample.add_argument(
        "--out", required=True, help="grid.png for a grid, or DIR/ for an ImageFolder tree"
    )
    sample.add_argument("--seed", type=int, default=0)
    _add_device(sample)


def _add_evaluate(evaluate: argparse.ArgumentParser) -> None:
    evaluate.add_argument("--checkpoint", required=True, help="checkpoint or run folder")
    evaluate.add_argument("--data", help="real data spec (default: the checkpoint's own)")
    evaluate.add_argument("--n", type=positive_int, default=1000, help="samples (default 1000)")
    evaluate.add_argument("--seed", type=int, default=0)
    evaluate.add_argument("--out", help="metrics JSON (default: CHECKPOINT/eval/metrics.json)")
    evaluate.add_argument(
        "--cache", help="reference classifier folder (default: CHECKPOINT/eval/reference)"
    )
    evaluate.add_argument(
        "--classifier-steps", type=positive_int, default=600, help="reference and CAS steps"
    )
    evaluate.add_argument("--plot", action="store_true", help="write sample and neighbour PNGs")
    _add_device(evaluate)


def _add_bench(bench: argparse.ArgumentParser) -> None:
    from genaug.bench.command_line import add_bench_arguments

    add_bench_arguments(bench)  # a flag per BenchConfig setting, and the publication's


def _cmd_train(args: argparse.Namespace) -> int:
    from genaug.train import TrainConfig, train
    from genaug.train.config import parse_model_args

    model_args = {k: v for k, v in (("latent_dim", args.latent_dim), ("width", args.width)) if v}
    model_args.update(parse_model_args(args.model_arg))
    config = TrainConfig(
        model=args.model,
        data=args.data,
        out=args.out,
        image_size=args.image_size,
        channels=args.channels,
        steps=args.steps,
        batch_size=args.batch_size,
        lr=args.lr,
        seed=args.seed,
        device=args.device,
        unlabeled=args.unlabeled,
        augment=args.augment,
        resume=args.resume,
        resume_from=args.resume_from,
        overwrite=args.overwrite,
        checkpoint_every=args.checkpoint_every,
        log_every=args.log_every,
        model_args=model_args,
        progress=not args.no_progress,
        sync_batchnorm=args.sync_batchnorm,
    )
    result = train(config)
    if not distributed.is_main():
        return 0
    print(
        f"trained {config.model} for {result.steps} steps in {result.seconds:.1f} s; "
        f"checkpoint: {result.checkpoint}; samples: {result.run_dir / 'samples'}"
    )
    return 0


def _cmd_sample(args: argparse.Namespace) -> int:
    import torch

    from genaug.io import os_errors_as_sentences
    from genaug.models import load_generator
    from genaug.models.sampling import sample_indices
    from genaug.plots import save_image_rows
    from genaug.transforms.export import export_synthetic_set

    model = load_generator(args.checkpoint, device=distributed.init(args.device))
    out = Path(args.out)
    if out.suffix.lower() == ".png" and not distributed.is_main():
        return 0  # one grid: rank 0 draws it
    if out.suffix.lower() == ".png":
        images, _ = sample_indices(model, torch.arange(args.n), args.seed)
        rows = (args.n + 7) // 8
        images = torch.cat([images, images.new_ones(rows * 8 - args.n, *images.shape[1:])])
        with os_errors_as_sentences(f"write --out {out}", then=" (or another --out)"):
            out.parent.mkdir(parents=True, exist_ok=True)
            save_image_rows(images, [""] * rows, out)  # atomic: the old grid or the new one
        print(f"wrote a grid of {args.n} samples to {out}")
    elif out.suffix:
        raise GenaugError(f"--out {out} should be a .png file (a grid) or a folder (no suffix).")
    else:
        # A folder is complete, or marked incomplete until the same command runs again.
        again = f", then run the same command again to finish {out} (or choose another --out)"
        with os_errors_as_sentences(f"write the samples under --out {out}", then=again):
            # One writer per folder: rank 0 holds DIR/ while the job writes; a refusal reaches all.
            distributed.run_on_main(lambda: lock.hold(out), "locking the sample folder")
            try:
                export_synthetic_set(model, out, args.n, seed=args.seed)  # shared among ranks
            finally:
                lock.release(out)
        if distributed.is_main():
            print(f"wrote {args.n} samples as an ImageFolder tree under {out}")
    return 0


def _cmd_evaluate(args: argparse.Namespace) -> int:
    from genaug.eval import evaluate_generator, format_metrics
    from genaug.models.checkpoint import resolve_checkpoint_dir

    checkpoint = resolve_checkpoint_dir(args.checkpoint)  # a missing folder -> clear error
    out = Path(args.out) if args.out else Path(args.checkpoint) / "eval" / "metrics.json"
    if out.suffix.lower() != ".json":
        raise GenaugError(f"--out {out} should name a .json file, e.g. {out / 'metrics.json'}.")
    metrics = evaluate_generator(
        checkpoint,
        args.data,
        n_samples=args.n,
        seed=args.seed,
        device=args.device,
        out_dir=out.parent,
        plot=args.plot,
        cache_dir=args.cache or Path(args.checkpoint) / "eval" / "reference",
        classifier_steps=args.classifier_steps,
        metrics_name=out.name,
    )
    print(format_metrics(metrics))
    print("wrote " + ", ".join(metrics["files"].values()))
    return 0


def _cmd_info(args: argparse.Namespace) -> int:
    from genaug.models import read_generator_config

    print(json.dumps(read_generator_config(args.checkpoint), indent=2))
    return 0


def _cmd_list(args: argparse.Namespace) -> int:
    from genaug.data import list_dataset_specs
    from genaug.models import list_generators

    print("generators: " + ", ".join(list_generators()))
    print("datasets:   " + ", ".join(list_dataset_specs()))
    return 0


def _cmd_bench(args: argparse.Namespace) -> int:
    from genaug.bench import merge_benches, publish_report, report_bench, run_bench
    from genaug.bench.command_line import bench_config_from_arguments, check_publishing

    check_publishing(args)  # before a grid runs for hours
    if args.report_only:
        out = args.out or "runs/bench"
        if args.merge_from:
            merge_benches(out, args.merge_from.split(","), args.config)
        result = report_bench(out, command=args.command_line)
    else:
        result = run_bench(bench_config_from_arguments(args), command=args.command_line)
        if not distributed.is_main():
            return 0  # rank 0 reports for the whole torchrun job
        print(f"{result.ran} runs done now, {result.reused} found finished in {result.out}")
    print(Path(result.files["summary_md"]).read_text())
    print("wrote " + ", ".join(result.files.values()))
    if args.publish:
        written = publish_report(result.out, args.publish, args.results, args.config, args.note)
        print("published " + ", ".join(map(str, written)))
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from genaug.demo import run_demo

    run_demo(out=args.out, steps=args.steps, device=args.device)
    return 0


COMMANDS = {
    "train": _cmd_train,
    "sample": _cmd_sample,
    "evaluate": _cmd_evaluate,
    "info": _cmd_info,
    "list": _cmd_list,
    "bench": _cmd_bench,
    "demo": _cmd_demo,
}


def _say_error(message: object) -> None:
    # Under torchrun every rank may say it; the rank tells which process did.
    where = f" (rank {distributed.rank()})" if distributed.world_size() > 1 else ""
    # One write per line: under torchrun every rank shares the terminal, and print() may
    # split the text and its newline into two writes that interleave with other ranks'.
    sys.stderr.write(f"genaug: error{where}: {message}\n")
    sys.stderr.flush()


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit status (2 for bad input, 130 when interrupted)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args = _build_parser().parse_args(argv)
    args.command_line = shlex.join(["genaug", *argv])  # what a report quotes
    tune_cpu_allocator()  # this process is genaug's: keep freed memory for the next step
    started = time.perf_counter()
    try:
        with notices_as_lines():
            status = COMMANDS[args.command](args)
        if args.command in ("train", "demo") and distributed.is_main():
            print(f"done in {time.perf_counter() - started:.1f} s")
    except GenaugError as exc:
        _say_error(exc)
        return EXIT_BAD_INPUT
    except Exception as exc:
        # An OS error no command turned into its own sentence (a full disk, a read-only
        # folder) is bad input too: one sentence, no traceback. Anything else is a bug.
        error = as_os_error(exc)
        if error is None:
            raise
        _say_error(os_error_message(error, f"finish `genaug {args.command}`"))
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("genaug: interrupted; progress up to the last checkpoint is kept.", file=sys.stderr)
        return 130
    finally:
        distributed.shutdown()
    return status
