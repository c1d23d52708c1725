"""The episodic few-shot protocol of genaug bench (bench/plan/splits.py) on a few Omniglot
characters: a tiny bench writes its report, episodes are paired and reproducible, and the
refusals (ways, class sizes, generator data that saw the evaluated classes) come first.

New classes are Tagalog's, base classes Greek's, from the made-up Omniglot zips and, as an
extra, from the real ones (``omniglot_sets`` in tests/conftest.py)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from helpers import OmniglotZips, train_tiny

from genaug.bench import BenchConfig, build_bench_config, read_runs, run_bench
from genaug.bench.plan.files import episodes_as_seeds
from genaug.bench.plan.splits import make_split, training_class_names
from genaug.cli import main
from genaug.data import load_dataset
from genaug.errors import GenaugError
from genaug.models import load_generator

CONDITIONS = ["none", "affine", "more-real", "randaugment+test_dagan", "base:affine"]


def _train(tmp: Path, model: str, data: str, unlabeled: bool = False) -> Path:
    return train_tiny(tmp / model, model, data, unlabeled)


@pytest.fixture(scope="module")
def base_dagan(tmp_path_factory, omniglot_sets: OmniglotZips) -> Path:
    """A test_dagan trained (2 steps) on the Greek characters only: base classes."""
    return _train(tmp_path_factory.mktemp("base"), "test_dagan", omniglot_sets.spec("Greek"))


def tiny(sets: OmniglotZips, out: Path, checkpoint: Path, **overrides) -> BenchConfig:
    """A bench of 2 episodes of 4 Tagalog characters, Greek as the base classes."""
    values = dict(
        data=sets.spec("Tagalog"),
        image_size=16,
        ways=4,
        shots=[1, 2],
        seeds=[0, 1],
        model="test_resnet",
        steps=2,
        batch_size=8,
        conditions=list(CONDITIONS),
        generator_data=[f"checkpoint:{checkpoint}"],
        generators={"test_dagan": {"mode": "vary"}},
        pretrain_data=sets.spec("Greek"),
        pretrain_steps=3,
        hflip=False,
        device="cpu",
        out=str(out),
        progress=False,
        preview=2,
    )
    values.update(overrides)
    return BenchConfig(**values)


@pytest.fixture(scope="module")
def finished(tmp_path_factory, omniglot_sets, base_dagan):
    out = tmp_path_factory.mktemp("episodic") / "run"
    result = run_bench(tiny(omniglot_sets, out, base_dagan), command="genaug bench (test)")
    return out, result


def test_a_tiny_episodic_bench_writes_its_report(finished):
    out, result = finished
    assert result.ran == 2 * 2 * len(CONDITIONS) and result.reused == 0
    saved = json.loads((out / "bench_config.json").read_text())
    assert saved["ways"] == 4 and saved["queries"] == 20 - 2 * 2  # room for 2 x max(shots)
    text = (out / "summary.md").read_text()
    assert "2 episodes (0, 1) of 4 ways" in text and "| episodes |" in text
    assert "the last 16 images of each episode class" in text
    assert "## With and without the generator" in text
    summary = json.loads((out / "summary.json").read_text())
    for shots in ("1", "2"):
        entry = summary["shots"][shots]
        assert entry["best_classic"] == "affine"  # the only classic from scratch
        picks = entry["pipelines"]["pipelines"]
        assert picks["classic_base"]["arm"] == "base:affine"
        assert picks["generator_scratch"]["arm"].startswith("randaugment+test_dagan")
        assert entry["pipelines"]["with_vs_without"]["n"] == 2
    for png in ("accuracy.png", "gain.png", "augmented.png"):
        assert (out / png).stat().st_size > 1000


def test_episodes_are_paired_across_conditions_and_nested_across_shots(finished):
    out, _ = finished
    records = list(read_runs(out / "runs.jsonl").values())
    keys = {r["key"] for r in records}
    assert len(keys) == len(records) == 2 * 2 * len(CONDITIONS)
    for record in records:
        source = record["source_spec"] or "-"
        assert record["key"] == f"{record['shots']}|{record['seed']}|{record['condition']}|{source}"
    assert {r["condition"] for r in records} == set(CONDITIONS)
    for episode in (0, 1):
        mine = [r for r in records if r["seed"] == episode]
        assert len({r["test_fingerprint"] for r in mine}) == 1  # one test set per episode
        for shots in (1, 2):
            cell = [r for r in mine if r["shots"] == shots]
            assert len({r["subset_fingerprint"] for r in cell}) == 1
            assert {r["test_images"] for r in cell} == {4 * 16}
            for start in ("scratch", "base"):
                assert len({r["init_fingerprint"] for r in cell if r["start"] == start}) == 1
            same = {r["train_fingerprint"] for r in cell if r["kind"] != "more-real"}
            assert same == {cell[0]["subset_fingerprint"]}
        # more-real at 1 shot trains on the 2-shot episode's shots (same classes, nested)
        one = next(r for r in mine if r["shots"] == 1 and r["kind"] == "more-real")
        two = next(r for r in mine if r["shots"] == 2 and r["kind"] == "none")
        assert one["train_fingerprint"] == two["subset_fingerprint"]
    assert len({r["subset_fingerprint"] for r in records if r["shots"] == 1}) == 2


def test_episodes_are_reproducible(finished, omniglot_sets, base_dagan, tmp_path):
    out, _ = finished
    # shots [1] alone would leave 18 test images per class: ask for the first bench's 16
    again = tiny(
        omniglot_sets,
        tmp_path / "again",
        base_dagan,
        shots=[1],
        seeds=[1],
        conditions=["affine"],
        queries=16,
    )
    run_bench(again)
    first = read_runs(out / "runs.jsonl")["1|1|affine|-"]
    second = read_runs(tmp_path / "again" / "runs.jsonl")["1|1|affine|-"]
    for key in ("accuracy", "subset_fingerprint", "test_fingerprint", "init_fingerprint"):
        assert first[key] == second[key]
    config = tiny(omniglot_sets, tmp_path, base_dagan).validate()
    config.queries = 16
    dataset = load_dataset(omniglot_sets.spec("Tagalog"), image_size=16)
    split = make_split(config, dataset, 2, 1)
    assert split.labeled.num_classes == 4 and split.labeled.targets.tolist() == [
        0,
        0,
        1,
        1,
        2,
        2,
        3,
        3,
    ]
    assert len(split.test) == 4 * 16 and split.episode == make_split(config, dataset, 2, 1).episode


def test_the_checkpoint_records_its_training_classes(omniglot_sets, base_dagan):
    names = training_class_names(load_generator(base_dagan))
    assert names == [f"Greek/character{i:02d}" for i in range(1, len(names) + 1)]
    assert len(names) == omniglot_sets.characters("Greek")


def test_a_generator_trained_on_the_evaluated_classes_is_refused(omniglot_sets, tmp_path):
    new = omniglot_sets.spec("Tagalog")
    seen = _train(tmp_path, "test_vae", new, unlabeled=True)  # labels hidden, classes recorded
    out = tmp_path / "run"
    config = tiny(
        omniglot_sets, out, seen, conditions=["none", "randaugment+test_vae@mode=perturb"]
    )
    with pytest.raises(GenaugError, match="was trained on classes this bench evaluates"):
        run_bench(config)
    assert not out.exists()  # refused before anything was written


@pytest.mark.parametrize(
    ("overrides", "match"),
    [
        (dict(ways=18), "more than the {new} classes"),  # {new}: the Tagalog characters
        (dict(queries=19, shots=[1]), r"class 'Tagalog/character\d+' holds 20 image\(s\)"),
        (dict(shots=[10]), r"class 'Tagalog/character\d+' holds 20 image\(s\), too few"),
        (
            dict(generator_data=["pool"], conditions=["none", "randaugment+test_vae"]),
            "would train on the new classes' test images",
        ),
        (dict(ways=1), "ways must be a whole number >= 2"),
        (dict(ways=None, queries=5), "set ways too"),
    ],
)
def test_bad_episodic_input_is_one_sentence_before_any_run(
    omniglot_sets, tmp_path, overrides, match
):
    out = tmp_path / "run"
    values = dict(generator_data=[], conditions=["none", "more-real"])
    config = tiny(omniglot_sets, out, tmp_path / "missing", **{**values, **overrides})
    with pytest.raises(GenaugError, match=match.format(new=omniglot_sets.characters("Tagalog"))):
        run_bench(config)
    assert not out.exists()


def test_episodes_setting_and_flags(omniglot_sets, tmp_path, capsys):
    new = omniglot_sets.spec("Tagalog")
    assert episodes_as_seeds(3) == [0, 1, 2] and episodes_as_seeds([100, 101]) == [100, 101]
    path = tmp_path / "bench.yaml"
    path.write_text(f"data: {new}\nways: 5\nepisodes: 4\n")
    assert build_bench_config(path).seeds == [0, 1, 2, 3]
    path.write_text("ways: 5\nepisodes: 4\nseeds: [1]\n")
    with pytest.raises(GenaugError, match="both seeds and episodes"):
        build_bench_config(path)
    argv = ["bench", "--data", new, "--image-size", "16", "--model", "test_resnet"]
    argv += ["--conditions", "none", "--out", str(tmp_path / "cli"), "--no-progress"]
    classes = omniglot_sets.characters("Tagalog")
    too_many = ["--ways", str(classes + 1), "--episodes", "2", "--device", "cpu"]
    assert main([*argv, *too_many]) == 2
    err = capsys.readouterr().err
    assert f"more than the {classes} classes" in err and "Traceback" not in err
    assert main([*argv, "--ways", "4", "--episodes", "2", "--seeds", "2"]) == 2
    assert "--episodes and --seeds" in capsys.readouterr().err
    status = main([*argv, "--ways", "3", "--episodes", "2", "--shots", "1", "--steps", "2"])
    assert status == 0 and "2 episodes (0, 1) of 3 ways" in capsys.readouterr().out


def test_resuming_with_narrowed_shots_keeps_the_saved_test_images(
    finished, omniglot_sets, base_dagan, tmp_path
):
    out, _ = finished
    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    # shots [1] alone would resolve 18 test images per class; the bench was started with 16
    narrowed = tiny(
        omniglot_sets, copy, base_dagan, shots=[1], seeds=[0], conditions=["affine"], resume=True
    )
    result = run_bench(narrowed)
    assert (result.ran, result.reused) == (0, 1)
    assert json.loads((copy / "bench_config.json").read_text())["queries"] == 16
