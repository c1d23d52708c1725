"""The torchvision v2 adapter: sample structures, labels, boxes, real pipelines and workers."""

from __future__ import annotations

import pickle

import numpy as np
import PIL.Image
import pytest
import torch
from helpers import make_generator, single_thread  # noqa: F401
from torch.utils.data import DataLoader, TensorDataset
from torchvision import tv_tensors
from torchvision.datasets import ImageFolder
from torchvision.transforms import v2

from genaug import GenaugError, load_generator, save_generator
from genaug.models import holder as _holder
from genaug.transforms.torchvision import (
    JointTransformDataset,
    TargetsNotTransformedWarning,
    TorchvisionGenerativeAugment,
)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    return save_generator(make_generator(num_classes=10), tmp_path_factory.mktemp("ckpt") / "vae")


def _pil(mode: str = "L", size: int = 16) -> PIL.Image.Image:
    rng = np.random.default_rng(0)
    shape = (size, size) if mode == "L" else (size, size, 3)
    return PIL.Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8), mode=mode)


@pytest.mark.parametrize(
    "image",
    [
        _pil("L"),
        _pil("RGB", 20),
        torch.randint(0, 256, (3, 16, 16), dtype=torch.uint8),
        torch.rand(1, 24, 16),
        tv_tensors.Image(torch.randint(0, 256, (1, 16, 16), dtype=torch.uint8)),
        tv_tensors.Image(torch.rand(2, 3, 16, 16)),
    ],
    ids=["pil-L", "pil-RGB", "uint8-CHW", "float-CHW", "tv-image", "tv-image-batch"],
)
def test_every_image_type_comes_back_as_it_went_in(image):
    aug = TorchvisionGenerativeAugment(make_generator(), p=1.0, seed=0)
    batched = isinstance(image, torch.Tensor) and image.ndim == 4
    label = torch.tensor([3, 4]) if batched else 3
    out_image, out_label = aug((image, label))
    assert type(out_image) is type(image) and out_label is label
    if isinstance(image, PIL.Image.Image):
        assert (out_image.mode, out_image.size) == (image.mode, image.size)
        assert not np.array_equal(np.asarray(out_image), np.asarray(image))
    else:
        assert out_image.shape == image.shape and out_image.dtype == image.dtype
        assert not torch.equal(out_image, image)


def test_labels_come_from_dicts_and_custom_getters():
    aug = TorchvisionGenerativeAugment(make_generator(), p=1.0, seed=0)
    image = torch.rand(1, 16, 16)
    sample = {"image": image, "label": 2, "name": "a"}
    out = aug(sample)
    assert out["label"] == 2 and out["name"] == "a"
    replay = aug({"img": image, "class_labels": 2}, params=aug.last_params)
    assert torch.equal(replay["img"], out["image"])
    custom = TorchvisionGenerativeAugment(
        make_generator(), p=1.0, seed=0, labels_getter=lambda s: s["y"]
    )
    assert torch.equal(custom({"x": image, "y": 2})["x"], out["image"])
    unconditional = TorchvisionGenerativeAugment(
        make_generator(num_classes=0), p=1.0, labels_getter=None
    )
    assert unconditional(image).shape == image.shape


def test_boxes_and_masks_pass_through_with_a_warning():
    aug = TorchvisionGenerativeAugment(make_generator(), p=1.0, seed=0)
    boxes = tv_tensors.BoundingBoxes([[1, 1, 5, 5]], format="XYXY", canvas_size=(16, 16))
    mask = tv_tensors.Mask(torch.zeros(16, 16, dtype=torch.uint8))
    sample = {"image": tv_tensors.Image(torch.rand(1, 16, 16)), "boxes": boxes, "mask": mask}
    with pytest.warns(TargetsNotTransformedWarning, match="BoundingBoxes, Mask.*unchanged"):
        aug(sample)  # no label: the generator conditions on the class it infers
    sample["labels"] = torch.tensor(4)
    with pytest.warns(TargetsNotTransformedWarning):
        out = aug(sample)
    assert out["boxes"] is boxes and out["mask"] is mask


@pytest.mark.parametrize(
    ("sample", "match"),
    [
        ((np.zeros((16, 16), np.uint8), 1), "found no image in the sample.*got int, ndarray"),
        ("hello", "found no image in the sample"),
        ((_pil("RGB").convert("RGBA"), 1), "mode L or RGB, got mode RGBA.*convert"),
        ((torch.rand(16, 16), 1), r"\(C, H, W\) or \(B, C, H, W\), got shape \(16, 16\)"),
        ((torch.rand(4, 16, 16), 1), "4 channels"),
        ((torch.rand(1, 16, 16), 12), "labels from 12 to 12"),
    ],
)
def test_bad_samples_are_clear_errors(sample, match):
    aug = TorchvisionGenerativeAugment(make_generator(), p=1.0, seed=0)
    with pytest.raises(GenaugError, match=match):
        aug(sample)


def test_sits_in_random_apply_and_random_choice_beside_classic_transforms():
    generative = TorchvisionGenerativeAugment(make_generator(), p=1.0, strength=0.5, seed=0)
    pipeline = v2.Compose(
        [
            v2.RandomApply([generative], p=0.5),
            v2.RandomChoice([generative, v2.TrivialAugmentWide(), v2.RandomHorizontalFlip(1.0)]),
            v2.ToDtype(torch.float32, scale=True),
        ]
    )
    for label in range(6):
        image = torch.randint(0, 256, (1, 16, 16), dtype=torch.uint8)
        out, out_label = pipeline((image, label))
        assert out.shape == (1, 16, 16) and out.dtype == torch.float32 and out_label == label


