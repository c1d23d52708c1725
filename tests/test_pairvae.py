"""The pair VAE family: pair training in the one loop, vary, save/load, the latent matters."""

from __future__ import annotations

import contextlib
from pathlib import Path

import pytest
import torch

from genaug import GenaugError, create_generator, load_generator
from genaug.data.pairs import pair_indices
from genaug.models import PairVAE, save_generator
from genaug.train import train

LOSSES = {"loss", "recon", "kl"}


def _vary(model, images, seed=0):
    return model.vary(images, generator=torch.Generator(device=model.device).manual_seed(seed))


def test_trains_saves_and_loads_with_identical_output(tiny_config, digits16, tmp_path):
    first = train(tiny_config("test_pairvae"), dataset=digits16)
    again = train(tiny_config("test_pairvae", out=str(tmp_path / "again")), dataset=digits16)
    assert set(first.losses) == LOSSES
    assert all(torch.isfinite(torch.tensor(v)) for v in first.losses.values())
    images = digits16.images[:6].float() / 255
    out = _vary(first.model, images)
    assert torch.equal(out, _vary(again.model, images))  # same seed, same training
    loaded = load_generator(first.run_dir)
    assert isinstance(loaded, PairVAE) and loaded.num_classes == 0 and not loaded.conditional
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
    model = train(tiny_config("test_pairvae"), dataset=seen).model
    unseen = digits16.images[digits16.targets == 7][:5].float() / 255
    out = _vary(model, unseen)
    assert out.shape == unseen.shape and out.dtype == torch.float32 and out.device == unseen.device
    assert float(out.min()) >= 0.0 and float(out.max()) <= 1.0
    assert not torch.equal(out, _vary(model, unseen, seed=1))  # the noise matters
    calm = [model.vary(unseen, 0.0, torch.Generator().manual_seed(s)) for s in (0, 1)]
    assert torch.equal(*calm)  # strength 0: the central variation whatever the seed
    noise = torch.randn(5, model.latent_dim, generator=torch.Generator().manual_seed(2))
    assert torch.equal(
        model.vary(unseen, 0.5, noise=noise), model.vary(unseen, 1.0, noise=noise / 2)
    )


def test_the_loss_is_the_elbo_of_the_partner_given_the_exemplar():
    torch.manual_seed(0)
    model = create_generator("test_pairvae", image_size=16, beta=2.0).train()
    images, partners = torch.rand(4, 1, 16, 16).round(), torch.rand(4, 1, 16, 16).round()
    optimizers = model.create_optimizers(1e-3)
    losses = model.training_step(
        images, None, optimizers, contextlib.nullcontext, partners=partners
    )
    assert set(losses) == LOSSES and float(losses["kl"]) >= 0
    assert float(losses["loss"]) == pytest.approx(float(losses["recon"] + 2.0 * losses["kl"]))
    # The reconstruction target is the partner: swapping it changes the term.
    model.eval()
    with torch.no_grad():
        torch.manual_seed(1)
        to_partners = model.elbo_terms(images, partners)["recon"]
        torch.manual_seed(1)
        to_images = model.elbo_terms(images, images)["recon"]
    assert float(to_partners) != pytest.approx(float(to_images))


@pytest.mark.parametrize("skips", [0, 1, 5])
def test_skips_choose_which_exemplar_features_reach_the_decoder(skips):
    # At 32 px the exemplar has 16, 8 and 4 px features; the 4 px ones always reach the decoder.
    model = create_generator("test_pairvae", image_size=32, skips=skips).eval()
    used = min(skips, 2)
    assert model.decoder.skips == used
    x = torch.rand(2, 1, 32, 32)
    features = model.features(x)
    assert [f.shape[-1] for f in features] == [16, 8, 4]
    z = torch.zeros(2, model.latent_dim)
    base = model.decoder(features, z)
    for k in range(len(features)):  # perturb one level's features at a time
        changed = [g + 1.0 if i == k else g for i, g in enumerate(features)]
        reaches = not torch.equal(model.decoder(changed, z), base)
        assert reaches == (k >= 2 - used)
    assert model.config["skips"] == skips and type(model)(**model.config).config == model.config


