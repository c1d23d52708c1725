"""The diffusion family: DDIM arithmetic, SDEdit's strength, classes it never saw, the one
sentence without the extra, and the CLI (train --unlabeled, sample, info, the offline cache)."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch
from helpers import make_generator, single_thread  # noqa: F401

from genaug import GenaugError, GenerativeAugment, SyntheticDataset, create_generator
from genaug.cli import main
from genaug.models import ddim
from genaug.models.diffusion import schedule_alphas


# ---------------------------------------------------------------------- the DDIM loop
@pytest.mark.parametrize("prediction_type", ddim.PREDICTION_TYPES)
@pytest.mark.parametrize("strength", [0.3, 1.0])
def test_an_exact_denoiser_gives_the_clean_input_back(prediction_type, strength):
    """With a denoiser that knows the clean input, DDIM lands on it from any start: the
    update and the three prediction types' conversions are right."""
    alphas = schedule_alphas(1000, "squaredcos_cap_v2")
    clean = torch.rand(3, 1, 8, 8) * 2 - 1
    noise = torch.randn(3, 1, 8, 8)

    def oracle(x, t):
        a = alphas[t].float().view(-1, 1, 1, 1)
        eps = (x - a.sqrt() * clean) / (1 - a).sqrt()
        if prediction_type == "epsilon":
            return eps
        if prediction_type == "v_prediction":
            return a.sqrt() * eps - (1 - a).sqrt() * clean
        return clean

    out = ddim.edit(oracle, alphas, clean, noise, strength, 5, prediction_type)
    assert torch.allclose(out, clean, atol=1e-3)


def test_edit_timesteps_start_at_the_strength_and_cost_in_proportion():
    assert ddim.edit_timesteps(0.0, 10, 1000) == []
    full = ddim.edit_timesteps(1.0, 10, 1000)
    assert full[0] == 999 and len(full) == 10 and full == sorted(full, reverse=True)
    part = ddim.edit_timesteps(0.3, 10, 1000)
    assert part[0] == 300 and len(part) == 3
    assert len(ddim.edit_timesteps(0.01, 10, 1000)) == 1  # at least one step


def test_unknown_prediction_type_is_one_sentence():
    with pytest.raises(GenaugError, match="prediction type 'flow'.*epsilon"):
        ddim.edit(lambda x, t: x, torch.ones(10), None, torch.zeros(1, 2), 1.0, 2, "flow")


# ---------------------------------------------------------------------- SDEdit through vary
def test_strength_zero_is_the_image_and_distance_grows_with_strength():
    model = make_generator("test_diffusion", num_classes=0)
    images = torch.rand(8, 1, 16, 16)
    noise = torch.randn(8, model.latent_dim)
    assert torch.equal(model.vary(images, 0.0, noise=noise), images)
    distance = [
        float((model.vary(images, s, noise=noise) - images).abs().mean()) for s in (0.05, 0.5, 1)
    ]
    assert distance[0] < distance[1] < distance[2]
    assert distance[0] < 0.1  # a light edit keeps the image


def test_a_conditional_model_varies_without_labels_and_with_them():
    model = make_generator("test_diffusion", num_classes=3)
    images, noise = torch.rand(2, 1, 16, 16), torch.randn(2, model.latent_dim)
    unlabelled = model.vary(images, 0.6, noise=noise)  # "no class": any class, also unseen
    labelled = model.vary(images, 0.6, noise=noise, labels=torch.tensor([0, 2]))
    assert unlabelled.shape == labelled.shape and not torch.equal(unlabelled, labelled)
    # In the transforms, vary never needs a label: no class is inferred (the model has no head).
    aug = GenerativeAugment(model, mode="vary", p=1.0, strength=0.4, seed=0)
    assert aug(images).shape == images.shape
    with pytest.raises(GenaugError, match="labels from 0 to 7.*classes 0 to 2"):
        aug(images, torch.tensor([0, 7]))


def test_modes_auto_resample_and_what_it_cannot_do():
    unconditional = make_generator("test_diffusion", num_classes=0)
    assert GenerativeAugment(unconditional).mode == "vary"
    assert GenerativeAugment(make_generator("test_diffusion")).mode == "vary"
    resample = GenerativeAugment(make_generator("test_diffusion"), mode="resample", p=1.0, seed=0)
    assert resample(torch.rand(2, 1, 16, 16), torch.tensor([1, 2])).shape == (2, 1, 16, 16)
    with pytest.raises(GenaugError, match="no encoder.*'perturb'.*can do vary, resample"):
        GenerativeAugment(unconditional, mode="perturb")


def test_latent_dim_is_the_image_and_another_is_refused():
    model = create_generator("test_diffusion", image_size=32, channels=3)
    assert model.latent_dim == 3 * 32 * 32
    with pytest.raises(GenaugError, match="image-shaped noise.*latent_dim cannot be 16"):
        create_generator("test_diffusion", latent_dim=16)
    with pytest.raises(GenaugError, match="beta_schedule must be one of"):
        create_generator("test_diffusion", beta_schedule="cubic")


def test_the_offline_cache_is_the_dataset_made_once(digits16):
    shots = digits16.subset(range(20))  # two shots of each digit
    model = make_generator("test_diffusion", num_classes=0)
    data = SyntheticDataset(model, 2 * 2, exemplars=shots, strength=0.3, seed=1)
    cache = data.to_image_dataset(batch_size=7)
    assert len(cache) == len(data) == 40 and cache.class_names == shots.class_names
    image, label = data[13]
    assert (
        label == int(cache.targets[13]) and (cache[13][0] - image).abs().max() <= 0.5 / 255 + 1e-6
    )
    with pytest.raises(GenaugError, match="strength must lie in"):
        SyntheticDataset(model, 2, exemplars=shots, strength=2)


# ---------------------------------------------------------------------- without the extra
def test_without_diffusers_genaug_imports_and_building_says_the_extra():
    code = (
        "import sys; sys.modules['diffusers'] = None\n"
        "import genaug\n"
        "from genaug import *\n"
        "assert 'diffusion' in genaug.list_generators()\n"
        "try:\n"
        "    genaug.create_generator('test_diffusion')\n"
        "except genaug.GenaugError as exc:\n"
        "    print(exc)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    message = done.stdout.strip()
    assert "needs the optional diffusers package" in message and '".[diffusion]"' in message
    assert message.count(". ") == 0  # one sentence


# ---------------------------------------------------------------------- the command line
def test_cli_trains_an_unlabeled_model_samples_and_reads_it(tmp_path, capsys):
    run = tmp_path / "run"
    args = ["train", "--model", "test_diffusion", "--data", "digits", "--image-size", "16"]
    args += ["--unlabeled", "--steps", "4", "--batch-size", "8", "--checkpoint-every", "2"]
    assert main([*args, "--out", str(run), "--device", "cpu", "--no-progress"]) == 0
    grid = tmp_path / "grid.png"
    assert main(["sample", "--checkpoint", str(run), "--n", "8", "--out", str(grid)]) == 0
    assert grid.is_file()
    assert main(["info", "--checkpoint", str(run)]) == 0
    assert '"family": "diffusion"' in capsys.readouterr().out
    bad = ["--model-arg", "sample_steps=0", "--out", str(tmp_path / "bad"), "--device", "cpu"]
    assert main([*args, *bad]) == 2
    assert "sample_steps must be a positive integer" in capsys.readouterr().err
