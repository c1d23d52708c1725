"""Mode ``vary``: an image-conditioned generator (a DAGAN trained on digits 0-4) varies images of
classes it never saw (5-9), in every adapter; chains; the refusals."""

from __future__ import annotations

import pickle

import numpy as np
import PIL.Image
import pytest
import torch
from helpers import HOSTS, check_transform, kornia_host, make_generator, single_thread  # noqa: F401

from genaug import GenaugError, GenerativeAugment, GenerativeMix, MixedDataset, SyntheticDataset
from genaug.bench.learn.pipeline import build_pipeline
from genaug.bench.plan.recipes import parse_condition
from genaug.transforms import functional as F
from genaug.transforms.export import export_image_folder
from genaug.transforms.torchvision import TorchvisionGenerativeAugment

A = pytest.importorskip("albumentations")
K = pytest.importorskip("kornia.augmentation")
from genaug.transforms.albumentations import AlbumentationsGenerativeAugment  # noqa: E402
from genaug.transforms.kornia import KorniaGenerativeAugment  # noqa: E402

OTHER_MODES = ("perturb", "resample", "interpolate", "neighbour")


@pytest.fixture(scope="module")
def unseen(digits16):
    """Real digits of classes 5-9, which the DAGAN never saw: uint8 (10, 1, 16, 16), labels."""
    rows = torch.nonzero(digits16.targets >= 5).squeeze(1)[:10]
    return digits16.images[rows], digits16.targets[rows]


def _rgb(images: torch.Tensor, size: int = 20) -> torch.Tensor:
    """Gray uint8 images as RGB at another size: the transform converts and converts back."""
    big = torch.nn.functional.interpolate(images.float(), size=(size, size + 2), mode="bilinear")
    return big.round().clamp(0, 255).to(torch.uint8).expand(-1, 3, -1, -1).contiguous()


# ---------------------------------------------------------------------- the core transform
def test_auto_is_vary_and_keeps_shape_dtype_device_and_label_on_unseen_classes(seen_dagan, unseen):
    model, _ = seen_dagan
    images, labels = unseen
    for batch in (images, _rgb(images), images.float() / 255):
        aug = GenerativeAugment(model, p=1.0, seed=0)
        assert aug.mode == "vary"
        out = aug(batch, labels)
        assert out.shape == batch.shape and out.dtype == batch.dtype
        assert out.device == batch.device
        assert (out != batch).flatten(1).any(1).all()  # every image varied
    mixed, kept = GenerativeMix(model, p=1.0, seed=0)(images, labels)
    assert kept is labels and torch.equal(kept, unseen[1])  # the label goes through untouched
    assert not torch.equal(mixed, images)
    # Labels are not needed (and not read): the same noise gives the same variation.
    aug = GenerativeAugment(model, p=1.0, seed=0)
    assert torch.equal(aug(images), GenerativeAugment(model, p=1.0, seed=0)(images, labels))


def test_params_replay_and_strength_scales_the_noise(seen_dagan, unseen):
    model, _ = seen_dagan
    images = unseen[0].float() / 255
    aug = GenerativeAugment(model, p=1.0, strength=0.5, seed=3)
    out = aug(images)
    params = aug.last_params
    assert set(params) == {"apply", "noise"} and params["noise"].shape == (10, model.latent_dim)
    assert torch.equal(aug(images, params=params), out)
    assert torch.equal(pickle.loads(pickle.dumps(aug))(images, params=params), out)
    expected = model.vary(images, 0.5, noise=params["noise"])  # the kernel is G(x, 0.5 z)
    assert torch.allclose(out, expected, atol=1e-6)
    assert not torch.equal(GenerativeAugment(model, p=1.0, seed=4)(images), out)
    calm = [GenerativeAugment(model, p=1.0, strength=0.0, seed=s)(images) for s in (0, 1)]
    assert torch.equal(*calm)  # strength 0: the central variation, whatever the noise


