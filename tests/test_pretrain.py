"""The base-pretrained classifier of genaug bench (bench/learn/base_classifier.py): trained once on the base
classes, kept in the run folder, fine-tuned by base:CONDITION runs, reused on resume.

New classes are Tagalog's, base classes Greek's, from the made-up Omniglot zips and, as an
extra, from the real ones (``omniglot_sets`` in tests/conftest.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from helpers import OmniglotZips, train_tiny
from safetensors.torch import load_file

import genaug.bench.learn.base_classifier as pretrain
from genaug.bench import BenchConfig, read_runs, run_bench
from genaug.bench.learn.classifier import create_classifier
from genaug.bench.plan.parts import condition_names
from genaug.bench.plan.recipes import split_start
from genaug.errors import GenaugError
from genaug.models.features import weights_fingerprint


def tiny(sets: OmniglotZips, out: Path, **overrides) -> BenchConfig:
    """A bench of 1 episode of 4 Tagalog characters, from scratch and from a classifier
    pretrained on the Greek characters (3 steps)."""
    values = dict(
        data=sets.spec("Tagalog"),
        image_size=16,
        ways=4,
        shots=[1],
        seeds=[0],
        model="test_resnet",
        steps=2,
        batch_size=8,
        conditions=["none", "base:none"],
        generator_data=[],
        pretrain_data=sets.spec("Greek"),
        pretrain_steps=3,
        pretrain_augment="affine",
        hflip=False,
        device="cpu",
        out=str(out),
        progress=False,
        preview=0,
    )
    values.update(overrides)
    return BenchConfig(**values)


@pytest.fixture(scope="module")
def finished(tmp_path_factory, omniglot_sets):
    out = tmp_path_factory.mktemp("pretrain") / "run"
    run_bench(tiny(omniglot_sets, out), command="genaug bench (test)")
    return out


def test_base_conditions_fine_tune_the_saved_base_classifier(finished, omniglot_sets):
    folder = pretrain.base_folder(finished)
    record = json.loads((folder / "classifier.json").read_text())
    greek = omniglot_sets.characters("Greek")
    assert record["classes"] == greek and record["steps"] == 3
    assert record["data"] == omniglot_sets.spec("Greek")
    assert record["command"] == "genaug bench (test)" and record["augment"] == "affine"
    saved = load_file(str(folder / "classifier.safetensors"))
    assert saved["fc.weight"].shape[0] == greek  # the base head, one row per Greek character
    runs = read_runs(finished / "runs.jsonl")
    scratch, base = runs["1|0|none|-"], runs["1|0|base:none|-"]
    assert base["start"] == "base" and scratch["start"] == "scratch"
    assert base["init_fingerprint"] != scratch["init_fingerprint"]
    assert base["subset_fingerprint"] == scratch["subset_fingerprint"]
    # What the run started from: the base body, a new 4-way head drawn from the episode seed.
    model = create_classifier(
        "test_resnet",
        in_chans=1,
        num_classes=4,
        image_size=16,
        seed=0,
        pretrained_file=str(folder / "classifier.safetensors"),
    )
    assert weights_fingerprint(model) == base["init_fingerprint"]
    fresh = create_classifier("test_resnet", in_chans=1, num_classes=4, image_size=16, seed=0)
    assert weights_fingerprint(fresh) == scratch["init_fingerprint"]
    state = model.state_dict()
    for key, value in saved.items():
        if not key.startswith("fc."):
            torch.testing.assert_close(state[key], value)
    torch.testing.assert_close(state["fc.weight"], fresh.state_dict()["fc.weight"])
    assert "base:none" in (finished / "summary.md").read_text()


def test_the_base_classifier_is_reused_on_resume(finished, omniglot_sets, monkeypatch):
    record = (pretrain.base_folder(finished) / "classifier.json").read_text()

    def no_training(*args, **kwargs):
        raise AssertionError("the base classifier was trained again")

    monkeypatch.setattr(pretrain, "_train", no_training)
    config = tiny(
        omniglot_sets, finished, conditions=["none", "base:none", "base:affine"], resume=True
    )
    result = run_bench(config)
    assert result.ran == 1 and result.reused == 2
    assert (pretrain.base_folder(finished) / "classifier.json").read_text() == record
    with pytest.raises(GenaugError, match=r"trained with other settings \(steps 3 there\)"):
        run_bench(tiny(omniglot_sets, finished, pretrain_steps=4, resume=True))


@pytest.mark.parametrize(
    ("overrides", "match"),
    [
        (dict(pretrain_data="new"), "base and new classes overlap"),  # "new": the data itself
        (dict(pretrain_data=None), "set pretrain_data"),
        (dict(pretrain_steps=0), "pretrain_steps must be a positive integer"),
        (dict(pretrain_augment="randaugment+more-real"), "not more-real"),
        (dict(finetune_lr=-1.0), "finetune_lr must be a positive number"),
        (dict(pretrain_augment="affine+test_pairvae"), "set pretrain_generator"),
        (dict(pretrain_generator="checkpoint:x"), "uses no generator"),
    ],
)
def test_bad_pretraining_input_is_refused_before_any_run(omniglot_sets, tmp_path, overrides, match):
    out = tmp_path / "run"
    if overrides.get("pretrain_data") == "new":
        overrides = dict(pretrain_data=omniglot_sets.spec("Tagalog"))
    with pytest.raises(GenaugError, match=match):
        run_bench(tiny(omniglot_sets, out, **overrides))
    assert not out.exists()


def test_condition_syntax_and_fine_tuning_settings(omniglot_zips, tmp_path):
    assert split_start(" base:randaugment+vae@p=0.3") == ("randaugment+vae@p=0.3", True)
    assert split_start("randaugment") == ("randaugment", False)
    names = condition_names(["base:test_vae@strength=0.5,p=0.3", "test_vae"], ["test_vae"])
    assert names == ["base:test_vae@p=0.3,strength=0.5", "test_vae"]
    config = tiny(omniglot_zips, tmp_path, finetune_lr=1e-4)
    assert pretrain.classifier_for(config, False).pretrained_file is None
    tuned = pretrain.classifier_for(config, True)
    assert tuned.lr == 1e-4 and tuned.steps == config.steps
    assert tuned.pretrained_file == str(
        tmp_path / "pretrained/base-classifier/classifier.safetensors"
    )
    with pytest.raises(GenaugError, match="listed twice"):
        twice = ["base:none", "BASE:none"]
        run_bench(tiny(omniglot_zips, tmp_path / "twice", conditions=twice))


def _pairvae(out: Path, data: str) -> Path:
    return train_tiny(out, "test_pairvae", data)


@pytest.fixture(scope="module")
def base_pairvae(tmp_path_factory, omniglot_sets) -> Path:
    """A test_pairvae trained (2 steps) on the Greek characters: the base classes."""
    out = tmp_path_factory.mktemp("pairvae") / "test_pairvae"
    return _pairvae(out, omniglot_sets.spec("Greek"))


def test_a_pretrain_generator_that_saw_the_evaluated_classes_is_refused(omniglot_sets, tmp_path):
    leaked = _pairvae(tmp_path / "leaked", omniglot_sets.spec("Tagalog"))
    out = tmp_path / "run"
    config = tiny(
        omniglot_sets,
        out,
        pretrain_augment="affine+test_pairvae",
        pretrain_generator=f"checkpoint:{leaked}",
        generators={"test_pairvae": {"mode": "vary"}},
    )
    with pytest.raises(GenaugError, match="pretrain_generator .* was trained on classes this"):
        run_bench(config)
    assert not out.exists()


def test_the_base_classifier_can_learn_from_a_generator_s_variations(
    finished, omniglot_sets, base_pairvae, tmp_path
):
    spec = f"checkpoint:{base_pairvae}"
    out = tmp_path / "run"
    config = tiny(
        omniglot_sets,
        out,
        pretrain_augment="affine+test_pairvae",
        pretrain_generator=spec,
        generators={"test_pairvae": {"mode": "vary"}},
    )
    run_bench(config)
    record = json.loads((pretrain.base_folder(out) / "classifier.json").read_text())
    plain = json.loads((pretrain.base_folder(finished) / "classifier.json").read_text())
    assert record["generator"] == spec and record["augment"] == "affine+test_pairvae"
    assert plain["generator"] is None
    # Same seeds, steps and classic draws: only the generator's variations differ.
    assert record["weights_fingerprint"] != plain["weights_fingerprint"]
    with pytest.raises(GenaugError, match="names a gan generator but"):
        run_bench(
            tiny(
                omniglot_sets,
                tmp_path / "wrong",
                pretrain_augment="affine+test_gan",
                pretrain_generator=spec,
            )
        )


def test_a_base_classifier_is_copied_from_another_bench_of_the_same_settings(
    finished, omniglot_sets, tmp_path
):
    source = pretrain.base_folder(finished)
    out = tmp_path / "copy"
    run_bench(tiny(omniglot_sets, out, pretrained_from=str(finished)))
    copied = pretrain.base_folder(out)
    record = json.loads((copied / "classifier.json").read_text())
    assert record["copied_from"] == str(source)
    assert (copied / "classifier.safetensors").read_bytes() == (
        source / "classifier.safetensors"
    ).read_bytes()
    assert (
        read_runs(out / "runs.jsonl")["1|0|base:none|-"]["init_fingerprint"]
        == read_runs(finished / "runs.jsonl")["1|0|base:none|-"]["init_fingerprint"]
    )
    with pytest.raises(GenaugError, match=r"other settings \(steps 3 there\)"):
        other = tmp_path / "other"
        run_bench(tiny(omniglot_sets, other, pretrained_from=str(finished), pretrain_steps=4))
    with pytest.raises(GenaugError, match="holds no base classifier"):
        nowhere = str(tmp_path / "nowhere")
        run_bench(tiny(omniglot_sets, tmp_path / "none", pretrained_from=nowhere))
