"""Evaluating generators against real digits: the reference judge, CAS, the CLI, bad input."""

from __future__ import annotations

import json

import pytest
import torch

from genaug import GenaugError, create_generator, list_generators, save_generator
from genaug.cli import main
from genaug.data import ImageDataset, load_dataset, train_test_split
from genaug.eval import evaluate_generator, format_metrics
from genaug.eval.evaluate import match_images, prepare_real_data, reference_classifier_for
from genaug.eval.reference import (
    accuracy,
    conditional_accuracy,
    load_reference_classifier,
    save_reference_classifier,
)
from genaug.train import TrainConfig, train

JUDGE_STEPS = 40  # enough for > 0.9 on 16 px digits (about 0.98), a few seconds on a CPU
TINY_STEPS = 3  # classifier steps where only the plumbing is under test


@pytest.fixture(scope="module")
def split16():
    digits = load_dataset("digits", image_size=16)
    return train_test_split(digits, test_fraction=0.3, test_seed=0)


@pytest.fixture(scope="module")
def tiny_cache(split16, tmp_path_factory):
    """A barely trained reference classifier, for tests of the plumbing only."""
    folder = tmp_path_factory.mktemp("tiny") / "reference"
    reference_classifier_for(split16[0], folder, steps=TINY_STEPS, device="cpu")
    return folder


@pytest.fixture(scope="module")
def judge_cache(split16, tmp_path_factory):
    """A reference classifier trained once on the 16 px training part, cached in a folder."""
    folder = tmp_path_factory.mktemp("judge") / "reference"
    torch.manual_seed(0)
    reference_classifier_for(split16[0], folder, steps=JUDGE_STEPS, device="cpu")
    return folder


def untrained(name: str = "test_vae", **overrides):
    torch.manual_seed(0)
    return create_generator(name, **{"image_size": 16, "num_classes": 10, **overrides}).eval()


# ------------------------------------------------------------------------ the reference judge
def test_reference_classifier_is_accurate_and_an_untrained_generator_is_not(split16, judge_cache):
    judge = load_reference_classifier(judge_cache)
    assert accuracy(judge, split16[1]) > 0.9  # real held-out digits
    assert conditional_accuracy(untrained(), judge, n=200) <= 0.5  # noise blobs: near chance


def test_reference_classifier_round_trips_with_its_meta(split16, judge_cache, tmp_path):
    judge = load_reference_classifier(judge_cache)
    save_reference_classifier(judge, tmp_path / "copy", meta={"answer": 42})
    again = load_reference_classifier(tmp_path / "copy")
    images = split16[1].float_images()[:50]
    assert torch.equal(judge.predict(images), again.predict(images))
    features, predictions = again.embed(images, batch_size=16)
    assert features.shape == (50, 128) and torch.equal(predictions, judge.predict(images))


def test_reference_cache_is_reused_only_for_the_same_data(split16, judge_cache):
    _, reused = reference_classifier_for(split16[0], judge_cache, JUDGE_STEPS, "cpu")
    assert reused
    other_train, _ = train_test_split(load_dataset("digits", image_size=16), test_fraction=0.4)
    meta_before = (judge_cache / "reference.json").read_text()
    _, reused = reference_classifier_for(other_train, judge_cache.parent / "other", TINY_STEPS)
    assert not reused
    assert (judge_cache / "reference.json").read_text() == meta_before


# ------------------------------------------------------------------------------ evaluation
@pytest.mark.parametrize(
    "name",
    [
        n
        for n in list_generators("test_")
        if not create_generator(n).image_conditioned and not create_generator(n).feature_space
    ],
)
def test_every_family_evaluates(name, tiny_cache, digits16):
    model = untrained(name)
    metrics = evaluate_generator(
        model,
        digits16,
        n_samples=40,
        device="cpu",
        cache_dir=tiny_cache,
        classifier_steps=TINY_STEPS,
    )
    assert metrics["family"] == model.family and metrics["conditional"]
    assert metrics["reference_classifier"]["reused_from_cache"]
    for key in ("conditional_accuracy", "precision", "recall", "cas", "memorisation_share"):
        assert 0.0 <= metrics[key] <= 1.0, key
    assert metrics["frechet_distance"] >= 0 and metrics["frechet_distance_real"] >= 0
    assert metrics["cas_ratio"] == pytest.approx(metrics["cas"] / metrics["cas_real"], abs=1e-5)
    json.dumps(metrics)  # JSON-able as returned


@pytest.mark.slow  # trains a CAS classifier for real (40 steps)
def test_untrained_generator_scores_far_below_real_data(judge_cache, digits16):
    metrics = evaluate_generator(
        untrained(),
        digits16,
        n_samples=60,
        device="cpu",
        cache_dir=judge_cache,
        classifier_steps=JUDGE_STEPS,
    )
    assert metrics["reference_classifier"]["reused_from_cache"]
    assert metrics["cas_real"] > 0.9 and metrics["conditional_accuracy"] <= 0.5
    assert metrics["frechet_distance"] > 10 * metrics["frechet_distance_real"]
    assert metrics["precision"] < metrics["precision_real"]
    assert metrics["cas"] < 0.5 * metrics["cas_real"]
    assert metrics["memorisation_share"] == 0.0 and metrics["memorisation_share_real"] < 0.05
    assert 0.8 < metrics["nearest_distance_ratio_real"] < 1.2  # real images: about typical