def test_a_chain_applies_the_generator_once_per_link_and_replays(seen_dagan, unseen):
    model, _ = seen_dagan
    images, labels = unseen[0].float() / 255, unseen[1]
    aug = GenerativeAugment(model, p=1.0, seed=0)
    params = aug.make_params(images, labels, chain=3)
    assert params["noise"].shape == (10, 3, model.latent_dim)
    out = aug(images, labels, params=params)
    expected = images
    for link in range(3):
        expected = model.vary(expected, 1.0, noise=params["noise"][:, link])
    assert torch.allclose(out, expected, atol=1e-6)
    assert torch.equal(aug(images, labels, params=aug.last_params), out)
    one = aug(images, labels, params={**params, "noise": params["noise"][:, :1]})
    assert torch.allclose(one, model.vary(images, 1.0, noise=params["noise"][:, 0]), atol=1e-6)
    assert torch.allclose(F.vary(model, images, params["noise"], 1.0), expected, atol=1e-6)
    with pytest.raises(GenaugError, match=r"chain must be an integer >= 1, got 0"):
        aug.make_params(images, chain=0)
    vae = GenerativeAugment(make_generator(num_classes=0), mode="perturb")
    with pytest.raises(GenaugError, match=r"chain applies the generator several times in mode"):
        vae.make_params(images, chain=2)


# ---------------------------------------------------------------------- adapters
def test_torchvision_keeps_the_label_of_a_pil_sample(seen_dagan, unseen):
    model, _ = seen_dagan
    image = PIL.Image.fromarray(_rgb(unseen[0][:1], 24)[0].permute(1, 2, 0).numpy(), mode="RGB")
    aug = TorchvisionGenerativeAugment(model, p=1.0, seed=0)
    out, label = aug((image, 7))
    assert label == 7 and out.mode == "RGB" and out.size == image.size
    assert not np.array_equal(np.asarray(out), np.asarray(image))
    assert aug.mode == "vary"


@pytest.mark.parametrize("data_format", ["json", "yaml"])
def test_albumentations_saves_and_loads_vary(seen_dagan, unseen, tmp_path, data_format):
    _, checkpoint = seen_dagan
    image = unseen[0][0].permute(1, 2, 0).numpy()  # (16, 16, 1) uint8
    pipeline = A.Compose([AlbumentationsGenerativeAugment(checkpoint, strength=0.8, p=1.0)], seed=5)
    out = pipeline(image=image, label=8)
    path = tmp_path / f"pipeline.{data_format}"
    A.save(pipeline, str(path), data_format=data_format)
    loaded = A.load(str(path), data_format=data_format)
    saved = A.to_dict(loaded)["transform"]["transforms"][0]
    assert saved["mode"] == "vary" and saved["strength"] == 0.8
    assert saved["generator"] == str(checkpoint)  # the path, never weights
    loaded.set_random_seed(5)
    again = loaded(image=image, label=8)
    assert again["label"] == 8 and np.array_equal(again["image"], out["image"])
    assert not np.array_equal(out["image"], image)


def test_kornia_varies_replays_and_runs_in_a_pipeline(seen_dagan, unseen):
    model, _ = seen_dagan
    images = _rgb(unseen[0]).float() / 255
    host = kornia_host()
    aug = host.build(model, "auto", 0.5, 0)
    assert aug.mode == "vary"
    check_transform(host, aug, (images, None))
    assert set(aug.last_params) >= {"noise", "batch_prob"} and "labels" not in aug.last_params
    pipeline = K.AugmentationSequential(K.RandomAffine(10.0, p=1.0), KorniaGenerativeAugment(model))
    out = pipeline(images)
    assert out.shape == images.shape and out.dtype == images.dtype
    same = KorniaGenerativeAugment(model, p=1.0, same_on_batch=True)
    same(images)
    assert torch.equal(same.last_params["noise"][0], same.last_params["noise"][-1])


@pytest.mark.parametrize("host", sorted(HOSTS))
def test_detail_is_refused_with_vary_in_every_host(seen_dagan, host):
    model, _ = seen_dagan
    build = {
        "albumentations": lambda: AlbumentationsGenerativeAugment(model, detail=0.5),
        "mix": lambda: GenerativeMix(model, detail=0.5),
    }.get(host, lambda: GenerativeAugment(model, detail=0.5))
    with pytest.raises(GenaugError, match=r"mode 'vary' makes no reconstruction"):
        build()


