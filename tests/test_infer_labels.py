"""A conditional generator infers the class of an image handed to it without a label.

Real data (scikit-learn digits at 16 px), real training (the one loop), tiny models.
"""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file
from torchvision.transforms.v2 import functional as TF

from genaug import load_generator, save_generator
from genaug.data import train_test_split
from genaug.errors import GenaugError
from genaug.models import create_generator
from genaug.train import train


@pytest.fixture(scope="module")
def split(digits16):
    return train_test_split(digits16, 0.3, 0)


@pytest.fixture(scope="module")
def trained_vae(split, tmp_path_factory):
    """test_vae trained on the digits training split, head included (~10 s on 2 busy cores)."""
    from genaug.train import TrainConfig

    config = TrainConfig(
        model="test_vae",
        out=str(tmp_path_factory.mktemp("vae") / "run"),
        image_size=16,
        steps=300,
        batch_size=64,
        checkpoint_every=300,
        log_every=50,
        device="cpu",
        progress=False,
    )
    return train(config, dataset=split[0])


def fresh_vae():
    torch.manual_seed(0)
    return create_generator("test_vae", image_size=16, channels=1, num_classes=10).eval()


def accuracy(model, dataset, method: str) -> float:
    labels = model.infer_labels(dataset.float_images(), method)
    assert labels.dtype == torch.long and labels.shape == (len(dataset),)
    return (labels == dataset.targets).float().mean().item()


# --------------------------------------------------------------------------- what works
@pytest.mark.slow
def test_head_infers_held_out_digits(trained_vae, split):
    model = trained_vae.model
    assert model.can_infer_labels and model.config["class_head"] is True
    assert "head" in trained_vae.losses  # the loop logs the head's loss with the ELBO terms
    # Chance is 0.1; both ways must find most held-out digits' classes.
    assert accuracy(model, split[1], "head") > 0.7
    assert accuracy(model, split[1], "reconstruction") > 0.5


def test_inference_leaves_the_model_as_it_was(split):
    model = fresh_vae()
    images = split[1].float_images()[:8]
    model.train()
    try:
        before = {k: v.clone() for k, v in model.state_dict().items()}
        first = model.infer_labels(images)
        assert model.training and model.encoder.training  # mode restored
        after = model.state_dict()
        assert all(torch.equal(before[k], after[k]) for k in before)  # BN statistics untouched
        assert torch.equal(first, model.infer_labels(images))
    finally:
        model.eval()
    # Per image, not per batch: one image alone gets the class it gets in a batch.
    assert torch.equal(model.infer_labels(images[3:4]), first[3:4])


@pytest.mark.parametrize("name", ["test_vae", pytest.param("test_cgan", marks=pytest.mark.slow)])
def test_the_head_does_not_change_the_generator(name, split, tiny_config, tmp_path):
    """The head learns from detached features: the generator trains exactly as without it."""
    common = dict(steps=3, batch_size=16, checkpoint_every=3)
    dataset = split[0]
    with_head = train(
        tiny_config(name, out=str(tmp_path / "with"), **common), dataset=dataset
    ).model
    without = train(
        tiny_config(
            name, out=str(tmp_path / "without"), model_args={"class_head": False}, **common
        ),
        dataset=dataset,
    ).model
    assert with_head.class_head is not None and without.class_head is None
    theirs = without.state_dict()
    mine = {k: v for k, v in with_head.state_dict().items() if not k.startswith("class_head.")}
    assert mine.keys() == theirs.keys()
    assert all(torch.equal(mine[k], theirs[k]) for k in mine)


def test_checkpoint_keeps_the_head(split, tmp_path):
    model = fresh_vae()
    folder = save_generator(model, tmp_path / "ckpt")
    config = json.loads((folder / "config.json").read_text())
    assert config["model_args"]["class_head"] is True
    assert any(k.startswith("class_head.") for k in load_file(str(folder / "model.safetensors")))
    loaded = load_generator(folder)
    images = split[1].float_images()[:32]
    assert torch.equal(loaded.class_logits(images), model.class_logits(images))


