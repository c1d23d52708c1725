"""Mode ``neighbour``: walking toward the nearest images of a latent bank."""

from __future__ import annotations

import pickle

import pytest
import torch
from helpers import make_generator, neighbour_bank, single_thread  # noqa: F401

from genaug.bench.plan.recipes import parse_condition
from genaug.data import load_dataset
from genaug.errors import GenaugError
from genaug.transforms import GenerativeAugment, NeighbourWalk
from genaug.transforms import functional as F
from genaug.transforms.neighbours import build_latent_bank, propagate_labels


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits", image_size=16)


def test_the_walk_goes_toward_the_chosen_nearest_bank_latent(digits):
    model = make_generator("test_vae", num_classes=0)
    bank = build_latent_bank(NeighbourWalk(digits.images[:200], k=3), model, owner="test")
    images = digits.images[200:206].float() / 255
    choice = torch.tensor([0, 1, 2, 0, 1, 2])
    mix = torch.rand(6)
    with torch.inference_mode():
        out = F.neighbour(model, images, None, bank.on(), choice, mix, 1.0).images
        z = model.encode(images, None).mean
        order = torch.cdist(z, bank.latents).argsort(dim=1)[:, :3]  # brute force
        target = bank.latents[order[torch.arange(6), choice]]
        expected = model.decode(z + mix.unsqueeze(1) * (target - z), None)
    torch.testing.assert_close(out, expected)


def test_an_image_in_the_bank_is_not_its_own_neighbour(digits):
    model = make_generator("test_vae", num_classes=0)
    bank = build_latent_bank(NeighbourWalk(digits.images[:50], k=1), model, owner="test")
    with torch.inference_mode():
        z = model.encode(digits.images[:50].float() / 255, None).mean
    indices, found = F.nearest_latents(z, None, bank.latents, None, 1)
    assert found.all()
    assert not (indices[:, 0] == torch.arange(50)).any()


def test_a_conditional_generator_only_walks_toward_its_own_class(digits):
    model = make_generator("test_vae", num_classes=10)
    bank = build_latent_bank(NeighbourWalk(neighbour_bank(), k=4), model, owner="test")
    labels = digits.targets[300:340]
    with torch.inference_mode():
        z = model.encode(digits.images[300:340].float() / 255, labels).mean
    indices, found = F.nearest_latents(z, labels, bank.latents, bank.labels, 4)
    assert found.all()
    assert (bank.labels[indices] == labels.unsqueeze(1)).all()


def test_an_image_without_neighbours_is_reconstructed():
    model = make_generator("test_vae", num_classes=0)
    images = torch.rand(2, 1, 16, 16)
    bank = build_latent_bank(NeighbourWalk(images, k=2), model, owner="test")  # no other: none
    with torch.inference_mode():
        z = model.encode(images[:1], None).mean
        far = torch.full_like(bank.latents, float("nan"))  # no usable neighbour
        indices, found = F.nearest_latents(z, None, far, None, 2)
    assert not found.any()
    aug = GenerativeAugment(model, mode="neighbour", p=1.0, strength=0.0, neighbours=images)
    with torch.inference_mode():
        reconstruction = model.decode(model.encode(images, None).mean, None)
    torch.testing.assert_close(aug(images), reconstruction)


def test_the_transform_replays_and_pickles_with_its_bank(digits):
    model = make_generator("test_vae", num_classes=10)
    aug = GenerativeAugment(model, mode="neighbour", p=1.0, seed=3, neighbours=neighbour_bank())
    images, labels = digits.images[300:308], digits.targets[300:308]
    out = aug(images, labels)
    assert out.dtype == torch.uint8 and out.shape == images.shape
    assert not torch.equal(out, images)
    torch.testing.assert_close(aug(images, labels, params=aug.last_params), out)
    clone = pickle.loads(pickle.dumps(aug))
    torch.testing.assert_close(clone(images, labels, params=aug.last_params), out)
    assert len(clone.bank) == 300


