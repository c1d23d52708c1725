"""NeighbourWalk: the walk's settings, checked once, frozen, serialisable as data."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch
from helpers import make_generator

from genaug.data import load_dataset
from genaug.errors import GenaugError
from genaug.transforms import GenerativeAugment, NeighbourWalk
from genaug.transforms.walk import as_walk, walk_for_mode


def test_defaults_are_the_published_walk_and_settings_are_frozen():
    walk = NeighbourWalk("digits")
    assert (walk.k, walk.hops, walk.guide, walk.walk, walk.space) == (
        5,
        1,
        None,
        "partway",
        "latent",
    )
    assert (walk.jitter, walk.backtrack) == (0.0, True)
    with pytest.raises(dataclasses.FrozenInstanceError):
        walk.hops = 6  # type: ignore[misc]
    assert dataclasses.replace(walk, hops=6).hops == 6


def test_a_spec_walk_round_trips_through_json_and_a_tensor_bank_does_not():
    walk = NeighbourWalk("digits", k=3, hops=6, guide="digits", walk="whole", jitter=0.5)
    data = json.loads(json.dumps(walk.to_dict()))
    assert as_walk(data) == walk and hash(as_walk(data)) == hash(walk)
    images = torch.zeros(4, 1, 8, 8, dtype=torch.uint8)
    with pytest.raises(GenaugError, match="bank as a dataset spec"):
        NeighbourWalk(images).to_dict()
    with pytest.raises(GenaugError, match="only the keys"):
        as_walk({"bank": "digits", "neighbours_hops": 6})
    assert NeighbourWalk(images) == NeighbourWalk(images)  # same tensor: same walk
    assert NeighbourWalk(images) != NeighbourWalk(images.clone())  # compared by identity
    assert repr(NeighbourWalk(images, hops=2)) == "NeighbourWalk(<(4, 1, 8, 8) images>, hops=2)"


def test_a_bare_bank_is_a_default_walk_and_modes_other_than_neighbour_take_none():
    images = torch.zeros(4, 1, 8, 8, dtype=torch.uint8)
    assert as_walk(images) == NeighbourWalk(images)
    assert as_walk(None) is None and walk_for_mode(None, "perturb") is None
    with pytest.raises(GenaugError, match="needs neighbours="):
        walk_for_mode(None, "neighbour")
    with pytest.raises(GenaugError, match="mode 'neighbour' only"):
        walk_for_mode(images, "interpolate")


def test_numpy_settings_become_plain_python_and_bad_ones_are_refused():
    walk = NeighbourWalk("digits", k=np.int64(3), jitter=np.float32(0.25))
    assert type(walk.k) is int and type(walk.jitter) is float
    for settings, message in (
        ({"k": 0}, "k must be an integer >= 1"),
        ({"hops": 1.5}, "hops must be an integer >= 1"),
        ({"walk": "far"}, "walk must be one of partway, whole"),
        ({"space": "feature"}, "space must be one of latent, pixels"),
        ({"jitter": 2}, "jitter must lie in"),
        ({"backtrack": 1}, "backtrack must be True or False"),
        ({"guide": torch.zeros(2, 1, 8, 8)}, "guide must be labelled images"),
    ):
        with pytest.raises(GenaugError, match=message):
            NeighbourWalk("digits", **settings)


def test_the_transform_keeps_the_walks_settings_not_its_images():
    digits = load_dataset("digits", image_size=16)
    model = make_generator("test_vae", num_classes=0)
    walk = NeighbourWalk(digits.images[:100], k=3, hops=2, walk="whole", backtrack=False)
    aug = GenerativeAugment(model, mode="neighbour", neighbours=walk, seed=0)
    bank = aug.bank
    assert (bank.k, bank.hops, bank.walk, bank.backtrack) == (3, 2, "whole", False)
    assert bank.images is None and len(bank) == 100  # the source images are not kept
    assert "backtrack=False" in repr(aug)