def test_unconditional_generators_have_no_head(tiny_config, split):
    result = train(tiny_config(unlabeled=True), dataset=split[0])
    model = result.model
    assert model.class_head is None and model.config["class_head"] is False
    assert "head" not in result.losses
    assert not model.can_infer_labels and model.label_inference_problem() is None
    with pytest.raises(GenaugError, match="unconditional"):
        model.infer_labels(torch.rand(2, 1, 16, 16))


def test_cgan_infers_through_both_ways(split):
    model = create_generator("test_cgan", image_size=16, channels=1, num_classes=10).eval()
    images = split[1].float_images()[:5]
    for method in ("head", "reconstruction"):
        labels = model.infer_labels(images, method)
        assert labels.shape == (5,) and labels.dtype == torch.long
        assert int(labels.min()) >= 0 and int(labels.max()) < 10


# --------------------------------------------------------------------------- bad input
def test_old_checkpoint_without_head_loads_and_says_so(tmp_path):
    folder = save_generator(fresh_vae(), tmp_path / "old")
    # Make it what an older genaug wrote: no class_head argument, no head weights.
    config_path = folder / "config.json"
    config = json.loads(config_path.read_text())
    del config["model_args"]["class_head"]
    config_path.write_text(json.dumps(config))
    weights = folder / "model.safetensors"
    tensors = load_file(str(weights))
    save_file({k: v for k, v in tensors.items() if not k.startswith("class_head.")}, str(weights))

    old = load_generator(folder)
    assert old.conditional and old.class_head is None and not old.can_infer_labels
    problem = old.label_inference_problem()
    assert "no class head" in problem and "retrain" in problem and "--unlabeled" in problem
    with pytest.raises(GenaugError, match="no class head") as info:
        old.infer_labels(torch.rand(2, 1, 16, 16))
    assert str(info.value).count(". ") == 0  # one sentence
    # Reconstruction needs no head: still possible when asked for by name.
    assert old.infer_labels(torch.rand(2, 1, 16, 16), "reconstruction").shape == (2,)


def test_gan_cannot_infer_and_names_the_fixes():
    gan = create_generator("test_gan", image_size=16, channels=1, num_classes=10).eval()
    assert not gan.can_infer_labels
    for method in ("head", "reconstruction"):
        with pytest.raises(GenaugError, match="no encoder") as info:
            gan.infer_labels(torch.rand(2, 1, 16, 16), method)
        message = str(info.value)
        assert "pass labels" in message and "vae or cgan" in message and "--unlabeled" in message


def test_bad_images_and_methods_are_named():
    model = create_generator("test_vae", image_size=16, channels=1, num_classes=10).eval()
    with pytest.raises(GenaugError, match=r"\(B, 1, 16, 16\).*\(2, 3, 16, 16\)"):
        model.infer_labels(torch.rand(2, 3, 16, 16))
    with pytest.raises(GenaugError, match="got list"):
        model.infer_labels([[0.0]])
    with pytest.raises(GenaugError, match="'nearest'.*head, reconstruction"):
        model.infer_labels(torch.rand(2, 1, 16, 16), "nearest")


# ------------------------------------------------- the image-only slot: transforms infer the class
@pytest.fixture(scope="module")
def digit_folder(tmp_path_factory, digits16):
    """A real ImageFolder tree: 6 digits of each class as 16 px PNGs."""
    from genaug.transforms.export import image_to_pil

    root = tmp_path_factory.mktemp("digits")
    for label in range(10):
        (root / str(label)).mkdir()
        indices = torch.nonzero(digits16.targets == label).flatten()[:6]
        for k, index in enumerate(indices.tolist()):
            image_to_pil(digits16.images[index].float() / 255).save(root / str(label) / f"{k}.png")
    return root


@pytest.fixture(scope="module")
def folder_checkpoint(digit_folder, tmp_path_factory):
    """The default (conditional) generator `genaug train` makes from the folder (test_vae)."""
    from genaug.cli import main

    out = tmp_path_factory.mktemp("cli") / "run"
    argv = ["train", "--model", "test_vae", "--data", f"imagefolder:{digit_folder}"]
    argv += ["--image-size", "16", "--steps", "150", "--batch-size", "32", "--device", "cpu"]
    assert main([*argv, "--no-progress", "--out", str(out)]) == 0
    return out


