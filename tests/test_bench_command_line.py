"""The command line of genaug bench (genaug/bench/command_line.py): one flag per BenchConfig
setting, declared beside the field, or a file-only mark; what the flags set."""

from __future__ import annotations

import argparse
import dataclasses
from dataclasses import dataclass, field

import pytest

from genaug.bench import BenchConfig
from genaug.bench.command_line import add_bench_arguments, bench_config_from_arguments
from genaug.bench.plan.flags import FILE_ONLY, fields_without_flag, flag
from genaug.cli import main
from genaug.errors import GenaugError


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_bench_arguments(parser)
    return parser.parse_args(argv)


def test_every_setting_has_a_flag_or_the_file_only_mark():
    """Completeness guard: a BenchConfig field added without a flag (or FILE_ONLY) fails here."""
    assert fields_without_flag(BenchConfig) == []
    file_only = [f.name for f in dataclasses.fields(BenchConfig) if f.metadata.get("file_only")]
    assert file_only == ["parts", "generators", "pool_per_seed", "hflip"]


def test_the_guard_names_a_field_without_a_flag():
    @dataclass
    class Settings:
        shown: int = field(default=1, metadata=flag("a flag"))
        hidden: dict = field(default_factory=dict, metadata=FILE_ONLY)
        forgotten: int = 0

    assert fields_without_flag(Settings) == ["forgotten"]


def test_each_flag_sets_its_setting_and_leaves_the_file_alone(tmp_path):
    config = tmp_path / "bench.yaml"
    config.write_text("image_size: 16\nsteps: 7\nconditions: [none, affine]\namp: true\n")
    argv = ["--config", str(config), "--shots", "1,2", "--seeds", "3", "--no-amp", "--resume"]
    argv += ["--generator-data", "labeled,pool", "--channels", "1", "--finetune-lr", "0.01"]
    argv += ["--conditions", "none,vae@p=0.3,strength=0.5", "--generative-p", "0.2"]
    settings = bench_config_from_arguments(_parse(argv))
    assert (settings.shots, settings.seeds, settings.amp, settings.resume) == (
        [1, 2],
        [0, 1, 2],
        False,
        True,
    )
    assert settings.generator_data == ["labeled", "pool"] and settings.channels == 1
    assert settings.conditions == ["none", "vae@p=0.3,strength=0.5"]
    assert settings.generators == {"vae": {"p": 0.2}} and settings.finetune_lr == 0.01
    assert (settings.image_size, settings.steps, settings.progress) == (16, 7, True)  # the file's
    episodes = bench_config_from_arguments(_parse(["--episodes", "4", "--ways", "5"]))
    assert episodes.seeds == [0, 1, 2, 3] and episodes.ways == 5
    with pytest.raises(GenaugError, match="--episodes and --seeds name the same axis"):
        bench_config_from_arguments(_parse(["--episodes", "4", "--seeds", "2"]))


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--publish", "../up"], "no plain name"),
        (["--merge-from", "a,b"], "pass it with --report-only"),
        (["--note", "busy machine"], "pass it with --publish NAME"),
        (["--shots", "1,x"], "comma-separated list"),
    ],
)
def test_bad_flags_are_one_sentence_before_anything_runs(tmp_path, capsys, argv, message):
    out = tmp_path / "never"
    assert main(["bench", "--out", str(out), "--device", "cpu", *argv]) == 2
    error = capsys.readouterr().err
    assert message in error and error.count("\n") == 1 and "Traceback" not in error
    assert not out.exists()