def test_the_latent_is_used_after_training_on_pairs(digits16):
    # 150 steps on real digit pairs: different latents give clearly different images. (beta 1:
    # the tiny model's z collapses this early under the default beta 3.)
    torch.manual_seed(0)
    model = create_generator("test_pairvae", image_size=16, beta=1.0).train()
    optimizers = model.create_optimizers(3e-3)
    images = digits16.images.float() / 255
    targets = digits16.targets
    for step in range(150):
        index, partner = pair_indices(step, 32, targets, seed=0)  # the loop's pair sampler
        losses = model.training_step(
            images[index], None, optimizers, contextlib.nullcontext, partners=images[partner]
        )
    assert float(losses["kl"]) > 1.0  # the posterior carries information about the partner
    model.eval()
    x = images[:8]
    spread = (_vary(model, x, 0) - _vary(model, x, 1)).abs().mean()
    assert float(spread) > 0.01


def test_needs_pairs_and_an_exemplar_and_says_so(tiny_config, digits16):
    model = create_generator("test_pairvae", image_size=16)
    with pytest.raises(GenaugError, match=r"cannot draw images from noise alone; call model.vary"):
        model.sample(2)
    with pytest.raises(GenaugError, match=r"varies images shaped \(B, 1, 16, 16\), got"):
        model.vary(torch.rand(2, 3, 16, 16))
    with pytest.raises(GenaugError, match=r"noise must be shaped \(2, 8\)"):
        model.vary(torch.rand(2, 1, 16, 16), noise=torch.zeros(2, 3))
    with pytest.raises(GenaugError, match="trains on pairs: pass partners"):
        model.training_step(torch.rand(2, 1, 16, 16), None, {}, torch.autocast)
    with pytest.raises(GenaugError, match="no encoder"):
        model.encode(torch.rand(2, 1, 16, 16))
    config = tiny_config("test_pairvae", unlabeled=True)
    with pytest.raises(GenaugError, match="trains on pairs of images of the same class"):
        train(config, dataset=digits16)
    assert not Path(config.out).exists()


def test_config_round_trip_class_flags_and_bad_arguments():
    model = create_generator("test_pairvae", image_size=16, channels=3, num_classes=10)
    assert model.config["num_classes"] == 0  # labels only pair images: unconditional
    assert type(model)(**model.config).config == model.config
    assert PairVAE.image_conditioned and PairVAE.trains_on_pairs and not PairVAE.has_encoder
    for bad in (dict(skips=-1), dict(beta=0.0), dict(width=0), dict(latent_channels=0)):
        with pytest.raises(GenaugError):
            create_generator("test_pairvae", **bad)


def _critic_folder(folder: Path, class_names: list[str]) -> Path:
    """A classifier folder as genaug bench writes its base classifier (a tiny timm model)."""
    import json

    import timm
    from safetensors.torch import save_file

    folder.mkdir(parents=True)
    model = timm.create_model("test_resnet", num_classes=len(class_names), in_chans=1)
    save_file(model.state_dict(), str(folder / "classifier.safetensors"))
    record = {"model": "test_resnet", "channels": 1, "classes": len(class_names)}
    (folder / "classifier.json").write_text(json.dumps({**record, "class_names": class_names}))
    return folder


def test_the_critic_loss_trains_and_stays_out_of_the_checkpoint(tiny_config, digits16, tmp_path):
    critic = _critic_folder(tmp_path / "critic", list(digits16.class_names))
    args = {"critic": str(critic), "critic_weight": 5.0}
    result = train(tiny_config("test_pairvae", model_args=args), dataset=digits16)
    assert set(result.losses) == LOSSES | {"critic"}
    assert torch.isfinite(torch.tensor(result.losses["critic"]))
    loaded = load_generator(result.run_dir)
    assert loaded.config["critic_weight"] == 5.0 and "_critic" not in loaded.__dict__
    assert not any(k.startswith("_critic") for k in loaded.state_dict())
    plain = train(tiny_config("test_pairvae", out=str(tmp_path / "plain")), dataset=digits16)
    images = digits16.images[:6].float() / 255
    assert not torch.equal(_vary(loaded, images), _vary(plain.model, images))  # it mattered
    stranger = _critic_folder(tmp_path / "other", ["a", "b"])
    with pytest.raises(GenaugError, match="the critic does not know 10 of the generator's"):
        train(
            tiny_config(
                "test_pairvae",
                out=str(tmp_path / "bad"),
                model_args={"critic": str(stranger), "critic_weight": 1.0},
            ),
            dataset=digits16,
        )
    with pytest.raises(GenaugError, match="needs a critic folder"):
        PairVAE(image_size=16, critic_weight=1.0)