def test_unconditional_generator_reports_na(digits16, tmp_path):
    torch.manual_seed(0)
    model = create_generator("test_vae", image_size=16, num_classes=0)
    metrics = evaluate_generator(
        model, digits16, n_samples=30, device="cpu", classifier_steps=TINY_STEPS
    )
    assert metrics["conditional_accuracy"] is None and metrics["cas"] is None
    assert metrics["cas_ratio"] is None and metrics["frechet_distance"] >= 0
    table = format_metrics(metrics)
    assert "unconditional" in table and "n/a" in table
    assert model.training  # the caller's mode is restored


def test_data_of_another_size_is_resized(split16, judge_cache):
    digits32 = load_dataset("digits", image_size=32)
    prepared = prepare_real_data(digits32, untrained())
    assert prepared.image_size == 16 and prepared.channels == 1
    # The same images as loading at 16 px, up to the resize rounding.
    direct = load_dataset("digits", image_size=16)
    assert (prepared.images.float() - direct.images.float()).abs().mean() < 8


def test_channels_convert_or_are_refused_naming_both_shapes():
    rgb = torch.rand(4, 3, 20, 20)
    assert match_images(rgb, 1, 16).shape == (4, 1, 16, 16)
    with pytest.raises(GenaugError, match=r"4x20x20 \(CxHxW\).*1x16x16"):
        match_images(torch.rand(4, 4, 20, 20), 1, 16)


def test_bad_data_is_refused(digits16):
    with pytest.raises(GenaugError, match="labelled real data"):
        prepare_real_data(digits16.without_labels(), untrained())
    with pytest.raises(GenaugError, match="conditioned on 3 classes"):
        prepare_real_data(digits16, untrained(num_classes=3))
    renamed = ImageDataset(digits16.images, digits16.targets, list("abcdefghij"))
    with pytest.raises(GenaugError, match="but the data has 10"):
        prepare_real_data(renamed, untrained())
    with pytest.raises(GenaugError, match="which dataset"):
        prepare_real_data(None, untrained())
    with pytest.raises(GenaugError, match="n_samples"):
        evaluate_generator(untrained(), digits16, n_samples=3)


# --------------------------------------------------------------------------------- the CLI
def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    try:
        status = main(list(argv))
    except SystemExit as exc:  # argparse usage errors
        status = exc.code
    out, err = capsys.readouterr()
    return status, out, err


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("trained") / "run"
    torch.manual_seed(0)
    config = TrainConfig(
        model="test_vae",
        image_size=16,
        steps=20,
        batch_size=32,
        device="cpu",
        progress=False,
        out=str(out),
    )
    train(config)
    return out


def test_cli_evaluates_a_trained_run_end_to_end(trained_run, tiny_cache, capsys):
    status, out, err = run_cli(
        capsys,
        "evaluate",
        "--checkpoint",
        str(trained_run),
        "--data",
        "digits",
        "--n",
        "60",
        "--classifier-steps",
        str(TINY_STEPS),
        "--cache",
        str(tiny_cache),
        "--device",
        "cpu",
        "--plot",
    )
    assert status == 0, err
    eval_dir = trained_run / "eval"
    metrics = json.loads((eval_dir / "metrics.json").read_text())
    assert metrics["family"] == "vae" and metrics["n_samples"] == 60
    assert metrics["data"] == {
        "spec": "digits",
        "train_count": 1258,
        "test_count": 539,
        "test_fraction": 0.3,
        "test_seed": 0,
    }
    for key in ("conditional_accuracy", "frechet_distance", "precision", "recall", "cas"):
        assert isinstance(metrics[key], float), key
    for png in ("metrics.samples.png", "metrics.nearest.png"):
        assert (eval_dir / png).stat().st_size > 1000
    assert "conditional accuracy" in out and "memorisation share (pixels)" in out


def test_cli_defaults_to_the_checkpoint_data_and_writes_where_told(trained_run, capsys, tmp_path):
    target = tmp_path / "results" / "vae.json"
    status, out, err = run_cli(
        capsys,
        "evaluate",
        "--checkpoint",
        str(trained_run),
        "--n",
        "20",
        "--classifier-steps",
        str(TINY_STEPS),
        "--out",
        str(target),
        "--device",
        "cpu",
    )
    assert status == 0, err
    assert json.loads(target.read_text())["data"]["spec"] == "digits"
    # The reference classifier is cached in the run folder, not beside --out.
    assert (trained_run / "eval" / "reference" / "reference.json").is_file()
    assert not (target.parent / "reference").exists()


def test_cli_missing_checkpoint_exits_2(capsys, tmp_path):
    status, _, err = run_cli(
        capsys, "evaluate", "--checkpoint", str(tmp_path / "nope"), "--data", "digits"
    )
    assert status == 2 and "No checkpoint at" in err and "Traceback" not in err


def test_cli_mismatched_classes_exit_2(capsys, tmp_path):
    save_generator(untrained(num_classes=3), tmp_path / "three")
    status, _, err = run_cli(
        capsys, "evaluate", "--checkpoint", str(tmp_path / "three"), "--data", "digits"
    )
    assert status == 2 and "conditioned on 3 classes" in err and "Traceback" not in err
    status, _, err = run_cli(
        capsys, "evaluate", "--checkpoint", str(tmp_path / "three"), "--out", "x.txt"
    )
    assert status == 2 and ".json" in err
