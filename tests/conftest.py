"""Shared fixtures: fixed seeds, small real datasets, tiny training configs, Omniglot-layout
zips (made up here, so that the Omniglot tests run in a plain clone)."""

from __future__ import annotations

import pytest
import torch
from helpers import REAL_OMNIGLOT, OmniglotZips, make_omniglot_zip

from genaug.data import load_dataset
from genaug.train import TrainConfig

# One thread: on a 2-core CI machine two torch threads contend with pytest and
# DataLoader workers and run 10-100x slower than one.
torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def fixed_seed():
    """Every test starts from the same global RNG state."""
    torch.manual_seed(0)
    yield


@pytest.fixture(scope="session")
def digits16():
    """scikit-learn's bundled digits (real, 1,797 images) at 16 px, 1 channel."""
    return load_dataset("digits", image_size=16)


@pytest.fixture(scope="session")
def digit_folder(tmp_path_factory, digits16):
    """A real ImageFolder tree: 4 digits of each class as PNGs (16 px, gray)."""
    from genaug.transforms.export import image_to_pil

    root = tmp_path_factory.mktemp("digits")
    for label in range(10):
        (root / str(label)).mkdir()
        indices = torch.nonzero(digits16.targets == label).flatten()[:4]
        for k, index in enumerate(indices.tolist()):
            image_to_pil(digits16.images[index].float() / 255).save(root / str(label) / f"{k}.png")
    return root


@pytest.fixture
def tiny_config(tmp_path):
    """A training config that runs in about a second on a CPU."""

    def make(model: str = "test_vae", **overrides) -> TrainConfig:
        from genaug.models import create_generator

        model_args = {}
        if create_generator(model).feature_space:  # trains on a frozen extractor's features
            from helpers import tiny_extractor_spec

            model_args["extractor"] = tiny_extractor_spec()
        values = dict(
            model=model,
            data="digits",
            out=str(tmp_path / f"run-{model}"),
            image_size=16,
            steps=6,
            batch_size=16,
            checkpoint_every=3,
            log_every=2,
            device="cpu",
            progress=False,
            model_args=model_args,
        )
        values.update(overrides)
        return TrainConfig(**values)

    return make


@pytest.fixture(scope="session")
def seen_dagan(digits16, tmp_path_factory):
    """A test_dagan trained a few steps on digits classes 0-4 only (16 px), and its checkpoint:
    classes 5-9 are ones it never saw. Returns ``(model, checkpoint_dir)``."""
    from genaug.train import train

    seen = digits16.subset(torch.nonzero(digits16.targets < 5).squeeze(1))
    config = TrainConfig(
        model="test_dagan",
        data="digits",
        out=str(tmp_path_factory.mktemp("dagan") / "run"),
        image_size=16,
        steps=6,
        batch_size=16,
        checkpoint_every=6,
        log_every=3,
        device="cpu",
        progress=False,
    )
    torch.manual_seed(0)
    result = train(config, dataset=seen)
    return result.model.eval(), result.checkpoint


@pytest.fixture(scope="session")
def omniglot_zips(tmp_path_factory) -> OmniglotZips:
    """Two small zips made like Omniglot's minimal sets (``make_omniglot_zip``): small1 holds
    Balinese, Greek and Latin; small2 the same Greek and Latin (byte for byte), Japanese_(katakana),
    Sanskrit and Tagalog; 20 drawings of every character. Built once (well under a second)."""
    root = tmp_path_factory.mktemp("omniglot")
    zips = OmniglotZips(
        small1=root / "images_background_small1.zip",
        small2=root / "images_background_small2.zip",
        root=root,
        alphabets1={"Balinese": 4, "Greek": 5, "Latin": 4},
        alphabets2={"Greek": 5, "Japanese_(katakana)": 3, "Latin": 4, "Sanskrit": 5, "Tagalog": 6},
    )
    make_omniglot_zip(zips.small1, zips.alphabets1, zips.drawings, top=zips.small1.stem)
    make_omniglot_zip(zips.small2, zips.alphabets2, zips.drawings, top=zips.small2.stem)
    return zips


@pytest.fixture(
    scope="module",
    params=[
        "generated",
        pytest.param(
            "real",
            marks=pytest.mark.skipif(
                not REAL_OMNIGLOT.small1.is_file() or not REAL_OMNIGLOT.small2.is_file(),
                reason=f"extra on the real Omniglot zips, absent from {REAL_OMNIGLOT.root} "
                "(set GENAUG_OMNIGLOT_ROOT); the [generated] version ran",
            ),
        ),
    ],
)
def omniglot_sets(request) -> OmniglotZips:
    """Both Omniglot sets, once made up (``omniglot_zips``, always there) and once the real zips
    (an extra, skipped when they are absent, as in a plain clone): a test taking this fixture
    runs on both and reads its counts from the returned ``OmniglotZips``."""
    if request.param == "real":
        return REAL_OMNIGLOT
    return request.getfixturevalue("omniglot_zips")
