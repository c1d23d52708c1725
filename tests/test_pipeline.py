"""A user's own diffusers pipeline from a local folder: tiny pixel and Stable Diffusion pipelines
built in the test (random weights, save_pretrained), run through every adapter; folders that are
missing, incomplete or of an unknown type get one sentence. Nothing downloads (offline mode)."""

from __future__ import annotations

import json
import pickle
import shutil

import numpy as np
import pytest
import torch
from helpers import HOSTS, check_transform, single_thread  # noqa: F401
from tiny_pipelines import save_latent_pipeline, save_pixel_pipeline

from genaug import GenaugError, GenerativeAugment, load_generator
from genaug.models import load_pipeline, read_generator_config


@pytest.fixture(autouse=True)
def offline(monkeypatch):
    """Any attempt to reach the hub fails: loading must be local."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("pipelines")
    return {
        "pixel": save_pixel_pipeline(root / "ddpm"),
        "latent": save_latent_pipeline(root / "sd"),
    }


@pytest.fixture(scope="module")
def stable_diffusion(folders):
    """The latent pipeline with two classes: labels pick the prompts."""
    return load_pipeline(folders["latent"], class_names=["cat", "dog"], guidance_scale=3.0)


def test_a_pixel_pipeline_works_as_the_diffusion_family(folders):
    model = load_generator(f"diffusers:{folders['pixel']}")
    assert (model.family, model.kind, model.image_size, model.channels) == (
        "diffusers",
        "pixel",
        16,
        1,
    )
    assert model.latent_dim == 256 and not model.conditional
    images = torch.rand(3, 1, 16, 16)
    varied = model.vary(images, 0.4, generator=torch.Generator().manual_seed(0))
    assert varied.shape == images.shape and varied.min() >= 0 and varied.max() <= 1
    assert torch.equal(model.vary(images, 0.0), images)
    assert model.sample(2, generator=torch.Generator().manual_seed(0)).shape == (2, 1, 16, 16)
    config = read_generator_config(f"diffusers:{folders['pixel']}")
    assert config["family"] == "diffusers" and config["pipeline_class"] == "DDPMPipeline"


def test_a_latent_pipeline_edits_under_each_class_prompt(stable_diffusion):
    model = stable_diffusion
    assert (model.kind, model.image_size, model.channels, model.num_classes) == ("latent", 16, 3, 2)
    assert model._prompts(torch.tensor([1, 0]), 2) == ["a photo of a dog", "a photo of a cat"]
    images, noise = torch.rand(2, 3, 16, 16), torch.randn(2, model.latent_dim)
    cat = model.vary(images, 0.5, noise=noise, labels=torch.tensor([0, 0]))
    dog = model.vary(images, 0.5, noise=noise, labels=torch.tensor([1, 1]))
    assert cat.shape == images.shape and not torch.equal(cat, dog)
    assert torch.equal(cat, model.vary(images, 0.5, noise=noise, labels=torch.tensor([0, 0])))
    unguided = load_pipeline(model.config["path"], class_names=["cat", "dog"], guidance_scale=1)
    other = unguided.vary(images, 0.5, noise=noise, labels=torch.tensor([0, 0]))
    assert not torch.equal(other, cat)  # guidance is a setting that acts
    assert model.sample(2, labels=torch.tensor([0, 1])).shape == (2, 3, 16, 16)


@pytest.mark.parametrize("host", sorted(HOSTS))
@pytest.mark.parametrize("kind", ["pixel", "latent"])
def test_every_adapter_runs_a_pipeline(host, kind, folders, stable_diffusion):
    driver = HOSTS[host]
    # A spec string (each process loads the folder), or a loaded pipeline with class names.
    generator = f"diffusers:{folders['pixel']}" if kind == "pixel" else stable_diffusion
    p = 1.0 if host == "albumentations" else 0.5
    transform = driver.build(generator, "vary", p, 0)
    torch.manual_seed(0)
    dtype = torch.float32 if not driver.uint8 else torch.uint8
    sample = driver.sample(4, 3 if kind == "latent" else 1, 12, dtype, 2)
    out = check_transform(driver, transform, sample)
    assert not np.array_equal(np.asarray(driver.image_of(out)), np.asarray(driver.image_of(sample)))


def test_a_loaded_pipeline_travels_as_its_folder_and_settings(stable_diffusion):
    aug = GenerativeAugment(stable_diffusion, p=1.0, strength=0.5, seed=0)
    images, labels = torch.rand(2, 3, 16, 16), torch.tensor([0, 1])
    out = aug(images, labels)
    blob = pickle.dumps(aug)
    assert len(blob) < 50_000  # the config, not the weights
    clone = pickle.loads(blob)
    assert clone.generator.class_names == ["cat", "dog"]
    assert torch.equal(clone(images, labels, params=aug.last_params), out)
    changed = load_pipeline(stable_diffusion.config["path"], class_names=["cat", "dog"])
    with torch.no_grad():
        next(changed.unet.parameters()).add_(1.0)  # no longer the folder's weights
    assert not changed.weights_from_config()
    assert len(pickle.dumps(GenerativeAugment(changed, seed=0))) > 50_000  # its weights travel


def test_albumentations_saves_a_pipeline_by_its_spec(folders, tmp_path):
    albumentations = pytest.importorskip("albumentations")
    from genaug.transforms.albumentations import AlbumentationsGenerativeAugment

    spec = f"diffusers:{folders['pixel']}"
    pipeline = albumentations.Compose(
        [AlbumentationsGenerativeAugment(spec, strength=0.3, p=1.0)], seed=0
    )
    albumentations.save(pipeline, tmp_path / "p.json", data_format="json")
    loaded = albumentations.load(tmp_path / "p.json", data_format="json")
    assert loaded.transforms[0].generator == spec
    image = np.random.default_rng(0).integers(0, 256, (16, 16, 1), dtype=np.uint8)
    assert loaded(image=image)["image"].shape == image.shape


# ---------------------------------------------------------------------- bad folders
def _copy(folders, kind, tmp_path):
    return shutil.copytree(folders[kind], tmp_path / kind)


def test_bad_folders_get_one_sentence_naming_what_is_missing(folders, tmp_path):
    with pytest.raises(GenaugError, match="No diffusers pipeline at .*does not exist"):
        load_generator(f"diffusers:{tmp_path / 'nowhere'}")
    folder = _copy(folders, "latent", tmp_path)
    shutil.rmtree(folder / "vae")
    with pytest.raises(GenaugError, match="incomplete: its vae/ folder .* is missing"):
        load_pipeline(folder)
    folder = _copy(folders, "pixel", tmp_path)
    for weights in (folder / "unet").glob("*.safetensors"):
        weights.rename(weights.with_suffix(".bin"))
    with pytest.raises(GenaugError, match="unet/ holds no .safetensors weights.*never unpickles"):
        load_pipeline(folder)
    (folder / "model_index.json").write_text(json.dumps({"_class_name": "KandinskyPipeline"}))
    with pytest.raises(GenaugError, match="KandinskyPipeline, a pipeline type genaug does not"):
        load_pipeline(folder)
    (folder / "model_index.json").unlink()
    with pytest.raises(GenaugError, match="model_index.json is missing"):
        load_pipeline(folder)


def test_bad_settings_are_one_sentence(folders):
    with pytest.raises(GenaugError, match="at least two names"):
        load_pipeline(folders["latent"], class_names=["cat"])
    with pytest.raises(GenaugError, match="has no \\{name\\}"):
        load_pipeline(folders["latent"], class_names=["cat", "dog"], prompt="a photo")
    with pytest.raises(GenaugError, match="dtype must be one of"):
        load_pipeline(folders["pixel"], dtype="int8")
    with pytest.raises(GenaugError, match="not trained by genaug"):
        load_pipeline(folders["pixel"]).create_optimizers(1e-3)