def test_timm_create_transform_then_the_generative_transform(checkpoint):
    from timm.data import create_transform

    classic = create_transform(16, is_training=True, normalize=False)  # PIL -> uint8 tensor
    generative = TorchvisionGenerativeAugment(checkpoint, p=1.0, seed=0)
    tensor = classic(_pil("RGB", 24))
    image, label = generative((tensor, 7))
    assert image.shape == (3, 16, 16) == tensor.shape and image.dtype == tensor.dtype
    assert label == 7 and not torch.equal(image, tensor)


def test_a_pickled_copy_loads_the_weights_once_not_per_sample(checkpoint, monkeypatch):
    aug = TorchvisionGenerativeAugment(checkpoint, p=1.0, seed=0)
    calls = []
    original = _holder.load_generator
    monkeypatch.setattr(
        _holder, "load_generator", lambda *a, **k: calls.append(a) or original(*a, **k)
    )
    copy = pickle.loads(pickle.dumps(aug))
    for label in range(5):
        copy((torch.rand(1, 16, 16), label))
    assert len(calls) == 1


def _run_loader(dataset, context, seed=0):
    loader = DataLoader(
        dataset,
        batch_size=1,
        num_workers=2,
        multiprocessing_context=context,
        generator=torch.Generator().manual_seed(seed),
    )
    return [(image.clone(), label.clone()) for image, label in loader]


def _imagefolder_data(digit_folder, checkpoint):
    generative = TorchvisionGenerativeAugment(checkpoint, p=0.5, seed=0)
    pipeline = v2.Compose(
        [
            v2.PILToTensor(),
            v2.RandomHorizontalFlip(),
            generative,
            v2.ToDtype(torch.float32, scale=True),
        ]
    )
    folder = ImageFolder(str(digit_folder))  # RGB PIL images; the generator is gray
    return folder, JointTransformDataset(folder, pipeline)


def test_imagefolder_pipeline_in_forked_workers_differs_per_worker_and_repeats(
    digit_folder, checkpoint
):
    folder, data = _imagefolder_data(digit_folder, checkpoint)
    first = _run_loader(data, "fork")
    assert len(first) == len(folder)
    assert [int(label) for _, label in first] == folder.targets
    assert all(image.shape == (1, 3, 16, 16) for image, _ in first)
    again = _run_loader(data, "fork")
    assert all(torch.equal(a, b) for (a, _), (b, _) in zip(first, again))
    other = _run_loader(data, "fork", seed=1)
    assert not all(torch.equal(a, b) for (a, _), (b, _) in zip(first, other))

    # One image everywhere: workers 0 and 1 get indices 0 and 1 first; their draws must differ.
    same = TensorDataset(torch.rand(1, 1, 16, 16).repeat(4, 1, 1, 1), torch.full((4,), 5))
    generative = TorchvisionGenerativeAugment(checkpoint, p=1.0, seed=0)
    outputs = _run_loader(JointTransformDataset(same, generative), "fork")
    assert not torch.equal(outputs[0][0], outputs[1][0])


@pytest.mark.slow
def test_imagefolder_pipeline_in_spawned_workers(digit_folder, checkpoint):
    folder, data = _imagefolder_data(digit_folder, checkpoint)
    out = _run_loader(data, "spawn")
    assert [int(label) for _, label in out] == folder.targets
    assert all(image.shape == (1, 3, 16, 16) and image.dtype == torch.float32 for image, _ in out)


def _loaded_imagefolder(digit_folder, checkpoint) -> ImageFolder:
    """ImageFolder(transform=...) with the adapter built from load_generator(path): the image
    comes alone, so the conditional generator conditions on the class it infers."""
    generative = TorchvisionGenerativeAugment(load_generator(checkpoint), p=1.0, seed=0)
    pipeline = v2.Compose([v2.PILToTensor(), generative, v2.ToDtype(torch.float32, scale=True)])
    return ImageFolder(str(digit_folder), transform=pipeline)


def test_imagefolder_transform_from_a_loaded_generator_in_forked_workers(digit_folder, checkpoint):
    data = _loaded_imagefolder(digit_folder, checkpoint)
    out = _run_loader(data, "fork")
    assert [int(label) for _, label in out] == data.targets
    plain = ImageFolder(str(digit_folder), transform=v2.Compose([v2.PILToTensor()]))
    for (image, _), (original, _) in zip(out, _run_loader(plain, "fork")):
        assert image.shape == (1, 3, 16, 16) and not torch.equal(image, original.float() / 255)


@pytest.mark.slow
def test_imagefolder_transform_from_a_loaded_generator_in_spawned_workers(digit_folder, checkpoint):
    """Spawned workers get the generator by its checkpoint path (no shared-memory tensors, which
    failed with 'bad value(s) in fds_to_keep') and draw what forked workers draw."""
    data = _loaded_imagefolder(digit_folder, checkpoint)
    forked, spawned = _run_loader(data, "fork"), _run_loader(data, "spawn")
    assert all(torch.equal(a, b) for (a, _), (b, _) in zip(forked, spawned))
