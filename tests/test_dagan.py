"""The DAGAN family: pair training in the one loop, vary, save/load, refusals."""

from __future__ import annotations

import contextlib
from pathlib import Path

import pytest
import torch

from genaug import GenaugError, create_generator, load_generator
from genaug.data import ImageDataset
from genaug.models import DAGAN, save_generator
from genaug.train import train

LOSSES = {"g_loss", "d_loss", "d_real", "d_fake", "diversity", "match", "d_mismatch"}


def _vary(model, images, seed=0):
    return model.vary(images, generator=torch.Generator(device=model.device).manual_seed(seed))


def test_trains_saves_and_loads_with_identical_output(tiny_config, digits16, tmp_path):
    first = train(tiny_config("test_dagan"), dataset=digits16)
    again = train(tiny_config("test_dagan", out=str(tmp_path / "again")), dataset=digits16)
    assert set(first.losses) == LOSSES
    assert all(torch.isfinite(torch.tensor(v)) for v in first.losses.values())
    images = digits16.images[:6].float() / 255
    out = _vary(first.model, images)
    assert torch.equal(out, _vary(again.model, images))  # same seed, same training
    loaded = load_generator(first.run_dir)
    assert isinstance(loaded, DAGAN) and loaded.num_classes == 0 and not loaded.conditional
    assert loaded.class_names == digits16.class_names  # what it learnt from, not conditioned on
    assert torch.equal(out, _vary(loaded, images))
    resaved = load_generator(save_generator(loaded, tmp_path / "copy"))
    assert resaved.config == loaded.config and torch.equal(out, _vary(resaved, images))
    assert sorted(p.name for p in (first.run_dir / "samples").iterdir()) == [
        "step_0000003.png",
        "step_0000006.png",
    ]


def test_vary_keeps_shape_dtype_device_on_a_class_it_never_saw(tiny_config, digits16):
    seen = digits16.subset(torch.nonzero(digits16.targets < 5).squeeze(1))
    model = train(tiny_config("test_dagan"), dataset=seen).model
    unseen = digits16.images[digits16.targets == 7][:5].float() / 255
    out = _vary(model, unseen)
    assert out.shape == unseen.shape and out.dtype == torch.float32 and out.device == unseen.device
    assert float(out.min()) >= 0.0 and float(out.max()) <= 1.0
    assert not torch.equal(out, _vary(model, unseen, seed=1))  # the noise matters
    # strength scales the noise: 0 gives the same central variation whatever the seed.
    calm = [model.vary(unseen, 0.0, torch.Generator().manual_seed(s)) for s in (0, 1)]
    assert torch.equal(*calm)


