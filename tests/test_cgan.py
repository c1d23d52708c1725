"""The C-GAN family: the encoder inverts the decoder (cycle + reconstruction), GAN otherwise."""

from __future__ import annotations

import contextlib

import pytest
import torch

from genaug import create_generator, load_generator, save_generator
from genaug.data import train_test_split
from genaug.models import CGAN, GAN
from genaug.train import TrainConfig, train


def test_cgan_is_a_gan_with_an_encoder():
    model = create_generator("test_cgan", image_size=16, num_classes=3)
    assert isinstance(model, GAN) and isinstance(model, CGAN)
    assert model.has_encoder and not GAN.has_encoder
    assert model.training_only_prefixes == ("discriminator.",)
    assert model.config["cycle_weight"] == 1.0 and model.config["recon_weight"] == 1.0


def test_encode_gives_a_deterministic_latent_with_unit_scale():
    model = create_generator("test_cgan", image_size=16, num_classes=3).eval()
    x, labels = torch.rand(5, 1, 16, 16), torch.tensor([0, 1, 2, 0, 1])
    encoding = model.encode(x, labels)
    assert encoding.mean.shape == (5, model.latent_dim)
    assert torch.equal(encoding.scale, torch.ones_like(encoding.mean))
    assert torch.equal(model.encode(x, labels).mean, encoding.mean)


def test_training_step_reports_cycle_and_reconstruction_and_trains_the_encoder():
    model = create_generator("test_cgan", image_size=16, num_classes=2).train()
    optimizers = model.create_optimizers(model.default_lr)
    before = [p.detach().clone() for p in model.encoder.parameters()]
    losses = model.training_step(
        torch.rand(8, 1, 16, 16), torch.randint(0, 2, (8,)), optimizers, contextlib.nullcontext
    )
    # "head": the class head's cross-entropy (conditional models, see test_infer_labels.py).
    assert set(losses) == {"g_loss", "cycle", "recon", "head", "d_loss", "d_real", "d_fake"}
    assert all(not torch.equal(a, b) for a, b in zip(before, model.encoder.parameters()))


def test_weights_are_recorded_and_reloaded(tmp_path):
    model = create_generator("test_cgan", image_size=16, cycle_weight=0.5, recon_weight=2.0)
    save_generator(model, tmp_path / "ckpt")
    loaded = load_generator(tmp_path / "ckpt")
    assert (loaded.cycle_weight, loaded.recon_weight) == (0.5, 2.0)


@pytest.fixture(scope="module")
def trained(digits16, tmp_path_factory):
    """A C-GAN trained briefly on digits at 16 px, and held-out real digits."""
    training, test = train_test_split(digits16, test_fraction=0.3, test_seed=0)
    config = TrainConfig(
        model="test_cgan",
        out=str(tmp_path_factory.mktemp("cgan") / "run"),
        image_size=16,
        steps=100,
        batch_size=32,
        lr=2e-3,
        checkpoint_every=100,
        log_every=50,
        device="cpu",
        progress=False,
        model_args={"width": 16, "latent_dim": 16},
    )
    return train(config, dataset=training).model.cpu(), test


def test_encoder_reconstructs_held_out_digits_better_than_random_latents(trained):
    model, test = trained
    x, labels = test.float_images(), test.targets
    with torch.no_grad():
        reconstructed = model.decode(model.encode(x, labels).mean, labels)
        generator = torch.Generator().manual_seed(0)
        random = model.decode(torch.randn(len(x), model.latent_dim, generator=generator), labels)
    recon_error = (reconstructed - x).abs().mean()
    random_error = (random - x).abs().mean()
    assert recon_error < 0.8 * random_error, (float(recon_error), float(random_error))
