"""The base-pretrained classifier of genaug bench (bench/pretrain.py): trained once on the base
classes, kept in the run folder, fine-tuned by base:CONDITION runs, reused on resume."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from helpers import train_tiny
from safetensors.torch import load_file

import genaug.bench.pretrain as pretrain
from genaug.bench.classifier import create_classifier, weights_fingerprint
from genaug.bench.parts import condition_names
from genaug.bench.run import BenchConfig, read_runs, run_bench
from genaug.errors import GenaugError

ROOT = Path(__file__).resolve().parents[2] / "shared" / "data" / "omniglot"
NEW = f"omniglot:{ROOT / 'images_background_small2.zip'}@Tagalog"
BASE = f"omniglot:{ROOT / 'images_background_small1.zip'}@Greek"


@pytest.fixture(scope="module", autouse=True)
def omniglot_present():
    if not (ROOT / "images_background_small2.zip").is_file():
        pytest.skip("Omniglot zips not present")


def tiny(out: Path, **overrides) -> BenchConfig:
    values = dict(
        data=NEW,
        image_size=16,
        ways=4,
        shots=[1],
        seeds=[0],
        model="test_resnet",
        steps=2,
        batch_size=8,
        conditions=["none", "base:none"],
        generator_data=[],
        pretrain_data=BASE,
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
def finished(tmp_path_factory):
    out = tmp_path_factory.mktemp("pretrain") / "run"
    run_bench(tiny(out), command="genaug bench (test)")
    return out


def test_base_conditions_fine_tune_the_saved_base_classifier(finished):
    folder = pretrain.base_folder(finished)
    record = json.loads((folder / "classifier.json").read_text())
    assert record["classes"] == 24 and record["data"] == BASE and record["steps"] == 3
    assert record["command"] == "genaug bench (test)" and record["augment"] == "affine"
    saved = load_file(str(folder / "classifier.safetensors"))
    assert saved["fc.weight"].shape[0] == 24  # the base head, 24 Greek characters
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


def test_the_base_classifier_is_reused_on_resume(finished, monkeypatch):
    record = (pretrain.base_folder(finished) / "classifier.json").read_text()

    def no_training(*args, **kwargs):
        raise AssertionError("the base classifier was trained again")

    monkeypatch.setattr(pretrain, "_train", no_training)
    config = tiny(finished, conditions=["none", "base:none", "base:affine"], resume=True)
    result = run_bench(config)
    assert result.ran == 1 and result.reused == 2
    assert (pretrain.base_folder(finished) / "classifier.json").read_text() == record
    with pytest.raises(GenaugError, match=r"trained with other settings \(steps 3 there\)"):
        run_bench(tiny(finished, pretrain_steps=4, resume=True))


@pytest.mark.parametrize(
    ("overrides", "match"),
    [
        (dict(pretrain_data=NEW), "base and new classes overlap"),
        (dict(pretrain_data=None), "set pretrain_data"),
        (dict(pretrain_steps=0), "pretrain_steps must be a positive integer"),
        (dict(pretrain_augment="randaugment+more-real"), "not more-real"),
        (dict(finetune_lr=-1.0), "finetune_lr must be a positive number"),
        (dict(pretrain_augment="affine+test_pairvae"), "set pretrain_generator"),
        (dict(pretrain_generator="checkpoint:x"), "uses no generator"),
    ],
)
def test_bad_pretraining_input_is_refused_before_any_run(tmp_path, overrides, match):
    out = tmp_path / "run"
    with pytest.raises(GenaugError, match=match):
        run_bench(tiny(out, **overrides))
    assert not out.exists()


def test_condition_syntax_and_fine_tuning_settings(tmp_path):
    assert pretrain.split_start(" base:randaugment+vae@p=0.3") == ("randaugment+vae@p=0.3", True)
    assert pretrain.split_start("randaugment") == ("randaugment", False)
    names = condition_names(["base:test_vae@strength=0.5,p=0.3", "test_vae"], ["test_vae"])
    assert names == ["base:test_vae@p=0.3,strength=0.5", "test_vae"]
    config = tiny(tmp_path, finetune_lr=1e-4)
    assert pretrain.classifier_for(config, False).pretrained_file is None
    tuned = pretrain.classifier_for(config, True)
    assert tuned.lr == 1e-4 and tuned.steps == config.steps
    assert tuned.pretrained_file == str(
        tmp_path / "pretrained/base-classifier/classifier.safetensors"
    )
    with pytest.raises(GenaugError, match="listed twice"):
        run_bench(tiny(tmp_path / "twice", conditions=["base:none", "BASE:none"]))


def _pairvae(out: Path, data: str) -> Path:
    return train_tiny(out, "test_pairvae", data)


@pytest.fixture(scope="module")
def base_pairvae(tmp_path_factory) -> Path:
    """A test_pairvae trained (2 steps) on the Greek characters: the base classes."""
    return _pairvae(tmp_path_factory.mktemp("pairvae") / "test_pairvae", BASE)


def test_a_pretrain_generator_that_saw_the_evaluated_classes_is_refused(tmp_path):
    leaked = _pairvae(tmp_path / "leaked", NEW)
    out = tmp_path / "run"
    config = tiny(
        out,
        pretrain_augment="affine+test_pairvae",
        pretrain_generator=f"checkpoint:{leaked}",
        generators={"test_pairvae": {"mode": "vary"}},
    )
    with pytest.raises(GenaugError, match="pretrain_generator .* was trained on classes this"):
        run_bench(config)
    assert not out.exists()


def test_the_base_classifier_can_learn_from_a_generator_s_variations(
    finished, base_pairvae, tmp_path
):
    spec = f"checkpoint:{base_pairvae}"
    out = tmp_path / "run"
    config = tiny(
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
                tmp_path / "wrong",
                pretrain_augment="affine+test_gan",
                pretrain_generator=spec,
            )
        )


def test_a_base_classifier_is_copied_from_another_bench_of_the_same_settings(finished, tmp_path):
    source = pretrain.base_folder(finished)
    out = tmp_path / "copy"
    run_bench(tiny(out, pretrained_from=str(finished)))
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
        run_bench(tiny(tmp_path / "other", pretrained_from=str(finished), pretrain_steps=4))
    with pytest.raises(GenaugError, match="holds no base classifier"):
        run_bench(tiny(tmp_path / "none", pretrained_from=str(tmp_path / "nowhere")))