def test_loop_pairs_two_different_images_of_one_class(tiny_config, monkeypatch):
    # Class k's images are flat planes of value 40 k + i: class and image readable off a pixel.
    counts = [3, 2, 4, 1]  # the class with one image is never an anchor or a partner
    values = [40 * k + i for k, n in enumerate(counts) for i in range(n)]
    images = torch.tensor(values, dtype=torch.uint8)[:, None, None, None].expand(-1, 1, 16, 16)
    targets = torch.tensor([k for k, n in enumerate(counts) for _ in range(n)])
    data = ImageDataset(images.contiguous(), targets, ["a", "b", "c", "d"])
    seen = []
    step = DAGAN.training_step

    def spy(self, images, labels, optimizers, autocast, partners=None):
        seen.append((images[:, 0, 0, 0] * 255, partners[:, 0, 0, 0] * 255, labels))
        return step(self, images, labels, optimizers, autocast, partners=partners)

    monkeypatch.setattr(DAGAN, "training_step", spy)
    train(tiny_config("test_dagan", batch_size=8), dataset=data)
    assert len(seen) == 6
    for anchors, partners, labels in seen:
        assert labels is None  # the model itself never sees labels
        anchors, partners = anchors.round().long(), partners.round().long()
        assert torch.equal(anchors // 40, partners // 40) and bool((anchors != partners).all())
        assert not bool((anchors // 40 == 3).any())


def test_diff_augment_transforms_both_images_of_a_pair_alike():
    model = create_generator("test_dagan", image_size=16, diff_augment="color,translation,cutout")
    captured = []
    model.discriminator.forward = lambda a, b: captured.append((a, b)) or a.new_zeros(len(a))
    images = torch.rand(8, 1, 16, 16)
    model.discriminate(images, images.clone(), model.diff_augment_policy)
    anchors, others = captured[0]
    assert torch.equal(anchors, others) and not torch.equal(anchors, images)


def test_refuses_unlabelled_or_unpairable_data_before_writing(tiny_config, digits16):
    config = tiny_config("test_dagan", unlabeled=True)
    with pytest.raises(GenaugError, match="trains on pairs of images of the same class"):
        train(config, dataset=digits16)
    assert not Path(config.out).exists()
    lonely = ImageDataset(digits16.images[:3], torch.tensor([0, 1, 2]), ["0", "1", "2"])
    with pytest.raises(GenaugError, match="no class of the dataset holds two images"):
        train(tiny_config("test_dagan"), dataset=lonely)


def test_needs_an_exemplar_and_says_so():
    model = create_generator("test_dagan", image_size=16)
    with pytest.raises(GenaugError, match=r"cannot draw images from noise alone; call model.vary"):
        model.sample(2)
    with pytest.raises(GenaugError, match=r"varies images shaped \(B, 1, 16, 16\), got"):
        model.vary(torch.rand(2, 3, 16, 16))
    with pytest.raises(GenaugError, match="trains on pairs: pass partners"):
        model.training_step(torch.rand(2, 1, 16, 16), None, {}, torch.autocast)
    with pytest.raises(
        GenaugError, match=r"varies images \(dagan, diffusers, diffusion, pairvae\)"
    ):
        create_generator("test_gan", image_size=16).vary(torch.rand(2, 1, 16, 16))


def test_evaluate_refuses_it_before_any_work(digits16, tmp_path):
    from genaug.eval.evaluate import evaluate_generator

    model = create_generator("test_dagan", image_size=16)
    with pytest.raises(GenaugError, match="does not make \\(it varies given images\\)"):
        evaluate_generator(model, digits16, device="cpu", cache_dir=tmp_path / "cache")
    assert not (tmp_path / "cache").exists()


def test_config_round_trip_and_class_flags():
    model = create_generator("test_dagan", image_size=16, channels=3, num_classes=10)
    assert model.config["num_classes"] == 0  # labels only pair images: unconditional
    assert type(model)(**model.config).config == model.config
    assert DAGAN.image_conditioned and DAGAN.trains_on_pairs and not DAGAN.has_encoder
    assert not create_generator("test_vae").image_conditioned
    with pytest.raises(GenaugError, match="Unknown GAN loss"):
        create_generator("test_dagan", loss="wgan")


@pytest.mark.parametrize("mismatched", [True, False])
def test_mismatched_pairs_join_the_fakes_only_when_asked(mismatched):
    model = create_generator("test_dagan", image_size=16, mismatched_pairs=mismatched).train()
    seen, forward = [], model.discriminator.forward
    model.discriminator.forward = lambda a, b: seen.append(len(a)) or forward(a, b)
    images = torch.rand(4, 1, 16, 16)
    optimizers = model.create_optimizers(1e-3)
    losses = model.training_step(
        images, None, optimizers, contextlib.nullcontext, partners=images.flip(0)
    )
    assert seen[0] == (12 if mismatched else 8)  # real + fake (+ mismatched) pairs, one batch
    assert ("d_mismatch" in losses) is mismatched


def test_skip_drop_and_upsample_shape_the_generator():
    # At 16 px the decoder has one skip level (8 px); dropping it leaves the exemplar only the
    # 4x4 bottleneck, so the generator's parameters shrink and its outputs keep their shape.
    kept = create_generator("test_dagan", image_size=16, skip_drop=0, upsample="transposed")
    dropped = create_generator("test_dagan", image_size=16, skip_drop=1, upsample="resize")
    assert dropped.generator.use_skip == [False] and kept.generator.use_skip == [True]
    count = lambda m: sum(p.numel() for p in m.generator.parameters())  # noqa: E731
    assert count(dropped) != count(kept)
    images = torch.rand(3, 1, 16, 16)
    for model in (kept, dropped):
        assert model.eval().vary(images).shape == images.shape
    assert type(dropped)(**dropped.config).config == dropped.config
    with pytest.raises(GenaugError, match="skip_drop must be an integer from 0 to 1 at 16 px"):
        create_generator("test_dagan", image_size=16, skip_drop=2)
    with pytest.raises(GenaugError, match="Unknown upsample 'bicubic'"):
        create_generator("test_dagan", image_size=16, upsample="bicubic")


def test_a_checkpoint_without_the_newer_arguments_loads_as_it_was_built(tmp_path):
    import json

    old = create_generator("test_dagan", image_size=16, skip_drop=0, upsample="transposed")
    folder = save_generator(old, tmp_path / "old")
    config_path = next(p for p in Path(folder).rglob("*.json") if "model_args" in p.read_text())
    config = json.loads(config_path.read_text())
    for key in ("skip_drop", "upsample", "match_weight"):
        del config["model_args"][key]
    config_path.write_text(json.dumps(config))
    loaded = load_generator(folder)
    images = torch.rand(2, 1, 16, 16)
    noise = torch.randn(2, old.latent_dim)
    assert torch.equal(old.eval().vary(images, noise=noise), loaded.vary(images, noise=noise))
