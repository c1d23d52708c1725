"""The GAN family: losses, DiffAugment, EMA without the discriminator, collapse stop, resume."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import load_file

from genaug import GenaugError, create_generator, load_generator
from genaug.models import GAN
from genaug.models.diffaugment import DEFAULT_POLICY, diff_augment
from genaug.models.gan import AUTO_POLICY, COLLAPSE_PATIENCE
from genaug.train import TrainingDiverged, train
from genaug.train.state import STATE_TENSORS

COLLAPSED = {"d_loss": 1e-4, "g_loss": 25.0, "d_real": 20.0, "d_fake": -25.0}


def _raw_and_ema(checkpoint):
    """The raw (trained) and EMA weights stored in a training checkpoint folder."""
    state = load_file(str(checkpoint / STATE_TENSORS))
    raw = {k[len("model.") :]: v for k, v in state.items() if k.startswith("model.")}
    return raw, load_file(str(checkpoint / "model.safetensors"))


@pytest.mark.parametrize("loss", ["bce", "hinge"])
def test_both_losses_train(loss, tiny_config, digits16):
    result = train(tiny_config("test_gan", model_args={"loss": loss}), dataset=digits16)
    assert set(result.losses) == {"d_loss", "g_loss", "d_real", "d_fake"}
    assert all(torch.isfinite(torch.tensor(v)) for v in result.losses.values())
    assert load_generator(result.run_dir).config["loss"] == loss


def test_unknown_loss_lists_the_choices():
    with pytest.raises(GenaugError, match="Unknown GAN loss 'wgan'; choose one of bce, hinge"):
        create_generator("test_gan", loss="wgan")


def test_unknown_diff_augment_operation():
    with pytest.raises(GenaugError, match="Unknown DiffAugment operation 'rotate'"):
        create_generator("test_gan", diff_augment="color,rotate")


def test_ema_averages_the_generator_but_copies_the_discriminator(tiny_config, digits16):
    result = train(tiny_config("test_gan"), dataset=digits16)
    raw, ema = _raw_and_ema(result.checkpoint)
    assert raw.keys() == ema.keys()
    discriminator = [k for k in raw if k.startswith("discriminator.")]
    generator = [k for k in raw if k.startswith("generator.") and raw[k].is_floating_point()]
    assert discriminator and generator
    assert all(torch.equal(raw[k], ema[k]) for k in discriminator)
    assert any(not torch.equal(raw[k], ema[k]) for k in generator)


@pytest.mark.parametrize("name", ["test_gan", "test_cgan"])
def test_resume_restores_generator_discriminator_and_optimizers(
    name, tiny_config, digits16, tmp_path
):
    straight = train(tiny_config(name, out=str(tmp_path / "a"), steps=6), dataset=digits16)
    train(tiny_config(name, out=str(tmp_path / "b"), steps=3), dataset=digits16)
    resumed = train(tiny_config(name, out=str(tmp_path / "b"), steps=6, resume=True), digits16)
    a = load_file(str(straight.checkpoint / STATE_TENSORS))
    b = load_file(str(resumed.checkpoint / STATE_TENSORS))
    assert a.keys() == b.keys()
    assert any(k.startswith("optim.discriminator.") for k in a)
    for key in a:
        assert torch.equal(a[key], b[key]), key
    assert straight.losses == resumed.losses


# ---------------------------------------------------------------------------------- DiffAugment
def test_diff_augment_keeps_shape_and_range_and_is_differentiable():
    x = torch.rand(6, 3, 32, 32, requires_grad=True)
    y = diff_augment(x, DEFAULT_POLICY, generator=torch.Generator().manual_seed(0))
    assert y.shape == x.shape and y.dtype == x.dtype
    assert y.min() >= 0 and y.max() <= 1
    assert not torch.allclose(y, x)
    (y * torch.randn_like(y)).sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


@pytest.mark.parametrize("policy", ["color", "translation", "cutout"])
def test_each_diff_augment_operation_is_seeded_and_changes_images(policy):
    x = torch.rand(4, 1, 16, 16)
    a = diff_augment(x, policy, generator=torch.Generator().manual_seed(1))
    b = diff_augment(x, policy, generator=torch.Generator().manual_seed(1))
    assert torch.equal(a, b)
    assert not torch.equal(a, x)


def test_diff_augment_translation_moves_content_and_cutout_erases_it():
    x = torch.zeros(64, 1, 16, 16)
    x[:, :, 6:10, 6:10] = 1.0
    moved = diff_augment(x, "translation", generator=torch.Generator().manual_seed(0))
    assert (moved.sum(dim=(1, 2, 3)) <= 16).all()  # shifted, never duplicated
    assert not torch.equal(moved, x)
    erased = diff_augment(torch.ones(64, 1, 16, 16), "cutout")
    assert ((erased == 0).sum(dim=(1, 2, 3)) > 0).all()


@pytest.mark.parametrize("policy", [None, "", "off"])
def test_diff_augment_off_is_the_identity(policy):
    x = torch.rand(2, 1, 16, 16)
    assert diff_augment(x, policy) is x


def test_auto_diff_augment_follows_the_training_data_size():
    model = create_generator("test_gan")
    assert model.diff_augment_policy == AUTO_POLICY  # size unknown: on
    model.data_description = {"count": 1797}
    assert model.diff_augment_policy == AUTO_POLICY
    model.data_description = {"count": 50_000}
    assert model.diff_augment_policy == ""
    assert create_generator("test_gan", diff_augment="off").diff_augment_policy == ""
    assert GAN(diff_augment=None).diff_augment_policy == ""
    assert create_generator("test_gan", diff_augment="cutout").diff_augment_policy == "cutout"


# ---------------------------------------------------------------------------------- collapse
def test_check_training_fires_after_a_run_of_discriminator_wins():
    model = create_generator("test_gan")
    healthy = {"d_loss": 1.2, "g_loss": 0.9, "d_real": 0.3, "d_fake": -0.2}
    assert model.check_training(COLLAPSED, 1) is None
    assert model.check_training(healthy, 2) is None  # the count starts again
    messages = [model.check_training(COLLAPSED, s) for s in range(COLLAPSE_PATIENCE)]
    assert messages[:-1] == [None] * (COLLAPSE_PATIENCE - 1)
    assert "discriminator won outright" in messages[-1] and "mode collapse" in messages[-1]


def test_collapse_stops_the_loop_and_keeps_the_last_checkpoint(tiny_config, digits16, monkeypatch):
    original = GAN.training_step

    def collapsing(self, images, labels, optimizers, autocast):
        losses = original(self, images, labels, optimizers, autocast)
        return {**losses, **{k: torch.tensor(v) for k, v in COLLAPSED.items()}}

    monkeypatch.setattr(GAN, "training_step", collapsing)
    config = tiny_config("test_gan", steps=40, log_every=1, checkpoint_every=4)
    with pytest.raises(TrainingDiverged, match="won outright.*checkpoint of step 8 is kept"):
        train(config, dataset=digits16)
    assert load_generator(config.out).family == "gan"


# ---------------------------------------------------------------------------------- contract
def test_gan_cannot_encode_and_says_which_families_can():
    model = create_generator("test_gan", image_size=16)
    with pytest.raises(GenaugError, match=r"no encoder.*\(cgan, vae\)"):
        model.encode(torch.rand(2, 1, 16, 16))


def test_conditional_decode_needs_labels():
    model = create_generator("test_gan", image_size=16, num_classes=3).eval()
    with pytest.raises(GenaugError, match="class-conditional; pass one label"):
        model.decode(torch.randn(2, model.latent_dim))


def test_discriminator_is_spectral_normalised_unless_asked_not_to():
    with_sn = create_generator("test_gan", image_size=16)
    without = create_generator("test_gan", image_size=16, spectral_norm=False)
    assert any("parametrizations" in k for k in with_sn.discriminator.state_dict())
    assert not any("parametrizations" in k for k in without.discriminator.state_dict())


def test_unconditional_gan_trains(tiny_config, digits16):
    result = train(tiny_config("test_gan", unlabeled=True), dataset=digits16)
    assert result.model.num_classes == 0
    assert result.model.discriminator.class_embedding is None