def headless(path, tmp_path):
    """The checkpoint at ``path`` as an older genaug wrote it: no class head."""
    model = load_generator(path)
    old = create_generator("test_vae", image_size=16, channels=1, num_classes=10, class_head=False)
    old.load_state_dict({k: v for k, v in model.state_dict().items() if "class_head" not in k})
    return save_generator(old, tmp_path / "headless")


def folder_pipeline(checkpoint, **kwargs):
    from torchvision.transforms import v2

    from genaug.transforms.torchvision import TorchvisionGenerativeAugment

    generative = TorchvisionGenerativeAugment(checkpoint, p=1.0, seed=0, **kwargs)
    return v2.Compose([v2.PILToTensor(), generative, v2.ToDtype(torch.float32, scale=True)])


@pytest.mark.slow
@pytest.mark.parametrize("context", ["fork", "spawn"])
def test_imagefolder_transform_slot_with_the_default_generator(
    context, digit_folder, folder_checkpoint
):
    """The issue's pipeline: ImageFolder(transform=...) with DataLoader workers, fork and spawn."""
    from torch.utils.data import DataLoader
    from torchvision.datasets import ImageFolder

    plain = ImageFolder(str(digit_folder))
    data = ImageFolder(str(digit_folder), transform=folder_pipeline(folder_checkpoint))
    loader = DataLoader(data, batch_size=6, num_workers=2, multiprocessing_context=context)
    images, labels = map(torch.cat, zip(*loader))
    assert torch.equal(labels, torch.tensor(plain.targets))  # the dataset's labels, untouched
    assert images.dtype == torch.float32 and images.shape == (60, 3, 16, 16)
    assert images.min() >= 0.0 and images.max() <= 1.0
    originals = torch.stack([TF.pil_to_tensor(image) for image, _ in plain]).float() / 255
    assert ((images - originals).abs().flatten(1).amax(1) > 0.05).all()  # every image generated


def test_no_label_means_the_inferred_class(digit_folder, folder_checkpoint):
    """An image alone gets what the same image with its inferred class as label gets."""
    from torchvision.datasets import ImageFolder

    model = load_generator(folder_checkpoint)
    assert model.conditional and model.can_infer_labels  # the CLI's default: conditional + head
    plain = ImageFolder(str(digit_folder))
    pixels = torch.stack([TF.pil_to_tensor(image.convert("L")) for image, _ in plain])
    inferred = model.infer_labels(pixels.float() / 255)
    # Trained on these very images, the head knows nearly all of them.
    assert (inferred == torch.tensor(plain.targets)).float().mean() >= 0.9
    for index in (0, 17, 59):
        alone = folder_pipeline(folder_checkpoint)(plain[index][0])
        labelled, _ = folder_pipeline(folder_checkpoint)((plain[index][0], inferred[index]))
        assert torch.equal(alone, labelled)


def test_core_and_albumentations_infer_without_labels(folder_checkpoint, split):
    import albumentations as A

    from genaug.transforms import GenerativeAugment
    from genaug.transforms.albumentations import AlbumentationsGenerativeAugment

    images = split[1].images[:8]
    inferred = load_generator(folder_checkpoint).infer_labels(images.float() / 255)
    for mode in ("perturb", "resample", "interpolate"):
        alone = GenerativeAugment(folder_checkpoint, mode=mode, p=1.0, seed=3)
        given = GenerativeAugment(folder_checkpoint, mode=mode, p=1.0, seed=3)
        assert torch.equal(alone(images), given(images, inferred))
    partner = alone.make_params(images)["partner"]
    assert torch.equal(inferred[partner], inferred)  # interpolation stays in the inferred class
    transform = AlbumentationsGenerativeAugment(str(folder_checkpoint), p=1.0)
    image = images[0].permute(1, 2, 0).numpy()
    out = A.Compose([transform], seed=0)(image=image)["image"]  # no label key in the call
    again = A.Compose([transform], seed=0)(image=image, label=int(inferred[0]))["image"]
    assert np.array_equal(out, again)


