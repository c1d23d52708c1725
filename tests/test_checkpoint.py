"""Checkpoints: safetensors + JSON, atomic, identical after a round trip, clear on damage."""

from __future__ import annotations

import json

import pytest
import torch

from genaug import GenaugError, create_generator, list_generators, load_generator, save_generator
from genaug.models.checkpoint import FORMAT_VERSION


@pytest.fixture(params=list_generators("test_"))
def model(request):
    model = create_generator(request.param, image_size=16, num_classes=3).eval()
    model.class_names = ["cat", "dog", "emu"]
    model.data_description = {"spec": "imagefolder:/somewhere", "count": 12}
    return model


def test_round_trip_gives_identical_weights_and_samples(model, tmp_path):
    save_generator(model, tmp_path / "ckpt")
    loaded = load_generator(tmp_path / "ckpt")
    assert type(loaded) is type(model)
    for (k, a), (k2, b) in zip(model.state_dict().items(), loaded.state_dict().items()):
        assert k == k2 and torch.equal(a, b)
    if model.feature_space:  # makes features of a frozen extractor
        f = torch.rand(3, model.feature_dim)
        a = model.hallucinate(f, 2, generator=torch.Generator().manual_seed(3))
        b = loaded.hallucinate(f, 2, generator=torch.Generator().manual_seed(3))
    elif model.image_conditioned:  # varies given images instead of sampling
        x = torch.rand(3, 1, 16, 16)
        a = model.vary(x, generator=torch.Generator().manual_seed(3))
        b = loaded.vary(x, generator=torch.Generator().manual_seed(3))
    else:
        labels = torch.tensor([0, 1, 2])
        a = model.sample(3, labels, generator=torch.Generator().manual_seed(3))
        b = loaded.sample(3, labels, generator=torch.Generator().manual_seed(3))
    assert torch.equal(a, b)
    assert loaded.class_names == ["cat", "dog", "emu"]
    assert loaded.data_description["spec"] == "imagefolder:/somewhere"


def test_config_records_everything(model, tmp_path):
    save_generator(model, tmp_path / "ckpt")
    config = json.loads((tmp_path / "ckpt" / "config.json").read_text())
    assert config["format_version"] == FORMAT_VERSION
    assert config["family"] == model.family
    assert config["model_args"] == model.config
    assert not list(tmp_path.glob(".*tmp*")), "no temporary folder is left behind"


def test_saving_again_replaces_atomically(model, tmp_path):
    save_generator(model, tmp_path / "ckpt")
    with torch.no_grad():
        next(model.parameters()).add_(1.0)
    save_generator(model, tmp_path / "ckpt")
    loaded = load_generator(tmp_path / "ckpt")
    assert torch.equal(next(loaded.parameters()), next(model.parameters()))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt"]


def test_crash_while_writing_keeps_the_old_checkpoint(model, tmp_path, monkeypatch):
    save_generator(model, tmp_path / "ckpt")

    def crash(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr("genaug.models.checkpoint.save_file", crash)
    with pytest.raises(GenaugError, match="Could not save the generator to .*disk full"):
        save_generator(model, tmp_path / "ckpt")
    assert load_generator(tmp_path / "ckpt") is not None
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt"]


def test_missing_folder(tmp_path):
    with pytest.raises(GenaugError, match="does not exist"):
        load_generator(tmp_path / "nope")


def test_missing_weights(model, tmp_path):
    save_generator(model, tmp_path / "ckpt")
    (tmp_path / "ckpt" / "model.safetensors").unlink()
    with pytest.raises(GenaugError, match="model.safetensors is missing"):
        load_generator(tmp_path / "ckpt")


def test_truncated_weights(model, tmp_path):
    save_generator(model, tmp_path / "ckpt")
    weights = tmp_path / "ckpt" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    with pytest.raises(GenaugError, match="unreadable or truncated"):
        load_generator(tmp_path / "ckpt")


def _edit_config(path, **changes):
    config = json.loads(path.read_text())
    config.update(changes)
    path.write_text(json.dumps(config))


def test_unknown_family(model, tmp_path):
    save_generator(model, tmp_path / "ckpt")
    _edit_config(tmp_path / "ckpt" / "config.json", family="flow_matching")
    with pytest.raises(GenaugError, match="Unknown generator family 'flow_matching'"):
        load_generator(tmp_path / "ckpt")


def test_newer_format_version(model, tmp_path):
    save_generator(model, tmp_path / "ckpt")
    _edit_config(tmp_path / "ckpt" / "config.json", format_version=FORMAT_VERSION + 1)
    with pytest.raises(GenaugError, match="newer than this genaug reads"):
        load_generator(tmp_path / "ckpt")


def test_broken_json(model, tmp_path):
    save_generator(model, tmp_path / "ckpt")
    (tmp_path / "ckpt" / "config.json").write_text("{not json")
    with pytest.raises(GenaugError, match="not valid JSON"):
        load_generator(tmp_path / "ckpt")


def test_not_a_checkpoint(tmp_path):
    (tmp_path / "random").mkdir()
    with pytest.raises(GenaugError, match="not a genaug checkpoint"):
        load_generator(tmp_path / "random")


def test_weights_from_another_config_are_refused(model, tmp_path):
    save_generator(model, tmp_path / "ckpt")
    wider = {"width": 32} if model.feature_space else {}  # its sizes do not follow the image's
    other = create_generator(model.family and f"test_{model.family}", image_size=32, **wider)
    save_generator(other, tmp_path / "other")
    (tmp_path / "ckpt" / "model.safetensors").write_bytes(
        (tmp_path / "other" / "model.safetensors").read_bytes()
    )
    with pytest.raises(GenaugError, match="does not match its config.json"):
        load_generator(tmp_path / "ckpt")