def test_bad_neighbour_settings_are_refused_clearly():
    conditional = make_generator("test_vae", num_classes=10)
    unconditional = make_generator("test_vae", num_classes=0)
    with pytest.raises(GenaugError, match="needs neighbours="):
        GenerativeAugment(unconditional, mode="neighbour")
    with pytest.raises(GenaugError, match="used by mode 'neighbour' only"):
        GenerativeAugment(unconditional, mode="perturb", neighbours=torch.rand(4, 1, 16, 16))
    with pytest.raises(GenaugError, match="needs the neighbours' labels"):
        GenerativeAugment(conditional, mode="neighbour", neighbours=torch.rand(4, 1, 16, 16))
    with pytest.raises(GenaugError, match="NeighbourWalk k must be an integer >= 1"):
        NeighbourWalk(torch.rand(4, 1, 16, 16), k=0)
    with pytest.raises(GenaugError, match="NeighbourWalk hops must be an integer >= 1"):
        NeighbourWalk(torch.rand(4, 1, 16, 16), hops=True)
    with pytest.raises(GenaugError, match="bank must be images"):
        NeighbourWalk([1, 2, 3])
    with pytest.raises(GenaugError, match="neighbours must be a NeighbourWalk, or the images"):
        GenerativeAugment(unconditional, mode="neighbour", neighbours=[1, 2, 3])
    with pytest.raises(GenaugError, match="at least 2 images"):
        GenerativeAugment(unconditional, mode="neighbour", neighbours=torch.rand(1, 1, 16, 16))
    with pytest.raises(GenaugError, match="NaN"):
        GenerativeAugment(
            unconditional, mode="neighbour", neighbours=torch.full((4, 1, 16, 16), float("nan"))
        )
    with pytest.raises(GenaugError, match="cannot do mode 'neighbour'"):
        GenerativeAugment(make_generator("test_gan"), mode="neighbour", neighbours="digits")
    with pytest.raises(GenaugError, match="NeighbourWalk walk must be one of partway, whole"):
        NeighbourWalk("digits", walk="x")
    with pytest.raises(GenaugError, match="used by mode 'neighbour' only"):
        GenerativeAugment(
            unconditional, mode="perturb", neighbours=NeighbourWalk("digits", walk="whole")
        )
    with pytest.raises(GenaugError, match="unknown walk 'far'"):
        parse_condition("vae@mode=neighbour,walk=far", ["vae"])
    with pytest.raises(GenaugError, match="NeighbourWalk space must be one of latent, pixels"):
        NeighbourWalk("digits", space="x")
    with pytest.raises(GenaugError, match="unknown space 'feature'"):
        parse_condition("vae@mode=neighbour,space=feature", ["vae"])


def test_pixel_space_finds_neighbours_and_labels_by_pixel_distance(digits):
    # space=pixels with a whole walk and all the detail: the real bank image nearest in pixels,
    # the generator playing no part (the ablation of its latent space).
    model = make_generator("test_vae", num_classes=0)
    bank, images = digits.images[:200], digits.images[200:206]
    nearest = torch.cdist(images.flatten(1).float(), bank.flatten(1).float()).argmin(dim=1)
    settings = dict(mode="neighbour", p=1.0, detail=1.0)
    walk = NeighbourWalk(bank, k=1, walk="whole", space="pixels")
    pixels = GenerativeAugment(model, neighbours=walk, **settings)
    assert torch.equal(pixels(images), bank[nearest])
    latent_walk = NeighbourWalk(bank, k=1, walk="whole")
    latent = GenerativeAugment(model, neighbours=latent_walk, **settings)
    assert not torch.equal(latent(images), bank[nearest])  # the latent space ranks otherwise
    guide = digits.subset(list(range(300, 330)))
    guided = build_latent_bank(NeighbourWalk(bank, 3, guide=guide, space="pixels"), model, "test")
    pixels_float = bank.flatten(1).float() / 255
    guide_pixels = guide.images.flatten(1).float() / 255
    expected = propagate_labels(pixels_float, guide_pixels, guide.targets)
    assert torch.equal(guided.labels, expected)
    step = parse_condition("randaugment+vae@mode=neighbour,space=pixels", ["vae"]).generative
    assert step is not None and step.space == "pixels"


def test_a_whole_walk_goes_strength_of_the_way_every_time(digits):
    model = make_generator("test_vae", num_classes=0)
    bank, images = digits.images[:200], digits.images[200:208]
    whole = GenerativeAugment(
        model, mode="neighbour", neighbours=NeighbourWalk(bank, walk="whole"), strength=0.7, seed=0
    )
    params = whole.make_params(images)
    assert torch.equal(params["mix"], torch.ones(8))  # t = strength x 1 for every image
    partway = GenerativeAugment(model, mode="neighbour", neighbours=bank, strength=0.7, seed=0)
    assert not torch.equal(partway.make_params(images)["mix"], torch.ones(8))
    torch.testing.assert_close(whole(images, params=params), partway(images, params=params))
    step = parse_condition("randaugment+vae@mode=neighbour,walk=whole", ["vae"]).generative
    assert step is not None and step.walk == "whole"


def test_further_hops_follow_the_banks_own_neighbour_graph(digits):
    model = make_generator("test_vae", num_classes=0)
    bank = build_latent_bank(NeighbourWalk(digits.images[:200], k=3, hops=2), model, "test")
    assert bank.graph.shape == (200, 3)
    assert not (bank.graph == torch.arange(200).unsqueeze(1)).any()  # never itself
    images = digits.images[200:204].float() / 255
    choice = torch.tensor([[0, 2], [1, 1], [2, 0], [0, 0]])
    mix = torch.ones(4)
    with torch.inference_mode():
        out = F.neighbour(model, images, None, bank.on(), choice, mix, 1.0).images
        z = model.encode(images, None).mean
        first = torch.cdist(z, bank.latents).argsort(dim=1)[torch.arange(4), choice[:, 0]]
        expected = model.decode(bank.latents[bank.graph[first, choice[:, 1]]], None)
    torch.testing.assert_close(out, expected)
    walk = NeighbourWalk(digits.images[:200], hops=2)
    aug = GenerativeAugment(model, mode="neighbour", neighbours=walk, seed=0)
    assert aug.make_params(images)["choice"].shape == (4, 2)


