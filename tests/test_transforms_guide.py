"""A guided neighbour walk: the labelled shots' classes spread over an unlabelled bank."""

from __future__ import annotations

import pytest
import torch
from helpers import make_generator, single_thread  # noqa: F401

from genaug.bench.plan.recipes import parse_condition
from genaug.data import ImageDataset, load_dataset
from genaug.errors import GenaugError
from genaug.transforms import GenerativeAugment, NeighbourWalk
from genaug.transforms import functional as F
from genaug.transforms.neighbours import build_latent_bank, propagate_labels


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits", image_size=16)


def test_labels_spread_along_each_cluster_from_one_guide_each():
    generator = torch.Generator().manual_seed(0)
    centres = torch.tensor([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]])
    truth = torch.arange(3).repeat_interleave(60)
    # Elongated clusters: a point's nearest guide is not always its own cluster's.
    latents = centres[truth] + torch.randn(180, 2, generator=generator) * torch.tensor([3.0, 0.5])
    guides = torch.tensor([[-4.0, 0.0], [14.0, 0.0], [0.0, 10.0]])
    labels = propagate_labels(latents, guides, torch.tensor([0, 1, 2]))
    assert labels.shape == (180,) and labels.dtype == torch.long
    assert (labels == truth).float().mean() > 0.97


def test_a_guided_bank_labels_every_image_and_walks_within_the_class(digits):
    model = make_generator("test_vae", num_classes=0)
    guide = ImageDataset(digits.images[:20], digits.targets[:20], digits.class_names)
    walk = NeighbourWalk(digits.images[:300], k=3, hops=3, guide=guide)
    bank = build_latent_bank(walk, model, owner="test")
    assert bank.labels is not None and bank.labels.shape == (300,)
    assert torch.equal(bank.labels[:20], digits.targets[:20])  # a guide image keeps its class
    assert (bank.labels[bank.graph] == bank.labels.unsqueeze(1)).all()  # hops stay in class
    images, labels = digits.images[300:310].float() / 255, digits.targets[300:310]
    with torch.inference_mode():
        z = model.encode(images, None).mean
    indices, found = F.nearest_latents(z, labels, bank.latents, bank.labels, 3)
    assert (bank.labels[indices][found] == labels.unsqueeze(1).expand(-1, 3)[found]).all()
    aug = GenerativeAugment(model, mode="neighbour", p=1.0, neighbours=walk)
    assert aug(digits.images[300:310], labels).shape == (10, 1, 16, 16)
    with pytest.raises(GenaugError, match="needs one class label per image"):
        aug(digits.images[300:310])


def test_bad_guides_are_refused_clearly(digits):
    model = make_generator("test_vae", num_classes=0)
    with pytest.raises(GenaugError, match="without labels"):
        NeighbourWalk(digits.images[:50], 3, guide=digits.without_labels())
    with pytest.raises(GenaugError, match="guide must be labelled images"):
        NeighbourWalk(digits.images[:50], 3, guide=digits.images[:5])
    conditional = make_generator("test_vae", num_classes=10)
    with pytest.raises(GenaugError, match="drop the guide"):
        build_latent_bank(NeighbourWalk(digits, 3, guide=digits), conditional, "test")
    with pytest.raises(GenaugError, match="mode 'neighbour' only"):
        GenerativeAugment(
            model, mode="perturb", neighbours=NeighbourWalk(digits.images[:50], guide=digits)
        )


def test_albumentations_takes_the_guide_as_a_dataset_spec_only(tmp_path, digits):
    pytest.importorskip("albumentations")
    from genaug.models import save_generator
    from genaug.transforms.albumentations import AlbumentationsGenerativeAugment

    save_generator(make_generator("test_vae", num_classes=0), tmp_path / "vae")
    with pytest.raises(GenaugError, match="dataset spec"):  # labelled images: no serialising
        AlbumentationsGenerativeAugment(
            str(tmp_path / "vae"),
            mode="neighbour",
            neighbours=NeighbourWalk("digits", guide=digits),
        )
    with pytest.raises(GenaugError, match="dataset spec"):
        AlbumentationsGenerativeAugment(
            str(tmp_path / "vae"),
            mode="neighbour",
            neighbours={"bank": "digits", "guide": object()},
        )


def test_a_bench_condition_sets_the_guide_inline():
    recipe = parse_condition("randaugment+vae@mode=neighbour,guide=1,hops=6", ["vae"])
    assert recipe.generative is not None and recipe.generative.guide is True
    assert parse_condition("vae@mode=neighbour", ["vae"]).generative.guide is False
    with pytest.raises(GenaugError, match="guide='yes' must be 1 or 0"):
        parse_condition("vae@mode=neighbour,guide=yes", ["vae"])
