"""Tests for genaug.data.episodes: reproducible, paired few-shot episodes on Omniglot's Tagalog
characters (made up, and the real ones as an extra: see ``omniglot_sets`` in tests/conftest.py)
and digits."""

from __future__ import annotations

import dataclasses
import json

import pytest
import torch
from helpers import OmniglotZips

from genaug.data import (
    Episode,
    ImageDataset,
    episode_data,
    iter_episodes,
    load_omniglot,
    sample_episode,
)
from genaug.errors import GenaugError


@pytest.fixture(scope="module")
def tagalog(omniglot_sets: OmniglotZips) -> ImageDataset:
    data = load_omniglot(omniglot_sets.small2, image_size=8, alphabets=["Tagalog"])
    assert data.num_classes == omniglot_sets.characters("Tagalog") >= 6  # 5 ways below fit
    assert omniglot_sets.drawings == 20  # the refusals below name 20 images per class
    return data


def test_episode_is_reproducible_and_paired(tagalog: ImageDataset) -> None:
    first = sample_episode(tagalog, ways=5, shots=1, episode=3, seed=7)
    again = sample_episode(tagalog, ways=5, shots=1, episode=3, seed=7)
    assert first == again  # every condition of episode 3 sees the same classes, shots and tests
    listed = list(iter_episodes(tagalog, ways=5, shots=1, episodes=6, seed=7))
    assert [e.index for e in listed] == list(range(6)) and listed[3] == first
    assert len({e.classes for e in listed}) > 1  # episodes differ from one another
    other_seed = sample_episode(tagalog, ways=5, shots=1, episode=3, seed=8)
    assert (other_seed.classes, other_seed.shots) != (first.classes, first.shots)
    json.dumps(dataclasses.asdict(first))  # recordable in a jsonl


def test_episode_contents(tagalog: ImageDataset) -> None:
    ep = sample_episode(tagalog, ways=4, shots=5, episode=0)
    assert isinstance(ep, Episode) and ep.ways == 4 and list(ep.classes) == sorted(ep.classes)
    assert len(ep.shots) == 20 and len(ep.test) == 4 * 15
    assert not set(ep.shots) & set(ep.test)
    targets = tagalog.targets
    assert targets[list(ep.shots)].tolist() == [c for c in ep.classes for _ in range(5)]
    assert set(targets[list(ep.test)].tolist()) == set(ep.classes)
    support, query = episode_data(tagalog, ep)
    assert support.targets.tolist() == ep.shot_labels() == [i for i in range(4) for _ in range(5)]
    assert torch.equal(torch.unique(query.targets), torch.arange(4))
    assert support.class_names == [tagalog.class_names[c] for c in ep.classes]
    assert torch.equal(support.images, tagalog.images[list(ep.shots)])
    assert torch.equal(query.images, ep.query(tagalog).images)
    assert support.description["split"] == "support" and query.description["episode"] == 0
    assert support.description["class_groups"] == ["Tagalog"] * 4


def test_shot_counts_are_nested(tagalog: ImageDataset) -> None:
    one = sample_episode(tagalog, ways=5, shots=1, episode=2)
    five = sample_episode(tagalog, ways=5, shots=5, episode=2)
    assert one.classes == five.classes
    assert set(one.shots) <= set(five.shots)
    one_q = sample_episode(tagalog, ways=5, shots=1, episode=2, queries=10)
    five_q = sample_episode(tagalog, ways=5, shots=5, episode=2, queries=10)
    assert one_q.test == five_q.test and len(one_q.test) == 50  # same test set for both


def test_ways_and_shots_refusals(tagalog: ImageDataset, digits16: ImageDataset) -> None:
    classes = tagalog.num_classes
    too_many = rf"ways={classes + 1} is more than the {classes} classes .*--ways"
    with pytest.raises(GenaugError, match=too_many):
        sample_episode(tagalog, ways=classes + 1, shots=1, episode=0)
    everything = sample_episode(tagalog, ways=classes, shots=1, episode=0)
    assert everything.classes == tuple(range(classes))  # as many ways as classes fit
    with pytest.raises(
        GenaugError,
        match=r"'Tagalog/character01' holds 20 image\(s\), fewer .*"
        r"20 shot\(s\) plus at least 1 test image; lower shots to 19",
    ):
        sample_episode(tagalog, ways=5, shots=20, episode=0)
    with pytest.raises(GenaugError, match="plus 6 test image"):
        list(iter_episodes(tagalog, ways=5, shots=15, episodes=3, queries=6))
    # a class with 2 images among full digit classes is named, whatever the episode draws
    keep = torch.nonzero(digits16.targets != 4).reshape(-1).tolist()
    keep += torch.nonzero(digits16.targets == 4).reshape(-1)[:2].tolist()
    uneven = digits16.subset(sorted(keep))
    with pytest.raises(GenaugError, match=r"class '4' holds 2 image\(s\).*lower shots to 1"):
        sample_episode(uneven, ways=2, shots=2, episode=0)
    assert len(sample_episode(uneven, ways=2, shots=1, episode=0).shots) == 2
    for bad in (dict(ways=1), dict(shots=0), dict(episode=-1), dict(seed=1.5)):
        args = dict(ways=3, shots=1, episode=0, seed=0) | bad
        with pytest.raises(GenaugError, match=f"{next(iter(bad))} must be an int"):
            sample_episode(tagalog, **args)
    with pytest.raises(GenaugError, match="fully labelled"):
        sample_episode(tagalog.without_labels(), ways=3, shots=1, episode=0)
    with pytest.raises(GenaugError, match="episodes must be an int"):
        next(iter_episodes(tagalog, ways=3, shots=1, episodes=0))