# ---------------------------------------------------------------------- synthetic data
def test_synthetic_dataset_varies_exemplars_of_unseen_classes(seen_dagan, digits16):
    model, checkpoint = seen_dagan
    shots = digits16.subset(torch.nonzero(digits16.targets >= 5).squeeze(1)[:15])  # 3 per class
    data = SyntheticDataset(checkpoint, n_per_class=4, seed=2, exemplars=shots)
    assert len(data) == 20 and data.class_names == shots.class_names
    labels = [data[i][1] for i in range(len(data))]
    assert sorted(set(labels)) == [5, 6, 7, 8, 9] and labels.count(7) == 4
    image, label = data[11]
    assert image.shape == (1, 16, 16) and image.dtype == torch.float32 and label == labels[11]
    assert torch.allclose(data.__getitems__([3, 11])[1][0], image, atol=1e-6)
    assert torch.equal(pickle.loads(pickle.dumps(data))[11][0], image)
    assert not torch.equal(SyntheticDataset(model, 4, seed=3, exemplars=shots)[11][0], image)
    mixed = MixedDataset(shots, data, ratio=0.5)
    assert len(mixed) == 30 and mixed[29][1] in range(5, 10)


def test_refusals_name_the_fix(seen_dagan, digits16, tmp_path):
    model, _ = seen_dagan
    vae = make_generator("test_vae")
    listed = r"needs a generator that varies given images \(dagan, diffusers, diffusion, pairvae\)"
    with pytest.raises(GenaugError, match=rf"vary' {listed}"):
        GenerativeAugment(vae, mode="vary")
    with pytest.raises(GenaugError, match=listed):
        AlbumentationsGenerativeAugment(vae, mode="vary")
    for mode in OTHER_MODES:
        with pytest.raises(GenaugError, match=rf"cannot do mode '{mode}'; use mode 'vary'"):
            GenerativeAugment(model, mode=mode)
    with pytest.raises(GenaugError, match=r"cannot do mode 'perturb'; use mode 'vary'"):
        KorniaGenerativeAugment(model, mode="perturb")
    with pytest.raises(GenaugError, match=r"needs the real images to vary: pass exemplars="):
        SyntheticDataset(model, 3)
    with pytest.raises(GenaugError, match=r"exemplars only for a generator that varies images"):
        SyntheticDataset(vae, 3, exemplars=digits16)
    with pytest.raises(GenaugError, match=r"cannot draw samples from noise alone.*exemplars="):
        export_image_folder(model, tmp_path / "out", 4)
    assert not (tmp_path / "out").exists()


# ---------------------------------------------------------------------- the bench recipe
def test_randaugment_plus_dagan_builds_a_vary_pipeline_with_chains(seen_dagan, unseen):
    model, _ = seen_dagan
    images, labels = unseen
    recipe = parse_condition("randaugment+test_dagan@chain=2", ["test_dagan"])
    assert recipe.name == "randaugment+test_dagan@chain=2" and recipe.generative.chain == 2
    outs = []
    for condition in ("randaugment+test_dagan@p=1", "randaugment+test_dagan@p=1,chain=2"):
        pipeline = build_pipeline(parse_condition(condition, ["test_dagan"]), 16, False, model)
        out, kept = pipeline(images, labels)
        assert out.shape == images.shape and out.dtype == images.dtype and kept is labels
        assert pipeline.stages[0].augment.mode == "vary"
        outs.append(out)
    assert not torch.equal(*outs)
    with pytest.raises(GenaugError, match=r"chain=0.*whole number >= 1"):
        parse_condition("test_dagan@chain=0", ["test_dagan"])
    with pytest.raises(GenaugError, match=r"chain applies the generator several times"):
        parse_condition("test_vae@mode=perturb,chain=2", ["test_vae"])


def test_a_dagan_checkpoint_runs_as_a_bench_arm(seen_dagan, tmp_path):
    from genaug.bench import BenchConfig, run_bench

    _, checkpoint = seen_dagan
    config = BenchConfig(
        image_size=16,
        shots=[1],
        seeds=[0],
        model="test_resnet",
        steps=3,
        batch_size=8,
        conditions=["randaugment", "randaugment+test_dagan@chain=2"],
        generator_data=[f"checkpoint:{checkpoint}"],
        device="cpu",
        out=str(tmp_path / "bench"),
        progress=False,
        preview=2,
    )
    cells = run_bench(config).summary["shots"]["1"]["conditions"]
    arms = {cell["arm"]: cell for cell in cells}
    assert set(arms) == {"randaugment", "randaugment+test_dagan@chain=2 [checkpoint]"}
    assert arms["randaugment+test_dagan@chain=2 [checkpoint]"]["accuracy"]["n"] == 1
