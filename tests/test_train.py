"""The one training loop: outputs, determinism, exact resume, divergence, run-folder rules."""

from __future__ import annotations

import json

import pytest
import torch

from genaug import GenaugError, list_generators, load_generator
from genaug.data import batch_indices
from genaug.train import TrainingDiverged, train

FAMILY_TEST_MODELS = list_generators("test_")


def _weights_equal(a, b) -> bool:
    return all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))


def _stats(run_dir):
    drop = {"time", "images_per_second"}
    lines = (run_dir / "stats.jsonl").read_text().splitlines()
    return [{k: v for k, v in json.loads(line).items() if k not in drop} for line in lines]


@pytest.mark.parametrize("model", FAMILY_TEST_MODELS)
def test_run_folder_has_everything(model, tiny_config, digits16):
    result = train(tiny_config(model), dataset=digits16)
    run = result.run_dir
    assert (run / "run_config.json").is_file()
    resolved = json.loads((run / "run_config.json").read_text())
    assert resolved["steps"] == 6 and resolved["lr"] > 0
    assert [r["step"] for r in _stats(run)] == [2, 3, 4, 6]
    grids = ["step_0000003.png", "step_0000006.png"]
    if result.model.feature_space:  # makes features: no sample grids
        grids = []
    assert sorted(p.name for p in (run / "samples").iterdir()) == grids
    assert (run / "loss_curve.png").stat().st_size > 1000
    assert result.checkpoint.name == "step_0000006"
    loaded = load_generator(run)
    assert loaded.class_names == digits16.class_names
    assert loaded.data_description["spec"] == "digits"
    assert _weights_equal(loaded, result.model.cpu())


@pytest.mark.parametrize("model", FAMILY_TEST_MODELS)
def test_training_is_deterministic_on_cpu(model, tiny_config, digits16, tmp_path):
    a = train(tiny_config(model, out=str(tmp_path / "a")), dataset=digits16)
    b = train(tiny_config(model, out=str(tmp_path / "b")), dataset=digits16)
    assert _weights_equal(a.model, b.model)
    assert _stats(a.run_dir) == _stats(b.run_dir)


@pytest.mark.parametrize("model", FAMILY_TEST_MODELS)
def test_resume_continues_exactly(model, tiny_config, digits16, tmp_path):
    straight = train(tiny_config(model, out=str(tmp_path / "a"), steps=6), dataset=digits16)
    train(tiny_config(model, out=str(tmp_path / "b"), steps=3), dataset=digits16)
    resumed = train(
        tiny_config(model, out=str(tmp_path / "b"), steps=6, resume=True), dataset=digits16
    )
    assert _weights_equal(straight.model, resumed.model)
    assert _stats(straight.run_dir) == _stats(resumed.run_dir)


def test_old_checkpoints_are_pruned(tiny_config, digits16):
    result = train(tiny_config(steps=9, keep_checkpoints=2), dataset=digits16)
    names = sorted(p.name for p in (result.run_dir / "checkpoints").iterdir())
    assert names == ["latest", "step_0000006", "step_0000009"]


def test_unlabeled_trains_an_unconditional_generator(tiny_config, digits16):
    result = train(tiny_config(unlabeled=True), dataset=digits16)
    assert result.model.num_classes == 0
    assert load_generator(result.run_dir).num_classes == 0


@pytest.mark.parametrize("model", FAMILY_TEST_MODELS)
def test_training_augmentation_changes_what_the_generator_learns_and_repeats(
    model, tiny_config, digits16, tmp_path
):
    plain = train(tiny_config(model, out=str(tmp_path / "plain")), dataset=digits16)
    shifted = [
        train(tiny_config(model, out=str(tmp_path / name), augment="translation"), dataset=digits16)
        for name in ("a", "b")
    ]
    assert _weights_equal(shifted[0].model, shifted[1].model)  # deterministic on the CPU
    assert not _weights_equal(plain.model, shifted[0].model)
    saved = json.loads((shifted[0].run_dir / "run_config.json").read_text())
    assert saved["augment"] == "translation"


def test_dataset_without_labels_gives_unconditional(tiny_config, digits16):
    result = train(tiny_config(), dataset=digits16.without_labels())
    assert result.model.num_classes == 0