def test_albumentations_keeps_the_neighbour_settings_through_save_and_load(tmp_path):
    A = pytest.importorskip("albumentations")
    from genaug.models import save_generator
    from genaug.transforms.albumentations import AlbumentationsGenerativeAugment

    save_generator(make_generator("test_vae", num_classes=0), tmp_path / "vae")
    walk = NeighbourWalk(
        "digits", k=3, hops=2, walk="whole", space="pixels", jitter=0.5, backtrack=False
    )
    aug = AlbumentationsGenerativeAugment(
        str(tmp_path / "vae"), mode="neighbour", neighbours=walk, p=1.0
    )
    A.save(A.Compose([aug]), str(tmp_path / "pipe.yaml"), data_format="yaml")
    saved = (tmp_path / "pipe.yaml").read_text()
    assert "jitter: 0.5" in saved and "bank: digits" in saved  # the walk as data
    loaded = A.load(str(tmp_path / "pipe.yaml"), data_format="yaml").transforms[0]
    assert loaded.mode == "neighbour"
    assert isinstance(loaded.neighbours, NeighbourWalk) and loaded.neighbours == walk
    assert (loaded.neighbours.k, loaded.neighbours.hops, loaded.neighbours.backtrack) == (
        3,
        2,
        False,
    )
    image = (torch.rand(16, 16, 1) * 255).to(torch.uint8).numpy()
    assert loaded(image=image)["image"].shape == image.shape
    # A guided walk (the guide as a dataset spec) round-trips too; it then needs the label.
    guided = AlbumentationsGenerativeAugment(
        str(tmp_path / "vae"), mode="neighbour", neighbours=NeighbourWalk("digits", guide="digits")
    )
    A.save(A.Compose([guided]), str(tmp_path / "guided.json"))
    loaded = A.load(str(tmp_path / "guided.json")).transforms[0]
    assert loaded.neighbours.guide == "digits"
    loaded.p = 1.0
    assert loaded(image=image, label=3)["image"].shape == image.shape
    with pytest.raises(GenaugError, match="dataset spec"):
        AlbumentationsGenerativeAugment(str(tmp_path / "vae"), neighbours=torch.rand(4, 1, 8, 8))


def test_a_small_labelled_bank_walks_only_within_each_class():
    model = make_generator("test_vae", num_classes=2)
    images = (torch.rand(5, 1, 16, 16) * 255).byte().float() / 255  # exact in uint8 too
    labels = torch.tensor([0, 0, 1, 1, 1])  # class 0: 2 images, class 1: 3 (fewer than k + 1)
    from genaug.data import ImageDataset

    bank = build_latent_bank(
        NeighbourWalk(ImageDataset((images * 255).byte(), labels, ["a", "b"]), 4, hops=3),
        model,
        "test",
    )
    assert (bank.labels[bank.graph] == labels.unsqueeze(1)).all()  # every hop stays in class
    assert not (bank.graph == torch.arange(5).unsqueeze(1)).any()  # and moves
    aug = GenerativeAugment(
        model,
        mode="neighbour",
        p=1.0,
        neighbours=NeighbourWalk(ImageDataset((images * 255).byte(), labels, ["a", "b"]), k=4),
        seed=0,
    )
    params = aug.make_params(images, labels)
    params["mix"] = torch.ones(5)  # walk all the way: each output decodes a same-class image
    out = aug(images, labels, params=params)
    with torch.inference_mode():
        own = model.decode(model.encode(images, labels).mean, labels)
        others = model.decode(bank.latents, labels)
    for i in range(5):
        distances = (others - out[i]).flatten(1).abs().amax(dim=1)
        match = int(distances.argmin())
        assert distances[match] < 1e-4 and match != i and labels[match] == labels[i]
    assert not torch.allclose(out, own)


def test_a_walk_that_may_not_backtrack_never_steps_straight_back(digits):
    # Images that are in the bank themselves: a 2-hop walk that may backtrack often comes back
    # to the image's own copy (hop 1 to a neighbour, hop 2 back); one that may not, never.
    model = make_generator("test_vae", num_classes=0)
    bank, images = digits.images[:200], digits.images[:64]

    def returned(backtrack: bool) -> int:
        walk = GenerativeAugment(
            model,
            mode="neighbour",
            neighbours=NeighbourWalk(bank, hops=2, walk="whole", backtrack=backtrack),
            detail=1.0,
            p=1.0,
            seed=0,
        )
        out = walk(images)  # the real bank image each walk ends on
        return int((out == images).flatten(1).all(dim=1).sum())

    assert returned(True) > 5
    assert returned(False) == 0
    step = parse_condition("randaugment+vae@mode=neighbour,backtrack=0", ["vae"]).generative
    assert step is not None and step.backtrack is False
    with pytest.raises(GenaugError, match="NeighbourWalk backtrack must be True or False"):
        NeighbourWalk(bank, backtrack="no")
    with pytest.raises(GenaugError, match="mode 'neighbour' only"):
        GenerativeAugment(model, mode="perturb", neighbours=NeighbourWalk(bank, backtrack=False))