# --------------------------------------------------------- the image-only slot: bad input
def test_headless_checkpoint_is_refused_when_no_label_can_come(folder_checkpoint, tmp_path):
    from genaug.transforms import GenerativeAugment

    old = headless(folder_checkpoint, tmp_path)
    with pytest.raises(GenaugError, match="no class head.*retrain.*pass labels.*--unlabeled"):
        folder_pipeline(old, labels_getter=None)  # at build time, not in a worker
    pipeline = folder_pipeline(old)  # labels may come: built, and labelled samples work
    image = TF.to_pil_image(torch.zeros(1, 16, 16, dtype=torch.uint8))
    assert pipeline((image, 3))[0].shape == (1, 16, 16)
    with pytest.raises(GenaugError, match="needs one class label.*none was given.*no class head"):
        pipeline(image)
    with pytest.raises(GenaugError, match="none was given.*no class head"):
        GenerativeAugment(old, p=1.0)(torch.rand(2, 1, 16, 16))


def test_gan_is_refused_when_no_label_can_come(tmp_path):
    gan = create_generator("test_gan", image_size=16, channels=1, num_classes=10)
    path = save_generator(gan, tmp_path / "gan")
    with pytest.raises(GenaugError, match="no encoder.*pass labels.*vae or cgan.*--unlabeled"):
        folder_pipeline(path, labels_getter=None)


@pytest.mark.parametrize("host", ["torchvision", "albumentations", "kornia"])
def test_adapters_say_at_build_time_that_labels_must_come(host, folder_checkpoint, tmp_path):
    """Where labels may still come, a generator that cannot infer is built, with a warning
    naming the fixes (said in the main process, not in the first DataLoader worker)."""
    from genaug.transforms import LabelsRequiredWarning

    gan = create_generator("test_gan", image_size=16, channels=1, num_classes=10)
    for checkpoint, why in (
        (headless(folder_checkpoint, tmp_path), "no class head.*retrain.*--unlabeled"),
        (save_generator(gan, tmp_path / "gan"), "no encoder.*pass labels.*--unlabeled"),
    ):
        with pytest.warns(LabelsRequiredWarning, match=f"every call must bring.*{why}"):
            if host == "torchvision":
                folder_pipeline(checkpoint)
            elif host == "albumentations":
                from genaug.transforms.albumentations import AlbumentationsGenerativeAugment

                AlbumentationsGenerativeAugment(str(checkpoint), p=1.0)
            else:
                from genaug.transforms.kornia import KorniaGenerativeAugment

                KorniaGenerativeAugment(str(checkpoint), p=1.0)
    with warnings.catch_warnings():  # a generator with a head: nothing to say
        warnings.simplefilter("error", LabelsRequiredWarning)
        folder_pipeline(folder_checkpoint)


@pytest.mark.parametrize(
    ("label", "match"),
    [
        ("three", "got str"),
        (3.0, "integer class indices.*float"),
        (True, "integer class indices.*bool"),
        (12, "labels from 12 to 12.*classes 0 to 9"),
        (-1, "labels from -1 to -1"),
    ],
)
def test_a_bad_label_in_a_sample_is_named(folder_checkpoint, label, match):
    image = TF.to_pil_image(torch.zeros(1, 16, 16, dtype=torch.uint8))
    with pytest.raises(GenaugError, match=match):
        folder_pipeline(folder_checkpoint)((image, label))


def test_albumentations_label_of_wrong_range_is_named(folder_checkpoint):
    from genaug.transforms.albumentations import AlbumentationsGenerativeAugment

    transform = AlbumentationsGenerativeAugment(str(folder_checkpoint), p=1.0)
    with pytest.raises(GenaugError, match="labels from 10 to 10"):
        transform(image=np.zeros((16, 16, 1), np.uint8), label=10)


def test_resuming_a_run_begun_without_the_head_says_to_start_over(tiny_config, split):
    first = train(tiny_config(steps=4, checkpoint_every=2), dataset=split[0])
    for folder in first.checkpoint.parent.glob("step_*"):  # as an older genaug wrote them
        config = json.loads((folder / "config.json").read_text())
        del config["model_args"]["class_head"]
        (folder / "config.json").write_text(json.dumps(config))
        for weights in folder.glob("*.safetensors"):
            tensors = load_file(str(weights))
            save_file({k: v for k, v in tensors.items() if "class_head" not in k}, str(weights))
    # Sound checkpoints of another model than this genaug builds: the setting is named, and
    # the fix keeps them (never --overwrite while they are good).
    with pytest.raises(GenaugError, match="built with class_head=False.*start a new run"):
        train(tiny_config(steps=6, checkpoint_every=2, resume=True), dataset=split[0])
