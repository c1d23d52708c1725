"""GenerativeCollate: the batched path inside DataLoader workers, image by image what the
per-sample transform gives, with ImageFolder + v2 pipelines, fork and spawn, and timm's Mixup."""

from __future__ import annotations

import pickle

import pytest
import torch
from helpers import make_generator, single_thread  # noqa: F401
from torch.utils.data import DataLoader, Dataset
from torchvision.datasets import ImageFolder
from torchvision.transforms import v2

from genaug import GenaugError, GenerativeCollate, save_generator
from genaug.transforms.torchvision import JointTransformDataset, TorchvisionGenerativeAugment


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    return save_generator(make_generator(num_classes=10), tmp_path_factory.mktemp("ckpt") / "vae")


class Pairs(Dataset):
    """12 uint8 gray images (16 px) and their classes, as ``(image, label)`` samples."""

    def __init__(self) -> None:
        generator = torch.Generator().manual_seed(0)
        self.images = torch.randint(0, 256, (12, 1, 16, 16), dtype=torch.uint8, generator=generator)

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        return self.images[index], index % 10


def _images(loader: DataLoader) -> torch.Tensor:
    return torch.cat([batch[0] for batch in loader])


def _loader(data: Dataset, workers: int, collate_fn=None, context=None, seed: int = 0):
    return DataLoader(
        data,
        batch_size=4,
        num_workers=workers,
        collate_fn=collate_fn,
        multiprocessing_context=context if workers else None,
        generator=torch.Generator().manual_seed(seed),
    )


@pytest.mark.parametrize("workers", [0, 2])
@pytest.mark.parametrize("mode", ["perturb", "resample"])
def test_each_image_gets_what_the_per_sample_transform_gives_it(checkpoint, workers, mode):
    """Moving the generator from the sample's transform to the collate step keeps every image's
    draw: in the main process and in each forked worker (the same worker stream)."""
    per_sample = TorchvisionGenerativeAugment(checkpoint, mode=mode, p=0.5, seed=3)
    expected = _images(_loader(JointTransformDataset(Pairs(), per_sample), workers))
    collate = GenerativeCollate(checkpoint, mode=mode, p=0.5, seed=3)
    got = _images(_loader(Pairs(), workers, collate, "fork"))
    assert (got.int() - expected.int()).abs().max() <= 1  # float rounding of another batch size
    changed = (got != Pairs().images).flatten(1).any(1)
    assert 0 < changed.sum() < len(changed)  # p=0.5, drawn per image


def test_without_labels_it_infers_classes_as_the_image_only_slot_does(checkpoint):
    per_sample = TorchvisionGenerativeAugment(checkpoint, p=1.0, seed=1)
    images = Pairs().images
    expected = torch.stack([per_sample(image) for image in images])
    collate = GenerativeCollate(checkpoint, p=1.0, seed=1, use_labels=False)
    got, labels = collate([(image, 7) for image in images])
    assert (got.int() - expected.int()).abs().max() <= 1
    assert torch.equal(labels, torch.full((12,), 7))  # the labels come back untouched


def test_replay_pickle_and_the_batch_structure(checkpoint):
    collate = GenerativeCollate(checkpoint, p=1.0, seed=0)
    samples = [(image, 2, f"name{i}") for i, image in enumerate(Pairs().images[:4])]
    images, labels, names = collate(samples)
    assert images.dtype == torch.uint8 and images.shape == (4, 1, 16, 16)
    assert labels.tolist() == [2] * 4 and list(names) == [f"name{i}" for i in range(4)]
    params = collate.last_params
    assert torch.equal(collate(samples, params=params)[0], images)
    clone = pickle.loads(pickle.dumps(collate))
    assert torch.equal(clone(samples, params=params)[0], images)
    bare = collate(list(Pairs().images[:4]))  # images alone collate to one tensor
    assert isinstance(bare, torch.Tensor) and bare.shape == (4, 1, 16, 16)


def test_interpolate_draws_partners_in_the_batch(checkpoint):
    collate = GenerativeCollate(checkpoint, mode="interpolate", p=1.0, seed=0)
    collate([(image, i % 2) for i, image in enumerate(Pairs().images[:6])])
    partner = collate.last_params["partner"]
    assert not torch.equal(partner, torch.arange(6))  # others of the class, not itself


def test_a_normalised_pipeline_with_mean_and_std(checkpoint):
    mean, std = (0.5,), (0.25,)
    data = JointTransformDataset(
        Pairs(), v2.Compose([v2.ToDtype(torch.float32, scale=True), v2.Normalize(mean, std)])
    )
    collate = GenerativeCollate(checkpoint, p=0.5, seed=0, mean=mean, std=std)
    images, _ = next(iter(_loader(data, 0, collate)))
    raw = images * 0.25 + 0.5
    assert images.dtype == torch.float32 and raw.min() >= -1e-6 and raw.max() <= 1 + 1e-6


@pytest.mark.parametrize(
    ("samples", "collate_fn", "match"),
    [
        ([{"image": torch.zeros(1, 16, 16)}], None, "got dict; give a collate_fn"),
        ([torch.zeros(16, 16)], None, r"images collated to \(B, C, H, W\), got shape"),
    ],
)
def test_a_batch_it_cannot_read_is_one_sentence(checkpoint, samples, collate_fn, match):
    with pytest.raises(GenaugError, match=match):
        GenerativeCollate(checkpoint, collate_fn=collate_fn)(samples)
    with pytest.raises(GenaugError, match="collate_fn must be callable"):
        GenerativeCollate(checkpoint, collate_fn="default")
    with pytest.raises(GenaugError, match="use_labels must be True or False"):
        GenerativeCollate(checkpoint, use_labels=1)


def _folder_loader(digit_folder, checkpoint, context: str, seed: int = 0) -> DataLoader:
    """The README's batched path: ImageFolder + a v2 pipeline, the generator after collation."""
    pipeline = v2.Compose([v2.PILToTensor(), v2.RandomHorizontalFlip()])
    collate = GenerativeCollate(checkpoint, p=0.5, seed=0)
    data = ImageFolder(str(digit_folder), transform=pipeline)
    return _loader(data, 2, collate, context, seed)


def test_imagefolder_in_forked_workers_repeats_and_composes_with_timm_mixup(
    digit_folder, checkpoint
):
    from timm.data import Mixup

    first = [batch for batch in _folder_loader(digit_folder, checkpoint, "fork")]
    again = [batch for batch in _folder_loader(digit_folder, checkpoint, "fork")]
    other = [batch for batch in _folder_loader(digit_folder, checkpoint, "fork", seed=1)]
    assert all(torch.equal(a[0], b[0]) for a, b in zip(first, again))
    assert not all(torch.equal(a[0], b[0]) for a, b in zip(first, other))
    images, labels = first[0]
    assert images.shape == (4, 3, 16, 16) and images.dtype == torch.uint8
    mixup = Mixup(mixup_alpha=0.8, num_classes=10)  # after it, on float images
    mixed, soft = mixup(images.float() / 255, labels)
    assert mixed.shape == images.shape and soft.shape == (4, 10)


@pytest.mark.slow
def test_imagefolder_in_spawned_workers_gives_what_forked_ones_give(digit_folder, checkpoint):
    forked = list(_folder_loader(digit_folder, checkpoint, "fork"))
    spawned = list(_folder_loader(digit_folder, checkpoint, "spawn"))
    assert all(torch.equal(a[0], b[0]) for a, b in zip(forked, spawned))