def test_non_finite_loss_stops_and_keeps_last_good_checkpoint(tiny_config, digits16, monkeypatch):
    config = tiny_config(steps=9)
    from genaug.models.vae import VAE

    original = VAE.training_step
    calls = {"n": 0}

    def poisoned(self, images, labels, optimizers, autocast):
        calls["n"] += 1
        losses = original(self, images, labels, optimizers, autocast)
        if calls["n"] >= 5:
            losses["loss"] = torch.tensor(float("nan"))
        return losses

    monkeypatch.setattr(VAE, "training_step", poisoned)
    with pytest.raises(TrainingDiverged, match="non-finite loss.*checkpoint of step 3 is kept"):
        train(config, dataset=digits16)
    assert load_generator(config.out).config["image_size"] == 16
    assert json.loads((load_generator_dir(config.out) / "config.json").read_text())["step"] == 3


def load_generator_dir(out):
    from genaug.models.checkpoint import resolve_checkpoint_dir

    return resolve_checkpoint_dir(out)


def test_collapse_hook_stops_training(tiny_config, digits16, monkeypatch):
    from genaug.models.vae import VAE

    monkeypatch.setattr(
        VAE, "check_training", lambda self, losses, step: "collapsed." if step >= 4 else None
    )
    with pytest.raises(TrainingDiverged, match="collapsed. Training stopped at step 4"):
        train(tiny_config(steps=9), dataset=digits16)


def test_batch_order_covers_every_image_each_epoch():
    n, batch = 10, 4
    seen = torch.cat([batch_indices(step, batch, n, seed=1) for step in range(5)])  # 20 = 2 epochs
    assert sorted(seen[:10].tolist()) == list(range(10))
    assert sorted(seen[10:].tolist()) == list(range(10))
    assert torch.equal(batch_indices(3, batch, n, 1), batch_indices(3, batch, n, 1))
    assert not torch.equal(batch_indices(0, batch, n, 1), batch_indices(0, batch, n, 2))


def test_tiny_dataset_smaller_than_a_batch(tiny_config, digits16):
    train(tiny_config(batch_size=16), dataset=digits16.subset(list(range(5))))


# ------------------------------------------------------------------------- run-folder rules
def test_existing_run_is_refused_without_resume_or_overwrite(tiny_config, digits16):
    train(tiny_config(), dataset=digits16)
    with pytest.raises(GenaugError, match="already holds files; pass --resume"):
        train(tiny_config(), dataset=digits16)
    train(tiny_config(overwrite=True), dataset=digits16)


def test_resume_with_different_settings_is_refused(tiny_config, digits16):
    train(tiny_config(), dataset=digits16)
    with pytest.raises(GenaugError, match=r"different settings \(seed\)"):
        train(tiny_config(seed=5, resume=True, steps=9), dataset=digits16)


def test_resume_without_a_run(tiny_config, digits16):
    with pytest.raises(GenaugError, match="holds no run to resume"):
        train(tiny_config(resume=True), dataset=digits16)


def test_resume_of_a_finished_run_asks_for_more_steps(tiny_config, digits16):
    train(tiny_config(), dataset=digits16)
    with pytest.raises(GenaugError, match="already finished 6 steps"):
        train(tiny_config(resume=True), dataset=digits16)


def test_overwrite_never_deletes_foreign_files(tiny_config, digits16, tmp_path):
    out = tmp_path / "precious"
    out.mkdir()
    (out / "thesis.tex").write_text("years of work")
    with pytest.raises(GenaugError, match="not a genaug run"):
        train(tiny_config(out=str(out), overwrite=True), dataset=digits16)
    assert (out / "thesis.tex").read_text() == "years of work"


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("steps", 0, "steps must be a positive integer"),
        ("steps", -3, "steps must be a positive integer"),
        ("batch_size", 0, "batch_size must be a positive integer"),
        ("lr", -1.0, "lr must be positive"),
        ("image_size", 48, "power of two"),
        ("channels", 2, "channels must be 1 or 3"),
        ("device", "tpu", "Unknown device 'tpu'"),
        ("augment", "rotation", "Unknown DiffAugment operation 'rotation'"),
    ],
)
def test_bad_settings(tiny_config, digits16, field, value, message):
    with pytest.raises(GenaugError, match=message):
        train(tiny_config(**{field: value}))
